package mask

import (
	"bytes"
	"math/rand"
	"testing"
)

// naiveMask is the reference the automata must agree with: every
// occurrence of every plain form by bytes.Index in the output, of every
// base64 form in the view without runs of at most maxBreak line-break
// bytes (a longer run is a NUL, in no form); the hold is the longest tail
// that is a proper prefix of some form, measured in the output.
func naiveMask(values [][]byte, in []byte) ([]byte, int) {
	var plain, encoded [][]byte
	for _, v := range values {
		if len(v) < MinLen {
			continue
		}
		p, e := forms(v)
		for _, f := range p {
			if len(f) >= MinLen {
				plain = append(plain, f)
			}
		}
		for _, f := range e {
			if len(f) >= MinLen {
				encoded = append(encoded, f)
			}
		}
	}
	var view []byte
	var pos []int // pos[j] is where view[j] is in the output
	run := 0
	for i, c := range in {
		if c == '\r' || c == '\n' {
			if run++; run == maxBreak+1 {
				view, pos = append(view, 0), append(pos, i)
			}
			continue
		}
		run = 0
		view, pos = append(view, c), append(pos, i)
	}
	out := bytes.Clone(in)
	cover := func(from, to int) {
		for i := from; i < to; i++ {
			out[i] = '*'
		}
	}
	hold := 0
	for _, f := range plain {
		for i := 0; i+len(f) <= len(in); i++ {
			if bytes.HasPrefix(in[i:], f) {
				cover(i, i+len(f))
			}
		}
		for k := 1; k < len(f) && k <= len(in); k++ {
			if bytes.HasPrefix(f, in[len(in)-k:]) {
				hold = max(hold, k)
			}
		}
	}
	for _, f := range encoded {
		for j := 0; j+len(f) <= len(view); j++ {
			if bytes.HasPrefix(view[j:], f) {
				cover(pos[j], pos[j+len(f)-1]+1)
			}
		}
		for k := 1; k < len(f) && k <= len(view); k++ {
			if bytes.HasPrefix(f, view[len(view)-k:]) {
				hold = max(hold, len(in)-pos[len(view)-k])
			}
		}
	}
	return out, hold
}

// The automata find exactly what a search per pattern finds: no more
// (nothing masked that is no form), no less, and the same hold.
func TestAutomatonAgreesWithSearchPerPattern(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	alphabet := []byte("abAB+/=\n\r -_")
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.Intn(len(alphabet))]
		}
		return b
	}
	for iter := 0; iter < 3000; iter++ {
		var values [][]byte
		for i := 0; i < 1+rng.Intn(4); i++ {
			values = append(values, random(rng.Intn(12)))
		}
		// Output: random bytes, pieces of forms, line breaks.
		var in []byte
		for len(in) < 200 {
			switch rng.Intn(4) {
			case 0:
				in = append(in, random(rng.Intn(6))...)
			case 1:
				in = append(in, bytes.Repeat([]byte("\r\n")[rng.Intn(2):], 1+rng.Intn(2))...)
			default:
				v := values[rng.Intn(len(values))]
				fs := Forms(v)
				f := fs[rng.Intn(len(fs))]
				from := rng.Intn(len(f) + 1)
				in = append(in, f[from:from+rng.Intn(len(f)-from+1)]...)
			}
		}
		in = in[:rng.Intn(len(in)+1)]
		want, wantHold := naiveMask(values, in)
		got := bytes.Clone(in)
		hold := New(values).Mask(got)
		if !bytes.Equal(got, want) || hold != wantHold {
			t.Fatalf("values %q, output %q:\ngot  %q hold %d\nwant %q hold %d", values, in, got, hold, want, wantHold)
		}
	}
}
