package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/goferhq/gofer/agent"
	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
)

// Bad extension and subscription requests get a 4xx that names the field
// and write nothing; the built-in interval and cron settings are checked
// with the schedule library's messages.
func TestExtensionAndSubscriptionInputErrors(t *testing.T) {
	cl, url, a := devAgent(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	if _, err := cl.RegisterConfig(ctx, sdk.NewPipeline("subs", "subs").Tasks(sdk.NewTask("tsk", "img")).Config()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"interval", "cron"} {
		if _, err := cl.InstallExtension(ctx, client.InstallRequest{ID: id, Image: "example/" + id + ":1"}); err != nil {
			t.Fatal(err)
		}
	}
	send := func(method, path, body string) (int, string) { return sendRaw(t, url, method, path, body, "") }
	const p = "/api/namespaces/default/pipelines/subs/subscriptions"
	for _, tc := range []struct {
		method, path, body string
		status             int
		names              string
	}{
		{"POST", "/api/extensions", `{"id":"bad id","image":"x"}`, 400, "id"},
		{"POST", "/api/extensions", `{"id":"ext"}`, 400, "image"},
		{"POST", "/api/extensions", `{"id":"ext","image":"has space"}`, 400, "image"},
		{"POST", "/api/extensions", `{"id":"ext","image":"x","settings":{"A=B":"v"}}`, 400, "settings"},
		{"POST", "/api/extensions", `{"id":"ext","image":"x","additional_roles":["nope"]}`, 400, "additional_roles"},
		{"POST", "/api/extensions", `{"id":"ext","image":"x","colour":"red"}`, 400, "colour"},
		{"POST", "/api/extensions", `{"id":"ext","image":"x","registry_auth":{"user":"u"}}`, 400, "registry_auth"},
		{"PATCH", "/api/extensions/interval", `{}`, 400, "enable"},
		{"PATCH", "/api/extensions/ghost", `{"enable":false}`, 404, "ghost"},
		{"DELETE", "/api/extensions/ghost", "", 404, "ghost"},
		{"GET", "/api/extensions/ghost", "", 404, "ghost"},
		{"POST", p, `{"extension_id":"interval","subscription_id":"s!","settings":{"every":"5m"}}`, 400, "subscription_id"},
		{"POST", p, `{"extension_id":"ghost","subscription_id":"sub1"}`, 404, "extension_id"},
		{"POST", p, `{"extension_id":"interval","subscription_id":"sub1","settings":{"every":"30s"}}`, 400, "below the minimum"},
		{"POST", p, `{"extension_id":"interval","subscription_id":"sub1"}`, 400, "every is required"},
		{"POST", p, `{"extension_id":"cron","subscription_id":"sub1","settings":{"expression":"0 24 * * * *"}}`, 400, "hour field \\\"24\\\": 24 is out of range 0-23"},
		{"POST", p, `{"extension_id":"cron","subscription_id":"sub1","settings":{"expression":"0 * * * * *","catch_up":"sometimes"}}`, 400, "catch_up"},
		{"POST", "/api/namespaces/default/pipelines/nope/subscriptions", `{"extension_id":"interval","subscription_id":"sub1"}`, 404, "nope"},
		{"PATCH", p + "/interval/sub1", `{"status":"paused"}`, 400, "status"},
		{"PATCH", p + "/interval/sub1", `{"status":"disabled"}`, 404, "sub1"},
		{"DELETE", p + "/interval/sub1", "", 404, "sub1"},
	} {
		status, body := send(tc.method, tc.path, tc.body)
		if status != tc.status || !strings.Contains(body, tc.names) {
			t.Errorf("%s %s %s: %d %.300s; want %d naming %q", tc.method, tc.path, tc.body, status, body, tc.status, tc.names)
		}
	}
	if list, err := cl.ListSubscriptions(ctx, "subs", client.Page{}); err != nil || len(list) != 0 {
		t.Errorf("subscriptions after refused requests: %v %v", list, err)
	}
	if list, err := cl.ListExtensions(ctx, client.Page{}); err != nil || len(list) != 2 {
		t.Errorf("extensions after refused requests: %d %v, want the 2 installed", len(list), err)
	}
	// Good settings pass the running extension, and are stored as given
	// (a value that only looks like a marker too).
	a.ExtensionDirectory().Set("cron", newStandIn(t).target())
	sub, err := cl.Subscribe(ctx, "subs", "cron", "nightly", map[string]string{"expression": "0 3 * * * *", "token": "{{ secret \"gh\" }}"})
	if err != nil || sub.Status != "active" || sub.Settings["token"] != `{{ secret "gh" }}` {
		t.Fatalf("subscribe: %+v %v", sub, err)
	}
}

// An extension's image is checked as a task's is (Docker's grammar): a
// reference Docker would refuse is a 400 naming image and installs
// nothing; upstream's extension images still install. (Who may install is
// decided before the handler reads the body: e2e/authz_test.go's
// matrix.)
func TestExtensionImageValidated(t *testing.T) {
	cl, _ := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	hex64 := strings.Repeat("0123456789abcdef", 4)
	for _, image := range []string{"Foo/Bar:1", "gofer/busybox latest", "busybox:", "x@sha256:short", hex64, "a//b"} {
		_, err := cl.InstallExtension(ctx, client.InstallRequest{ID: "bad-image", Image: image})
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest ||
			!strings.HasPrefix(apiErr.Message, fmt.Sprintf("image: %q is not a valid image reference: ", image)) {
			t.Errorf("install with image %q: %v; want a 400 naming image", image, err)
		}
	}
	if list, err := cl.ListExtensions(ctx, client.Page{}); err != nil || len(list) != 0 {
		t.Errorf("extensions after refused installs: %d %v", len(list), err)
	}
	for i, image := range []string{"ghcr.io/clintjedwards/gofer/extensions/cron:latest", "gofer/extension-interval:v1",
		"localhost:5000/ext@sha256:" + hex64} {
		if _, err := cl.InstallExtension(ctx, client.InstallRequest{ID: fmt.Sprintf("good%d", i), Image: image}); err != nil {
			t.Errorf("install with image %q: %v", image, err)
		}
	}
}
