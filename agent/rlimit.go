package agent

import (
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// API connections are capped below the open-file limit: the raft transport
// (its listener and peer connections), the bbolt files, snapshots and the
// Docker client need descriptors too, and a node that runs out fails all of
// them at once ("accept4: too many open files", lost Docker, timed-out
// health checks).

// The cap leaves at least fdReserveMin descriptors (or a quarter of the
// limit) for everything else; with no setting it is at most
// defaultMaxAPIConns.
const (
	fdReserveMin        = 256
	defaultMaxAPIConns  = 4096
	minAutomaticAPIConn = 64
)

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit and returns
// the soft limit now in force (0 if unknown). Go already does this at start
// on Linux; doing it here keeps the cap right wherever the runtime did not.
func raiseFileLimit(logger hclog.Logger) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			logger.Warn("could not raise the open-file limit", "soft", lim.Cur, "hard", lim.Max, "error", err)
		} else {
			lim = want
		}
	}
	return lim.Cur
}

// apiConnCap is the API connection cap and the cap on requests forwarded to
// the leader at once, for the configured value and the open-file limit:
// conns is the configured value (0: min(4096, limit/2)); forwards is
// max(16, conns/8). A forwarded request holds an outgoing connection to the
// leader, and the forwarder keeps up to forwards idle ones (to a former
// leader, at worst), so forwarding may hold 2×forwards descriptors besides
// the API's: conns plus that stays within the limit minus a reserve of
// max(256, limit/4).
func apiConnCap(configured int, fileLimit uint64, logger hclog.Logger) (conns, forwards int) {
	want := configured
	if fileLimit == 0 {
		if want == 0 {
			want = defaultMaxAPIConns
		}
		return want, forwardsFor(want)
	}
	if want == 0 {
		want = int(min(uint64(defaultMaxAPIConns), fileLimit/2))
	}
	reserve := max(uint64(fdReserveMin), fileLimit/4)
	ceiling := minAutomaticAPIConn
	if fileLimit > reserve+minAutomaticAPIConn {
		// conns + 2×conns/8 ≤ limit − reserve.
		ceiling = max(minAutomaticAPIConn, int((fileLimit-reserve)*4/5))
	}
	if want > ceiling {
		logger.Warn("api.max_connections lowered to leave file descriptors for forwarding, raft, the stores and Docker",
			"configured", configured, "used", ceiling, "open_file_limit", fileLimit)
		want = ceiling
	}
	return want, forwardsFor(want)
}

// forwardsFor is the forwarding cap for an API connection cap.
func forwardsFor(conns int) int { return max(minForwards, conns/8) }

// minForwards is the smallest forwarding cap.
const minForwards = 16
