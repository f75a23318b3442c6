package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"
)

// Without wide characters a table is byte for byte what text/tabwriter
// printed before (same padding, an empty column two spaces wide, the last
// cell unpadded).
func TestAlignedTableMatchesTabwriter(t *testing.T) {
	for _, rows := range [][][]string{
		{{"ID", "STATE", "STARTED"}, {"1", "running", "3 minutes ago"}, {"22", "", "never"}},
		{{"id:", "build"}, {"description:", "a longer value with spaces"}},
		{{"A", "", "C"}, {"x", "", "z"}},
		{{"ünïcode", "é"}, {"a", "b"}},
	} {
		var want bytes.Buffer
		tw := tabwriter.NewWriter(&want, 0, 4, columnGap, ' ', 0)
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		tw.Flush()
		var got bytes.Buffer
		writeAligned(&got, rows)
		if got.String() != want.String() {
			t.Errorf("rows %q:\ngot\n%s\nwant\n%s", rows, got.String(), want.String())
		}
	}
}

// Wide characters (CJK, emoji) take two columns: the columns after such a
// cell still line up on a terminal, and a long wide cell is cut to fit the
// width in columns, not runes.
func TestTableCountsDisplayWidth(t *testing.T) {
	var b bytes.Buffer
	table(&b, []string{"id", "name", "state"}, [][]string{{"1", "構築", "running"}, {"2", "build", "done"}, {"3", "🚀x", "failed"}})
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	col := -1
	for _, l := range lines {
		// The third column starts at the same display column on every line.
		i := strings.LastIndex(l, "  ")
		c := displayWidth(l[:i+2])
		if col >= 0 && c != col {
			t.Errorf("third column at display column %d, want %d:\n%s", c, col, b.String())
		}
		col = c
	}
	got := fitTable([]string{"ID", "DETAILS"}, [][]string{{"1", strings.Repeat("詳", 100)}}, 60)
	if w := displayWidth(got[0][1]); w+2+columnGap > 60 || w < 60-2-columnGap-1 || !strings.HasSuffix(got[0][1], "…") {
		t.Errorf("a wide cell cut to %d columns (%q); want it to fill at most 60 with the id", w, got[0][1])
	}
	for r, want := range map[rune]int{'a': 1, 'é': 1, '\u0301': 0, '構': 2, '한': 2, 'Ａ': 2, '🚀': 2, '…': 1} {
		if got := runeWidth(r); got != want {
			t.Errorf("runeWidth(%q) = %d, want %d", r, got, want)
		}
	}
}

// runeWidth's binary search needs wideRanges sorted and disjoint.
func TestWideRangesSorted(t *testing.T) {
	for i, r := range wideRanges {
		if r[0] > r[1] || (i > 0 && r[0] <= wideRanges[i-1][1]) {
			t.Errorf("wideRanges[%d] = %#x…%#x is out of order or overlaps the one before", i, r[0], r[1])
		}
	}
}
