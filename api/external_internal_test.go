package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A leader reads a forwarded event's body only within one of its event
// slots, and answers 404 for an extension it does not have before reading
// any of it.
func TestReceiveEventBoundsTheLeader(t *testing.T) {
	calls := &recordingCalls{}
	s, _, _ := leaderAPI(t, calls)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	post := func(ext string, body *strings.Reader) answer {
		return send(t, http.MethodPost, srv.URL+internalEventPath+ext, map[string]string{
			"Content-Type": "application/octet-stream"}, bodyString(body))
	}
	// Every slot taken: 503 with Retry-After, the extension not called.
	for i := 0; i < cap(s.eventSlots); i++ {
		s.eventSlots <- struct{}{}
	}
	a := post("ext", strings.NewReader("{}"))
	for i := 0; i < cap(s.eventSlots); i++ {
		<-s.eventSlots
	}
	if a.code != http.StatusServiceUnavailable || a.retryAfter == "" {
		t.Fatalf("every slot taken: %d %s (Retry-After %q)", a.code, a.body, a.retryAfter)
	}
	if got := calls.list(); len(got) != 0 {
		t.Fatalf("the extension was called: %v", got)
	}
	// Not installed: 404 without waiting for the body.
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = fmt.Fprintf(conn, "POST %sghost HTTP/1.1\r\nHost: x\r\nGofer-Api-Version: v0\r\nContent-Length: %d\r\n\r\n", internalEventPath, 20<<20)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to an event for an unknown extension before its body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "ghost") {
		t.Fatalf("unknown extension: %d %s", resp.StatusCode, b)
	}
	if a := post("ext", strings.NewReader("{}")); a.code != http.StatusNoContent {
		t.Fatalf("event: %d %s", a.code, a.body)
	}
}

func bodyString(r *strings.Reader) string {
	var b strings.Builder
	_, _ = r.WriteTo(&b)
	return b.String()
}

// The external-events listener keeps the API's connection cap at its own
// size: at the cap, with every connection busy, a new one gets 503 with
// Retry-After rather than a connection of its own.
func TestExternalEventsListenerCapsConnections(t *testing.T) {
	calls := &recordingCalls{}
	s, _, _ := leaderAPI(t, calls)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, ln := s.ExternalEventsServer(raw, 2)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	l := ln.(*connLimiter)
	if srv.IdleTimeout <= 0 || srv.ReadHeaderTimeout <= 0 || srv.MaxHeaderBytes != externalEventsMaxHeader {
		t.Fatalf("timeouts: idle %s, header %s, max header %d", srv.IdleTimeout, srv.ReadHeaderTimeout, srv.MaxHeaderBytes)
	}
	if _, dl := s.ExternalEventsServer(raw, 0); dl.(*connLimiter).max != DefaultExternalEventsMaxConnections {
		t.Fatalf("default cap %d", dl.(*connLimiter).max)
	}
	// Two events whose bodies are still coming hold both connections.
	addr := raw.Addr().String()
	for i := 0; i < 2; i++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_, _ = fmt.Fprintf(conn, "POST /api/external/ext HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
	}
	deadline := time.Now().Add(10 * time.Second)
	for busy := 0; busy < 2; {
		busy = 0
		l.mu.Lock()
		for c := range l.normal {
			if c.state == http.StateActive {
				busy++
			}
		}
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 connections busy", busy)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Post("http://"+addr+"/api/external/ext", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the cap: %d %s (Retry-After %q)", resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	if got := calls.list(); len(got) != 0 {
		t.Fatalf("the extension was called: %v", got)
	}
}
