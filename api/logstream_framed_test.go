package api_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent"
	"github.com/goferhq/gofer/scheduler/noop"
	"github.com/goferhq/gofer/sdk/go"
)

// logNode is a real dev node (noop scheduler) with one complete task whose
// log is pieces, joined: the noop container prints it, the executor
// collects it and closes the log.
type logNode struct {
	url, path, log string
}

func newLogNode(t *testing.T, pieces ...string) *logNode {
	t.Helper()
	cl, url, _ := devAgent(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	log := strings.Join(pieces, "")
	// The noop engine's container prints its NOOP_OUTPUT: the task
	// completes with this log, collected and closed by the executor as a
	// real one's is.
	task := sdk.NewTask("tsk", "img").Variable(noop.OutputVariable, log)
	if _, err := cl.RegisterConfig(ctx, sdk.NewPipeline("logs", "logs").Tasks(task).Config()); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeployConfig(ctx, "logs", 1); err != nil {
		t.Fatal(err)
	}
	run, err := cl.StartRun(ctx, "logs", nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		task, err := cl.GetTask(ctx, "logs", run.RunID, "tsk")
		if err == nil && task.Terminal() && !task.LogsOpen && task.LogBytes == int64(len(log)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task never completed with its %d-byte log closed: %+v %v", len(log), task, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &logNode{url: url, log: log,
		path: "/api/namespaces/default/pipelines/logs/runs/" + strconv.FormatInt(run.RunID, 10) + "/tasks/tsk/logs"}
}

// framedEvent is one event of a framed log stream.
type framedEvent struct{ id, event, data string }

// get asks for the log with the query and headers given; framed unless
// plain.
func (n *logNode) get(t *testing.T, query string, headers map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, n.url+n.path+query, nil)
	req.Header.Set("gofer-api-version", "v0")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// framed reads a framed answer to its end: the greeting comment, the log
// bytes the log events carry (checking each id is the offset past it) and
// the events.
func framed(t *testing.T, resp *http.Response, from int64) (greeting string, got string, events []framedEvent) {
	t.Helper()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("framed answer: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	sc := bufio.NewScanner(resp.Body)
	var ev framedEvent
	pos := from
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.event != "" {
				events = append(events, ev)
				if ev.event == "log" {
					b, err := base64.StdEncoding.DecodeString(ev.data)
					if err != nil {
						t.Fatalf("log event data %q: %v", ev.data, err)
					}
					pos += int64(len(b))
					if ev.id != strconv.FormatInt(pos, 10) {
						t.Fatalf("log event id %s, want the offset past it, %d", ev.id, pos)
					}
					got += string(b)
				}
			}
			ev = framedEvent{}
		case strings.HasPrefix(line, ": connected"):
			greeting = line
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
	return greeting, got, events
}

var sse = map[string]string{"Accept": "text/event-stream"}

// TestFramedTaskLogFromAnyOffset: the real handler serves the framed form
// from any byte, the middle of a chunk included, each byte once, and ends
// with `end` naming the log's size; the plain form is the log's bytes
// exactly.
func TestFramedTaskLogFromAnyOffset(t *testing.T) {
	n := newLogNode(t, "first chunk\n", "second\n", "third one\n")
	for _, from := range []int{0, 5, 12, 13, len(n.log) - 1} {
		_, got, events := framed(t, n.get(t, "?offset="+strconv.Itoa(from), sse), int64(from))
		if got != n.log[from:] {
			t.Fatalf("from byte %d: got %q, want %q", from, got, n.log[from:])
		}
		last := events[len(events)-1]
		want := `{"offset":` + strconv.Itoa(len(n.log)) + `,"complete":true}`
		if last.event != "end" || last.data != want || last.id != strconv.Itoa(len(n.log)) {
			t.Fatalf("from byte %d: last event %+v, want end %s", from, last, want)
		}
	}
	resp := n.get(t, "", nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(b) != n.log || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("plain: %d %s %q; want the log's bytes exactly", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	resp = n.get(t, "?offset=5", nil)
	if b, _ := io.ReadAll(resp.Body); string(b) != n.log[5:] {
		t.Fatalf("plain from byte 5: %q", b)
	}
}

// TestFramedLogLastEventIDWinsOverOffset: a browser's EventSource
// reconnects with the URL it opened (?offset unchanged) plus
// Last-Event-ID; the header is where the stream resumes, or the bytes
// between the two would come twice.
func TestFramedLogLastEventIDWinsOverOffset(t *testing.T) {
	n := newLogNode(t, "0123456789", "abcdefghij")
	greeting, got, _ := framed(t, n.get(t, "?offset=2", map[string]string{"Accept": "text/event-stream", "Last-Event-ID": "15"}), 15)
	if got != n.log[15:] || !strings.Contains(greeting, "at byte 15") {
		t.Fatalf("?offset=2 with Last-Event-ID 15: greeting %q, got %q; want the log from byte 15, %q", greeting, got, n.log[15:])
	}
	// The plain form has no events: Last-Event-ID means nothing there.
	resp := n.get(t, "?offset=2", map[string]string{"Last-Event-ID": "15"})
	if b, _ := io.ReadAll(resp.Body); string(b) != n.log[2:] {
		t.Fatalf("plain ?offset=2 with Last-Event-ID: %q, want from byte 2", b)
	}
}

// TestFramedLogAtItsEndIs204: a framed request for a finished task's log
// at its end (a browser's EventSource reconnecting after `end`, with
// Last-Event-ID at the end) gets 204, on which EventSource stops; a 200
// with only `end` would have it reconnect for ever. The plain form keeps
// its 200 with no bytes.
func TestFramedLogAtItsEndIs204(t *testing.T) {
	n := newLogNode(t, "0123456789")
	for _, h := range []map[string]string{
		{"Accept": "text/event-stream", "Last-Event-ID": "10"},
		{"Accept": "text/event-stream"},
	} {
		query := ""
		if h["Last-Event-ID"] == "" {
			query = "?offset=10&follow=true"
		}
		resp := n.get(t, query, h)
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusNoContent || len(b) != 0 {
			t.Fatalf("framed at the end (%v %s): %d %q, want 204", h, query, resp.StatusCode, b)
		}
	}
	resp := n.get(t, "?offset=10", nil)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || len(b) != 0 {
		t.Fatalf("plain at the end: %d %q, want 200 with no bytes", resp.StatusCode, b)
	}
}
