package api_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
)

// Registering a config whose task names an invalid image is a 400 naming
// the task and field, and stores nothing: no pipeline for a new id, no new
// version for an existing one.
func TestRegistrationRefusesInvalidImage(t *testing.T) {
	cl, url := devNode(t)
	ctx := context.Background()
	bad := func(id, image string) *sdk.PipelineConfig {
		return &sdk.PipelineConfig{ID: id, Name: id, Tasks: []*sdk.TaskConfig{
			{ID: "test", Image: "busybox"}, {ID: "build", Image: image}}}
	}
	for _, image := range []string{"Foo Bar", "Foo", ":tag", "x:", "x@sha256:short", "-a", "a//b"} {
		_, err := cl.RegisterConfig(ctx, bad("images", image))
		if !client.IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), `tasks[build].image: `+strconv.Quote(image)+` is not a valid image reference: `) {
			t.Errorf("register with image %q: %v; want a 400 naming tasks[build].image", image, err)
		}
	}
	if _, err := cl.GetPipeline(ctx, "images"); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("pipeline after refused registrations: %v; want 404 (nothing stored)", err)
	}
	// The same refusal for a new version of a pipeline that exists; the
	// raw API answers the same (the server is the authority, not the SDK).
	if _, err := cl.RegisterConfig(ctx, bad("images", "ghcr.io/a/b:1.2")); err != nil {
		t.Fatal(err)
	}
	status, body := sendRaw(t, url, http.MethodPost, "/api/namespaces/default/pipelines/images/configs",
		`{"config": {"id": "images", "name": "images", "tasks": [{"id": "build", "image": "Foo Bar"}]}}`, "application/json")
	if status != http.StatusBadRequest || !strings.Contains(body, `tasks[build].image: \"Foo Bar\" is not a valid image reference: `) {
		t.Fatalf("raw register: %d %s; want a 400 naming tasks[build].image", status, body)
	}
	p, err := cl.GetPipeline(ctx, "images")
	if err != nil || p.LatestVersion != 1 {
		t.Fatalf("pipeline %+v, %v; want version 1 only", p, err)
	}
}
