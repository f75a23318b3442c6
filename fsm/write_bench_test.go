package fsm

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/goferhq/gofer/store/model"
)

// BenchmarkNamespaceWriteApply is what every node's state machine pays for
// the API write e2e/bench measures (PATCH /api/namespaces/{id} with a
// 256-byte description): the update, its event, and its share of an audit
// record (one entry per request, batched), applied in batches of 64 as
// raft hands them over, with a state commit every 16 batches. The time
// includes encoding the entries (what only the leader does).
func BenchmarkNamespaceWriteApply(b *testing.B) {
	f := testFSM(b, b.TempDir())
	lb := &logBuilder{t: b}
	const namespaces, batch = 1000, 64
	f.ApplyBatch([]*raft.Log{lb.entry(CmdClusterInit, ClusterInit{ClusterID: "c1", Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: "default", Name: "Default"}})})
	for i := range namespaces {
		id := fmt.Sprintf("bench-%04d", i)
		f.ApplyBatch([]*raft.Log{lb.entry(CmdNamespaceCreate, NamespaceCreate{Namespace: model.Namespace{ID: id, Name: id}})})
	}
	f.Flush()
	desc := strings.Repeat("d", 256)
	audit := make([]AuditEntry, batch)
	for i := range audit {
		audit[i] = AuditEntry{At: 1700000000000, TokenID: "0123456789abcdef0123456789abcdef", Actor: "root", Method: "PATCH",
			Route: "/api/namespaces/:ns", Namespace: fmt.Sprintf("bench-%04d", i), Status: 200, Outcome: "ok", RequestID: "0123456789abcdef01234567"}
	}
	logs := make([]*raft.Log, 0, batch+1)
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		logs = logs[:0]
		for i := range batch {
			logs = append(logs, lb.entry(CmdNamespaceUpdate, NamespaceUpdate{ID: fmt.Sprintf("bench-%04d", (n*batch+i)%namespaces), Description: &desc}))
		}
		logs = append(logs, lb.entry(CmdAuditRecord, AuditRecord{Entries: audit}))
		for _, r := range f.ApplyBatch(logs) {
			if res := r.(*Result); res.Err != nil {
				b.Fatal(res.Err)
			}
		}
		if n%16 == 15 {
			f.Flush()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/write")
}
