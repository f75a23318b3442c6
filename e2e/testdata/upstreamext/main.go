// Command upstreamext is a minimal extension written against upstream
// Gofer's contract only (raw net/http, none of our SDK), the way an image
// built with upstream's Go extension SDK behaves: it reads
// GOFER_EXTENSION_SYSTEM_{ID,SECRET,USE_TLS,GOFER_HOST,BINDADDRESS},
// restores its subscriptions at boot before serving, and serves health,
// info, subscribe (a "refuse" setting is refused), debug, external events
// and shutdown, printing what it gets. e2e/supervisor_test.go and
// e2e/external_events_test.go run it.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	id, secret := os.Getenv("GOFER_EXTENSION_SYSTEM_ID"), os.Getenv("GOFER_EXTENSION_SYSTEM_SECRET")
	if id == "" || secret == "" {
		fail("GOFER_EXTENSION_SYSTEM_ID and _SECRET are required")
	}
	if _, err := strconv.ParseBool(os.Getenv("GOFER_EXTENSION_SYSTEM_USE_TLS")); err != nil {
		fail("GOFER_EXTENSION_SYSTEM_USE_TLS must be a boolean")
	}
	host := os.Getenv("GOFER_EXTENSION_SYSTEM_GOFER_HOST")
	if host == "" {
		host = "localhost:8080"
	}
	bind := os.Getenv("GOFER_EXTENSION_SYSTEM_BINDADDRESS")
	if bind == "" {
		bind = "0.0.0.0:8082"
	}

	// At boot, before serving: restore the subscriptions.
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/api/extensions/"+id+"/subscriptions", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("gofer-api-version", "v0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail("restore subscriptions: " + err.Error())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fail(fmt.Sprintf("restore subscriptions: %s: %s", resp.Status, body))
	}
	var subs struct {
		Subscriptions []json.RawMessage `json:"subscriptions"`
	}
	if err := json.Unmarshal(body, &subs); err != nil {
		fail("restore subscriptions: " + err.Error())
	}
	fmt.Printf("upstreamext %s booted: %d subscriptions restored from %s\n", id, len(subs.Subscriptions), host)

	authed := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			a := r.Header.Get("Authorization")
			switch {
			case len(a) < 7 || a[:7] != "Bearer ":
				http.Error(w, "missing bearer", http.StatusBadRequest)
			case a[7:] != secret:
				http.Error(w, "wrong secret", http.StatusUnauthorized)
			default:
				h(w, r)
			}
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/health", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/api/info", authed(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8") // as upstream's SDK
		fmt.Fprintf(w, `{"extension_id":%q,"documentation":{"config_params":[],"pipeline_subscription_params":[],"body":"upstream-contract test extension"}}`, id)
	}))
	// Subscriptions are kept without a lock, as upstream's extensions do:
	// Gofer sends one call at a time.
	live := map[string]bool{}
	mux.HandleFunc("/api/subscribe", authed(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			NamespaceID    string            `json:"namespace_id"`
			PipelineID     string            `json:"pipeline_id"`
			SubscriptionID string            `json:"pipeline_subscription_id"`
			Params         map[string]string `json:"pipeline_subscription_params"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad body: "+err.Error(), http.StatusBadRequest)
			return
		}
		key := req.NamespaceID + "/" + req.PipelineID + "/" + req.SubscriptionID
		if r.Method == http.MethodDelete {
			delete(live, key)
			fmt.Printf("upstreamext: unsubscribe %s\n", key)
			w.WriteHeader(http.StatusCreated) // upstream's Go SDK
			return
		}
		if v, ok := req.Params["refuse"]; ok {
			// A refusal as plain text, as upstream's SDK's http.Error.
			http.Error(w, "refused: "+v, http.StatusBadRequest)
			return
		}
		live[key] = true
		fmt.Printf("upstreamext: subscribe %s %v\n", key, req.Params)
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("/api/debug", authed(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		info, _ := json.Marshal(map[string]int{"subscriptions": len(live)})
		out, _ := json.Marshal(map[string]string{"info": string(info)})
		w.Write(out)
	}))
	mux.HandleFunc("/api/external-event", authed(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Headers map[string]string `json:"headers"`
			Body    []byte            `json:"body"` // upstream sends a JSON array of numbers
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad event: "+err.Error(), http.StatusBadRequest)
			return
		}
		if req.Headers["x-refuse"] != "" {
			http.Error(w, "event refused", http.StatusUnauthorized)
			return
		}
		fmt.Printf("upstreamext: event %s %d bytes: %s\n", req.Headers["x-github-delivery"], len(req.Body), req.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("/api/shutdown", authed(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("upstreamext: shutdown requested")
		w.WriteHeader(http.StatusNoContent)
		go func() { time.Sleep(100 * time.Millisecond); os.Exit(0) }()
	}))
	fmt.Printf("upstreamext %s listening on %s\n", id, bind)
	if err := http.ListenAndServe(bind, mux); err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "upstreamext:", msg)
	os.Exit(1)
}
