package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goferhq/gofer/api/openapi"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestClientAgreesWithOpenAPI calls every client method that decodes an
// answer against a server answering {} and compares the Go type each
// decodes into with the answer schema docs/openapi.json gives the route
// (the committed document, kept fresh by TestOpenAPIGolden in api): the
// envelope must have the same JSON field names, and every field the
// client reads, at any depth, must be one the document says the server
// sends.
func TestClientAgreesWithOpenAPI(t *testing.T) {
	raw, err := os.ReadFile("../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc openapi.Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	}))
	defer ts.Close()
	c, err := New([]string{ts.URL}, WithRetryFor(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		method, path string
		out          reflect.Type
	}
	var mu sync.Mutex
	var calls []call
	observeCall = func(method, path string, out any) {
		mu.Lock()
		defer mu.Unlock()
		if out != nil {
			calls = append(calls, call{method, path, reflect.TypeOf(out)})
		}
	}
	defer func() { observeCall = nil }()

	ctx := context.Background()
	p, ns := "p", "n"
	glob, pipe := SecretScope{}, SecretScope{Pipeline: p}
	pobj, robj := ObjectScope{Pipeline: p}, ObjectScope{Pipeline: p, Run: 1}
	s := func(v string) *string { return &v }
	perms := []model.Permission{}
	for _, f := range []func() error{
		func() error { _, err := c.ListNamespaces(ctx, Page{}); return err },
		func() error { _, err := c.GetNamespace(ctx, ns); return err },
		func() error { _, err := c.CreateNamespace(ctx, ns, "", ""); return err },
		func() error { _, err := c.UpdateNamespace(ctx, ns, s("x"), nil); return err },
		func() error { _, err := c.ListPipelines(ctx, Page{}); return err },
		func() error { _, err := c.GetPipeline(ctx, p); return err },
		func() error { _, err := c.SetPipelineState(ctx, p, model.PipelineStateActive); return err },
		func() error { _, err := c.RegisterConfig(ctx, &sdk.PipelineConfig{ID: p}); return err },
		func() error { _, err := c.ListConfigs(ctx, p, Page{}); return err },
		func() error { _, err := c.GetConfig(ctx, p, 1); return err },
		func() error { _, err := c.DeployConfig(ctx, p, 1); return err },
		func() error { _, err := c.DeployConfigWith(ctx, p, 1, DeployOptions{}); return err },
		func() error { _, err := c.DecideDeployment(ctx, p, 1, "promote", ""); return err },
		func() error { _, err := c.ListDeployments(ctx, p, Page{}); return err },
		func() error { _, err := c.GetDeployment(ctx, p, 1); return err },
		func() error { _, err := c.BootstrapToken(ctx); return err },
		func() error { _, err := c.CreateToken(ctx, "u", nil, 0, nil); return err },
		func() error { _, err := c.ListTokens(ctx, Page{}); return err },
		func() error { _, err := c.GetToken(ctx, "t"); return err },
		func() error { _, err := c.WhoAmI(ctx); return err },
		func() error { _, err := c.SetTokenDisabled(ctx, "t", true); return err },
		func() error { _, err := c.ListRoles(ctx, Page{}); return err },
		func() error { _, err := c.GetRole(ctx, "r"); return err },
		func() error { _, err := c.CreateRole(ctx, "r", "", perms); return err },
		func() error { _, err := c.UpdateRole(ctx, "r", s("d"), nil); return err },
		func() error { _, err := c.GetSystem(ctx); return err },
		func() error { _, err := c.SetEventIngress(ctx, true); return err },
		func() error { _, err := c.Metadata(ctx); return err },
		func() error { _, err := c.Health(ctx); return err },
		func() error { _, err := c.StartRun(ctx, p, nil); return err },
		func() error { _, err := c.StartRunWithKey(ctx, p, "k", nil); return err },
		func() error { _, err := c.ListRuns(ctx, p, Page{}); return err },
		func() error { _, err := c.GetRun(ctx, p, 1); return err },
		func() error { _, err := c.CancelRun(ctx, p, 1); return err },
		func() error { _, err := c.RetryRun(ctx, p, 1); return err },
		func() error { _, err := c.ListTasks(ctx, p, 1); return err },
		func() error { _, err := c.GetTask(ctx, p, 1, "t"); return err },
		func() error { _, err := c.CancelTask(ctx, p, 1, "t", 0); return err },
		func() error { _, err := c.ListSecrets(ctx, glob, Page{}); return err },
		func() error { _, err := c.ListSecrets(ctx, pipe, Page{}); return err },
		func() error { _, err := c.GetSecret(ctx, glob, "k", true); return err },
		func() error { _, err := c.GetSecret(ctx, pipe, "k", false); return err },
		func() error { _, err := c.PutSecret(ctx, glob, "k", "v", nil, false); return err },
		func() error { _, err := c.PutSecret(ctx, pipe, "k", "v", nil, false); return err },
		func() error { _, err := c.ListObjects(ctx, pobj, Page{}); return err },
		func() error { _, err := c.ListObjects(ctx, robj, Page{}); return err },
		func() error { _, err := c.PutObject(ctx, pobj, "k", []byte("x"), false); return err },
		func() error { _, err := c.PutObject(ctx, robj, "k", []byte("x"), false); return err },
		func() error { _, err := c.ListEvents(ctx, Page{}); return err },
		func() error { _, err := c.GetEvent(ctx, 1); return err },
		func() error { _, err := c.InstallExtension(ctx, InstallRequest{ID: "e", Image: "i"}); return err },
		func() error { _, err := c.ListExtensions(ctx, Page{}); return err },
		func() error { _, err := c.GetExtension(ctx, "e"); return err },
		func() error { _, err := c.SetExtensionEnabled(ctx, "e", true); return err },
		func() error { _, err := c.ListExtensionSubscriptions(ctx, "e", Page{}); return err },
		func() error { _, err := c.Subscribe(ctx, p, "e", "s", nil); return err },
		func() error { _, err := c.ListSubscriptions(ctx, p, Page{}); return err },
		func() error { _, err := c.GetSubscription(ctx, p, "e", "s"); return err },
		func() error { _, err := c.SetSubscriptionStatus(ctx, p, "e", "s", "active"); return err },
		func() error { _, err := c.DebugExtension(ctx, "e"); return err },
		func() error { _, err := c.Members(ctx); return err },
		func() error { _, err := c.RotateEncryptionKey(ctx, false); return err },
		func() error { _, err := c.EncryptionKeyRotation(ctx); return err },
		func() error { _, err := c.SnapshotRestore(ctx, strings.NewReader("x")); return err },
	} {
		// The answers are empty: a method may fail on what it reads;
		// what matters is the type it decoded into.
		_ = f()
	}

	if len(calls) < 60 {
		t.Fatalf("only %d decoding calls observed", len(calls))
	}
	for _, cl := range calls {
		op, tmpl := findOperation(&doc, cl.method, cl.path)
		if op == nil {
			t.Errorf("%s %s: the client calls a route the OpenAPI document does not have", cl.method, cl.path)
			continue
		}
		schema := successSchema(op)
		if schema == nil {
			t.Errorf("%s %s: the document gives no JSON answer, the client decodes %s", cl.method, tmpl, cl.out)
			continue
		}
		where := cl.method + " " + tmpl
		ct := cl.out
		for ct.Kind() == reflect.Pointer {
			ct = ct.Elem()
		}
		s := resolve(&doc, schema)
		if got, want := clientFields(ct), sortedKeys(s.Properties); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: the client decodes fields %v, the document answers %v", where, got, want)
		}
		compareFields(t, &doc, where, ct, s, map[reflect.Type]bool{})
	}
}

// findOperation is the document's operation for a concrete path.
func findOperation(doc *openapi.Document, method, path string) (*openapi.PathItem, string) {
	for tmpl, methods := range doc.Paths {
		re := "^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(tmpl), `[^/]+`) + "$"
		if regexp.MustCompile(re).MatchString(path) {
			if op := methods[strings.ToLower(method)]; op != nil {
				// A literal segment beats a parameter: /api/tokens/whoami
				// over /api/tokens/{id}.
				if !strings.Contains(tmpl, "{") || !literalMatch(doc, method, path) {
					return op, tmpl
				}
			}
		}
	}
	return nil, ""
}

func literalMatch(doc *openapi.Document, method, path string) bool {
	m := doc.Paths[path]
	return m != nil && m[strings.ToLower(method)] != nil
}

// successSchema is the JSON schema of the operation's first 2xx answer.
func successSchema(op *openapi.PathItem) *openapi.Schema {
	codes := make([]string, 0, len(op.Responses))
	for code := range op.Responses {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, code := range codes {
		if strings.HasPrefix(code, "2") {
			if mt := op.Responses[code].Content[openapi.JSON]; mt != nil {
				return mt.Schema
			}
		}
	}
	return nil
}

func resolve(doc *openapi.Document, s *openapi.Schema) *openapi.Schema {
	for s != nil && s.Ref != "" {
		s = doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	return s
}

func clientFields(t reflect.Type) []string {
	var out []string
	for _, f := range openapi.JSONFields(t) {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]*openapi.Schema) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// compareFields checks that every JSON field of t, at any depth, is in
// the schema s.
func compareFields(t *testing.T, doc *openapi.Document, where string, ct reflect.Type, s *openapi.Schema, seen map[reflect.Type]bool) {
	t.Helper()
	for ct.Kind() == reflect.Pointer {
		ct = ct.Elem()
	}
	s = resolve(doc, s)
	if s == nil {
		return
	}
	switch ct.Kind() {
	case reflect.Slice, reflect.Array:
		if s.Items != nil && ct.Elem().Kind() != reflect.Uint8 {
			compareFields(t, doc, where+"[]", ct.Elem(), s.Items, seen)
		}
	case reflect.Map:
		if s.AdditionalProperties != nil {
			compareFields(t, doc, where+"{}", ct.Elem(), s.AdditionalProperties, seen)
		}
	case reflect.Struct:
		if seen[ct] || s.Properties == nil || ct == reflect.TypeOf(time.Time{}) {
			return
		}
		seen[ct] = true
		defer delete(seen, ct)
		for _, f := range openapi.JSONFields(ct) {
			fs, ok := s.Properties[f.Name]
			if !ok {
				t.Errorf("%s: the client reads field %q (%s), which the document's answer has not", where, f.Name, ct)
				continue
			}
			compareFields(t, doc, where+"."+f.Name, f.Type, fs, seen)
		}
	}
}
