package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/goferhq/gofer/agent/supervisor"
	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestGithubWebhookThroughTheListener: the built-in github extension, run
// by the supervisor from the image the server imports, takes webhooks
// posted to a follower's external-events listener. A correctly signed push
// starts one run with the delivery's variables; its redelivery, an
// unsigned, a wrongly signed, a tampered and an oversized delivery start
// nothing (the bad ones refused with the extension's 401, the oversized
// one with the listener's 413), and a push to another repository is
// accepted without a run. A delivery for a pipeline whose run lacks a
// secret answers 409 and is started by its redelivery once the secret is
// stored.
func TestGithubWebhookThroughTheListener(t *testing.T) {
	ensureImages(t)
	c, events := newEventsCluster(t, 3, "GOFER_WEB_EXTENSIONS__INSTALL_STD_EXTENSIONS=false")
	ctx := context.Background()
	admin := c.Client()
	meta, err := admin.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "webhook-secret-for-the-e2e-test"
	if _, err := admin.InstallExtension(ctx, client.InstallRequest{ID: "github", Image: supervisor.BuiltinImage("github", meta.Semver),
		Settings: map[string]string{"APP_WEBHOOK_SECRET": secret}}); err != nil {
		t.Fatal(err)
	}
	waitExtensionState(t, admin, "github", model.ExtensionStateRunning)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("github extension output:\n%s", extensionLogs(t, admin, "github"))
		}
	})
	const p = "hooked"
	if _, err := admin.RegisterConfig(ctx, &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{{ID: "quick", Image: "gofer/busybox:latest", Command: []string{"true"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DeployConfig(ctx, p, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Subscribe(ctx, p, "github", "widgets", map[string]string{"repository": "acme/widgets", "events": "push"}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}

	listener := events[c.Followers()[0].Name] + "/api/external/github"
	sign := func(body string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(body))
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	deliver := func(delivery, body, signature string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, listener, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", delivery)
		if signature != "" {
			req.Header.Set("X-Hub-Signature-256", signature)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("deliver %s: %v", delivery, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(b)
	}
	push := func(repo, commit string) string {
		return fmt.Sprintf(`{"ref":"refs/heads/main","repository":{"full_name":%q},"head_commit":{"id":%q,"author":{"name":"Ada","email":"ada@example.com","username":"ada"}}}`, repo, commit)
	}
	runs := func() []*model.Run {
		t.Helper()
		list, err := admin.Consistent().ListRuns(ctx, p, client.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return list
	}

	body := push("acme/widgets", "c0ffee")
	if status, answer := deliver("d-1", body, sign(body)); status/100 != 2 {
		t.Fatalf("signed push: %d %s", status, answer)
	}
	got := runs()
	if len(got) != 1 {
		t.Fatalf("%d runs after one signed push, want 1", len(got))
	}
	for k, v := range map[string]string{"GOFER_EXTENSION_GITHUB_EVENT": "push", "GOFER_EXTENSION_GITHUB_REF": "refs/heads/main",
		"GOFER_EXTENSION_GITHUB_REPOSITORY": "acme/widgets", "GOFER_EXTENSION_GITHUB_HEAD_COMMIT_ID": "c0ffee",
		"GOFER_EXTENSION_GITHUB_HEAD_COMMIT_AUTHOR_USERNAME": "ada"} {
		if got[0].Variables[k] != v {
			t.Errorf("run variable %s = %q, want %q (all: %v)", k, got[0].Variables[k], v, got[0].Variables)
		}
	}
	if got[0].Initiator.User != "github (extension)" {
		t.Errorf("run initiator %+v, want the github extension", got[0].Initiator)
	}

	other := push("acme/other", "beef")
	tampered := push("acme/widgets", "tampered")
	for _, bad := range []struct {
		name, delivery, body, signature string
		want                            int
	}{
		{"a redelivery", "d-1", body, sign(body), 2},
		{"unsigned", "d-2", push("acme/widgets", "unsigned"), "", 401},
		{"wrongly signed", "d-3", push("acme/widgets", "wrong"), sign("something else"), 401},
		{"tampered", "d-4", tampered, sign(body), 401},
		{"a malformed signature", "d-5", tampered, "sha256=zz", 401},
		{"another repository", "d-6", other, sign(other), 2},
	} {
		status, answer := deliver(bad.delivery, bad.body, bad.signature)
		if (bad.want == 2 && status/100 != 2) || (bad.want != 2 && status != bad.want) {
			t.Errorf("%s: %d %s, want %d", bad.name, status, answer, bad.want)
		}
	}
	// Over GitHub's 25 MiB: the listener refuses it before the extension
	// sees it.
	big := `{"pad":"` + strings.Repeat("x", 25<<20) + `"}`
	if status, answer := deliver("d-7", big, sign(big)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized delivery: %d %s, want 413", status, answer)
	}
	if n := len(runs()); n != 1 {
		t.Fatalf("%d runs after the refused deliveries, want still 1", n)
	}
	// A new signed delivery still starts its run: the refusals above did
	// not wedge the extension.
	next := push("acme/widgets", "f00d")
	if status, answer := deliver("d-8", next, sign(next)); status/100 != 2 {
		t.Fatalf("second signed push: %d %s", status, answer)
	}
	if n := len(runs()); n != 2 {
		t.Fatalf("%d runs after the second signed push, want 2", n)
	}

	// A pipeline whose run needs a secret that is not there: the delivery
	// answers 409 naming it, starts nothing and is not remembered; once
	// the secret is stored, GitHub's "Redeliver" (the same delivery id)
	// starts the run.
	const needy = "needs-token"
	if _, err := admin.RegisterConfig(ctx, &sdk.PipelineConfig{ID: needy, Name: needy, Tasks: []*sdk.TaskConfig{{ID: "quick",
		Image: "gofer/busybox:latest", Command: []string{"true"}, Variables: map[string]string{"TOKEN": sdk.PipelineSecret("token")}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DeployConfig(ctx, needy, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Subscribe(ctx, needy, "github", "tokens", map[string]string{"repository": "acme/tokens", "events": "push"}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	needyRuns := func() int {
		t.Helper()
		list, err := admin.Consistent().ListRuns(ctx, needy, client.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	tokens := push("acme/tokens", "7070")
	status, answer := deliver("d-9", tokens, sign(tokens))
	if status != http.StatusConflict || !strings.Contains(answer, `pipeline_secret \"token\" does not exist`) ||
		!strings.Contains(answer, "gofer secret pipeline put needs-token token VALUE") {
		t.Fatalf("delivery for a pipeline missing a secret: %d %s; want 409 naming the secret and its fix", status, answer)
	}
	if n := needyRuns(); n != 0 {
		t.Fatalf("%d runs after a refused delivery, want 0", n)
	}
	waitLog(t, admin, "github", "missing: pipeline_secret token") // the trace the refusal leaves
	if _, err := admin.PutSecret(ctx, client.SecretScope{Pipeline: needy}, "token", "t0k", nil, false); err != nil {
		t.Fatal(err)
	}
	if status, answer := deliver("d-9", tokens, sign(tokens)); status/100 != 2 {
		t.Fatalf("redelivery after the secret was stored: %d %s", status, answer)
	}
	if n := needyRuns(); n != 1 {
		t.Fatalf("%d runs after the redelivery, want 1", n)
	}
}
