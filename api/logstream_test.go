package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestLogOffsetValidated: a log stream's ?offset (and a framed stream's
// Last-Event-ID) must be a byte count; anything else gets 400 naming the
// field, on task and extension logs alike, before anything is looked up.
func TestLogOffsetValidated(t *testing.T) {
	_, url := devNode(t)
	for _, path := range []string{"/api/namespaces/default/pipelines/pipe1/runs/1/tasks/task1/logs", "/api/extensions/ext1/logs"} {
		for _, bad := range []string{"-1", "abc", "1.5", "99999999999999999999"} {
			status, body := sendRaw(t, url, http.MethodGet, path+"?follow=true&offset="+bad, "", "")
			if status != http.StatusBadRequest || !strings.Contains(body, "offset must be a byte offset") || !strings.Contains(body, bad) {
				t.Errorf("GET %s?offset=%s: %d %s; want 400 naming offset", path, bad, status, body)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		req.Header.Set("gofer-api-version", "v0")
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Last-Event-ID", "x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s with Last-Event-ID x: %d; want 400", path, resp.StatusCode)
		}
	}
}
