package store

import (
	"os"
	"strconv"
)

// Address space reserved for a state file's mapping (see mmapSize).
const (
	reservedMapping64 = 64 << 30  // 64-bit platforms
	reservedMapping32 = 256 << 20 // 32-bit platforms: the address space is small
)

// mmapSize is how much of the address space a state file is mapped with
// when it is opened (bbolt's InitialMmapSize).
//
// bbolt grows its mapping by remapping the file, and a remap waits for
// every open read transaction to end. A raft snapshot holds one for as long
// as it streams the state (about a minute for 4 GiB at the default 64 MiB/s
// snapshot_write_rate); a write transaction that had to grow the mapping
// meanwhile blocked the FSM, and with it every raft apply, until the
// snapshot finished: all writes stopped for 20–30 s while the leader
// snapshotted a 4.5 GiB state. Reserving the address space up front means
// no remap happens until the file outgrows it. It is address space, not
// memory: pages are only read in when touched, and the resident size is the
// same as with a tight mapping.
//
// The reservation is at least twice the file's current size, so a state
// past 32 GiB still has room to double before bbolt remaps (then in 1 GiB
// steps, each waiting for open snapshots again).
func mmapSize(path string) int {
	if strconv.IntSize == 32 {
		return reservedMapping32
	}
	size := int64(reservedMapping64)
	if fi, err := os.Stat(path); err == nil && 2*fi.Size() > size {
		size = 2 * fi.Size()
	}
	return int(size)
}
