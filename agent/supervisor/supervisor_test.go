package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/extcall"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/fsm/fsmtest"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

const (
	testCluster = "c1"
	testAPIHost = "127.0.0.1:8080"
	testBackoff = 10 * time.Second
	// testStableAfter is how long a healthy extension runs before a crash
	// backs off from the shortest wait again.
	testStableAfter = time.Minute
)

// harness is a supervisor on a real state machine, a fake engine and a
// fake clock; its extensions all answer on one fake extension server.
type harness struct {
	t      *testing.T
	clock  *clock.Fake
	fsm    *fsm.FSM
	direct *fsm.Direct
	engine *fakeEngine
	keys   *seal.Keyring
	dir    *extcall.Directory
	port   int

	healthy   atomic.Bool
	infoFails atomic.Int32 // the next info calls that fail
	shutdowns atomic.Int32
	setStates atomic.Int32

	cancel context.CancelFunc
	done   chan struct{}
	seq    int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clock: clock.NewFake(time.UnixMilli(1_700_000_000_000)), fsm: fsmtest.New(t), dir: extcall.NewDirectory()}
	h.direct = &fsm.Direct{FSM: h.fsm, Actor: "test", Now: h.clock.Now}
	h.engine = newFakeEngine(h.clock)
	var err error
	if h.keys, err = seal.NewKeyring("0123456789abcdef0123456789abcdef-supervisor-test"); err != nil {
		t.Fatal(err)
	}
	h.apply(fsm.CmdClusterInit, fsm.ClusterInit{ClusterID: testCluster, Roles: model.BuiltinRoles(1),
		Namespace: model.Namespace{ID: model.DefaultNamespace, Name: "Default"}})
	h.healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/health":
			if !h.healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case "/api/info":
			if h.infoFails.Add(-1) >= 0 {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/plain") // as upstream's SDK
			_, _ = w.Write([]byte(`{"extension_id":"x","documentation":{"body":"hello"}}`))
		case "/api/shutdown":
			h.shutdowns.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	h.port, _ = strconv.Atoi(port)
	h.engine.images["ext:1"] = map[string]string{}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) apply(t fsm.CommandType, body any) *fsm.Result {
	h.t.Helper()
	res, err := h.direct.Apply(context.Background(), t, body)
	if err == nil && res.Err != nil {
		err = res.Err
	}
	if err != nil {
		h.t.Fatalf("apply %s: %v", t, err)
	}
	return res
}

// install installs (or reinstalls) an extension the way the API does:
// a fresh token whose secret is sealed at RunTokenLocation.
func (h *harness) install(id, image string) (tokenID, secret string) {
	h.t.Helper()
	h.seq++
	tokenID, secret = "tok"+strconv.Itoa(h.seq), "secret-"+strconv.Itoa(h.seq)
	sealed, err := h.keys.Primary().Seal([]byte(secret), seal.RunTokenLocation(tokenID))
	if err != nil {
		h.t.Fatal(err)
	}
	h.apply(fsm.CmdExtensionInstall, fsm.ExtensionInstall{
		Extension: model.Extension{ID: id, Image: image, Settings: map[string]string{"MIN_INTERVAL": "1s"}, AdditionalRoles: []string{}},
		Token:     model.StoredToken{Token: model.Token{ID: tokenID}, Hash: "hash-" + tokenID, Sealed: sealed, KeyCheck: h.keys.Primary().KeyCheck()},
	})
	return tokenID, secret
}

func (h *harness) config() Config {
	return Config{ClusterID: testCluster, APIHost: testAPIHost, LogLevel: "debug", StopTimeout: time.Second,
		Secrets: h.keys, Directory: h.dir, HealthInterval: time.Second, StartupChecks: 5, HealthFailures: 3,
		MinBackoff: testBackoff, MaxBackoff: 8 * testBackoff, StableAfter: testStableAfter,
		FreePort: func() (int, error) { return h.port, nil }}
}

// start runs a supervisor (a leadership term) with cfg.
func (h *harness) start(cfg Config) {
	apply := leadership.ApplyFunc(func(ctx context.Context, t fsm.CommandType, body any) (*fsm.Result, error) {
		if t == fsm.CmdExtensionSetState {
			h.setStates.Add(1)
		}
		return h.direct.Apply(ctx, t, body)
	})
	s := New(cfg, leadership.Deps{State: h.fsm, Apply: apply, Clock: h.clock, Logger: hclog.NewNullLogger()}, h.engine)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { defer close(h.done); _ = s.Run(ctx) }()
}

// stop ends the term and waits for the supervisor.
func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

// until advances the fake clock in small steps until cond holds. The
// assertions are on fake time and outcomes, never on how long it took.
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	giveUp := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(giveUp) {
			h.t.Fatalf("gave up waiting until %s (fake time %s)", what, h.clock.Now().Format(time.TimeOnly))
		}
		h.clock.Advance(50 * time.Millisecond)
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) runtime(id string) (rt model.ExtensionRuntime) {
	_ = h.fsm.View(func(tx *bbolt.Tx) error {
		e, err := store.GetExtension(tx, id)
		if e != nil {
			rt = e.Runtime
		}
		return err
	})
	return rt
}

func (h *harness) isState(id, state string) func() bool {
	return func() bool { return h.runtime(id).State == state }
}

var name = ContainerName(testCluster, "interval")

// A new extension is started with upstream's environment and our labels,
// is recorded processing then running with its documentation, and is put
// in the Directory; a crash is recorded as exited with the exit code and
// restarted only after the backoff (on the fake clock); leader loss
// leaves the container running and clears the Directory.
func TestStartRecordRestartAfterBackoff(t *testing.T) {
	h := newHarness(t)
	tokenID, secret := h.install("interval", "ext:1")
	h.start(h.config())
	h.until("the extension runs", h.isState("interval", model.ExtensionStateRunning))

	starts, _, _ := h.engine.snapshot()
	if len(starts) != 1 {
		t.Fatalf("%d starts, want 1", len(starts))
	}
	req := starts[0].req
	bind := "127.0.0.1:" + strconv.Itoa(h.port)
	want := map[string]string{
		EnvID: "interval", EnvSecret: secret, EnvUseTLS: "false", EnvTLSCert: "", EnvTLSKey: "", EnvLogLevel: "debug",
		EnvGoferHost: testAPIHost, EnvGoferHosts: testAPIHost, EnvBindAddress: bind, EnvBindAlt: bind, "MIN_INTERVAL": "1s",
	}
	for k, v := range want {
		if got, ok := req.Env[k]; !ok || got != v {
			t.Errorf("env %s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if req.Name != name || req.Network != "host" || !req.NeverPull || req.AlwaysPull {
		t.Errorf("request name %q network %q never_pull %v always_pull %v", req.Name, req.Network, req.NeverPull, req.AlwaysPull)
	}
	for k, v := range map[string]string{scheduler.LabelCluster: testCluster, scheduler.LabelExtension: "interval",
		scheduler.LabelExtensionToken: tokenID, scheduler.LabelExtensionGoferHost: testAPIHost, scheduler.LabelExtensionAddr: bind} {
		if req.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, req.Labels[k], v)
		}
	}
	if rt := h.runtime("interval"); string(rt.Documentation) != `{"body":"hello"}` || rt.Started == 0 {
		t.Errorf("runtime %+v: want the info documentation and a start time", rt)
	}
	if tg, ok := h.dir.Target("interval"); !ok || tg.Secret != secret || tg.BaseURL != "http://"+bind {
		t.Errorf("directory has %+v %v", tg, ok)
	}

	crashedAt := h.clock.Now()
	h.engine.crash(name, 3)
	h.until("the crash is recorded", h.isState("interval", model.ExtensionStateExited))
	if r := h.runtime("interval").Reason; !strings.Contains(r, "exited with code 3") {
		t.Errorf("reason %q does not give the exit code", r)
	}
	if _, ok := h.dir.Target("interval"); ok {
		t.Error("a crashed extension stays in the directory")
	}
	h.until("it is restarted", func() bool { s, _, _ := h.engine.snapshot(); return len(s) == 2 })
	starts, _, _ = h.engine.snapshot()
	if gap := starts[1].at.Sub(crashedAt); gap < testBackoff {
		t.Errorf("restarted %s after the crash, before the %s backoff", gap, testBackoff)
	}
	h.until("it runs again", h.isState("interval", model.ExtensionStateRunning))

	// A second crash doubles the backoff.
	crashedAt = h.clock.Now()
	h.engine.crash(name, 1)
	h.until("it is restarted again", func() bool { s, _, _ := h.engine.snapshot(); return len(s) == 3 })
	starts, _, _ = h.engine.snapshot()
	if gap := starts[2].at.Sub(crashedAt); gap < 2*testBackoff {
		t.Errorf("second restart %s after the crash, before the doubled backoff %s", gap, 2*testBackoff)
	}

	// Healthy for StableAfter: recovered, so the next crash is restarted
	// after the shortest backoff again, not a doubled one.
	h.until("it runs again", func() bool { _, ok := h.dir.Target("interval"); return ok })
	stableFrom := h.clock.Now()
	h.until("it has run stably", func() bool { return h.clock.Now().Sub(stableFrom) > testStableAfter+2*time.Second })
	crashedAt = h.clock.Now()
	h.engine.crash(name, 1)
	h.until("it is restarted after recovering", func() bool { s, _, _ := h.engine.snapshot(); return len(s) == 4 })
	starts, _, _ = h.engine.snapshot()
	if gap := starts[3].at.Sub(crashedAt); gap < testBackoff || gap >= 2*testBackoff {
		t.Errorf("restart after a stable run came %s after the crash, want the shortest backoff (%s), not more", gap, testBackoff)
	}

	h.until("it runs again", func() bool { _, ok := h.dir.Target("interval"); return ok })
	h.stop()
	if _, _, running := h.engine.snapshot(); running[name] == "" {
		t.Error("leadership loss stopped the extension container")
	}
	if _, ok := h.dir.Target("interval"); ok {
		t.Error("the directory was not cleared when the supervisor stopped")
	}
}

// A container left running by an earlier leader for the same install is
// adopted: not restarted, no state written (nothing changed).
func TestAdoptsContainerOfSameInstall(t *testing.T) {
	h := newHarness(t)
	tokenID, secret := h.install("interval", "ext:1")
	h.apply(fsm.CmdExtensionSetState, fsm.ExtensionSetState{ID: "interval", TokenID: tokenID, Runtime: model.ExtensionRuntime{State: model.ExtensionStateRunning, Started: 1, Documentation: json.RawMessage(`{"body":"hello"}`)}})
	bind := "127.0.0.1:" + strconv.Itoa(h.port)
	id := h.engine.add(scheduler.StartRequest{Name: name, Image: "ext:1", Labels: map[string]string{scheduler.LabelCluster: testCluster,
		scheduler.LabelExtension: "interval", scheduler.LabelExtensionToken: tokenID, scheduler.LabelExtensionGoferHost: testAPIHost,
		scheduler.LabelExtensionAddr: bind}})
	h.start(h.config())
	h.until("the adopted extension is in the directory", func() bool { _, ok := h.dir.Target("interval"); return ok })
	for i := 0; i < 5; i++ { // a few health checks
		h.clock.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	starts, removes, running := h.engine.snapshot()
	if len(starts) != 0 || len(removes) != 0 || running[name] != id {
		t.Fatalf("adoption restarted the container: starts %v removes %v running %v", starts, removes, running)
	}
	if n := h.setStates.Load(); n != 0 {
		t.Errorf("%d state writes for an adopted, unchanged extension", n)
	}
	if tg, _ := h.dir.Target("interval"); tg.Secret != secret {
		t.Errorf("directory secret %q, want the install's", tg.Secret)
	}
}

// A running container is replaced when it belongs to an earlier install
// (another token) or points at a Gofer that is no member any more.
func TestReplacesContainerOfOtherInstallOrGoneHost(t *testing.T) {
	for _, tc := range []struct {
		name        string
		token, host string
	}{
		{"earlier install", "old-token", testAPIHost},
		{"gone gofer host", "", "10.9.9.9:8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tokenID, _ := h.install("interval", "ext:1")
			if tc.token == "" {
				tc.token = tokenID
			}
			old := h.engine.add(scheduler.StartRequest{Name: name, Image: "ext:1", Labels: map[string]string{scheduler.LabelCluster: testCluster,
				scheduler.LabelExtension: "interval", scheduler.LabelExtensionToken: tc.token, scheduler.LabelExtensionGoferHost: tc.host,
				scheduler.LabelExtensionAddr: "127.0.0.1:1"}})
			h.start(h.config())
			h.until("the replacement runs", h.isState("interval", model.ExtensionStateRunning))
			starts, removes, running := h.engine.snapshot()
			if len(removes) != 1 || removes[0].id != old || len(starts) != 1 || running[name] != starts[0].id {
				t.Fatalf("starts %v removes %v running %v: want the old container removed and one new one", starts, removes, running)
			}
			if starts[0].req.Labels[scheduler.LabelExtensionToken] != tokenID {
				t.Errorf("new container has token label %q", starts[0].req.Labels[scheduler.LabelExtensionToken])
			}
		})
	}
}

// A reinstall (new token) replaces the container, with the new secret;
// an uninstall asks the extension to shut down and removes it.
func TestReinstallReplacesUninstallRemoves(t *testing.T) {
	h := newHarness(t)
	h.install("interval", "ext:1")
	h.start(h.config())
	h.until("the extension runs", h.isState("interval", model.ExtensionStateRunning))
	tok2, secret2 := h.install("interval", "ext:1")
	h.until("the reinstall runs", func() bool {
		s, _, _ := h.engine.snapshot()
		return len(s) == 2 && h.runtime("interval").State == model.ExtensionStateRunning
	})
	starts, removes, running := h.engine.snapshot()
	if len(removes) != 1 || removes[0].id != starts[0].id || running[name] != starts[1].id {
		t.Fatalf("starts %v removes %v running %v", starts, removes, running)
	}
	if got := starts[1].req.Env[EnvSecret]; got != secret2 || starts[1].req.Labels[scheduler.LabelExtensionToken] != tok2 {
		t.Errorf("the reinstall's container has secret %q token %q", got, starts[1].req.Labels[scheduler.LabelExtensionToken])
	}
	shutdownsBefore := h.shutdowns.Load()
	h.apply(fsm.CmdExtensionDelete, fsm.ExtensionDelete{ID: "interval"})
	h.until("the container is gone", func() bool { _, _, r := h.engine.snapshot(); return r[name] == "" && len(r) == 0 })
	if h.shutdowns.Load() == shutdownsBefore {
		t.Error("uninstall did not call the extension's shutdown")
	}
	if _, ok := h.dir.Target("interval"); ok {
		t.Error("an uninstalled extension stays in the directory")
	}
}

// A container of an extension uninstalled while no leader supervised is
// removed when the supervisor lists the engine.
func TestRemovesContainerOfUninstalledExtension(t *testing.T) {
	h := newHarness(t)
	h.engine.add(scheduler.StartRequest{Name: ContainerName(testCluster, "gone"), Labels: map[string]string{scheduler.LabelCluster: testCluster,
		scheduler.LabelExtension: "gone", scheduler.LabelExtensionAddr: "127.0.0.1:1"}})
	h.start(h.config())
	h.until("the orphan is removed", func() bool { _, r, _ := h.engine.snapshot(); return len(r) == 1 })
}

// A missing image is not pulled without the install's pull: the state
// says so, naming the image.
func TestMissingImageWithoutPull(t *testing.T) {
	h := newHarness(t)
	h.install("interval", "nowhere/ext:9")
	h.start(h.config())
	h.until("the failure is recorded", h.isState("interval", model.ExtensionStateExited))
	if r := h.runtime("interval").Reason; !strings.Contains(r, "nowhere/ext:9") || !strings.Contains(r, "pull") {
		t.Errorf("reason %q does not name the image and the pull setting", r)
	}
}

// An info call that fails when the extension becomes ready is retried at
// later health checks, so its documentation is not lost for the
// container's life.
func TestInfoRetriedUntilItAnswers(t *testing.T) {
	h := newHarness(t)
	h.infoFails.Store(2)
	h.install("interval", "ext:1")
	h.start(h.config())
	h.until("the extension runs", h.isState("interval", model.ExtensionStateRunning))
	h.until("its documentation is recorded", func() bool { return string(h.runtime("interval").Documentation) == `{"body":"hello"}` })
	if s, _, _ := h.engine.snapshot(); len(s) != 1 {
		t.Errorf("%d starts: a failed info call must not restart the extension", len(s))
	}
}

// N failed health checks of a ready extension restart it.
func TestFailedHealthChecksRestart(t *testing.T) {
	h := newHarness(t)
	h.install("interval", "ext:1")
	h.start(h.config())
	h.until("the extension runs", h.isState("interval", model.ExtensionStateRunning))
	h.healthy.Store(false)
	h.until("the failure is recorded", h.isState("interval", model.ExtensionStateExited))
	if r := h.runtime("interval").Reason; !strings.Contains(r, "3 health checks") {
		t.Errorf("reason %q", r)
	}
	h.healthy.Store(true)
	h.until("restarted", func() bool { s, _, _ := h.engine.snapshot(); return len(s) == 2 })
}

// The built-in images are imported from the binary when missing or
// holding another binary (label), and left alone when current.
func TestBuiltinImageImport(t *testing.T) {
	h := newHarness(t)
	bin := filepath.Join(t.TempDir(), "gofer")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := h.config()
	cfg.Builtin = &Builtin{Version: "1.2.3+dirty", Path: bin}
	image := BuiltinImage("interval", "1.2.3+dirty")
	if image != "gofer/extension-interval:1.2.3-dirty" {
		t.Fatalf("image %q", image)
	}
	h.engine.images[image] = map[string]string{LabelBinarySHA256: "another build"}
	h.install("interval", image)
	h.start(cfg)
	h.until("the extension runs", h.isState("interval", model.ExtensionStateRunning))
	hash, _ := cfg.Builtin.binaryHash()
	if got := h.engine.images[image][LabelBinarySHA256]; got != hash || len(h.engine.imports) != 1 {
		t.Fatalf("imports %v label %q, want one import labelled %s", h.engine.imports, got, hash)
	}
	// Current: a restart imports nothing.
	h.engine.crash(name, 1)
	h.until("restarted", func() bool { s, _, _ := h.engine.snapshot(); return len(s) == 2 })
	if len(h.engine.imports) != 1 {
		t.Errorf("a current image was imported again: %v", h.engine.imports)
	}
}

// With server.extension_address the container joins the network, binds
// 0.0.0.0:8082 and is given that address as GOFER_HOST (first in
// GOFER_HOSTS); an adopted container given another host is replaced.
func TestExtensionAddressPlacement(t *testing.T) {
	h := newHarness(t)
	cfg := h.config()
	cfg.ExtensionAddress, cfg.Network = "172.17.0.1:8080", "bridge"
	cfg.MemberHosts = func() []string { return []string{"127.0.0.1:8080", "127.0.0.1:9090"} }
	s := New(cfg, leadership.Deps{State: h.fsm, Clock: h.clock}, h.engine)
	p, err := s.place(context.Background(), "interval")
	if err != nil {
		t.Fatal(err)
	}
	if p.Network != "bridge" || p.Bind != "0.0.0.0:8082" || p.GoferHost != "172.17.0.1:8080" || p.GoferHosts != "172.17.0.1:8080,127.0.0.1:8080,127.0.0.1:9090" {
		t.Errorf("placement %+v", p)
	}
	ext := &model.Extension{ID: "interval", TokenID: "t"}
	running := scheduler.Status{State: scheduler.StateRunning, Labels: map[string]string{scheduler.LabelExtensionToken: "t", scheduler.LabelExtensionAddr: "0.0.0.0:8082"}}
	running.Labels[scheduler.LabelExtensionGoferHost] = "127.0.0.1:8080"
	if ok, _ := s.adoptable(running, ext); ok {
		t.Error("adopted a container not given extension_address")
	}
	running.Labels[scheduler.LabelExtensionGoferHost] = "172.17.0.1:8080"
	if ok, why := s.adoptable(running, ext); !ok {
		t.Errorf("refused a good container: %s", why)
	}
	running.IPAddress = "172.17.0.5"
	if u, err := baseURL(running); err != nil || u != "http://172.17.0.5:8082" {
		t.Errorf("base URL %q %v", u, err)
	}
}

// A built-in image is recognised under any tag: after an upgrade the
// registration keeps the tag of the version that installed it, and the
// image must still be (re)made from the running binary.
func TestBuiltinKindAnyTag(t *testing.T) {
	b := &Builtin{Version: "2.0.0"}
	for image, want := range map[string]string{
		"gofer/extension-interval:1.0.0": "interval", "gofer/extension-cron:2.0.0": "cron", "gofer/extension-github:dev": "github",
		"gofer/extension-interval": "", "example/extension-interval:1": "", "gofer/extension-other:1": "", "gofer/extension-interval:": "",
	} {
		if got, _ := b.kind(image); got != want {
			t.Errorf("kind(%q) = %q, want %q", image, got, want)
		}
	}
}

// remoteHarness is a harness whose engine answers as the Nomad backend
// does (fakeRemote): no images, containers placed a few inspections after
// their start, reached at the host's address.
func remoteHarness(t *testing.T) (*harness, Config) {
	h := newHarness(t)
	h.engine.remote = &fakeRemote{pending: 3, ip: "127.0.0.1"}
	bin := filepath.Join(t.TempDir(), "gofer")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := h.config()
	cfg.APIHost = "192.0.2.10:8080" // the leader's advertised API
	cfg.HostPorts = PortRange{First: h.port, Last: h.port + 9}
	cfg.Builtin = &Builtin{Version: "1.2.3", Path: bin}
	cfg.FreePort = func() (int, error) {
		t.Error("a loopback port was picked for an extension on a remote host")
		return 0, nil
	}
	return h, cfg
}

// With HostPorts (Nomad) a built-in extension is started without an
// import, on the host network, bound to 0.0.0.0:<a port of the range>
// (which its address label carries for the engine to reserve), with the
// leader's advertised API as GOFER_HOST; it is waited for while not
// placed, then reached at the address the engine reports; a new term
// adopts it.
func TestRemoteHostPlacement(t *testing.T) {
	h, cfg := remoteHarness(t)
	image := BuiltinImage("interval", "1.2.3")
	tokenID, secret := h.install("interval", image)
	h.start(cfg)
	h.until("the extension runs", h.isState("interval", model.ExtensionStateRunning))
	bind := "0.0.0.0:" + strconv.Itoa(h.port)
	starts, _, _ := h.engine.snapshot()
	if len(starts) != 1 || len(h.engine.imports) != 0 {
		t.Fatalf("starts %d imports %v, want one start and no import", len(starts), h.engine.imports)
	}
	req := starts[0].req
	if req.Image != image || req.Network != "host" || req.Env[EnvBindAddress] != bind || req.Env[EnvBindAlt] != bind ||
		req.Env[EnvGoferHost] != "192.0.2.10:8080" || req.Env[EnvSecret] != secret {
		t.Errorf("start request image %s network %q env %v", req.Image, req.Network, req.Env)
	}
	if req.Labels[scheduler.LabelExtensionAddr] != bind || req.Labels[scheduler.LabelExtensionGoferHost] != "192.0.2.10:8080" ||
		req.Labels[scheduler.LabelExtensionToken] != tokenID {
		t.Errorf("labels %v", req.Labels)
	}
	want := "http://127.0.0.1:" + strconv.Itoa(h.port)
	if tg, ok := h.dir.Target("interval"); !ok || tg.BaseURL != want {
		t.Errorf("directory %+v %v, want %s", tg, ok, want)
	}
	for i := 0; i < 5; i++ { // a few health checks: the placed id is the container's
		h.clock.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	if starts, removes, _ := h.engine.snapshot(); len(starts) != 1 || len(removes) != 0 {
		t.Fatalf("after health checks: %d starts, %d removes", len(starts), len(removes))
	}
	// Failover: the next term adopts it.
	h.stop()
	h.setStates.Store(0)
	h.start(cfg)
	h.until("the adopted extension is in the directory", func() bool { _, ok := h.dir.Target("interval"); return ok })
	if starts, removes, _ := h.engine.snapshot(); len(starts) != 1 || len(removes) != 0 {
		t.Fatalf("the new term did not adopt: %d starts, %d removes", len(starts), len(removes))
	}
	if tg, _ := h.dir.Target("interval"); tg.BaseURL != want {
		t.Errorf("adopted at %s, want %s", tg.BaseURL, want)
	}
	if n := h.setStates.Load(); n != 0 {
		t.Errorf("%d state writes for an adopted extension", n)
	}
}

// A container that is never placed fails its startup checks and is
// restarted; the reason says what the engine said and that the built-in
// image must be made on the hosts.
func TestRemoteNeverPlaced(t *testing.T) {
	h, cfg := remoteHarness(t)
	h.engine.remote.pending = 1000
	h.install("interval", BuiltinImage("interval", "1.2.3"))
	h.start(cfg)
	h.until("the failure is recorded", h.isState("interval", model.ExtensionStateExited))
	r := h.runtime("interval").Reason
	for _, want := range []string{"not healthy after 5 checks", "waiting for placement", "gofer service extension-image --tag 1.2.3 interval"} {
		if !strings.Contains(r, want) {
			t.Errorf("reason %q lacks %q", r, want)
		}
	}
	if _, removes, _ := h.engine.snapshot(); len(removes) != 1 {
		t.Errorf("%d removes, want the unplaced container removed", len(removes))
	}
}

// Ports: each extension gets one no other holds — in this term or in an
// earlier leader's container's label —, a restart moves on to the next
// port, an uninstall frees it, and a full range is an error.
func TestRemoteHostPorts(t *testing.T) {
	h, cfg := remoteHarness(t)
	cfg.HostPorts = PortRange{First: 19500, Last: 19502}
	s := New(cfg, leadership.Deps{State: h.fsm, Clock: h.clock}, h.engine)
	ctx := context.Background()
	h.engine.add(scheduler.StartRequest{Name: ContainerName(testCluster, "old"), Labels: map[string]string{scheduler.LabelCluster: testCluster,
		scheduler.LabelExtension: "old", scheduler.LabelExtensionAddr: "0.0.0.0:19500"}})
	port := func(id string) string {
		t.Helper()
		p, err := s.place(ctx, id)
		if err != nil {
			t.Fatalf("place %s: %v", id, err)
		}
		if p.Network != "host" || p.GoferHost != cfg.APIHost {
			t.Errorf("placement %+v", p)
		}
		_, port, _ := net.SplitHostPort(p.Bind)
		return port
	}
	if a, b := port("a"), port("b"); a != "19501" || b != "19502" {
		t.Fatalf("ports a %s b %s, want 19501 and 19502 (19500 is held by an earlier leader's container)", a, b)
	}
	if _, err := s.place(ctx, "c"); !errors.Is(err, ErrNoHostPort) {
		t.Fatalf("a full range: %v, want ErrNoHostPort", err)
	}
	s.releaseHostPort("b")
	if c := port("c"); c != "19502" {
		t.Errorf("c got %s, want b's freed 19502", c)
	}
	h.engine.crash(ContainerName(testCluster, "old"), 1)
	h.engine.Remove(ctx, ContainerName(testCluster, "old"))
	if a := port("a"); a != "19500" {
		t.Errorf("a restarted on %s, want the next free port after its last (19500)", a)
	}
	cfg.ExtensionAddress = "gofer.internal:8080"
	s = New(cfg, leadership.Deps{State: h.fsm, Clock: h.clock}, h.engine)
	if p, err := s.place(ctx, "a"); err != nil || p.GoferHost != "gofer.internal:8080" || p.Network != "host" {
		t.Errorf("with extension_address: %+v %v", p, err)
	}
}

// Import (gofer service extension-image) makes a built-in image under the
// given tag, once per binary, and refuses a kind that is not built in.
func TestBuiltinImportCommand(t *testing.T) {
	eng := newFakeEngine(clock.NewFake(time.Unix(0, 0)))
	bin := filepath.Join(t.TempDir(), "gofer")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := &Builtin{Version: "2.0.0", Path: bin}
	ctx := context.Background()
	image, imported, err := b.Import(ctx, eng, "cron", "1.2.3+dirty")
	if err != nil || image != "gofer/extension-cron:1.2.3-dirty" || !imported {
		t.Fatalf("first import: %s %v %v", image, imported, err)
	}
	if _, imported, err := b.Import(ctx, eng, "cron", "1.2.3+dirty"); err != nil || imported {
		t.Errorf("second import of the same binary: imported %v %v", imported, err)
	}
	if _, _, err := b.Import(ctx, eng, "other", "1"); err == nil {
		t.Error("imported a kind that is not built in")
	}
	if len(eng.imports) != 1 {
		t.Errorf("imports %v, want one", eng.imports)
	}
}
