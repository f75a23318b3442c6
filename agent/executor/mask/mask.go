// Package mask hides secret values in task output. A Set is compiled once
// from the values a task may print; a Stream applies it to output that
// arrives in pieces. Masking replaces bytes with '*' one for one, so the
// masked output is exactly as long as the original and offsets into it
// (resume-by-offset of a task's log) stay valid. DESIGN.md says which
// forms of a value are hidden and why.
package mask

import (
	"bytes"
	"encoding/base64"
)

// MinLen is the shortest pattern masked: a secret shorter than this is not
// masked at all, and neither is a line of a multi-line secret that is
// shorter once trimmed. Hiding every "on", "1" or "}" in a log would make
// it unreadable and protect nothing.
const MinLen = 4

// maxBreak is the longest run of '\r' and '\n' bytes that may split a
// base64 form (a wrapped line ends in "\n" or "\r\n"); a longer run ends
// any base64 match. The bound keeps a held tail, and so MaxLen, finite.
const maxBreak = 2

// Set is the compiled patterns of a set of secret values: every form of
// each value that is masked. plain matches the value and its lines in the
// output as it is; encoded matches the base64 forms in the output with
// line breaks of up to maxBreak bytes skipped, so wrapped base64 (GNU
// base64 wraps at 76 columns, openssl at 64) is masked too.
type Set struct {
	plain, encoded *automaton
	maxLen         int
}

// New compiles the patterns for values (raw, lines, base64 forms). Values
// shorter than MinLen are ignored, duplicates and empty values too. The
// result is a pure function of the set of values: their order does not
// matter.
func New(values [][]byte) *Set {
	plain, encoded := newBuilder(), newBuilder()
	for _, v := range values {
		if len(v) < MinLen {
			continue
		}
		p, e := forms(v)
		for _, f := range p {
			plain.add(f)
		}
		for _, f := range e {
			encoded.add(f)
		}
	}
	s := &Set{plain: plain.compile(), encoded: encoded.compile()}
	if s.plain == nil || s.encoded == nil {
		return &Set{} // no value long enough (each has both kinds of forms)
	}
	// An encoded form of n characters spans at most n + maxBreak*(n-1)
	// bytes of output.
	s.maxLen = max(s.plain.maxLen, s.encoded.maxLen+maxBreak*(s.encoded.maxLen-1))
	return s
}

// Empty reports whether the set masks nothing.
func (s *Set) Empty() bool { return s == nil || s.plain == nil }

// MaxLen is the most output bytes an occurrence can span (a wrapped
// base64 form counts its line breaks): a Stream never holds back more than
// MaxLen-1 bytes, and a resumed stream needs that many bytes of context
// before its start.
func (s *Set) MaxLen() int {
	if s == nil {
		return 0
	}
	return s.maxLen
}

// Forms returns every form of v that is masked, including ones shorter
// than MinLen (New drops those): v itself; each line of v trimmed of
// surrounding blanks; v in standard and URL-safe base64, padded and not;
// and, for each of the three alignments v can have inside a longer base64
// stream, the characters that depend only on v's bytes (the "core"). The
// base64 forms are also masked when line breaks split them.
func Forms(v []byte) [][]byte {
	p, e := forms(v)
	return append(p, e...)
}

// forms is Forms in two parts: the plain forms (v and its lines) and the
// base64 ones.
func forms(v []byte) (plain, encoded [][]byte) {
	plain = [][]byte{v}
	for _, line := range bytes.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
		plain = append(plain, bytes.Trim(line, " \t"))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		encoded = append(encoded, []byte(enc.EncodeToString(v)))
	}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for o := 0; o < 3; o++ {
			encoded = append(encoded, Core(enc, v, o))
		}
	}
	return plain, encoded
}

// Core is the part of the base64 encoding of a stream that depends only
// on v, when v starts o bytes (0, 1 or 2) after a 3-byte group boundary of
// the stream. Character k of an encoding covers bits [6k, 6k+6); v covers
// bits [8o, 8(o+len(v))); the core is the characters entirely inside.
func Core(enc *base64.Encoding, v []byte, o int) []byte {
	full := enc.EncodeToString(append(make([]byte, o), v...))
	from := (8*o + 5) / 6
	to := 8 * (o + len(v)) / 6
	if to <= from {
		return nil
	}
	return []byte(full[from:to])
}

// span is an occurrence, or a run of output covered by occurrences:
// bytes [from, to).
type span struct{ from, to int }

// find looks for every occurrence of every pattern in w, in its original
// bytes, overlapping ones included, and returns the runs of w they cover
// (disjoint, in order) and how many bytes at the end of w may begin an
// occurrence that more output completes.
//
// One pass runs both automata (a set that is not empty has both: every
// value is a plain form and has base64 forms): the plain one over every
// byte, the encoded one over the view of w without its line breaks —
// '\r' and '\n' are skipped unless more than maxBreak of them follow each
// other (then no occurrence spans them). An occurrence of an encoded form
// starts at the position of its first character and ends at that of its
// last, so the breaks inside it are covered too; its held tail is
// measured in w.
//
// ring is scratch space kept between calls (a Stream's), for the view's
// positions.
func (s *Set) find(w []byte, ring *[]int32) (covered []span, hold int) {
	p, e := s.plain, s.encoded
	// at[k&mask] is the position in w of the view's k-th byte, for the
	// last e.maxLen of them: enough to map any occurrence or held prefix.
	size := 1
	for size < e.maxLen {
		size *= 2
	}
	if len(*ring) != size {
		*ring = make([]int32, size)
	}
	at, mask := *ring, size-1
	// The dense-row lookup of each automaton is inlined: this loop is
	// where masking spends its time.
	pDense, pClasses, pClass, pMatch := p.dense, p.classes, &p.class, p.match
	eDense, eClasses, eClass, eMatch := e.dense, e.classes, &e.class, e.match
	ps, es, run, k := int32(0), int32(0), 0, 0
	for i, c := range w {
		if x := int(ps)*pClasses + int(pClass[c]); x < len(pDense) {
			ps = pDense[x]
		} else {
			ps = p.step(ps, c)
		}
		if m := pMatch[ps]; m > 0 {
			covered = append(covered, span{i + 1 - int(m), i + 1})
		}
		if c == '\r' || c == '\n' {
			if run++; run > maxBreak {
				es = 0
			}
			continue
		}
		run = 0
		at[k&mask] = int32(i)
		k++
		if x := int(es)*eClasses + int(eClass[c]); x < len(eDense) {
			es = eDense[x]
		} else {
			es = e.step(es, c)
		}
		if m := eMatch[es]; m > 0 {
			covered = append(covered, span{int(at[(k-int(m))&mask]), i + 1})
		}
	}
	hold = p.held(ps)
	if d := e.held(es); d > 0 {
		hold = max(hold, len(w)-int(at[(k-d)&mask]))
	}
	return union(covered), hold
}

// union merges spans sorted by their end into disjoint ones in order, in
// place. From the last span back, one that reaches the run being built
// extends it (a later, longer occurrence may cover earlier ones whole).
func union(sp []span) []span {
	n := len(sp)
	out := n // the runs are built in sp[out:], right to left
	for j := n - 1; j >= 0; j-- {
		if x := sp[j]; out < n && x.to >= sp[out].from {
			sp[out].from = min(sp[out].from, x.from)
		} else {
			out--
			sp[out] = x
		}
	}
	return sp[out:]
}

// Mask overwrites every occurrence of a pattern in buf with '*', all
// overlapping ones included (they are found before any is overwritten).
// It returns how many bytes at the end of buf may be the start of a
// pattern that the next output completes; a caller that masks pieces on
// its own must keep those original bytes. Stream does that bookkeeping.
func (s *Set) Mask(buf []byte) (hold int) {
	if s.Empty() {
		return 0
	}
	var ring []int32
	covered, hold := s.find(buf, &ring)
	for _, x := range covered {
		for i := x.from; i < x.to; i++ {
			buf[i] = '*'
		}
	}
	return hold
}

// Stream masks output that arrives in pieces: a pattern split across
// pieces is masked once its end arrives, and bytes that may begin a
// pattern are held until more output (or the end) decides. Write appends,
// Next returns what is safe to store; the concatenation of everything
// Next returns is the masked output, exactly as long as what was written.
// The zero Stream with a nil Set masks nothing.
type Stream struct {
	set *Set
	// win is the original bytes from the earliest one still needed: done
	// of them were returned already (kept to match patterns that began
	// there), the rest are pending.
	win  []byte
	done int
	// forced is how many leading bytes of win belong to an occurrence
	// found earlier that began before win: they are masked when returned.
	forced int
	ring   []int32 // find's scratch
}

// NewStream starts masking a stream with set.
func NewStream(set *Set) *Stream { return &Stream{set: set} }

// Resume gives the stream the original bytes just before where its output
// starts (what an earlier writer of the same output already stored), so
// a pattern that began there is still masked to its end. Only the last
// MaxLen-1 bytes matter. Call it before the first Write.
func (st *Stream) Resume(before []byte) {
	if k := st.set.MaxLen() - 1; len(before) > k {
		before = before[len(before)-max(k, 0):]
	}
	st.win = append(st.win[:0], before...)
	st.done = len(st.win)
	st.forced = 0
}

// Write adds output.
func (st *Stream) Write(p []byte) { st.win = append(st.win, p...) }

// Pending is how many written bytes Next has not returned yet.
func (st *Stream) Pending() int { return len(st.win) - st.done }

// Next returns the masked output that is safe to store: all of it when
// last (the output ended), else all but a tail that may begin a pattern.
// The returned slice is the caller's.
func (st *Stream) Next(last bool) []byte {
	w := st.win
	if st.set.Empty() {
		out := append([]byte(nil), w[st.done:]...)
		st.win, st.done, st.forced = st.win[:0], 0, 0
		return out
	}
	covered, hold := st.set.find(w, &st.ring)
	if last {
		hold = 0
	}
	keep := len(w) - hold // win[keep:] is kept for the next call
	cut := max(keep, st.done)
	out := append([]byte(nil), w[st.done:cut]...)
	mark := func(from, to int) {
		for j := max(from, st.done); j < min(to, cut); j++ {
			out[j-st.done] = '*'
		}
	}
	mark(0, st.forced)
	forced := st.forced - keep
	for _, x := range covered {
		mark(x.from, x.to)
		// An occurrence that began before keep is not found again in
		// the kept bytes: carry its extent over.
		if x.from < keep {
			forced = max(forced, x.to-keep)
		}
	}
	rest := append([]byte(nil), w[keep:]...)
	st.win, st.done, st.forced = rest, cut-keep, max(forced, 0)
	return out
}
