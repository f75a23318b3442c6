package agent

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/api"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/fsm/fsmtest"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

const (
	rotKeyOld = "4d7a1c9e3b5f8a2d6c0e4b8f1a3d5c7e"
	rotKeyNew = "8e2c4a6f0b1d3e5a7c9f2b4d6e8a0c1f"
)

// rotationFixture is a real FSM on bbolt and a key rotator working on
// it; applies go through the same size check as Agent.Apply.
type rotationFixture struct {
	t       *testing.T
	f       *fsm.FSM
	oldBox  *seal.Box
	index   uint64
	k       *keyRotator
	batches int
	// beforeReseal runs before each re-seal command is applied.
	beforeReseal func(n int)
}

func newRotationFixture(t *testing.T, batch int) *rotationFixture {
	t.Helper()
	f := fsmtest.New(t)
	oldBox, err := seal.New(rotKeyOld)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.NewKeyring(rotKeyNew, rotKeyOld)
	if err != nil {
		t.Fatal(err)
	}
	x := &rotationFixture{t: t, f: f, oldBox: oldBox}
	x.k = newKeyRotator(rotationConfig{Keys: keys, Batch: batch}, leadership.Deps{State: f, Apply: leadership.ApplyFunc(x.apply), Logger: hclog.NewNullLogger()})
	return x
}

// apply encodes the command as the agent does and refuses it when it
// exceeds a raft entry, as Agent.Apply does.
func (x *rotationFixture) apply(_ context.Context, t fsm.CommandType, body any) (*fsm.Result, error) {
	data, err := fsm.Encode(t, fsm.Meta{Actor: "system", Timestamp: 1000 + int64(x.index)}, body)
	if err != nil {
		return nil, err
	}
	if len(data) > maxEntrySize {
		x.t.Errorf("command %d is %d bytes, over the %d-byte raft entry limit", t, len(data), maxEntrySize)
		return nil, fmt.Errorf("%w: %d bytes", api.ErrEntryTooLarge, len(data))
	}
	if t == fsm.CmdSecretsReseal {
		x.batches++
		if x.beforeReseal != nil {
			x.beforeReseal(x.batches)
		}
	}
	x.index++
	res := x.f.Apply(&raft.Log{Index: x.index, Term: 1, Type: raft.LogCommand, Data: data}).(*fsm.Result)
	return res, res.Err
}

func (x *rotationFixture) ok(t fsm.CommandType, body any) {
	x.t.Helper()
	if _, err := x.apply(context.Background(), t, body); err != nil {
		x.t.Fatalf("command %d: %v", t, err)
	}
}

// putGlobal stores a global secret sealed under the old key.
func (x *rotationFixture) putGlobal(key string, size int) {
	x.t.Helper()
	sealed, err := x.oldBox.Seal(bytes.Repeat([]byte{'v'}, size), seal.GlobalLocation(key))
	if err != nil {
		x.t.Fatal(err)
	}
	x.ok(fsm.CmdSecretPut, fsm.SecretPut{Key: key, Sealed: sealed, Namespaces: []string{".*"}, KeyCheck: x.oldBox.KeyCheck(), Force: true})
}

// rotate starts a rotation to the new key and steps the worker until it
// stops making progress; it returns the number of steps.
func (x *rotationFixture) rotate() int {
	x.t.Helper()
	x.ok(fsm.CmdKeyRotationStart, fsm.KeyRotationStart{Source: x.oldBox.KeyCheck(), Target: x.k.keys.Primary().KeyCheck()})
	for steps := 1; steps < 10_000; steps++ {
		progressed, err := x.k.step(context.Background())
		if err != nil {
			x.t.Fatalf("step %d: %v", steps, err)
		}
		if !progressed {
			return steps
		}
	}
	x.t.Fatal("the rotation never settled")
	return 0
}

func (x *rotationFixture) done() {
	x.t.Helper()
	x.f.View(func(tx *bbolt.Tx) error {
		rot, err := store.GetKeyRotation(tx)
		if err != nil || rot == nil || rot.State != model.KeyRotationDone {
			x.t.Fatalf("rotation %+v %v; want done", rot, err)
		}
		rem, _, err := store.CountSealed(tx, rot.Target)
		if err != nil || rem.Sum() != 0 {
			x.t.Fatalf("remaining %+v %v", rem, err)
		}
		return nil
	})
}

// TestReSealBatchesFitARaftEntry: a batch is bounded by its JSON, where
// ciphertext is base64. The reviewer's case: just under 256 KiB of
// ciphertext, then a 64 KiB secret with a 64 KiB previous value, used to
// make a ~512 KiB command refused on every retry, stalling the rotation.
func TestReSealBatchesFitARaftEntry(t *testing.T) {
	x := newRotationFixture(t, maxRotationBatch)
	const overhead = 28 // nonce and tag
	raw := 0
	for i := 0; i < 3; i++ { // 42 KiB values with 42 KiB previous values
		key := fmt.Sprintf("a%d", i)
		x.putGlobal(key, 42<<10)
		x.putGlobal(key, 42<<10)
		raw += 2 * (42<<10 + overhead)
	}
	x.putGlobal("a3", 256<<10-1-raw-overhead) // the ciphertext now sums to just under 256 KiB
	x.putGlobal("a4", 64<<10)                 // the largest secret, with a previous value as large
	x.putGlobal("a4", 64<<10)
	for i := 0; i < 20; i++ { // and more of the largest
		key := fmt.Sprintf("b%02d", i)
		x.putGlobal(key, 64<<10)
		x.putGlobal(key, 64<<10)
	}
	x.rotate()
	x.done()
	if x.batches < 2 {
		t.Fatalf("%d batches; want the secrets split over several", x.batches)
	}
}

// TestReSealScanResumes: each batch resumes the scan where the last one
// stopped, so a rotation reads each record a bounded number of times (not
// once per batch), and a record skipped by the compare-and-swap (a put
// under the old key landed meanwhile) is met again when the scan wraps.
func TestReSealScanResumes(t *testing.T) {
	const n, batch = 300, 10
	x := newRotationFixture(t, batch)
	for i := 0; i < n; i++ {
		x.putGlobal(fmt.Sprintf("s%03d", i), 16)
	}
	x.beforeReseal = func(b int) {
		if b == 1 { // s000 is in the first batch: replace it under the old key first
			x.putGlobal("s000", 16)
		}
	}
	x.rotate()
	x.done()
	if x.k.scanned > 3*n {
		t.Fatalf("the rotation of %d records in batches of %d read %d records; want at most %d", n, batch, x.k.scanned, 3*n)
	}
}

// TestKeyRotatorRunPacesBatches: Run applies a batch, waits the batch
// interval on its clock whatever changes (its own batches change state),
// then applies the next, and records the rotation done — on a fake clock.
func TestKeyRotatorRunPacesBatches(t *testing.T) {
	x := newRotationFixture(t, 1)
	for i := 0; i < 3; i++ {
		x.putGlobal(fmt.Sprintf("s%d", i), 16)
	}
	t0 := time.Unix(1_000_000, 0)
	c := clock.NewFake(t0)
	x.k.clock, x.k.interval = c, 10*time.Second
	batches := make(chan int, 10)
	x.beforeReseal = func(n int) { batches <- n }
	x.ok(fsm.CmdKeyRotationStart, fsm.KeyRotationStart{Source: x.oldBox.KeyCheck(), Target: x.k.keys.Primary().KeyCheck()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = x.k.Run(ctx) }()
	defer func() { cancel(); <-done }()
	next := t0
	for n := 1; n <= 3; n++ {
		select {
		case got := <-batches:
			if got != n {
				t.Fatalf("batch %d, want %d", got, n)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("batch %d never came", n)
		}
		next = next.Add(10 * time.Second)
		if !c.WaitTimerAt(next, 10*time.Second) {
			t.Fatalf("no batch interval armed after batch %d", n)
		}
		c.Advance(10*time.Second - time.Millisecond)
		select {
		case got := <-batches:
			t.Fatalf("batch %d came before the batch interval ended", got)
		default:
		}
		c.Advance(time.Millisecond)
	}
	// The finish is the step after the last batch's interval, and is
	// paced like a batch; then the rotator waits for a change, idle.
	next = next.Add(10 * time.Second)
	if !c.WaitTimerAt(next, 10*time.Second) {
		t.Fatal("no interval armed after the finish")
	}
	c.Advance(10 * time.Second)
	if !c.WaitTimerAt(next.Add(rotationIdleWait), 10*time.Second) {
		t.Fatal("the rotator did not go idle after the rotation")
	}
	x.done()
}
