package cli

import (
	"testing"

	sdk "github.com/goferhq/gofer/sdk/go"
)

// TestRetentionSummary: `gofer pipeline get` says which runs the live
// config's own run retention deletes; a run goes when either limit passes it.
func TestRetentionSummary(t *testing.T) {
	for _, tc := range []struct {
		in   sdk.RunRetention
		want string
	}{
		{sdk.RunRetention{}, "keeps every run (overrides the server's setting)"},
		{sdk.RunRetention{Count: 20}, "deletes finished runs beyond the newest 20 (never the newest run)"},
		{sdk.RunRetention{Age: "720h"}, "deletes finished runs that ended more than 720h ago (never the newest run)"},
		{sdk.RunRetention{Count: 5, Age: "24h"}, "deletes finished runs beyond the newest 5 or that ended more than 24h ago (never the newest run)"},
	} {
		if got := retentionSummary(&tc.in); got != tc.want {
			t.Errorf("retentionSummary(%+v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
