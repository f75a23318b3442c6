package writeback

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Every full region but the last is written back (started, then waited
// for once the next one is started); the data reaches the file unchanged.
func TestWriterWritesRegionsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()

	const region = 1 << 20
	w := New(out, in, region)
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	var want bytes.Buffer
	for i := 0; i < 80; i++ { // 5 MiB
		chunk[0] = byte(i)
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		want.Write(chunk)
	}
	if runtime.GOOS != "linux" {
		if w.Err() == nil || w.WrittenBack() != 0 {
			t.Fatalf("without sync_file_range: err %v, written back %d; want an error and 0", w.Err(), w.WrittenBack())
		}
		return
	}
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	if got := w.WrittenBack(); got != 4*region {
		t.Fatalf("written back %d bytes, want %d (regions 1-4 of 5; the 5th is started, not waited for)", got, 4*region)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("file content differs from what was written")
	}
}
