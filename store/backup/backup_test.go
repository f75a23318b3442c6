package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

func sample(t *testing.T) ([]byte, []byte) {
	t.Helper()
	// Small, so that the tests can afford to try every bit of it.
	state := bytes.Repeat([]byte("state-bytes\x00\xff"), 20)
	var buf bytes.Buffer
	if err := Write(&buf, Header{Index: 42, Term: 3, Size: int64(len(state)), ClusterID: "c1", NodeID: "n1", Created: 1}, bytes.NewReader(state)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), state
}

func TestRoundTrip(t *testing.T) {
	file, state := sample(t)
	var got bytes.Buffer
	hdr, err := Read(bytes.NewReader(file), &got, false)
	if err != nil || !bytes.Equal(got.Bytes(), state) || hdr.Index != 42 || hdr.Version != Version {
		t.Fatalf("Read = %+v, %v; state equal %v", hdr, err, bytes.Equal(got.Bytes(), state))
	}
}

// Every single-bit flip and every truncation is refused by the format's
// own checks, with one of its errors.
func TestEveryFlipAndCutIsRefused(t *testing.T) {
	file, _ := sample(t)
	formatErr := func(err error) bool {
		for _, e := range []error{ErrBadMagic, ErrUnsupportedVersion, ErrLegacy, ErrTruncated, ErrChecksum, ErrTrailingData, ErrHeader} {
			if errors.Is(err, e) {
				return true
			}
		}
		return false
	}
	for pos := range file {
		for bit := 0; bit < 8; bit++ {
			data := bytes.Clone(file)
			data[pos] ^= 1 << bit
			if _, err := Read(bytes.NewReader(data), &bytes.Buffer{}, false); !formatErr(err) {
				t.Fatalf("flip of bit %d at %d/%d: %v, want a format error", bit, pos, len(file), err)
			}
		}
	}
	for n := 0; n < len(file); n++ {
		if _, err := Read(bytes.NewReader(file[:n]), &bytes.Buffer{}, false); !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d/%d: %v, want ErrTruncated", n, len(file), err)
		}
	}
	if _, err := Read(bytes.NewReader(append(bytes.Clone(file), '\n')), &bytes.Buffer{}, false); !errors.Is(err, ErrTrailingData) {
		t.Fatalf("extra byte: %v, want ErrTrailingData", err)
	}
}

// A reader that ends with io.ErrUnexpectedEOF (net/http's request body
// when the client sends less than its Content-Length) is a truncated
// backup, wherever it is cut.
func TestCutBodyIsTruncated(t *testing.T) {
	file, _ := sample(t)
	for n := 0; n < len(file); n++ {
		r := io.MultiReader(bytes.NewReader(file[:n]), iotest.ErrReader(io.ErrUnexpectedEOF))
		if _, err := Read(r, &bytes.Buffer{}, false); !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d/%d: %v, want ErrTruncated", n, len(file), err)
		}
	}
	// The same through a real HTTP server: the client promises the whole
	// file and sends half of it.
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := Read(r.Body, io.Discard, false)
		got <- err
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(file))
	conn.Write(file[:len(file)/2])
	conn.(*net.TCPConn).CloseWrite()
	defer conn.Close()
	if err := <-got; !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "backup is truncated") {
		t.Fatalf("cut body: %v, want ErrTruncated", err)
	}
}

func TestLegacyNeedsForce(t *testing.T) {
	file, state := sample(t)
	nl := bytes.IndexByte(file, '\n')
	legacy := append(bytes.Replace(file[:nl+1], []byte(`"version":2,`), []byte(`"version":1,`), 1), state...)
	_, err := Read(bytes.NewReader(legacy), &bytes.Buffer{}, false)
	if !errors.Is(err, ErrLegacy) || !strings.Contains(err.Error(), "--force-legacy") {
		t.Fatalf("legacy without force: %v", err)
	}
	var got bytes.Buffer
	if hdr, err := Read(bytes.NewReader(legacy), &got, true); err != nil || hdr.Version != LegacyVersion || !bytes.Equal(got.Bytes(), state) {
		t.Fatalf("legacy with force: %+v %v", hdr, err)
	}
	// A version 2 file relabelled as version 1 still has its trailer:
	// refused even with force.
	relabelled := bytes.Replace(file, []byte(`"version":2,`), []byte(`"version":1,`), 1)
	if _, err := Read(bytes.NewReader(relabelled), &bytes.Buffer{}, true); !errors.Is(err, ErrTrailingData) {
		t.Fatalf("relabelled: %v, want ErrTrailingData", err)
	}
}

// A writer whose state is shorter than its header says writes no trailer.
func TestWriteShortStateFails(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, Header{Size: 100}, strings.NewReader("short")); err == nil {
		t.Fatal("want an error")
	}
	if _, err := Read(bytes.NewReader(buf.Bytes()), &bytes.Buffer{}, false); !errors.Is(err, ErrTruncated) {
		t.Fatalf("read of the short file: %v", err)
	}
}
