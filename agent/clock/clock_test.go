package clock

import (
	"context"
	"testing"
	"time"
)

func TestFakeFiresTimersWhenAdvanced(t *testing.T) {
	f := NewFake(time.Unix(1000, 0))
	a := f.NewTimer(time.Second)
	fired := make(chan struct{})
	f.AfterFunc(2*time.Second, func() { close(fired) })
	f.Advance(999 * time.Millisecond)
	select {
	case <-a.C():
		t.Fatal("timer fired early")
	default:
	}
	f.Advance(time.Millisecond)
	if got := <-a.C(); !got.Equal(time.Unix(1001, 0)) {
		t.Fatalf("fired with %v", got)
	}
	if a.Stop() {
		t.Fatal("Stop of a fired timer reported it stopped it")
	}
	f.Advance(time.Second)
	<-fired
	a.Reset(time.Second)
	if !a.Stop() {
		t.Fatal("Stop of an armed timer reported nothing to stop")
	}
	if f.Timers() != 0 {
		t.Fatalf("%d timers still armed", f.Timers())
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, f, time.Hour) {
		t.Fatal("Sleep with an ended context reported a full sleep")
	}
	done := make(chan bool)
	armed := f.Armed()
	go func() { done <- Sleep(context.Background(), f, time.Minute) }()
	<-armed
	f.Advance(time.Minute)
	if !<-done {
		t.Fatal("Sleep reported its context ended")
	}
}
