package mask

import (
	"slices"
	"sort"
)

// automaton is an Aho–Corasick automaton over a set of patterns: one pass
// over a text finds, at every position, the longest pattern ending there,
// and the state at the end tells how long a tail of the text is a proper
// prefix of some pattern (what a stream must hold back). The cost of a
// pass is linear in the text, whatever the number of patterns.
//
// Nodes are numbered breadth first with each node's children sorted by
// label, so the children of node u are nodes first[u] .. first[u+1]-1.
// The root has a full table; other nodes fall back along fail, and a node
// stores no more than its label and three numbers: the automaton of a
// hundred 40-byte secrets takes a few hundred kilobytes.
type automaton struct {
	root  [256]int32
	first []int32 // len(label)+1
	label []byte
	fail  []int32
	// match is the length of the longest pattern that is a suffix of the
	// node's string, 0 if none.
	match  []int32
	maxLen int
	// The shallowest nodes (all but the deepest ones of a small set) also
	// have a full row of transitions: class maps a byte to its column
	// (bytes in no pattern share column 0), and node u < len(dense)/classes
	// goes to dense[u*classes+class[c]]. Most output bytes are read in
	// such a node (scan inlines that lookup).
	class   [256]uint16
	classes int
	dense   []int32
}

// denseCells bounds the transition rows of an automaton (4 bytes each).
const denseCells = 1 << 12

// builder is a trie of patterns under construction; adding a pattern
// twice adds nothing, so the set needs no other deduplication.
type builder struct {
	child, sibling []int32 // first child, next sibling; -1 for none
	label          []byte
	depth          []int32
	term           []bool
	maxLen         int
}

func newBuilder() *builder {
	return &builder{child: []int32{-1}, sibling: []int32{-1}, label: []byte{0}, depth: []int32{0}, term: []bool{false}}
}

// add inserts p, unless it is shorter than MinLen.
func (b *builder) add(p []byte) {
	if len(p) < MinLen {
		return
	}
	u := int32(0)
	for _, c := range p {
		v := b.child[u]
		for v >= 0 && b.label[v] != c {
			v = b.sibling[v]
		}
		if v < 0 {
			v = int32(len(b.label))
			b.child = append(b.child, -1)
			b.sibling = append(b.sibling, b.child[u])
			b.label = append(b.label, c)
			b.depth = append(b.depth, b.depth[u]+1)
			b.term = append(b.term, false)
			b.child[u] = v
		}
		u = v
	}
	b.term[u] = true
	b.maxLen = max(b.maxLen, len(p))
}

// compile returns the automaton of the added patterns, nil if none.
func (b *builder) compile() *automaton {
	n := len(b.label)
	if n == 1 {
		return nil
	}
	a := &automaton{first: make([]int32, 0, n+1), label: make([]byte, n), fail: make([]int32, n), match: make([]int32, n), maxLen: b.maxLen}
	old := make([]int32, 1, n) // the builder's id of each node, breadth first
	var kids []int32
	for u := 0; u < len(old); u++ {
		a.first = append(a.first, int32(len(old)))
		kids = kids[:0]
		for v := b.child[old[u]]; v >= 0; v = b.sibling[v] {
			kids = append(kids, v)
		}
		if len(kids) > 1 {
			slices.SortFunc(kids, func(x, y int32) int { return int(b.label[x]) - int(b.label[y]) })
		}
		for _, v := range kids {
			a.label[len(old)] = b.label[v]
			old = append(old, v)
		}
	}
	a.first = append(a.first, int32(n))
	for v := a.first[0]; v < a.first[1]; v++ {
		a.root[a.label[v]] = v
	}
	// Breadth first, every node of smaller depth is complete before a
	// node's children are linked.
	for u := int32(0); u < int32(n); u++ {
		for v := a.first[u]; v < a.first[u+1]; v++ {
			if u != 0 {
				a.fail[v] = a.step(a.fail[u], a.label[v])
			}
			if b.term[old[v]] {
				a.match[v] = b.depth[old[v]]
			} else {
				a.match[v] = a.match[a.fail[v]]
			}
		}
	}
	for _, c := range a.label[1:] {
		if a.class[c] == 0 {
			a.classes++
			a.class[c] = uint16(a.classes)
		}
	}
	a.classes++
	rows := min(n, denseCells/a.classes)
	a.dense = make([]int32, rows*a.classes)
	for c := 0; c < 256; c++ {
		if k := int(a.class[c]); k != 0 {
			for u := 0; u < rows; u++ {
				a.dense[u*a.classes+k] = a.step(int32(u), byte(c))
			}
		}
	}
	return a
}

// step is the state after reading c in state s.
func (a *automaton) step(s int32, c byte) int32 {
	for s != 0 {
		lo, hi := a.first[s], a.first[s+1]
		if hi-lo > 8 {
			i := int32(sort.Search(int(hi-lo), func(i int) bool { return a.label[lo+int32(i)] >= c }))
			if lo+i < hi && a.label[lo+i] == c {
				return lo + i
			}
		} else {
			for ; lo < hi && a.label[lo] <= c; lo++ {
				if a.label[lo] == c {
					return lo
				}
			}
		}
		s = a.fail[s]
	}
	return a.root[c]
}

// held is the length of the longest suffix of state s's string that is a
// proper prefix of some pattern: the nearest state along fail with
// children.
func (a *automaton) held(s int32) int {
	d := 0
	for ; s != 0; s = a.fail[s] {
		if a.first[s+1] > a.first[s] {
			// The depth of s: walk is short, and this runs once per text.
			for t := s; t != 0; d++ {
				t = a.parent(t)
			}
			return d
		}
	}
	return 0
}

// parent is the node whose child t is (nodes are few; this runs only in
// held, once per text).
func (a *automaton) parent(t int32) int32 {
	// first is non-decreasing: the parent is the last u with first[u] <= t.
	return int32(sort.Search(len(a.first)-1, func(u int) bool { return a.first[u] > t })) - 1
}
