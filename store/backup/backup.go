// Package backup is the file format of a cluster backup (`gofer server
// snapshot save`): a JSON header line, the state file, and a trailer with
// the SHA-256 of everything before it.
//
//	{"format":"gofer-snapshot","version":2,...,"size":N}\n
//	<N bytes: a bbolt state file, as raft snapshots hold it>
//	gofer-snapshot-sha256:<64 hex digits>\n
//
// The checksum is a trailer so the leader can stream a backup while it
// reads the snapshot; a reader spools the state and verifies the trailer
// before anything uses it. The format field is the magic; version 1 files
// (no trailer) cannot be verified and are read only when the caller
// allows legacy files. Standard library only: the client verifies
// downloads with it too.
package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
)

const (
	// Format is the header's magic.
	Format = "gofer-snapshot"
	// Version is the format written: 2 adds the checksum trailer.
	Version = 2
	// LegacyVersion is the format before the trailer.
	LegacyVersion = 1
	// maxHeader bounds the header line.
	maxHeader = 64 << 10
	// trailerMagic starts the trailer line.
	trailerMagic = "gofer-snapshot-sha256:"
	// TrailerLen is the trailer's exact length.
	TrailerLen = len(trailerMagic) + 2*sha256.Size + 1
)

// Errors a damaged file gives; each is wrapped with what exactly is wrong.
var (
	ErrBadMagic           = errors.New("not a gofer backup (bad magic)")
	ErrUnsupportedVersion = errors.New("unsupported backup format version")
	ErrLegacy             = errors.New("backup has no checksum (format version 1)")
	ErrTruncated          = errors.New("backup is truncated")
	ErrChecksum           = errors.New("backup checksum mismatch: the file is damaged")
	ErrTrailingData       = errors.New("backup has data after its end")
	ErrHeader             = errors.New("backup header is damaged")
)

// Header is the first line of a backup.
type Header struct {
	Format    string `json:"format"`
	Version   int    `json:"version"`
	Index     uint64 `json:"index"`
	Term      uint64 `json:"term"`
	Size      int64  `json:"size"`
	ClusterID string `json:"cluster_id"`
	NodeID    string `json:"node_id"`
	Created   int64  `json:"created"`
}

// Write writes a backup of the Size bytes state holds to w: header,
// state, trailer. Format and Version are set here. A state shorter or
// longer than Size is an error, and the trailer is then not written, so
// a reader refuses what was written.
func Write(w io.Writer, hdr Header, state io.Reader) error {
	hdr.Format, hdr.Version = Format, Version
	line, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	sum := sha256.New()
	mw := io.MultiWriter(w, sum)
	if _, err := mw.Write(append(line, '\n')); err != nil {
		return err
	}
	n, err := io.Copy(mw, io.LimitReader(state, hdr.Size+1))
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return fmt.Errorf("state is %d bytes, expected %d", n, hdr.Size)
	}
	_, err = io.WriteString(w, trailer(sum))
	return err
}

func trailer(sum hash.Hash) string {
	return trailerMagic + hex.EncodeToString(sum.Sum(nil)) + "\n"
}

// Read reads a backup from r, writes its state to state, and verifies it:
// magic, version, size, checksum and that nothing follows the trailer. A
// nil error means state received exactly the bytes that were saved; on an
// error the caller must discard whatever state received. A version 1
// file is read (without any check beyond its size) only when allowLegacy.
func Read(r io.Reader, state io.Writer, allowLegacy bool) (*Header, error) {
	br := bufio.NewReaderSize(cutReader{r}, maxHeader)
	sum := sha256.New()
	line, err := readLine(br)
	if err != nil {
		return nil, err
	}
	sum.Write(line)
	if !bytes.HasPrefix(line, magic) {
		return nil, fmt.Errorf("%w: the file must come from 'gofer server snapshot save'", ErrBadMagic)
	}
	var hdr Header
	if err := json.Unmarshal(bytes.TrimSuffix(line, []byte("\n")), &hdr); err != nil || hdr.Format != Format {
		return nil, fmt.Errorf("%w: %v", ErrHeader, err)
	}
	switch {
	case hdr.Version == LegacyVersion && !allowLegacy:
		return nil, fmt.Errorf("%w: it was written by an older gofer and cannot be verified; take a new backup, or restore it anyway with 'gofer server snapshot restore --force-legacy' (API: ?force_legacy=true)", ErrLegacy)
	case hdr.Version != Version && hdr.Version != LegacyVersion:
		return nil, fmt.Errorf("%w %d (this gofer reads %d)", ErrUnsupportedVersion, hdr.Version, Version)
	}
	if hdr.Size <= 0 {
		return nil, fmt.Errorf("%w: it gives no state size", ErrHeader)
	}
	n, err := io.CopyN(io.MultiWriter(state, sum), br, hdr.Size)
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: read %d of the %d bytes of state", ErrTruncated, n, hdr.Size)
	}
	if err != nil {
		return nil, err
	}
	if hdr.Version == Version {
		want := trailer(sum)
		got := make([]byte, TrailerLen)
		if k, err := io.ReadFull(br, got); err != nil {
			return nil, fmt.Errorf("%w: the checksum trailer is missing or cut short (%d of %d bytes)", ErrTruncated, k, TrailerLen)
		}
		if !bytes.HasPrefix(got, []byte(trailerMagic)) || got[TrailerLen-1] != '\n' {
			return nil, fmt.Errorf("%w: the checksum trailer is malformed (or the header's size is wrong)", ErrChecksum)
		}
		if string(got) != want {
			return nil, fmt.Errorf("%w (SHA-256 of the content is %s, the trailer says %q)", ErrChecksum,
				want[len(trailerMagic):TrailerLen-1], got[len(trailerMagic):TrailerLen-1])
		}
	}
	if k, _ := io.CopyN(io.Discard, br, 1); k > 0 {
		return nil, fmt.Errorf("%w (the header's size, %d bytes, may be wrong)", ErrTrailingData, hdr.Size)
	}
	return &hdr, nil
}

// cutReader reports a body that a connection cut short (net/http's
// io.ErrUnexpectedEOF) as the end of the file, so Read calls it
// ErrTruncated like any other file that ends early, not a raw
// "unexpected EOF".
type cutReader struct{ r io.Reader }

func (c cutReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// magic starts every backup: json.Marshal writes the format field first.
var magic = []byte(`{"format":"` + Format + `",`)

// readLine reads the header line (newline included), bounded.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxHeader {
			return nil, fmt.Errorf("%w: the header is too long", ErrBadMagic)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) == 0:
			return nil, fmt.Errorf("%w: the file is empty", ErrTruncated)
		case errors.Is(err, io.EOF) && (bytes.HasPrefix(line, magic) || bytes.HasPrefix(magic, line)):
			return nil, fmt.Errorf("%w: the header line is cut short", ErrTruncated)
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%w: no header line", ErrBadMagic)
		default:
			return nil, err
		}
	}
}
