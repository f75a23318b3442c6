package agent

import (
	"testing"

	"github.com/hashicorp/go-hclog"
)

// The API connection cap stays below the open-file limit, leaving room for
// raft, the stores and Docker.
func TestAPIConnCap(t *testing.T) {
	for _, tc := range []struct {
		configured int
		limit      uint64
		want       int
	}{
		{0, 1 << 20, 4096},    // automatic, plenty of descriptors
		{0, 20000, 4096},      // automatic
		{0, 3000, 1500},       // automatic: half the limit
		{0, 1024, 512},        // automatic: half the limit
		{10000, 20000, 10000}, // configured, below the ceiling
		{20000, 20000, 15000}, // configured above limit − limit/4: lowered
		{2000, 1024, 768},     // configured above limit − 256: lowered
		{0, 200, 64},          // a tiny limit still serves a few
		{100, 0, 100},         // unknown limit: as configured
		{0, 0, 4096},          // unknown limit: the default
	} {
		if got := apiConnCap(tc.configured, tc.limit, hclog.NewNullLogger()); got != tc.want {
			t.Errorf("apiConnCap(%d, %d) = %d, want %d", tc.configured, tc.limit, got, tc.want)
		}
	}
}
