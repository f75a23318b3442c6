package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store/model"
)

// openLogTask is a task of pipeline "subs" (leaderAPIWith's) whose
// attempt ran and printed early, with the commands the executor would
// apply, applied here: the test decides when the attempt finishes and
// whether its log is still open then.
func openLogTask(t *testing.T, c *fakeLeaderCluster, url string) (apply func(fsm.CommandType, any), ref fsm.TaskRef, path string) {
	t.Helper()
	apply = func(typ fsm.CommandType, body any) {
		t.Helper()
		res, _, err := c.Apply(context.Background(), typ, fsm.Meta{Actor: "test", Timestamp: time.Now().UnixMilli()}, body)
		if err != nil || res.Err != nil {
			t.Fatalf("command %d: %v %v", typ, err, res.Err)
		}
	}
	apply(fsm.CmdConfigDeploy, fsm.ConfigDeploy{NamespaceID: model.DefaultNamespace, PipelineID: "subs", Version: 1})
	apply(fsm.CmdRunCreate, fsm.RunCreate{NamespaceID: model.DefaultNamespace, PipelineID: "subs"})
	run := fsm.RunRef{NamespaceID: model.DefaultNamespace, PipelineID: "subs", RunID: 1}
	apply(fsm.CmdRunStart, fsm.RunStart{RunRef: run})
	ref = fsm.TaskRef{RunRef: run, TaskID: "tsk"}
	apply(fsm.CmdTaskSchedule, fsm.TaskSchedule{TaskRef: ref, Attempt: 1, Container: "c1"})
	apply(fsm.CmdTaskRunning, fsm.TaskRunning{TaskRef: ref, Attempt: 1})
	apply(fsm.CmdLogAppend, fsm.LogAppend{TaskRef: ref, Attempt: 1, Data: []byte("early\n")})
	return apply, ref, url + "/api/namespaces/default/pipelines/subs/runs/1/tasks/tsk/logs"
}

// logEvents streams a framed log's events (event name, then data decoded
// for log events) into a channel closed when the body ends.
func logEvents(t *testing.T, url string, headers map[string]string) (*http.Response, <-chan [2]string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("gofer-api-version", "v0")
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	out := make(chan [2]string, 64)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var ev [2]string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && ev[0] != "":
				out <- ev
				ev = [2]string{}
			case strings.HasPrefix(line, "event: "):
				ev[0] = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev[1] = line[6:]
				if ev[0] == "log" {
					b, _ := base64.StdEncoding.DecodeString(ev[1])
					ev[1] = string(b)
				}
			}
		}
	}()
	return resp, out
}

func nextEvent(t *testing.T, events <-chan [2]string) [2]string {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the stream ended without an end event")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event in 10 s")
	}
	return [2]string{}
}

// noEvent checks the stream sends nothing (but keep-alives) for a while.
func noEvent(t *testing.T, events <-chan [2]string) {
	t.Helper()
	select {
	case ev := <-events:
		t.Fatalf("got %v while the log is open; want the stream to wait", ev)
	case <-time.After(500 * time.Millisecond):
	}
}

// A task finished while its output is still being replicated has an open
// log: a follow does not end at the finish but streams the late output
// and ends when the log closes; a resume past what this node has stored
// waits for it instead of answering 400 (the node that served those bytes
// was ahead); a read without follow says the log is not complete yet.
func TestFollowEndsOnlyWhenTheLogIsClosed(t *testing.T) {
	_, c, url, _ := leaderAPIWith(t, Options{Dev: true, StreamKeepAlive: 100 * time.Millisecond})
	apply, ref, path := openLogTask(t, c, url)
	_, follow := logEvents(t, path+"?follow=true", nil)
	if ev := nextEvent(t, follow); ev != [2]string{"log", "early\n"} {
		t.Fatalf("first event %v", ev)
	}
	apply(fsm.CmdTaskFinish, fsm.TaskFinish{TaskRef: ref, Attempt: 1, Status: model.TaskStatusSuccessful, LogsOpen: true})
	noEvent(t, follow)

	// A client that got the late bytes from a node further ahead resumes
	// here, past this node's end of the log.
	resp, resumed := logEvents(t, path+"?follow=true", map[string]string{"Last-Event-ID": "11"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resume past this node's stored output while the log is open: %d; want it to wait", resp.StatusCode)
	}
	_, unfollowed := logEvents(t, path, nil)
	if ev := nextEvent(t, unfollowed); ev != [2]string{"log", "early\n"} {
		t.Fatalf("no follow: first event %v", ev)
	}
	if ev := nextEvent(t, unfollowed); ev != [2]string{"end", `{"offset":6,"complete":false}`} {
		t.Fatalf("no follow while the log is open: %v, want end, not complete", ev)
	}

	apply(fsm.CmdLogAppend, fsm.LogAppend{TaskRef: ref, Attempt: 1, Offset: 6, Data: []byte("late\n")})
	if ev := nextEvent(t, follow); ev != [2]string{"log", "late\n"} {
		t.Fatalf("late output: %v", ev)
	}
	noEvent(t, follow)
	noEvent(t, resumed)
	apply(fsm.CmdLogAppend, fsm.LogAppend{TaskRef: ref, Attempt: 1, Offset: 11, Last: true})
	for _, events := range []<-chan [2]string{follow, resumed} {
		if ev := nextEvent(t, events); ev != [2]string{"end", `{"offset":11,"complete":true}`} {
			t.Fatalf("after the log closed: %v, want end, complete", ev)
		}
	}

	// Closed, the log has a known end: past it is a 400.
	resp, _ = logEvents(t, path, map[string]string{"Last-Event-ID": "12"})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("past the end of a closed log: %d, want 400", resp.StatusCode)
	}
}

// A client that stops reading a stream does not pin its handler: once a
// write has blocked for the stream's write timeout the handler gives up
// and the connection is closed, rather than waiting for ever. The client
// reads nothing until the handler has returned (a fixed pause was not
// enough: under load the handler could still be preparing its first
// writes when the pause ended, and a reader that drains the stream is,
// rightly, not given up on).
func TestLogStreamGivesUpOnAClientThatDoesNotRead(t *testing.T) {
	s, c, _, _ := leaderAPIWith(t, Options{Dev: true, StreamKeepAlive: 100 * time.Millisecond})
	// The same server, its log route's handler observed.
	handlerDone := make(chan struct{}, 1)
	h := s.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/logs") {
			handlerDone <- struct{}{}
		}
	}))
	defer srv.Close()
	apply, ref, path := openLogTask(t, c, srv.URL)
	// More than loopback's socket buffers hold, so writes block.
	chunk := []byte(strings.Repeat("0123456789abcdef", 1<<16)) // 1 MiB
	offset := int64(len("early\n"))
	for range 24 {
		apply(fsm.CmdLogAppend, fsm.LogAppend{TaskRef: ref, Attempt: 1, Offset: offset, Data: chunk})
		offset += int64(len(chunk))
	}
	apply(fsm.CmdTaskFinish, fsm.TaskFinish{TaskRef: ref, Attempt: 1, Status: model.TaskStatusSuccessful})

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nGofer-Api-Version: v0\r\nAccept: text/event-stream\r\n\r\n", strings.TrimPrefix(path, srv.URL))
	select {
	case <-handlerDone:
	case <-time.After(3 * time.Minute):
		t.Fatal("the handler still writes to a client that has read nothing for 3 minutes")
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the server kept the connection of a client it gave up on (%v after %d bytes)", err, len(got))
	}
	if bytes.Contains(got, []byte("event: end")) {
		t.Fatal("the whole stream was delivered; want it given up on")
	}
}

// idLogs is an engine's log stream that knows its container.
type idLogs struct {
	io.Reader
	id string
}

func (l idLogs) Close() error        { return nil }
func (l idLogs) ContainerID() string { return l.id }

// An extension's log stream names the container it reads
// (X-Gofer-Container-Id), so a client resuming after the supervisor
// replaced the container can tell its offset means nothing there.
func TestExtensionLogsNameTheirContainer(t *testing.T) {
	_, _, url, _ := leaderAPIWith(t, Options{Dev: true, ExtensionLogs: func(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
		return idLogs{Reader: strings.NewReader("hello\n"), id: "c0ffee"}, nil
	}})
	resp, events := logEvents(t, url+"/api/extensions/ext/logs", nil)
	if got := resp.Header.Get("X-Gofer-Container-Id"); got != "c0ffee" {
		t.Fatalf("X-Gofer-Container-Id %q, want the engine's container id", got)
	}
	if ev := nextEvent(t, events); ev != [2]string{"log", "hello\n"} {
		t.Fatalf("first event %v", ev)
	}
}

// A follow whose run is deleted while it streams (run retention, or its
// pipeline) ends with the stream's end event, not a cut body a client
// would take for a dead node and resume against a 404.
func TestFollowEndsWhenTheRunIsDeleted(t *testing.T) {
	_, c, url, _ := leaderAPIWith(t, Options{Dev: true, StreamKeepAlive: 100 * time.Millisecond})
	apply, _, path := openLogTask(t, c, url)
	_, follow := logEvents(t, path+"?follow=true", nil)
	if ev := nextEvent(t, follow); ev != [2]string{"log", "early\n"} {
		t.Fatalf("first event %v", ev)
	}
	noEvent(t, follow)
	apply(fsm.CmdPipelineDelete, fsm.PipelineDelete{NamespaceID: model.DefaultNamespace, PipelineID: "subs"})
	if ev := nextEvent(t, follow); ev != [2]string{"end", `{"offset":6,"complete":false}`} {
		t.Fatalf("after the run was deleted: %v, want end at byte 6, not complete", ev)
	}
}
