package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"

	"github.com/goferhq/gofer/scheduler"
)

// Start implements scheduler.Scheduler: ensure the image, create the
// container under req.Name, start it.
//
// The name is the attempt's identity, so a second Start of the same
// attempt (a retry, or a new leader after the old one died mid-start)
// never makes a second container:
//   - a container that exists and has started (running or exited) gives
//     ErrAlreadyExists, and the executor adopts it;
//   - a container that was created but never started is started now (it
//     is the same attempt; starting it twice is harmless to the engine);
//   - the engine reserves a name when a create begins, before the
//     container is visible: a conflict whose container cannot be seen yet
//     is a create in flight, so Start waits for it to appear.
//
// A container whose start the engine refused is left in place on purpose:
// it records the engine's words and exit code (Inspect reports it as
// exited), which is the evidence a new leader needs; the orphan sweep or
// Remove deletes it.
func (s *Scheduler) Start(ctx context.Context, req scheduler.StartRequest) error {
	if err := validate(req); err != nil {
		return err
	}
	if err := s.ensureImage(ctx, req); err != nil {
		return err
	}
	cfg, host := s.containerConfig(req)

	var id string
	// A name reserved with no container behind it for this long is not a
	// create in flight (Docker can keep a ghost reservation after a crash
	// until it restarts).
	giveUp := time.Now().Add(inFlightCreateWait)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		var conflict bool
		var err error
		if id, conflict, err = s.create(ctx, req, cfg, host); err != nil || !conflict {
			if err != nil {
				return err
			}
			break
		}
		info, found, err := s.resolve(ctx, "start", req.Name)
		if err != nil {
			return err
		}
		if found {
			if info.State == nil || info.State.Status != "created" || info.State.Error != "" {
				return fmt.Errorf("docker: create %s: %w (state %s)", req.Name, scheduler.ErrAlreadyExists, stateName(info.State))
			}
			id = info.ID
			s.log.Info("starting a container that was created but never started", "name", req.Name)
			break
		}
		// Reserved by a create that has not finished: wait for it.
		if time.Now().After(giveUp) {
			return fmt.Errorf("docker: create %s: %w: the name stays reserved but no container has it after %s (restarting the engine clears a stale reservation)", req.Name, scheduler.ErrUnavailable, inFlightCreateWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker: create %s: %w: %w", req.Name, scheduler.ErrUnavailable, ctx.Err())
		case <-time.After(wait):
		}
	}

	release, err := s.acquire(ctx)
	if err != nil {
		return fmt.Errorf("docker: start %s: %w: %w", req.Name, scheduler.ErrUnavailable, err)
	}
	defer release()
	sctx, cancel := s.short(ctx)
	defer cancel()
	// By ID: the name could already belong to another container if this
	// one was removed meanwhile.
	if err := s.cli.ContainerStart(sctx, id, container.StartOptions{}); err != nil {
		if notFound(err) && strings.Contains(strings.ToLower(err.Error()), "no such container") {
			// Removed between create and start (a sweep, an operator):
			// nothing ran, so starting afresh is the right reaction.
			return fmt.Errorf("docker: start %s: removed before it started: %w: %w", req.Name, scheduler.ErrUnavailable, err)
		}
		// The daemon's own words travel in err ("executable file not
		// found", "network x not found"): a 4xx is the request's fault.
		return classify("start", req.Name, err)
	}
	s.log.Debug("started container", "name", req.Name, "image", req.Image)
	return nil
}

// inFlightCreateWait bounds how long Start waits for another create of the
// same name to finish.
const inFlightCreateWait = time.Minute

// create makes the container; conflict reports that the name is taken.
func (s *Scheduler) create(ctx context.Context, req scheduler.StartRequest, cfg *container.Config, host *container.HostConfig) (id string, conflict bool, err error) {
	release, err := s.acquire(ctx)
	if err != nil {
		return "", false, fmt.Errorf("docker: create %s: %w: %w", req.Name, scheduler.ErrUnavailable, err)
	}
	defer release()
	cctx, cancel := s.short(ctx)
	defer cancel()
	created, err := s.cli.ContainerCreate(cctx, cfg, host, nil, nil, req.Name)
	switch {
	case err == nil:
		return created.ID, false, nil
	case refused(err) && cerrdefs.IsConflict(err):
		return "", true, nil
	case isMissingImage(err):
		return "", false, fmt.Errorf("docker: create %s: image %s: %w: %w", req.Name, req.Image, scheduler.ErrImageNotFound, err)
	default:
		return "", false, classify("create", req.Name, err)
	}
}

func stateName(st *container.State) string {
	if st == nil {
		return "unknown"
	}
	return st.Status
}

// validate refuses what Docker would refuse later with a vaguer message,
// or worse, accept differently: the client treats an empty name as "no
// such container" without asking the engine.
func validate(req scheduler.StartRequest) error {
	if strings.TrimSpace(req.Name) == "" {
		return fmt.Errorf("docker: start: empty container name: %w", scheduler.ErrInvalid)
	}
	if strings.TrimSpace(req.Image) == "" {
		return fmt.Errorf("docker: start %s: empty image: %w", req.Name, scheduler.ErrInvalid)
	}
	for k := range req.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("docker: start %s: bad environment variable name %q: %w", req.Name, k, scheduler.ErrInvalid)
		}
	}
	return nil
}

// containerConfig maps a request to Docker's create body. A nil
// Entrypoint or Command keeps the image's own (note Docker's rule: setting
// an Entrypoint also drops the image's CMD); an empty non-nil Entrypoint
// clears the image's. Env is sorted so that the same request always
// produces the same container config.
//
// MemoryMB is the container's memory limit (a hard limit: over it the
// kernel OOM-kills the container). CPU (MHz) becomes CPU shares, the
// number itself, as Nomad's docker driver does: a relative weight under
// contention, no hard cap — MHz mean nothing exact on one host, so there
// is no clean mapping to a CPU quota (NanoCPUs). Zero leaves Docker's
// defaults (no memory limit, 1024 shares).
func (s *Scheduler) containerConfig(req scheduler.StartRequest) (*container.Config, *container.HostConfig) {
	env := make([]string, 0, len(req.Env))
	for k, v := range req.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	cfg := &container.Config{
		Image:      req.Image,
		Env:        env,
		Labels:     req.Labels,
		Entrypoint: req.Entrypoint,
		Cmd:        req.Command,
	}
	network := s.opts.Network
	if req.Network != "" {
		network = req.Network
	}
	host := &container.HostConfig{NetworkMode: container.NetworkMode(network)}
	if req.MemoryMB > 0 {
		host.Memory = int64(req.MemoryMB) << 20
	}
	if req.CPU > 0 {
		host.CPUShares = int64(req.CPU)
	}
	return cfg, host
}

// ensureImage pulls the image when it is absent, or always with
// AlwaysPull. A failed pull of a present image falls back to the local
// copy (logged): refusing to run what we have because a registry blinked
// would turn a registry outage into failed tasks.
func (s *Scheduler) ensureImage(ctx context.Context, req scheduler.StartRequest) error {
	ictx, cancel := s.short(ctx)
	_, err := s.cli.ImageInspect(ictx, req.Image)
	cancel()
	present := err == nil
	if err != nil && !notFound(err) {
		return classify("inspect image", req.Image, err)
	}
	if present && !req.AlwaysPull {
		return nil
	}
	if !present && req.NeverPull && !req.AlwaysPull {
		return fmt.Errorf("docker: image %s is not present and this container may not pull it: %w", req.Image, scheduler.ErrImageNotFound)
	}
	err = s.pull(ctx, req)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("docker: pull %s: %w: %w", req.Image, scheduler.ErrUnavailable, ctx.Err())
	case !refused(err) && isConnectionFailure(err):
		return fmt.Errorf("docker: pull %s: %w: %w", req.Image, scheduler.ErrUnavailable, err)
	case present:
		s.log.Warn("pull failed, using the local image", "image", req.Image, "error", err)
		return nil
	default:
		return fmt.Errorf("docker: image %s is not present and could not be pulled: %w: %w", req.Image, scheduler.ErrImageNotFound, err)
	}
}

// pull pulls one image within PullTimeout. The engine reports most
// registry failures inside a 200 response's JSON stream, not as a status,
// so the stream is read to the end and its error message returned.
func (s *Scheduler) pull(ctx context.Context, req scheduler.StartRequest) error {
	var opts image.PullOptions
	if req.RegistryUser != "" || req.RegistryPass != "" {
		auth, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: req.RegistryUser, Password: req.RegistryPass})
		if err != nil {
			return err
		}
		opts.RegistryAuth = auth
	}
	pctx, cancel := context.WithTimeout(ctx, s.opts.PullTimeout)
	defer cancel()
	began := time.Now()
	s.log.Info("pulling image", "image", req.Image, "always", req.AlwaysPull)
	err := func() error {
		rc, err := s.cli.ImagePull(pctx, req.Image, opts)
		if err != nil {
			return err
		}
		defer rc.Close()
		return readPullStream(rc)
	}()
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("pull did not finish within %s: %w", s.opts.PullTimeout, err)
	}
	if err == nil {
		s.log.Info("pulled image", "image", req.Image, "took", time.Since(began).Round(time.Millisecond))
	}
	return err
}

// pullMessage is the part of the engine's JSON progress messages we use.
type pullMessage struct {
	Status      string `json:"status"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

func readPullStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m pullMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}
