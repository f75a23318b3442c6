package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// rotatedEncryptionKey is the key TestEncryptionKeyRotation rotates to.
const rotatedEncryptionKey = "e2e-rotated-store-key-0c4e8a2d6f1b9e73"

// rotationSecret is one secret of the rotation test and its value.
type rotationSecret struct {
	scope client.SecretScope
	key   string
	value string
}

func (s rotationSecret) String() string {
	if s.scope.Pipeline == "" {
		return "global secret " + s.key
	}
	return "secret " + s.key + " of " + s.scope.Pipeline
}

// TestEncryptionKeyRotation rotates a live 3-node cluster's secret key:
// the nodes get the new key (old one kept as previous) in a rolling
// restart, the rotation starts (slowed to one record per batch, a second
// apart, so it can be caught mid-way: a window of well over 10 s even on a
// loaded machine), runs start and secrets are read through followers
// while it re-seals, the leader is SIGKILLed in the middle and the new
// leader resumes it. Afterwards every secret reads back under the new key
// alone (all nodes restarted without the old key), a task still receives
// one, and no plaintext or base64 of any secret is on any node's disk or
// in a backup.
func TestEncryptionKeyRotation(t *testing.T) {
	rc := runsNewCluster(t, 3,
		"GOFER_WEB_SECRET_STORE__ROTATION_BATCH_SIZE=1",
		"GOFER_WEB_SECRET_STORE__ROTATION_BATCH_INTERVAL=1s")
	ctx := context.Background()
	const p = "rotate"
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{{
		ID: "use", Image: runsBusybox, InjectAPIToken: true,
		// Succeeds only when the task received the whole marker value.
		Command:   []string{"sh", "-c", `case "$S" in rot-*) echo "len=${#S}";; *) echo "no secret"; exit 3;; esac`},
		Variables: map[string]string{"S": sdk.PipelineSecret("s00")},
	}}})

	var secrets []rotationSecret
	rnd := func(prefix string) string {
		var b [10]byte
		rand.Read(b[:])
		return prefix + hex.EncodeToString(b[:])
	}
	var replaced []string // values replaced by a forced put (kept sealed as previous values)
	// 15 records, a batch a second: the abort and the leader kill below
	// must land while the rotation runs.
	for i := 0; i < 12; i++ {
		secrets = append(secrets, rotationSecret{client.SecretScope{Pipeline: p}, fmt.Sprintf("s%02d", i), rnd("rot-p-")})
	}
	for i := 0; i < 3; i++ {
		secrets = append(secrets, rotationSecret{client.SecretScope{}, fmt.Sprintf("g%02d", i), rnd("rot-g-")})
	}
	for i, s := range secrets {
		if i%3 == 0 { // a previous value to re-seal too
			old := rnd("rot-old-")
			replaced = append(replaced, old)
			if _, err := rc.cl.PutSecret(ctx, s.scope, s.key, old, []string{".*"}, false); err != nil {
				t.Fatalf("put %s: %v", s, err)
			}
		}
		if _, err := rc.cl.PutSecret(ctx, s.scope, s.key, s.value, []string{".*"}, true); err != nil {
			t.Fatalf("put %s: %v", s, err)
		}
	}
	statusOf := func(cl *client.Client) *model.KeyRotationStatus {
		t.Helper()
		st, err := cl.EncryptionKeyRotation(ctx)
		if err != nil {
			t.Fatalf("rotation status: %v", err)
		}
		return st
	}
	oldCheck := statusOf(rc.cl).KeyCheck

	// The new key needs every node to hold it: refused before the rollout.
	if _, err := rc.cl.RotateEncryptionKey(ctx, false); !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("rotate before any node holds a new key: %v, want 409", err)
	}

	// Roll the new key out: configured key = new, previous = old, one
	// node at a time. Secrets stay writable and readable meanwhile.
	for i, n := range rc.Nodes {
		if i == len(rc.Nodes)-1 {
			// Not every node holds the new key yet: refused, naming what is missing.
			_, err := rc.cl.RotateEncryptionKey(ctx, false)
			if !client.IsStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "every voter must hold") || !strings.Contains(err.Error(), "node") {
				t.Fatalf("rotate while %s lacks the new key: %v, want 409 naming the missing key", n.Name, err)
			}
		}
		n.Env = append(n.Env, "GOFER_WEB_SECRET_STORE__ENCRYPTION_KEY="+rotatedEncryptionKey,
			"GOFER_WEB_SECRET_STORE__PREVIOUS_ENCRYPTION_KEYS="+testEncryptionKey)
		n.Stop()
		n.Start()
		rc.WaitForMembers(3)
	}
	// The health answer tells anonymous callers nothing about the keys
	// (a key check lets one test guesses of a weak key offline); another
	// node, proving the cluster secret, is told.
	for _, n := range rc.Nodes {
		for _, withSecret := range []bool{false, true} {
			req, _ := http.NewRequest(http.MethodGet, n.URL+"/api/system/health", nil)
			if withSecret {
				req.Header.Set("X-Gofer-Cluster-Secret", testSecret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("health of %s: %v", n.Name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "key_checks") != withSecret {
				t.Fatalf("health of %s (cluster secret sent: %v) lists key checks: %v\n%s", n.Name, withSecret, !withSecret, body)
			}
		}
	}
	// A run whose token is sealed under the old key and lives through the
	// rotation (the token must be re-sealed too).
	const hold = "rotate-hold"
	rc.deploy(t, &sdk.PipelineConfig{ID: hold, Name: hold, Tasks: []*sdk.TaskConfig{{
		ID: "hold", Image: runsBusybox, InjectAPIToken: true, Command: []string{"sleep", "300"}}}})
	holdRun := rc.start(t, hold, nil)
	if _, err := rc.cl.PutSecret(ctx, secrets[1].scope, secrets[1].key, secrets[1].value, nil, true); err != nil {
		t.Fatalf("a put after the rollout, before the rotation: %v", err)
	}
	replaced = append(replaced, secrets[1].value) // its own previous value now

	// A rotation rolled back mid-way: everything ends under the old key.
	if _, err := rc.cl.RotateEncryptionKey(ctx, false); err != nil {
		t.Fatalf("start a rotation to roll back: %v", err)
	}
	WaitFor(t, 30*time.Second, func() error {
		if st := statusOf(rc.cl); st.Rotation.Resealed < 2 {
			return fmt.Errorf("re-sealed %d so far", st.Rotation.Resealed)
		}
		return nil
	})
	if out, code := rc.cli(t, rc.Followers()[0].URL, "service", "rotate-encryption-key", "--abort"); code != 0 || !strings.Contains(out, "done") {
		t.Fatalf("gofer service rotate-encryption-key --abort: exit %d\n%s", code, out)
	}
	if st := statusOf(rc.cl); !st.Rotation.Aborted || st.Rotation.State != model.KeyRotationDone || st.KeyCheck != oldCheck || st.Remaining.Sum() != 0 {
		t.Fatalf("after the abort: %+v, want everything back under %s", st, oldCheck)
	}
	for _, s := range secrets {
		if got, err := rc.cl.GetSecret(ctx, s.scope, s.key, true); err != nil || got.Secret == nil || *got.Secret != s.value {
			t.Fatalf("%s after the abort: %+v %v", s, got, err)
		}
	}

	// Start through the CLI, detached.
	leader := rc.Leader()
	if out, code := rc.cli(t, rc.Followers()[0].URL, "service", "rotate-encryption-key", "--detach"); code != 0 {
		t.Fatalf("gofer service rotate-encryption-key --detach: exit %d\n%s", code, out)
	}
	st := statusOf(rc.cl)
	if st.Rotation == nil || st.Rotation.State != model.KeyRotationRotating || st.Rotation.Source != oldCheck {
		t.Fatalf("after the start: %+v", st)
	}
	newCheck := st.Rotation.Target

	// Load while it runs: runs start, secrets are read through followers.
	// A read may fail while the leader is down (no leader), but must never
	// answer a wrong value or fail to open one.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, runs atomic.Int64
	var problems []string
	var pmu sync.Mutex
	problem := func(format string, args ...any) {
		pmu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		pmu.Unlock()
	}
	var started []int64
	var smu sync.Mutex
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			for _, n := range rc.Nodes {
				if n == leader || !n.Running() {
					continue
				}
				s := secrets[i%len(secrets)]
				got, err := n.Client(rc.Token).GetSecret(ctx, s.scope, s.key, true)
				switch {
				case err == nil && (got.Secret == nil || *got.Secret != s.value):
					problem("%s read %s as a wrong value", n.Name, s)
				case err == nil:
					reads.Add(1)
				case client.IsStatus(err, http.StatusInternalServerError):
					problem("%s could not open %s: %v", n.Name, s, err)
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Second): // a handful of runs, not dozens of containers
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			r, err := rc.cl.StartRun(cctx, p, nil)
			cancel()
			if err == nil {
				runs.Add(1)
				smu.Lock()
				started = append(started, r.RunID)
				smu.Unlock()
			}
		}
	}()

	// SIGKILL the leader once the rotation is mid-way.
	WaitFor(t, 30*time.Second, func() error {
		st := statusOf(rc.cl)
		if st.Rotation.Resealed < 3 {
			return fmt.Errorf("re-sealed %d so far", st.Rotation.Resealed)
		}
		return nil
	})
	if st := statusOf(rc.cl); st.Rotation.State != model.KeyRotationRotating || st.Remaining.Sum() == 0 {
		t.Fatalf("the rotation was not mid-way when the leader was to be killed: %+v", st)
	}
	t.Logf("killing leader %s mid-rotation: %+v", leader.Name, statusOf(rc.cl).Remaining)
	leader.Kill()
	rc.Leader(leader)
	leader.Start()
	rc.WaitForMembers(3)

	var done *model.KeyRotationStatus
	WaitFor(t, 90*time.Second, func() error {
		done = statusOf(rc.cl)
		if done.Rotation.State != model.KeyRotationDone {
			return fmt.Errorf("rotation %s, %d values left", done.Rotation.State, done.Remaining.Sum())
		}
		return nil
	})
	close(stop)
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("during the rotation:\n%s", strings.Join(problems, "\n"))
	}
	if reads.Load() == 0 || runs.Load() == 0 {
		t.Fatalf("no load ran during the rotation: %d reads, %d runs", reads.Load(), runs.Load())
	}
	t.Logf("rotation done: %d values re-sealed across a leader kill; %d secret reads and %d runs during it; totals %+v",
		done.Rotation.Resealed, reads.Load(), runs.Load(), done.Total)
	if done.KeyCheck != newCheck || done.Remaining.Sum() != 0 || done.Total.PreviousSecrets == 0 || done.Total.RunTokens == 0 {
		t.Fatalf("after the rotation: %+v; want key check %s, nothing left, previous values and the held run's token counted", done, newCheck)
	}
	if _, err := rc.cl.CancelRun(ctx, hold, holdRun.RunID); err != nil {
		t.Fatalf("cancel run %d of %s: %v", holdRun.RunID, hold, err)
	}
	rc.wait(t, hold, holdRun.RunID, 60*time.Second)
	// The runs started during the rotation got their secret.
	smu.Lock()
	ids := append([]int64(nil), started...)
	smu.Unlock()
	for _, id := range ids {
		rc.wait(t, p, id, 60*time.Second)
		if te := rc.task(t, p, id, "use"); te.Status != model.TaskStatusSuccessful {
			t.Fatalf("run %d started during the rotation: task %s %+v", id, te.Status, te.StatusReason)
		}
	}

	// Only the new key from now on: every node restarted without the old.
	for _, n := range rc.Nodes {
		n.Env = append(n.Env, "GOFER_WEB_SECRET_STORE__PREVIOUS_ENCRYPTION_KEYS=")
		n.Stop()
		n.Start()
	}
	rc.WaitForMembers(3)
	for _, n := range rc.Nodes {
		cl := n.Client(rc.Token).AtLeast(rc.cl.LastIndex())
		for _, s := range secrets {
			got, err := cl.GetSecret(ctx, s.scope, s.key, true)
			if err != nil || got.Secret == nil || *got.Secret != s.value {
				t.Fatalf("%s: %s under the new key alone: %+v %v", n.Name, s, got, err)
			}
		}
	}
	run := rc.wait(t, p, rc.start(t, p, nil).RunID, 60*time.Second)
	if te := rc.task(t, p, run.RunID, "use"); te.Status != model.TaskStatusSuccessful {
		t.Fatalf("a task using a secret under the new key alone: %s %+v\n%s", te.Status, te.StatusReason, rc.describe(p, run.RunID))
	}
	if out, code := rc.cli(t, rc.Nodes[0].URL, "service", "rotate-encryption-key", "--status"); code != 0 || !strings.Contains(out, "done") {
		t.Fatalf("--status: exit %d\n%s", code, out)
	}

	// No plaintext, nor its base64, anywhere on disk or in a backup.
	values := replaced
	for _, s := range secrets {
		values = append(values, s.value)
	}
	var forms []string
	for _, v := range values {
		forms = append(forms, secretForms(v)...)
	}
	rc.noSecretOnDisk(t, ctx, forms)
	rc.noContainersLeft(t, 60*time.Second)
}
