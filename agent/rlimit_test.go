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
		forwards   int
	}{
		{0, 1 << 20, 4096, 512}, // automatic, plenty of descriptors
		{0, 20000, 4096, 512},   // automatic
		{0, 3000, 1500, 187},    // automatic: half the limit
		{0, 1024, 512, 64},      // automatic: half the limit
		{10000, 20000, 10000, 1250},
		// Configured above (limit − limit/4)×4/5, which leaves room for
		// the forwarded requests' descriptors too: lowered.
		{20000, 20000, 12000, 1500},
		{2000, 1024, 614, 76}, // configured above (limit − 256)×4/5: lowered
		{0, 200, 64, 16},      // a tiny limit still serves a few
		{100, 0, 100, 16},     // unknown limit: as configured
		{0, 0, 4096, 512},     // unknown limit: the default
	} {
		conns, forwards := apiConnCap(tc.configured, tc.limit, hclog.NewNullLogger())
		if conns != tc.want || forwards != tc.forwards {
			t.Errorf("apiConnCap(%d, %d) = %d, %d; want %d, %d", tc.configured, tc.limit, conns, forwards, tc.want, tc.forwards)
		}
		// Together they stay below the limit, leaving the reserve.
		if tc.limit > 1024 && uint64(conns+2*forwards) > tc.limit-max(256, tc.limit/4) {
			t.Errorf("apiConnCap(%d, %d): %d connections + 2×%d forwards exceed the budget", tc.configured, tc.limit, conns, forwards)
		}
	}
}
