package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Run and task lifecycle event kinds (store/model/event.go).
const (
	evQueuedRun     = "queued_run"
	evStartedRun    = "started_run"
	evCompletedRun  = "completed_run"
	evScheduledTask = "scheduled_task_execution"
	evStartedTask   = "started_task_execution"
	evCompletedTask = "completed_task_execution"
)

// goferEvent is one event received on the stream: when this process read
// it (at) and the leader's stamp of the command (emitted, epoch ms: the
// time the leader decided on the command, before raft committed it).
type goferEvent struct {
	kind    string
	task    string
	status  string
	at      time.Time
	emitted int64
}

// runTrack collects one run's events; done closes on completed_run.
type runTrack struct {
	mu     sync.Mutex
	events []goferEvent
	done   chan struct{}
	status string
}

func newRunTrack() *runTrack { return &runTrack{done: make(chan struct{})} }

// first returns the first event of kind (for task "" any task, else that
// task's), or false.
func (t *runTrack) first(kind, task string) (goferEvent, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.events {
		if e.kind == kind && (task == "" || e.task == task) {
			return e, true
		}
	}
	return goferEvent{}, false
}

// eventStream follows GET /api/events/stream on one node (the leader, so
// an event is seen as soon as the node that decides applies it) and hands
// each run's events to its runTrack. The first events of a run can arrive
// before the start request returns its id, so tracks are created by
// whichever comes first, the event or the caller.
type eventStream struct {
	cancel context.CancelFunc
	done   chan struct{}
	keep   bool // keep every event of a run (timing), else only its end

	mu     sync.Mutex
	runs   map[string]*runTrack // pipeline/run
	counts map[string][]int64   // kind -> emitted ms, for the kinds counted
	err    error
}

func runKeyOf(pipeline string, run int64) string { return pipeline + "/" + strconv.FormatInt(run, 10) }

// followEvents connects to node's event stream and returns once the
// stream is open (events emitted afterwards are all seen).
func (c *goferCluster) followEvents(ctx context.Context, node int, keep bool) (*eventStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.nodes[node].url+"/api/events/stream?history=false", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("gofer-api-version", "v0")
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("event stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("event stream: %s", resp.Status)
	}
	s := &eventStream{cancel: cancel, done: make(chan struct{}), keep: keep, runs: map[string]*runTrack{},
		counts: map[string][]int64{evScheduledTask: nil, evCompletedTask: nil, evCompletedRun: nil}}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	// The stream opens with a comment and an id-only event.
	if _, err := br.ReadString('\n'); err != nil {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("event stream: %w", err)
	}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		var kind, data string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				if ctx.Err() == nil {
					s.mu.Lock()
					s.err = fmt.Errorf("event stream ended: %w", err)
					s.mu.Unlock()
				}
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if kind != "" && data != "" {
					s.add(kind, data, time.Now())
				}
				kind, data = "", ""
			case strings.HasPrefix(line, "event: "):
				kind = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = line[len("data: "):]
			}
		}
	}()
	return s, nil
}

func (s *eventStream) add(kind, data string, at time.Time) {
	switch kind {
	case evQueuedRun, evStartedRun, evCompletedRun, evScheduledTask, evStartedTask, evCompletedTask:
	default:
		return
	}
	// Details are typed (run_id a number); an older server sent strings.
	// Decoding numbers as json.Number reads both as text.
	var e struct {
		Details map[string]any `json:"details"`
		Emitted int64          `json:"emitted"`
	}
	dec := json.NewDecoder(strings.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&e); err != nil {
		return
	}
	detail := func(k string) string {
		if v, ok := e.Details[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	run, _ := strconv.ParseInt(detail("run_id"), 10, 64)
	key := runKeyOf(detail("pipeline_id"), run)
	ev := goferEvent{kind: kind, task: detail("task_id"), status: detail("status"), at: at, emitted: e.Emitted}
	s.mu.Lock()
	if c, ok := s.counts[kind]; ok {
		s.counts[kind] = append(c, e.Emitted)
	}
	t := s.runs[key]
	if t == nil {
		t = newRunTrack()
		s.runs[key] = t
	}
	s.mu.Unlock()
	t.mu.Lock()
	if s.keep || kind == evCompletedRun {
		t.events = append(t.events, ev)
	}
	if kind == evCompletedRun && t.status == "" {
		t.status = ev.status
		close(t.done)
	}
	t.mu.Unlock()
}

// track returns the run's track (created if no event came yet).
func (s *eventStream) track(pipeline string, run int64) *runTrack {
	key := runKeyOf(pipeline, run)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.runs[key]
	if t == nil {
		t = newRunTrack()
		s.runs[key] = t
	}
	return t
}

// forget drops a finished run's track.
func (s *eventStream) forget(pipeline string, run int64) {
	s.mu.Lock()
	delete(s.runs, runKeyOf(pipeline, run))
	s.mu.Unlock()
}

// wait blocks until the run completes, the stream fails or timeout.
func (s *eventStream) wait(ctx context.Context, t *runTrack, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.done:
		return nil
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil {
			return s.err
		}
		return fmt.Errorf("event stream closed")
	case <-timer.C:
		return fmt.Errorf("run did not complete within %s", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// countEmitted counts events of kind emitted in [from, to) (epoch ms).
func (s *eventStream) countEmitted(kind string, from, to int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.counts[kind] {
		if e >= from && e < to {
			n++
		}
	}
	return n
}

// total counts every event of kind seen.
func (s *eventStream) total(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.counts[kind])
}

func (s *eventStream) close() {
	s.cancel()
	<-s.done
}
