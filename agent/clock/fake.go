package clock

import (
	"sort"
	"sync"
	"time"
)

// Fake is a clock that moves only when Advance or Set is called. Timers
// due by the new time fire in deadline order. Safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	// waiters are woken whenever a timer is created, so a test can wait
	// until the code under test has armed its timers.
	armed chan struct{}
}

// NewFake starts a fake clock at start.
func NewFake(start time.Time) *Fake { return &Fake{now: start, armed: make(chan struct{})} }

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	t := &fakeTimer{f: f, fn: fn}
	t.Reset(d)
	return t
}

// Advance moves the clock by d, firing every timer that comes due.
func (f *Fake) Advance(d time.Duration) { f.Set(f.Now().Add(d)) }

// Set moves the clock to t (never backwards), firing every timer due.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	if t.After(f.now) {
		f.now = t
	}
	var due []*fakeTimer
	keep := f.timers[:0]
	for _, x := range f.timers {
		if !x.at.After(f.now) {
			due = append(due, x)
		} else {
			keep = append(keep, x)
		}
	}
	clear(f.timers[len(keep):])
	f.timers = keep
	now := f.now
	f.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, x := range due {
		x.fire(now)
	}
}

// Timers is how many timers are armed.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// Armed returns a channel closed at the next timer armed after this call.
func (f *Fake) Armed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.armed
}

// NextDeadline is when the earliest armed timer fires (zero: none).
func (f *Fake) NextDeadline() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var next time.Time
	for _, x := range f.timers {
		if next.IsZero() || x.at.Before(next) {
			next = x.at
		}
	}
	return next
}

type fakeTimer struct {
	f  *Fake
	at time.Time
	c  chan time.Time
	fn func()
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) fire(now time.Time) {
	if t.fn != nil {
		go t.fn()
		return
	}
	select {
	case t.c <- now:
	default:
	}
}

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	return t.removeLocked()
}

func (t *fakeTimer) removeLocked() bool {
	for i, x := range t.f.timers {
		if x == t {
			t.f.timers = append(t.f.timers[:i], t.f.timers[i+1:]...)
			return true
		}
	}
	return false
}

func (t *fakeTimer) Reset(d time.Duration) {
	f := t.f
	f.mu.Lock()
	t.removeLocked()
	if t.c != nil {
		select { // Go 1.23 semantics: no stale tick after Reset
		case <-t.c:
		default:
		}
	}
	t.at = f.now.Add(d)
	if d <= 0 {
		now := f.now
		f.mu.Unlock()
		t.fire(now)
		f.mu.Lock()
	} else {
		f.timers = append(f.timers, t)
	}
	close(f.armed)
	f.armed = make(chan struct{})
	f.mu.Unlock()
}

// WaitTimerAt waits until a timer due at `at` is armed, giving up (false)
// after limit of real time: tests call it to know the code under test is
// waiting before they advance the clock.
func (f *Fake) WaitTimerAt(at time.Time, limit time.Duration) bool {
	giveUp := time.NewTimer(limit)
	defer giveUp.Stop()
	for {
		armed := f.Armed()
		f.mu.Lock()
		for _, x := range f.timers {
			if x.at.Equal(at) {
				f.mu.Unlock()
				return true
			}
		}
		f.mu.Unlock()
		select {
		case <-armed:
		case <-giveUp.C:
			return false
		}
	}
}
