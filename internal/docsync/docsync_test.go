package docsync

import (
	"errors"
	"testing"
)

func TestReplaceKeepsProseAroundTheSection(t *testing.T) {
	doc := "# Title\nprose\n" + BeginMarker("x") + "\nold\nlines\n" + EndMarker + "\nmore prose\n"
	got, err := Replace(doc, "x", "new\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\nprose\n" + BeginMarker("x") + "\nnew\n" + EndMarker + "\nmore prose\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	again, err := Replace(got, "x", "new")
	if err != nil || again != got {
		t.Fatalf("replacing with the same body changed the doc: %v\n%s", err, again)
	}
}

func TestReplaceWithoutMarkersFails(t *testing.T) {
	for _, doc := range []string{"no markers", BeginMarker("x") + " no end", BeginMarker("y") + EndMarker} {
		if _, err := Replace(doc, "x", "body"); !errors.Is(err, ErrNoSection) {
			t.Errorf("Replace(%q) = %v, want ErrNoSection", doc, err)
		}
	}
}
