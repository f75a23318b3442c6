package pace

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent/clock"
)

// fakeDisk records, for every write, the fake time it happened at.
type fakeDisk struct {
	clk    *clock.Fake
	buf    bytes.Buffer
	at     []time.Time
	sizes  []int
	perMiB time.Duration // how long a MiB takes to write
}

func (d *fakeDisk) Write(b []byte) (int, error) {
	d.clk.Advance(time.Duration(len(b)) * d.perMiB / (1 << 20))
	d.at = append(d.at, d.clk.Now())
	d.sizes = append(d.sizes, len(b))
	return d.buf.Write(b)
}

func newPaced(rate int64, perMiB time.Duration) (*Writer, *fakeDisk, *clock.Fake) {
	fake := clock.NewFake(time.Unix(100, 0))
	disk := &fakeDisk{clk: fake, perMiB: perMiB}
	return NewWriterClock(disk, rate, fake.Now, fake.Advance), disk, fake
}

func TestWriterHoldsTheRate(t *testing.T) {
	w, disk, fake := newPaced(4<<20, 0) // 4 MiB/s on an infinitely fast disk
	data := bytes.Repeat([]byte("x"), 20<<20+5)
	start := fake.Now()
	for off := 0; off < len(data); off += 3 << 20 { // callers write in any sizes
		if _, err := w.Write(data[off:min(off+3<<20, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(disk.buf.Bytes(), data) {
		t.Fatal("bytes changed on the way through")
	}
	for _, n := range disk.sizes {
		if n > Chunk {
			t.Fatalf("a write of %d bytes went through in one piece", n)
		}
	}
	// 20 MiB at 4 MiB/s: the last MiB starts at 19/4 s.
	if took := fake.Now().Sub(start); took < 4750*time.Millisecond-burst || took > 5*time.Second {
		t.Fatalf("20 MiB at 4 MiB/s took %v, want about 4.75 s", took)
	}
	// Never ahead of the rate by more than the burst allowance.
	var sum int
	for i, at := range disk.at {
		due := time.Duration(int64(sum)*int64(time.Second)/(4<<20)) - burst
		if at.Sub(start) < due {
			t.Fatalf("write %d at %v after %d bytes: ahead of the rate", i, at.Sub(start), sum)
		}
		sum += disk.sizes[i]
	}
}

// A disk slower than the rate sets the pace; the writer adds no pauses.
func TestWriterOnASlowDisk(t *testing.T) {
	w, _, fake := newPaced(100<<20, 100*time.Millisecond) // 10 MiB/s disk
	start := fake.Now()
	if _, err := w.Write(make([]byte, 10<<20)); err != nil {
		t.Fatal(err)
	}
	if took := fake.Now().Sub(start); took != time.Second {
		t.Fatalf("took %v, want 1s (the disk's own speed)", took)
	}
}

// After a stall the writer does not burst to catch up.
func TestWriterNoBurstAfterStall(t *testing.T) {
	w, disk, fake := newPaced(1<<20, 0)
	_, _ = w.Write(make([]byte, 1<<20))
	fake.Advance(10 * time.Second) // the caller stalled
	disk.at = nil
	before := fake.Now()
	_, _ = w.Write(make([]byte, 4<<20))
	if took := fake.Now().Sub(before); took < 3*time.Second-burst {
		t.Fatalf("4 MiB after a stall went out in %v: a burst", took)
	}
}

type failing struct{ after int }

func (f *failing) Write(b []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	n := min(len(b), f.after)
	f.after -= n
	return n, nil
}

func TestWriterReportsErrors(t *testing.T) {
	fake := clock.NewFake(time.Unix(0, 0))
	w := NewWriterClock(&failing{after: Chunk + 10}, 1<<30, fake.Now, fake.Advance)
	n, err := w.Write(make([]byte, 3*Chunk))
	if err == nil || n != Chunk+10 {
		t.Fatalf("n=%d err=%v, want %d and the disk's error", n, err, Chunk+10)
	}
}

func TestUnlimitedIsThePlainWriter(t *testing.T) {
	var b bytes.Buffer
	if NewWriter(&b, 0) != &b {
		t.Fatal("rate 0 should not wrap")
	}
}
