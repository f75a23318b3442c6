package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// gofer runs the CLI in-process with a fresh HOME and no GOFER_*
// settings from the environment, plus env.
func gofer(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	for _, k := range []string{"GOFER_TOKEN", "GOFER_API_BASE_URL", "GOFER_NAMESPACE", "GOFER_OUTPUT_FORMAT"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errs bytes.Buffer
	code = run(context.Background(), Build{Version: "test"}, append([]string{"gofer"}, args...), &out, &errs)
	return code, out.String(), errs.String()
}

func apiError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"request_id": "r1", "code": code, "message": message})
}

// Auth errors say where the CLI looked for a token and how to set one.
func TestAuthErrorsNameTheTokenSource(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch auth := r.Header.Get("Authorization"); {
		case auth == "":
			apiError(w, http.StatusUnauthorized, "unauthorized", "missing Authorization header")
		case auth == "Bearer weak":
			apiError(w, http.StatusForbidden, "forbidden", "this needs the admin role")
		default:
			apiError(w, http.StatusUnauthorized, "unauthorized", "unknown token")
		}
	}))
	defer srv.Close()

	code, _, errs := gofer(t, nil, "-a", srv.URL, "namespace", "list")
	want := `error: missing Authorization header (401): no token was found (looked at --token, GOFER_TOKEN, ~/.gofer.toml, ~/.config/gofer.toml); set one with --token, GOFER_TOKEN or token = "…" in ~/.gofer.toml` + "\n"
	if code != 1 || errs != want {
		t.Errorf("no token: exit %d, stderr %q; want 1 and %q", code, errs, want)
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		from string
	}{
		{map[string]string{"GOFER_TOKEN": "bad"}, nil, "GOFER_TOKEN"},
		{map[string]string{"GOFER_TOKEN": "other"}, []string{"--token", "bad"}, "--token"},
		{nil, []string{"namespace", "list", "-t=bad"}, "--token"},
	} {
		args := append(append([]string{"-a", srv.URL}, tc.args...), "namespace", "list")
		if len(tc.args) > 0 && tc.args[0] == "namespace" {
			args = append([]string{"-a", srv.URL}, tc.args...)
		}
		code, _, errs := gofer(t, tc.env, args...)
		want := "error: unknown token (401). The CLI used the token from " + tc.from + `; set one with --token, GOFER_TOKEN or token = "…" in ~/.gofer.toml` + "\n"
		if code != 1 || errs != want {
			t.Errorf("gofer %s with %v: exit %d, stderr %q; want 1 and %q", strings.Join(args, " "), tc.env, code, errs, want)
		}
	}

	// A token from the config file names the file.
	home := t.TempDir()
	cfg := filepath.Join(home, ".config", "gofer.toml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("token = \"weak\"\napi_base_url = \""+srv.URL+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	var out, stderr bytes.Buffer
	code = run(context.Background(), Build{}, []string{"gofer", "namespace", "create", "x"}, &out, &stderr)
	want = "error: this needs the admin role (403). The CLI used the token from " + cfg + "; 'gofer token whoami' shows its user and roles\n"
	if code != 1 || stderr.String() != want {
		t.Errorf("token from %s: exit %d, stderr %q; want 1 and %q", cfg, code, stderr.String(), want)
	}
}

// With nothing listening, the CLI fails within the short budget for
// refused connections and says how to set the address and where it came
// from.
func TestRefusedConnectionHint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	for _, tc := range []struct {
		env  map[string]string
		args []string
		from string
	}{
		{nil, []string{"-a", url}, "--api-base-url"},
		{map[string]string{"GOFER_API_BASE_URL": url}, nil, "GOFER_API_BASE_URL"},
	} {
		start := time.Now()
		code, _, errs := gofer(t, tc.env, append(tc.args, "namespace", "create", "x")...)
		took := time.Since(start)
		want := "error: cannot reach a gofer server at " + url + " (connection refused). Is the server running? " +
			"Set the address with --api-base-url or GOFER_API_BASE_URL (now: " + tc.from + ")\n"
		if code != 1 || errs != want {
			t.Errorf("refused, address from %s: exit %d, stderr %q; want 1 and %q", tc.from, code, errs, want)
		}
		// The budget for nodes that answer is 30 s; refused ones get
		// unreachableFor. The bound is loose on purpose.
		if took > 15*time.Second {
			t.Errorf("refused connection took %s to report; want the short budget (%s), not %s", took, unreachableFor, retryFor)
		}
	}
}

// A write that a proxy answers with its HTML 503 has an unknown outcome:
// the error says so on one line, with the request id, the command that
// checks and the key that makes running it again safe; running it again
// with that key sends the key.
func TestUnknownOutcomeHint(t *testing.T) {
	defer func(d time.Duration) { retryFor = d }(retryFor)
	retryFor = 300 * time.Millisecond
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n")
	}))
	defer srv.Close()
	code, stdout, errs := gofer(t, nil, "-a", srv.URL, "-t", "tok", "namespace", "create", "team-a")
	line := strings.TrimSuffix(errs, "\n")
	if code != 1 || stdout != "" || strings.Contains(line, "\n") || strings.Contains(line, "<") ||
		!strings.HasPrefix(line, "error: the outcome of POST /api/namespaces is unknown (a proxy or another server answered 503 Service Unavailable instead of the gofer API (text/html: \"503 Service Unavailable\"); request id ") ||
		!strings.Contains(line, "it may or may not have been applied. Check with 'gofer namespace get team-a', or run the same command again with --idempotency-key "+keys[0]+":") {
		t.Errorf("HTML 503 on create: exit %d, stdout %q, stderr %q; want one line saying the outcome is unknown with key %s", code, stdout, errs, keys[0])
	}
	_, _, errs = gofer(t, nil, "-a", srv.URL, "-t", "tok", "-n", "team-a", "run", "start", "build")
	if !strings.Contains(errs, "Check with 'gofer run list build -n team-a', or run") {
		t.Errorf("HTML 503 on run start in namespace team-a: %q; want the check to name the namespace", errs)
	}
	n := len(keys)
	gofer(t, nil, "-a", srv.URL, "-t", "tok", "namespace", "create", "team-a", "--idempotency-key", keys[0])
	for _, k := range keys[n:] {
		if k != keys[0] {
			t.Errorf("run again with --idempotency-key %s sent key %q", keys[0], k)
		}
	}
	if len(keys) == n {
		t.Error("run again sent nothing")
	}
}

// Waiting for a leader shows progress on a terminal's stderr; stdout
// keeps only the result, so -o json stays JSON.
func TestElectionWaitShowsProgress(t *testing.T) {
	defer func(f func(io.Writer) bool) { stderrIsTerminal = f }(stderrIsTerminal)
	stderrIsTerminal = func(io.Writer) bool { return true }
	var begin atomic.Int64
	begin.Store(time.Now().UnixNano())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if time.Since(time.Unix(0, begin.Load())) < 3500*time.Millisecond {
			apiError(w, http.StatusServiceUnavailable, "unavailable", "no cluster leader; retry shortly")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"namespace":{"id":"team-a","name":"team-a"}}`)
	}))
	defer srv.Close()
	code, stdout, errs := gofer(t, nil, "-a", srv.URL, "-o", "json", "namespace", "create", "team-a")
	var v map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &v) != nil || v["namespace"] == nil {
		t.Errorf("create during an election: exit %d, stdout %q; want 0 and the JSON answer", code, stdout)
	}
	if !strings.HasPrefix(errs, "gofer: waiting for the cluster to elect a leader… (") {
		t.Errorf("stderr %q; want a progress line about the election", errs)
	}
	// Not a terminal: nothing but the result.
	stderrIsTerminal = func(io.Writer) bool { return false }
	begin.Store(time.Now().UnixNano())
	if code, _, errs := gofer(t, nil, "-a", srv.URL, "namespace", "create", "team-a"); code != 0 || errs != "" {
		t.Errorf("create during an election, stderr not a terminal: exit %d, stderr %q; want 0 and nothing", code, errs)
	}
}

// Every command named in checkHints exists, and so does the command its
// hint suggests.
func TestCheckHintsNameRealCommands(t *testing.T) {
	app := App(Build{}, io.Discard, io.Discard)
	names := map[string]bool{}
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			names[prefix+c.Name] = true
			walk(prefix+c.Name+" ", c.Subcommands)
		}
	}
	walk("", app.Commands)
	for cmd, hint := range checkHints {
		if !names[cmd] {
			t.Errorf("checkHints names %q, which is no command", cmd)
		}
		words := strings.Fields(strings.TrimPrefix(hint, "gofer "))
		var path []string
		for _, w := range words {
			if strings.HasPrefix(w, "%") {
				break
			}
			path = append(path, w)
		}
		if !names[strings.Join(path, " ")] {
			t.Errorf("the hint for %q suggests %q, which is no command", cmd, strings.Join(path, " "))
		}
	}
}

// A restore whose answer was lost is not deduplicated by the server (the
// key never reaches the state machine): the hint says how to check and
// does not promise that --idempotency-key makes running it again safe.
func TestUnknownOutcomeHintForRestore(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "backup.snap")
	if err := os.WriteFile(file, []byte("backup"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := gofer(t, nil, "-a", srv.URL, "-t", "tok", "server", "snapshot", "restore", "--yes", file)
	if code != 1 || !strings.Contains(errs, "is unknown") || !strings.Contains(errs, "Check with 'gofer server members'") ||
		strings.Contains(errs, "run the same command again with --idempotency-key") {
		t.Errorf("restore with its answer lost: exit %d, %q; want an unknown outcome, how to check, and no --idempotency-key advice", code, errs)
	}
}

// A bad --idempotency-key is a usage error naming the flag, not a
// connection failure; nothing is sent.
func TestIdempotencyKeyFlagValidated(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	defer srv.Close()
	for _, key := range []string{"a\x01b", "tab\there", "with space", "ключ", strings.Repeat("k", 121)} {
		code, _, errs := gofer(t, nil, "-a", srv.URL, "--idempotency-key", key, "namespace", "create", "team-a")
		if code != 2 || !strings.HasPrefix(errs, "error: --idempotency-key: ") || !strings.Contains(errs, "usage: ") {
			t.Errorf("--idempotency-key %q: exit %d, %q; want exit 2 naming the flag", key, code, errs)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests sent with bad keys; want none", n)
	}
}
