package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, 100 on every Linux we run on.
const clockTicks = 100

// cpuSample is a point-in-time reading of machine-wide busy CPU and of the
// CPU used by the benchmark client and by one system's server processes.
// Comparing two samples tells how much CPU a run cost per operation and
// how much CPU something else on the machine took meanwhile (noise).
type cpuSample struct {
	at      time.Time
	busy    uint64 // machine-wide busy ticks
	self    uint64 // this process (the load generator)
	servers uint64 // the measured system's processes
	all     uint64 // every process this benchmark started, plus self
}

// cpuDelta is what happened between two samples.
type cpuDelta struct {
	// ServerSec and ClientSec are CPU seconds spent by the measured
	// system's processes and by the load generator.
	ServerSec, ClientSec float64
	// ForeignPct is the CPU share (of all cores) taken by processes this
	// benchmark did not start: other work on the machine.
	ForeignPct float64
}

func takeCPU(serverPIDs, allPIDs []int) cpuSample {
	s := cpuSample{at: time.Now(), busy: machineBusy(), self: procTicks(os.Getpid())}
	for _, p := range serverPIDs {
		s.servers += procTicks(p)
	}
	s.all = s.self
	for _, p := range allPIDs {
		s.all += procTicks(p)
	}
	return s
}

func (a cpuSample) to(b cpuSample) cpuDelta {
	d := cpuDelta{
		ServerSec: float64(sub(b.servers, a.servers)) / clockTicks,
		ClientSec: float64(sub(b.self, a.self)) / clockTicks,
	}
	wall := b.at.Sub(a.at).Seconds()
	if wall > 0 {
		foreign := float64(sub(b.busy, a.busy)) - float64(sub(b.all, a.all))
		d.ForeignPct = max(0, 100*foreign/clockTicks/wall/float64(runtime.NumCPU()))
	}
	return d
}

func sub(b, a uint64) uint64 {
	if b < a {
		return 0
	}
	return b - a
}

// machineBusy sums user+nice+system of /proc/stat's cpu line.
func machineBusy() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy uint64
	for i, v := range f[1:] {
		// Count user, nice and system only: idle and iowait are not work,
		// irq/softirq time (loopback networking, mostly ours) belongs to no
		// process, steal is the hypervisor's, guest is already in user.
		if i != 0 && i != 1 && i != 2 {
			continue
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		busy += n
	}
	return busy
}

// procTicks is utime+stime of one process (all its threads).
func procTicks(pid int) uint64 {
	f := procStat(pid)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st
}

// majorFaults is how many page faults of one process had to read from
// disk: a state file that no longer fits the page cache shows here.
func majorFaults(pid int) uint64 {
	f := procStat(pid)
	if len(f) < 10 {
		return 0
	}
	n, _ := strconv.ParseUint(f[9], 10, 64)
	return n
}

// procStat is /proc/<pid>/stat split into fields from the state on (f[0]
// is field 3 of proc(5)); nil when unreadable.
func procStat(pid int) []string {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	// The command name is in parentheses and may hold spaces.
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 <= len(s) {
		s = s[i+2:]
	}
	return strings.Fields(s)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
