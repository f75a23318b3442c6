package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// cluster is what the failover trial needs from either system.
type cluster interface {
	Name() string
	// MemberName names member i in messages.
	MemberName(i int) string
	// Leader returns the index of the leader every running member agrees on.
	Leader(ctx context.Context) (int, error)
	// Kill sends SIGKILL to member i and waits until it is gone.
	Kill(i int)
	// Restart starts member i again with its data dir.
	Restart(i int) error
	// Pause freezes member i (SIGSTOP): its sockets stay open and nothing
	// answers, like a hung host. Resume sends SIGCONT.
	Pause(i int)
	Resume(i int)
	// WaitHealthy waits until all members run, agree on a leader, accept a
	// write and have caught up with it.
	WaitHealthy(ctx context.Context) error
	// WriterVia returns a function that does one replicated write through
	// member i (forwarded to the leader if i is a follower).
	WriterVia(i int) (write func(ctx context.Context, rng *rand.Rand) error, closeFn func(), err error)
	Size() int
}

// failoverResult is one trial.
type failoverResult struct {
	Took   time.Duration
	Killed string
	Via    string
	Failed int // failed or timed-out writes between the kill and the first success
	KillAt time.Time
}

// failoverFault is what a failover trial does to the leader.
type failoverFault int

const (
	// faultKill SIGKILLs the leader: its ports refuse at once.
	faultKill failoverFault = iota
	// faultStop SIGSTOPs the leader: its ports accept and never answer,
	// so only timeouts reveal it (a hung host, a frozen VM).
	faultStop
)

func (f failoverFault) String() string {
	if f == faultStop {
		return "SIGSTOP"
	}
	return "SIGKILL"
}

// failoverTrial finds the leader, starts one writer loop per survivor
// (each write with reqTimeout), SIGKILLs or SIGSTOPs the leader and
// measures the time from the fault to the first successful write that was
// *sent* after it. Then it restarts (or resumes) the member and waits
// until the cluster is healthy again.
func failoverTrial(ctx context.Context, cl cluster, fault failoverFault, reqTimeout, maxWait time.Duration) (failoverResult, error) {
	var res failoverResult
	li, err := cl.Leader(ctx)
	if err != nil {
		return res, err
	}
	res.Killed = cl.MemberName(li)
	type writer struct {
		idx   int
		write func(ctx context.Context, rng *rand.Rand) error
		close func()
	}
	var writers []writer
	defer func() {
		for _, w := range writers {
			w.close()
		}
	}()
	for i := 0; i < cl.Size(); i++ {
		if i == li {
			continue
		}
		w, c, err := cl.WriterVia(i)
		if err != nil {
			return res, err
		}
		writers = append(writers, writer{idx: i, write: w, close: c})
	}

	var (
		killAt   atomic.Int64 // unix nanos; 0 until the kill
		warm     atomic.Int64
		failed   atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		resultMu sync.Mutex
		first    time.Duration
		firstVia string
		got      = make(chan struct{})
		gotOnce  sync.Once
	)
	for wi, w := range writers {
		wg.Add(1)
		go func(wi int, w writer) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(wi)+7, uint64(time.Now().UnixNano())))
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				rctx, cancel := context.WithTimeout(ctx, reqTimeout)
				err := w.write(rctx, rng)
				cancel()
				k := killAt.Load()
				if err == nil {
					warm.Add(1)
					if k != 0 && t0.UnixNano() >= k {
						took := time.Since(time.Unix(0, k))
						gotOnce.Do(func() {
							resultMu.Lock()
							first, firstVia = took, cl.MemberName(w.idx)
							resultMu.Unlock()
							close(got)
						})
					}
					continue
				}
				if k != 0 {
					failed.Add(1)
				}
				// A refused connection fails at once; don't spin.
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}(wi, w)
	}
	stopWriters := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}

	// Let the writers prove they work before the kill.
	if err := waitFor(10*time.Second, "writers warm up", func() error {
		if warm.Load() < 20 {
			return fmt.Errorf("%d successful writes so far", warm.Load())
		}
		return nil
	}); err != nil {
		stopWriters()
		return res, err
	}

	res.KillAt = time.Now()
	killAt.Store(res.KillAt.UnixNano())
	if fault == faultStop {
		cl.Pause(li)
	} else {
		cl.Kill(li)
	}

	select {
	case <-got:
	case <-time.After(maxWait):
	case <-ctx.Done():
	}
	stopWriters()
	resultMu.Lock()
	res.Took, res.Via = first, firstVia
	resultMu.Unlock()
	res.Failed = int(failed.Load())

	if fault == faultStop {
		cl.Resume(li)
	} else if err := cl.Restart(li); err != nil {
		return res, err
	}
	hctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := cl.WaitHealthy(hctx); err != nil {
		return res, fmt.Errorf("after restarting %s: %w", res.Killed, err)
	}
	if res.Took == 0 {
		return res, fmt.Errorf("no write succeeded within %s of killing %s", maxWait, res.Killed)
	}
	return res, nil
}

// failoverSummary is the median/min/max of the successful trials.
type failoverSummary struct {
	Trials           []failoverResult
	Median, Min, Max time.Duration
	OK               int
}

func summarizeFailover(trials []failoverResult) failoverSummary {
	s := failoverSummary{Trials: trials}
	var v []float64
	for _, t := range trials {
		if t.Took > 0 {
			v = append(v, float64(t.Took))
			if s.Min == 0 || t.Took < s.Min {
				s.Min = t.Took
			}
			s.Max = max(s.Max, t.Took)
		}
	}
	s.OK = len(v)
	s.Median = time.Duration(median(v))
	return s
}
