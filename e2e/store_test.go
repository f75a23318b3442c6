package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestSecretsAndObjects drives the secret and object stores on a
// three-node cluster: secrets and objects written through a follower are
// readable on every node, tasks receive them through interpolation
// markers when they start (a run object stored while the run is going
// reaches the task that starts after it), secret values are masked in the
// stored log, a global secret is refused to a namespace it does not
// allow, missing values fail the task with a reason that names them, an
// object over the size cap gets 413, and no plaintext secret is ever
// written to a node's data dir, a snapshot or a node's log.
func TestSecretsAndObjects(t *testing.T) {
	rc := runsNewCluster(t, 3)
	ctx := context.Background()
	follower := rc.Followers()[0]
	fcl := follower.Client(rc.Token)

	var canaryBytes [12]byte
	rand.Read(canaryBytes[:])
	canary := "canary-" + hex.EncodeToString(canaryBytes[:]) // the secret value
	globalCanary := "global-" + hex.EncodeToString(canaryBytes[:])
	// A multi-line secret whose base64 has '+' and '/' (so the URL-safe
	// form differs).
	multiLine := "RPLEAK8-line1-" + hex.EncodeToString(canaryBytes[:6]) + "\nRPLEAK8-line2-" + hex.EncodeToString(canaryBytes[6:]) + "-~~~???"

	const p = "stores"
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "stores", Tasks: []*sdk.TaskConfig{
		{ID: "use_secret", Image: runsBusybox, Command: []string{"sh", "-c", `echo "key=$API_KEY global=$REGISTRY"; echo "length=${#API_KEY}"`},
			Variables: map[string]string{"API_KEY": sdk.PipelineSecret("api_key"), "REGISTRY": sdk.GlobalSecret("registry")}},
		// hold runs until its timeout fails it (Any lets use_objects go on).
		{ID: "hold", Image: runsBusybox, Command: []string{"sleep", "300"}, Timeout: "5s"},
		runsAfter(&sdk.TaskConfig{ID: "use_objects", Image: runsBusybox, Command: []string{"sh", "-c", `echo "settings=$SETTINGS build=$BUILD"`},
			Variables: map[string]string{"SETTINGS": sdk.PipelineObject("settings"), "BUILD": sdk.RunObject("build_id")}},
			sdk.RequiredParentStatusAny, "hold"),
		// Prints encoded forms and lines of secrets, each in two writes
		// 0.4 s apart (the leader flushes every 250 ms, so each is split
		// across the pieces it masks).
		{ID: "print_encoded", Image: runsBusybox, Command: []string{"sh", "-c", printEncodedScript},
			Variables: map[string]string{"API_KEY": sdk.PipelineSecret("api_key"), "MULTI": sdk.PipelineSecret("multi")}},
	}})

	// Writes through a follower (forwarded to the leader, which seals).
	if _, err := fcl.PutSecret(ctx, client.SecretScope{Pipeline: p}, "api_key", canary, nil, false); err != nil {
		t.Fatalf("put pipeline secret: %v", err)
	}
	if _, err := fcl.PutSecret(ctx, client.SecretScope{Pipeline: p}, "api_key", "other", nil, false); !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("second put without force: %v, want 409", err)
	}
	if _, err := fcl.PutSecret(ctx, client.SecretScope{Pipeline: p}, "multi", multiLine, nil, false); err != nil {
		t.Fatalf("put pipeline secret: %v", err)
	}
	if _, err := fcl.PutSecret(ctx, client.SecretScope{}, "registry", globalCanary, []string{"default"}, false); err != nil {
		t.Fatalf("put global secret: %v", err)
	}
	if _, err := fcl.PutSecret(ctx, client.SecretScope{}, "prod_only", "prod-value-1234", []string{"prod"}, false); err != nil {
		t.Fatalf("put global secret: %v", err)
	}
	if _, err := fcl.PutObject(ctx, client.ObjectScope{Pipeline: p}, "settings", []byte(`{"mode":"fast"}`), false); err != nil {
		t.Fatalf("put pipeline object: %v", err)
	}
	if _, err := fcl.PutObject(ctx, client.ObjectScope{Pipeline: p}, "too_big", make([]byte, 256<<10+1), false); !client.IsStatus(err, http.StatusRequestEntityTooLarge) {
		t.Fatalf("put an object over the cap: %v, want 413", err)
	}

	// Every node reads them (after the write's index): metadata by
	// default, the value only when asked.
	for _, n := range rc.Nodes {
		cl := n.Client(rc.Token).AtLeast(fcl.LastIndex())
		s, err := cl.GetSecret(ctx, client.SecretScope{Pipeline: p}, "api_key", false)
		if err != nil || s.Secret != nil || s.Metadata == nil || s.Metadata.Key != "api_key" {
			t.Fatalf("%s: get secret without include_secret: %+v %v, want metadata only", n.Name, s, err)
		}
		s, err = cl.GetSecret(ctx, client.SecretScope{Pipeline: p}, "api_key", true)
		if err != nil || s.Secret == nil || *s.Secret != canary {
			t.Fatalf("%s: get secret with include_secret: %+v %v", n.Name, s, err)
		}
		data, err := cl.GetObject(ctx, client.ObjectScope{Pipeline: p}, "settings")
		if err != nil || string(data) != `{"mode":"fast"}` {
			t.Fatalf("%s: get object: %q %v", n.Name, data, err)
		}
	}

	run := rc.start(t, p, nil)
	rc.waitTask(t, p, run.RunID, "hold", 30*time.Second, "running", func(te *model.TaskExecution) bool { return te.State == model.TaskStateRunning })
	// The run object appears while the run is going (hold has seconds to
	// run); use_objects starts only after hold ends, and reads it then.
	if _, err := fcl.PutObject(ctx, client.ObjectScope{Pipeline: p, Run: run.RunID}, "build_id", []byte("build-42"), false); err != nil {
		t.Fatalf("put run object: %v", err)
	}
	if te := rc.task(t, p, run.RunID, "use_objects"); te.State != model.TaskStateWaiting {
		t.Fatalf("use_objects left waiting before its run object was stored: %+v", te)
	}
	rc.wait(t, p, run.RunID, 60*time.Second)
	tasks := rc.tasks(t, p, run.RunID)
	for _, id := range []string{"use_secret", "use_objects", "print_encoded"} {
		if te := tasks[id]; te.Status != model.TaskStatusSuccessful {
			t.Fatalf("task %s: %s %+v\n%s", id, te.Status, te.StatusReason, rc.describe(p, run.RunID))
		}
	}
	if te := tasks["use_secret"]; te.Variables["API_KEY"] != sdk.PipelineSecret("api_key") {
		t.Errorf("stored variables must keep the marker, got API_KEY=%q", te.Variables["API_KEY"])
	}
	logs := runsLogs(t, follower.Client(rc.Token).AtLeast(rc.cl.LastIndex()), p, run.RunID, "use_secret")
	if strings.Contains(logs, canary) || strings.Contains(logs, globalCanary) {
		t.Errorf("the stored log holds a secret value:\n%s", logs)
	}
	wantLine := "key=" + strings.Repeat("*", len(canary)) + " global=" + strings.Repeat("*", len(globalCanary))
	if !strings.Contains(logs, wantLine) || !strings.Contains(logs, "length="+strconv.Itoa(len(canary))) {
		t.Errorf("use_secret log %q: want the masked line %q and the real length %d", logs, wantLine, len(canary))
	}
	if logs := runsLogs(t, rc.cl, p, run.RunID, "use_objects"); !strings.Contains(logs, `settings={"mode":"fast"} build=build-42`) {
		t.Errorf("use_objects log %q: want both objects", logs)
	}
	// Encoded forms and lines, split across writes: all masked, the log
	// as long as the output.
	forms := append(secretForms(canary), secretForms(multiLine)...)
	encLog := runsLogs(t, follower.Client(rc.Token).AtLeast(rc.cl.LastIndex()), p, run.RunID, "print_encoded")
	for _, f := range forms {
		if strings.Contains(encLog, f) {
			t.Errorf("the stored log holds %q, a form of a secret:\n%s", f, encLog)
		}
	}
	// Absent also once the log's lines are joined again.
	for _, f := range forms {
		if strings.Contains(strings.ReplaceAll(encLog, "\n", ""), f) {
			t.Errorf("the stored log holds %q, a form of a secret, split across lines:\n%s", f, encLog)
		}
	}
	encLines := strings.Split(strings.TrimSuffix(encLog, "\n"), "\n")
	stars := func(s string) string { return strings.Repeat("*", len(s)) }
	line1, line2, _ := strings.Cut(multiLine, "\n")
	want := []string{stars(b64(canary, base64.StdEncoding)), stars(b64(canary, base64.URLEncoding)), stars(b64(canary, base64.RawStdEncoding)),
		stars(b64(multiLine, base64.StdEncoding)), stars(b64(multiLine, base64.RawURLEncoding)), "line: " + stars(line1), "line: " + stars(line2)}
	// Wrapped base64: the 80 characters that depend only on $MULTI and
	// the line break among them are masked (one line is left), the last 4
	// (they encode the trailing newline) are not.
	wrapped := b64(multiLine+"\n", base64.StdEncoding)
	want = append(want, strings.Repeat("*", 81)+wrapped[80:])
	if len(encLines) != len(want)+3 {
		t.Fatalf("print_encoded log has %d lines, want %d:\n%q", len(encLines), len(want)+3, encLog)
	}
	for i, w := range want {
		if i == len(want)-1 {
			i = len(encLines) - 1
		}
		if encLines[i] != w {
			t.Errorf("print_encoded line %d is %q, want %q", i+1, encLines[i], w)
		}
	}

	// A run whose markers cannot resolve is refused when it starts (409),
	// naming each value and the command that fixes it; no run is made.
	// (A value that goes missing after the start fails its task instead:
	// agent/executor's TestMissingValuesAreAllNamedInTheTaskReason.)
	for _, tc := range []struct{ id, value, want string }{
		{"not_allowed", sdk.GlobalSecret("prod_only"), `global_secret "prod_only" may not be used in namespace "default"`},
		{"missing", sdk.PipelineSecret("nope"), `pipeline_secret "nope" does not exist (used by task.V; fix: gofer secret pipeline put stores-missing nope VALUE -n default)`},
	} {
		pp := "stores-" + strings.ReplaceAll(tc.id, "_", "-")
		rc.deploy(t, &sdk.PipelineConfig{ID: pp, Name: pp, Tasks: []*sdk.TaskConfig{
			{ID: "task", Image: runsBusybox, Command: []string{"true"}, Variables: map[string]string{"V": tc.value}}}})
		_, err := rc.cl.StartRun(ctx, pp, nil)
		var apiErr *client.Error
		errors.As(err, &apiErr)
		if apiErr == nil || apiErr.Status != http.StatusConflict || len(apiErr.Missing) != 1 || !strings.Contains(apiErr.Message, tc.want) ||
			apiErr.Missing[0].UsedBy[0] != "task.V" {
			t.Errorf("%s: start answered %v (%+v); want a 409 naming %q", tc.id, err, apiErr, tc.want)
		}
		if runs, err := rc.cl.ListRuns(ctx, pp, client.Page{}); err != nil || len(runs) != 0 {
			t.Errorf("%s: %d runs after a refused start (%v)", tc.id, len(runs), err)
		}
	}

	// Plaintext never reaches disk: not the raft logs, the state files,
	// raft's snapshots, a backup, nor the node logs.
	rc.noSecretOnDisk(t, ctx, append([]string{canary, globalCanary}, forms...))
	rc.noContainersLeft(t, 60*time.Second)
}

// noSecretOnDisk takes a backup and checks that no file of any node's data
// dir, no node log and not the backup holds any of forms, also with line
// breaks removed (a value printed through wrapping base64).
func (rc *runsCluster) noSecretOnDisk(t *testing.T, ctx context.Context, forms []string) {
	t.Helper()
	backup := filepath.Join(t.TempDir(), "backup.snap")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.cl.SnapshotSave(ctx, f); err != nil {
		t.Fatalf("snapshot save: %v", err)
	}
	f.Close()
	paths := []string{backup}
	for _, n := range rc.Nodes {
		paths = append(paths, n.logPath)
		filepath.WalkDir(n.Dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				paths = append(paths, path)
			}
			return nil
		})
	}
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read %s: %v", path, err)
			continue
		}
		joined := bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r"), nil), []byte("\n"), nil)
		for _, secret := range forms {
			if bytes.Contains(raw, []byte(secret)) || bytes.Contains(joined, []byte(secret)) {
				t.Errorf("%s holds a plaintext secret (or a form of one, maybe split into lines: %q)", path, secret)
			}
		}
	}
}

// printEncodedScript prints $API_KEY in base64 (standard, URL-safe,
// unpadded) and $MULTI (base64, URL-safe unpadded, then each line), then
// both inside longer base64 texts at the three alignments; every line in
// two writes. Last, $MULTI (60 bytes) and a newline through plain base64,
// which wraps its 84 characters at 76 columns.
const printEncodedScript = `split() { n=$((${#1}/2)); printf '%s' "${1:0:$n}"; sleep 0.4; printf '%s\n' "${1:$n}"; }
split "$(printf %s "$API_KEY" | base64 -w0)"
split "$(printf %s "$API_KEY" | base64 -w0 | tr '+/' '-_')"
split "$(printf %s "$API_KEY" | base64 -w0 | tr -d '=')"
split "$(printf %s "$MULTI" | base64 -w0)"
split "$(printf %s "$MULTI" | base64 -w0 | tr '+/' '-_' | tr -d '=')"
printf '%s\n' "$MULTI" | while IFS= read -r line; do printf 'line: '; split "$line"; done
split "$(printf 'config: {"k":"%s"}' "$API_KEY" | base64 -w0)"
split "$(printf 'x%s\n' "$MULTI" | base64 -w0)"
split "$(printf 'xy%s!' "$API_KEY" | base64 -w0 | tr '+/' '-_')"
printf '%s\n' "$MULTI" | base64
`

func b64(s string, enc *base64.Encoding) string { return enc.EncodeToString([]byte(s)) }

// secretForms is every form of v that must never be stored: v, its lines,
// its base64 (std/URL, padded or not), and the characters of a longer
// base64 text that depend only on v, at each of the three alignments.
func secretForms(v string) []string {
	forms := []string{v}
	forms = append(forms, strings.Split(v, "\n")...)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		forms = append(forms, b64(v, enc))
	}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for o := 0; o < 3; o++ {
			full := b64(strings.Repeat("\x00", o)+v, enc)
			// Character k covers bits [6k, 6k+6); v covers [8o, 8(o+len(v))).
			forms = append(forms, full[(8*o+5)/6:8*(o+len(v))/6])
		}
	}
	return forms
}

// TestRunTokenLetsTasksStoreRunObjects: a task that sets inject_api_token
// gets its run's own API token (masked in its log), uses it to store a
// run object that a later task of the run receives, cannot read the
// pipeline's secrets with it (nor pass a secret marker to a run it
// starts, nor read the cluster-wide events), and the token is revoked
// when the run ends.
// Task containers use the host network here so they reach the node's
// loopback API.
func TestRunTokenLetsTasksStoreRunObjects(t *testing.T) {
	rc := runsNewCluster(t, 1, "GOFER_WEB_SCHEDULER__DOCKER__NETWORK=host")
	ctx := context.Background()
	const p = "tokens"
	writer := `base="${GOFER_API_BASE_URL%%,*}/api/namespaces/$GOFER_NAMESPACE_ID/pipelines/$GOFER_PIPELINE_ID"
auth="Authorization: Bearer $GOFER_TOKEN"
echo "token: $GOFER_TOKEN"
wget -q -O - --header "$auth" --header "gofer-api-version: v0" --post-data "build-$GOFER_RUN_ID" "$base/runs/$GOFER_RUN_ID/objects/build_id" || exit 1
echo
try() { wget -q -O /dev/null --header "$auth" --header "gofer-api-version: v0" "$@" >/dev/null 2>&1 && echo allowed || echo refused; }
echo "read secrets: $(try "$base/secrets")"
echo "read all events: $(try "${GOFER_API_BASE_URL%%,*}/api/events")"
echo "smuggle a secret into a run: $(try --post-data '{"variables":{"X":"pipeline_secret{{hidden}}"}}' "$base/runs")"
echo "read own runs: $(try "$base/runs")"`
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{
		{ID: "writer", Image: runsBusybox, Command: []string{"sh", "-c", writer}, InjectAPIToken: true},
		runsAfter(&sdk.TaskConfig{ID: "reader", Image: runsBusybox, Command: []string{"sh", "-c", `echo "build=$BUILD token=${GOFER_TOKEN:-none}"`},
			Variables: map[string]string{"BUILD": sdk.RunObject("build_id")}}, sdk.RequiredParentStatusSuccess, "writer"),
	}})
	if _, err := rc.cl.PutSecret(ctx, client.SecretScope{Pipeline: p}, "hidden", "not-for-tasks", nil, false); err != nil {
		t.Fatal(err)
	}
	run := rc.wait(t, p, rc.start(t, p, nil).RunID, 90*time.Second)
	if run.Status != model.RunStatusSuccessful || run.TokenID == "" {
		t.Fatalf("run %s token %q, want successful with a token\n%s", run.Status, run.TokenID, rc.describe(p, run.RunID))
	}
	logs := runsLogs(t, rc.cl, p, run.RunID, "writer")
	line, _, _ := strings.Cut(strings.TrimPrefix(logs, "token: "), "\n")
	if !strings.HasPrefix(logs, "token: ") || len(line) < 20 || strings.Trim(line, "*") != "" {
		t.Errorf("writer log must show the token masked: %q", logs)
	}
	for _, want := range []string{`"key":"build_id"`, "read secrets: refused", "read all events: refused",
		"smuggle a secret into a run: refused", "read own runs: allowed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("writer log lacks %q:\n%s", want, logs)
		}
	}
	if logs := runsLogs(t, rc.cl, p, run.RunID, "reader"); !strings.Contains(logs, "build=build-1 token=none") {
		t.Errorf("reader log %q: want the run object and no token (it did not ask for one)", logs)
	}
	if _, err := rc.cl.GetToken(ctx, run.TokenID); !client.IsStatus(err, http.StatusNotFound) {
		t.Errorf("the run's token after the run ended: %v, want 404 (revoked)", err)
	}
}

// TestSecretsStayMaskedAcrossFailover: a task prints its secret before
// and after the leader is SIGKILLed; meanwhile the secret is replaced.
// The new leader adopts the running container and masks the value the
// container holds (the replaced one), so the whole stored log is clean.
func TestSecretsStayMaskedAcrossFailover(t *testing.T) {
	rc := runsNewCluster(t, 3)
	ctx := context.Background()
	var b [12]byte
	rand.Read(b[:])
	oldValue, newValue := "old-"+hex.EncodeToString(b[:]), "new-"+hex.EncodeToString(b[:])
	const p = "masked"
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{
		{ID: "talker", Image: runsBusybox, Variables: map[string]string{"S": sdk.PipelineSecret("token")},
			Command: []string{"sh", "-c", `echo "before $S"; while [ ! -e /tmp/never ]; do sleep 1; i=$((i+1)); [ $i -ge 6 ] && break; done; echo "after $S"`}},
	}})
	if _, err := rc.cl.PutSecret(ctx, client.SecretScope{Pipeline: p}, "token", oldValue, nil, false); err != nil {
		t.Fatal(err)
	}
	run := rc.start(t, p, nil)
	WaitFor(t, 30*time.Second, func() error {
		if logs := runsLogs(t, rc.cl, p, run.RunID, "talker"); !strings.Contains(logs, "before ") {
			return fmt.Errorf("talker has not printed yet: %q", logs)
		}
		return nil
	})
	// Replaced while the task runs: the container keeps the old value.
	if _, err := rc.cl.PutSecret(ctx, client.SecretScope{Pipeline: p}, "token", newValue, nil, true); err != nil {
		t.Fatal(err)
	}
	old := rc.Leader()
	old.Kill()
	t.Cleanup(old.Start)
	rc.Leader(old) // a new leader is elected among the others
	r := rc.wait(t, p, run.RunID, 90*time.Second)
	if r.Status != model.RunStatusSuccessful {
		t.Fatalf("run %s\n%s", r.Status, rc.describe(p, run.RunID))
	}
	logs := runsLogs(t, rc.cl, p, run.RunID, "talker")
	masked := strings.Repeat("*", len(oldValue))
	if strings.Contains(logs, oldValue) || strings.Contains(logs, newValue) ||
		!strings.Contains(logs, "before "+masked) || !strings.Contains(logs, "after "+masked) {
		t.Fatalf("log across the failover: %q; want both lines with the value masked", logs)
	}
}
