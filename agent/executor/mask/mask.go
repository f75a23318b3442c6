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
	"sort"
)

// MinLen is the shortest pattern masked: a secret shorter than this is not
// masked at all, and neither is a line of a multi-line secret that is
// shorter once trimmed. Hiding every "on", "1" or "}" in a log would make
// it unreadable and protect nothing.
const MinLen = 4

// Set is the compiled patterns of a set of secret values: every form of
// each value that is masked.
type Set struct {
	patterns [][]byte
	maxLen   int
}

// New compiles the patterns for values (raw, lines, base64 forms). Values
// shorter than MinLen are ignored, duplicates and empty values too. The
// result is a pure function of the set of values: their order does not
// matter.
func New(values [][]byte) *Set {
	seen := map[string]bool{}
	s := &Set{}
	add := func(p []byte) {
		if len(p) < MinLen || seen[string(p)] {
			return
		}
		seen[string(p)] = true
		s.patterns = append(s.patterns, p)
		s.maxLen = max(s.maxLen, len(p))
	}
	for _, v := range values {
		if len(v) < MinLen {
			continue
		}
		for _, f := range Forms(v) {
			add(f)
		}
	}
	// Deterministic order (longest first) so equal sets behave equally.
	sort.Slice(s.patterns, func(i, j int) bool {
		if len(s.patterns[i]) != len(s.patterns[j]) {
			return len(s.patterns[i]) > len(s.patterns[j])
		}
		return bytes.Compare(s.patterns[i], s.patterns[j]) < 0
	})
	return s
}

// Empty reports whether the set masks nothing.
func (s *Set) Empty() bool { return s == nil || len(s.patterns) == 0 }

// MaxLen is the length of the longest pattern: a Stream never holds back
// more than MaxLen-1 bytes, and a resumed stream needs that many bytes of
// context before its start.
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
// stream, the characters that depend only on v's bytes (the "core").
func Forms(v []byte) [][]byte {
	forms := [][]byte{v}
	for _, line := range bytes.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
		forms = append(forms, bytes.Trim(line, " \t"))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		forms = append(forms, []byte(enc.EncodeToString(v)))
	}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for o := 0; o < 3; o++ {
			forms = append(forms, Core(enc, v, o))
		}
	}
	return forms
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

type span struct{ from, to int }

// spans finds every occurrence of every pattern in buf, overlapping ones
// included, in the original bytes.
func (s *Set) spans(buf []byte) []span {
	var out []span
	for _, p := range s.patterns {
		for from := 0; from+len(p) <= len(buf); {
			i := bytes.Index(buf[from:], p)
			if i < 0 {
				break
			}
			out = append(out, span{from + i, from + i + len(p)})
			from += i + 1
		}
	}
	return out
}

// hold is how many bytes at the end of buf could be the start of a
// pattern that more output may complete: the longest tail that is a
// proper prefix of some pattern.
func (s *Set) hold(buf []byte) (hold int) {
	for _, p := range s.patterns {
		// The earliest position in the last len(p)-1 bytes where a prefix
		// of p begins gives the longest tail to hold for p.
		for i := max(0, len(buf)-len(p)+1); i < len(buf); {
			j := bytes.IndexByte(buf[i:], p[0])
			if j < 0 {
				break
			}
			i += j
			if bytes.HasPrefix(p, buf[i:]) {
				hold = max(hold, len(buf)-i)
				break
			}
			i++
		}
	}
	return hold
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
	sp := s.spans(buf)
	hold = s.hold(buf)
	for _, x := range sp {
		for j := x.from; j < x.to; j++ {
			buf[j] = '*'
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
	sp := st.set.spans(w)
	hold := 0
	if !last {
		hold = st.set.hold(w)
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
	for _, x := range sp {
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
