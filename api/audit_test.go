package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store/model"
)

// A request whose path parameters are longer than an audit field may be
// is audited with them clipped; it does not make the applier refuse the
// batch it shares with other requests (which an anonymous caller could
// otherwise repeat to keep every request unaudited).
func TestAuditClipsLongPathParameters(t *testing.T) {
	cl, url := devNode(t)
	ctx := context.Background()
	long := strings.Repeat("a", 2*fsm.MaxAuditFieldBytes)
	if status, _ := send(t, http.MethodPatch, url+"/api/namespaces/"+long+"/pipelines/p", `{}`, ""); status < 400 {
		t.Fatalf("PATCH of a pipeline in a namespace that does not exist: %d", status)
	}
	if _, err := cl.CreateNamespace(ctx, "audited", "", ""); err != nil {
		t.Fatal(err)
	}
	var clipped, created bool
	for deadline := time.Now().Add(30 * time.Second); !(clipped && created); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("audit events: clipped %t, namespace create %t; want both recorded", clipped, created)
		}
		events, err := cl.ListEventsOfKind(ctx, client.Page{Limit: 100}, model.EventAudit)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			ns := e.Details.String("namespace")
			switch {
			case strings.HasPrefix(ns, "aaa"):
				if len(ns) > fsm.MaxAuditFieldBytes || !strings.HasSuffix(ns, "…") {
					t.Fatalf("long namespace recorded as %d bytes %q…", len(ns), ns[:16])
				}
				clipped = true
			case e.Details.String("route") == "/api/namespaces" && e.Details.String("method") == http.MethodPost:
				created = true
			}
		}
	}
}
