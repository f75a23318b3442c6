package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// runStats is one measured run of n operations at concurrency c.
type runStats struct {
	N, C     int
	Errors   int
	FirstErr string
	Wall     time.Duration
	OpsSec   float64
	Mean     time.Duration
	P50      time.Duration
	P90      time.Duration
	P99      time.Duration
	Max      time.Duration
}

func (s runStats) String() string {
	e := ""
	if s.Errors > 0 {
		e = fmt.Sprintf("  ERRORS %d (first: %s)", s.Errors, s.FirstErr)
	}
	return fmt.Sprintf("n=%d c=%d  %8.0f ops/s  mean %s  p50 %s  p90 %s  p99 %s  max %s%s",
		s.N, s.C, s.OpsSec, ms(s.Mean), ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max), e)
}

// ms formats a duration in milliseconds with 3 significant-ish digits.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 100:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.0fms", v)
}

// opFunc performs operation i on worker w. rng is the worker's own
// generator (no shared lock on the hot path).
type opFunc func(ctx context.Context, w int, rng *rand.Rand) error

// runLoad runs n operations over c goroutines, each issuing its next
// operation as soon as the previous one returns (closed loop, like etcd's
// benchmark tool), and times every operation.
func runLoad(ctx context.Context, n, c int, op opFunc) runStats {
	var next atomic.Int64
	lat := make([][]time.Duration, c)
	var errMu sync.Mutex
	errs := 0
	firstErr := ""
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w)+1, uint64(time.Now().UnixNano())))
			mine := make([]time.Duration, 0, n/c+1)
			for next.Add(1) <= int64(n) {
				if ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := op(ctx, w, rng)
				d := time.Since(t0)
				if err != nil {
					errMu.Lock()
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
					errMu.Unlock()
					continue
				}
				mine = append(mine, d)
			}
			lat[w] = mine
		}(w)
	}
	wg.Wait()
	wall := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	s := runStats{N: n, C: c, Errors: errs, FirstErr: firstErr, Wall: wall}
	if len(all) == 0 {
		return s
	}
	slices.Sort(all)
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	s.OpsSec = float64(len(all)) / wall.Seconds()
	s.Mean = sum / time.Duration(len(all))
	s.P50 = percentile(all, 0.50)
	s.P90 = percentile(all, 0.90)
	s.P99 = percentile(all, 0.99)
	s.Max = all[len(all)-1]
	return s
}

// percentile of sorted values (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// medianRun picks, field by field, the median of several runs of the same
// configuration.
func medianRun(runs []runStats) runStats {
	if len(runs) == 0 {
		return runStats{}
	}
	pick := func(get func(runStats) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = get(r)
		}
		return median(v)
	}
	d := func(get func(runStats) time.Duration) time.Duration {
		return time.Duration(pick(func(r runStats) float64 { return float64(get(r)) }))
	}
	out := runs[0]
	out.OpsSec = pick(func(r runStats) float64 { return r.OpsSec })
	out.Mean = d(func(r runStats) time.Duration { return r.Mean })
	out.P50 = d(func(r runStats) time.Duration { return r.P50 })
	out.P90 = d(func(r runStats) time.Duration { return r.P90 })
	out.P99 = d(func(r runStats) time.Duration { return r.P99 })
	out.Max = d(func(r runStats) time.Duration { return r.Max })
	out.Errors = 0
	for _, r := range runs {
		out.Errors += r.Errors
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// payloads are pre-generated 256-byte values (printable, JSON-safe) so
// that neither client spends time generating data on the hot path.
func makePayloads(count, size int) []string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	rng := rand.New(rand.NewPCG(42, 4242))
	out := make([]string, count)
	for i := range out {
		b := make([]byte, size)
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		out[i] = string(b)
	}
	return out
}
