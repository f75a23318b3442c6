package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// dockerAPI talks to the Docker engine's HTTP API on its unix socket, with
// no client library (this module stays small): the event stream for
// container timing, and listing/removing containers by label for cleanup.
type dockerAPI struct {
	socket string
	hc     *http.Client // short calls
	stream *http.Client // the event stream (no timeout)
}

// newDockerAPI uses DOCKER_HOST when it is a unix:// address, else the
// default socket. A tcp:// DOCKER_HOST is not supported here.
func newDockerAPI() (*dockerAPI, error) {
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		if !strings.HasPrefix(h, "unix://") {
			return nil, fmt.Errorf("DOCKER_HOST=%s: only unix:// sockets are supported by the benchmark", h)
		}
		sock = strings.TrimPrefix(h, "unix://")
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
	return &dockerAPI{
		socket: sock,
		hc:     &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4}},
		stream: &http.Client{Transport: &http.Transport{DialContext: dial}},
	}, nil
}

func (d *dockerAPI) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return fmt.Errorf("docker %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("docker %s: %s %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// ping checks the engine answers.
func (d *dockerAPI) ping(ctx context.Context) error {
	var v struct {
		Version string `json:"Version"`
	}
	return d.get(ctx, "/version", &v)
}

// version is the engine's version string.
func (d *dockerAPI) version(ctx context.Context) string {
	var v struct {
		Version    string `json:"Version"`
		APIVersion string `json:"ApiVersion"`
	}
	if err := d.get(ctx, "/version", &v); err != nil {
		return "?"
	}
	return v.Version + " (API " + v.APIVersion + ")"
}

// imagePresent reports whether a local image exists.
func (d *dockerAPI) imagePresent(ctx context.Context, image string) bool {
	return d.get(ctx, "/images/"+url.PathEscape(image)+"/json", nil) == nil
}

func labelFilter(labels ...string) string {
	b, _ := json.Marshal(map[string][]string{"label": labels})
	return url.QueryEscape(string(b))
}

// countByLabel counts containers (running or not) carrying label k=v.
func (d *dockerAPI) countByLabel(ctx context.Context, label string) (int, error) {
	var list []struct {
		ID string `json:"Id"`
	}
	if err := d.get(ctx, "/containers/json?all=1&filters="+labelFilter(label), &list); err != nil {
		return 0, err
	}
	return len(list), nil
}

// removeByLabel force-removes every container carrying label k=v.
func (d *dockerAPI) removeByLabel(ctx context.Context, label string) (int, error) {
	var list []struct {
		ID string `json:"Id"`
	}
	if err := d.get(ctx, "/containers/json?all=1&filters="+labelFilter(label), &list); err != nil {
		return 0, err
	}
	n := 0
	var firstErr error
	for _, c := range list {
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, "http://docker/containers/"+c.ID+"?force=1&v=1", nil)
		if err != nil {
			return n, err
		}
		resp, err := d.hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotFound {
				n++
				continue
			}
			err = fmt.Errorf("remove %s: %s", c.ID[:12], resp.Status)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return n, firstErr
}

// dockerEvent is one container event from the engine's stream.
type dockerEvent struct {
	Action string
	ID     string
	Name   string
	Labels map[string]string // the container's labels (plus name, image, exitCode)
	At     time.Time         // the engine's own timestamp (timeNano)
}

// ctrTimes is what the event stream told about one container.
type ctrTimes struct {
	create, start, die, destroy time.Time
	exitCode                    string
}

// dockerWatch follows the engine's container events from the moment it is
// started and keeps the timing of the containers this benchmark cares
// about (ours), keyed by a name the caller derives from the labels. It
// also counts the containers other users of the engine started meanwhile:
// on a shared machine that is the noise a docker number carries.
type dockerWatch struct {
	key    func(labels map[string]string) string // "" for a container that is not ours
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	byKey   map[string]*ctrTimes
	foreign int // start events of containers that are not ours
	err     error
}

func (d *dockerAPI) watch(ctx context.Context, key func(map[string]string) string) (*dockerWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	f, _ := json.Marshal(map[string][]string{"type": {"container"}})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/events?filters="+url.QueryEscape(string(f)), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := d.stream.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("docker events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("docker events: %s", resp.Status)
	}
	w := &dockerWatch{key: key, cancel: cancel, done: make(chan struct{}), byKey: map[string]*ctrTimes{}}
	go func() {
		defer close(w.done)
		defer resp.Body.Close()
		dec := json.NewDecoder(bufio.NewReader(resp.Body))
		for {
			var m struct {
				Action string `json:"Action"`
				Actor  struct {
					ID         string            `json:"ID"`
					Attributes map[string]string `json:"Attributes"`
				} `json:"Actor"`
				TimeNano int64 `json:"timeNano"`
			}
			if err := dec.Decode(&m); err != nil {
				if ctx.Err() == nil {
					w.mu.Lock()
					w.err = fmt.Errorf("docker event stream ended: %w", err)
					w.mu.Unlock()
				}
				return
			}
			w.add(dockerEvent{Action: m.Action, ID: m.Actor.ID, Name: m.Actor.Attributes["name"], Labels: m.Actor.Attributes,
				At: time.Unix(0, m.TimeNano)})
		}
	}()
	return w, nil
}

func (w *dockerWatch) add(e dockerEvent) {
	k := w.key(e.Labels)
	w.mu.Lock()
	defer w.mu.Unlock()
	if k == "" {
		if e.Action == "start" {
			w.foreign++
		}
		return
	}
	t := w.byKey[k]
	if t == nil {
		t = &ctrTimes{}
		w.byKey[k] = t
	}
	switch e.Action {
	case "create":
		t.create = e.At
	case "start":
		t.start = e.At
	case "die":
		t.die = e.At
		t.exitCode = e.Labels["exitCode"]
	case "destroy":
		t.destroy = e.At
	}
}

// foreignStarts is how many containers that are not ours started so far.
func (w *dockerWatch) foreignStarts() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.foreign
}

// times waits up to wait for the container under key to have all of the
// events need asks for ("create", "start", "die", "destroy") and returns a
// copy of what is known.
func (w *dockerWatch) times(key string, wait time.Duration, need ...string) (ctrTimes, bool) {
	deadline := time.Now().Add(wait)
	for {
		w.mu.Lock()
		var t ctrTimes
		if p := w.byKey[key]; p != nil {
			t = *p
		}
		err := w.err
		w.mu.Unlock()
		ok := true
		for _, n := range need {
			switch n {
			case "create":
				ok = ok && !t.create.IsZero()
			case "start":
				ok = ok && !t.start.IsZero()
			case "die":
				ok = ok && !t.die.IsZero()
			case "destroy":
				ok = ok && !t.destroy.IsZero()
			}
		}
		if ok || err != nil || time.Now().After(deadline) {
			return t, ok
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// forget drops a container's record (long runs would grow the map).
func (w *dockerWatch) forget(key string) {
	w.mu.Lock()
	delete(w.byKey, key)
	w.mu.Unlock()
}

func (w *dockerWatch) close() {
	w.cancel()
	<-w.done
}

func (d *dockerAPI) call(ctx context.Context, method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return fmt.Errorf("docker %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("docker %s %s: %s %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// exitProbe measures how long the engine itself takes to report an exit:
// it creates and starts one container through the API (as gofer's docker
// scheduler does), waits for it with condition=not-running (what the
// scheduler's Wait uses) and returns die event → wait returned. Whoever
// waits on a container through the API cannot learn of its exit sooner.
func (d *dockerAPI) exitProbe(ctx context.Context, w *dockerWatch, image, network, seq string) (time.Duration, error) {
	var created struct {
		ID string `json:"Id"`
	}
	body := map[string]any{
		"Image":      image,
		"Cmd":        []string{"true"},
		"Labels":     map[string]string{labelBench: benchID, labelBench + ".seq": seq},
		"HostConfig": map[string]any{"NetworkMode": network},
	}
	if err := d.call(ctx, http.MethodPost, "/containers/create", body, &created); err != nil {
		return 0, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = d.call(rctx, http.MethodDelete, "/containers/"+created.ID+"?force=1", nil, nil)
	}()
	if err := d.call(ctx, http.MethodPost, "/containers/"+created.ID+"/start", nil, nil); err != nil {
		return 0, err
	}
	if err := d.call(ctx, http.MethodPost, "/containers/"+created.ID+"/wait?condition=not-running", nil, nil); err != nil {
		return 0, err
	}
	waited := time.Now()
	t, ok := w.times("raw:"+seq, 2*time.Second, "die")
	w.forget("raw:" + seq)
	if !ok {
		return 0, fmt.Errorf("no die event for the probe container")
	}
	return waited.Sub(t.die), nil
}
