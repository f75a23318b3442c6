package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
)

// ctxRequestHash holds the hash of a request that carries an
// Idempotency-Key.
const ctxRequestHash = "gofer.request_hash"

// maxHashedBody bounds how much of a body is buffered to hash it in its
// canonical form (JSON by its meaning). A larger body (an object upload
// without a route limit) is hashed byte for byte while its handler reads
// it (streamHash), so a reused key with a different large body is refused
// too.
const maxHashedBody = 1 << 20

// requestHashMiddleware binds an Idempotency-Key to the request it came
// with. It runs on the leader (writes are forwarded before it), after
// authentication, and only when the header is present: it reads the body,
// hashes the request and puts the body back for the handler. The FSM keeps
// the hash with the key and refuses the key for any other request (422),
// so a reused key never silently returns the outcome of a different
// request.
func requestHashMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Header.Get(HeaderIdempotency) == "" || req.Body == nil {
			return next(c)
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, maxHashedBody+1))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return err
			}
			return badRequest("reading the request body: %s", err)
		}
		if len(body) > maxHashedBody {
			sh := newStreamHash(req, io.MultiReader(bytes.NewReader(body), req.Body))
			req.Body = struct {
				io.Reader
				io.Closer
			}{sh, req.Body}
			c.Set(ctxRequestHash, sh)
			return next(c)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		c.Set(ctxRequestHash, requestHash(req, body))
		return next(c)
	}
}

// requestHashOf is the hash requestHashMiddleware computed, or "". It is
// asked for just before the write is applied; a large body's hash is
// complete once its handler has read it, and any part the handler left
// unread is read into the hash here, so the hash always covers the whole
// request.
func requestHashOf(c echo.Context) string {
	switch h := c.Get(ctxRequestHash).(type) {
	case string:
		return h
	case *streamHash:
		return h.sum()
	}
	return ""
}

// streamHash hashes a body too large to buffer as its handler reads it:
// the method, path and query framed as requestHash frames them, a marker,
// then the body's bytes as they are (a body this large is never
// canonicalised, so the same bytes always give the same hash).
type streamHash struct {
	r    io.Reader
	h    hash.Hash
	err  error // the read that ended the body: io.EOF once it was all read
	done string
}

func newStreamHash(req *http.Request, body io.Reader) *streamHash {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(req.Method), []byte(req.URL.EscapedPath()), []byte(req.URL.Query().Encode())} {
		writeFramed(h, part)
	}
	// No length fits here: all ones marks an unframed, streamed body.
	h.Write([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	return &streamHash{r: body, h: h}
}

func (s *streamHash) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	if err != nil && s.err == nil {
		s.err = err
	}
	return n, err
}

// sum reads what the handler left of the body and returns the hash. A
// body that could not be read to its end gets no hash ("").
func (s *streamHash) sum() string {
	if s.done != "" {
		return s.done
	}
	if s.err == nil {
		_, _ = io.Copy(io.Discard, s)
	}
	if s.err != io.EOF {
		return ""
	}
	s.done = hex.EncodeToString(s.h.Sum(nil))
	return s.done
}

// writeFramed writes part to h after its length (8 bytes, big-endian).
func writeFramed(h hash.Hash, part []byte) {
	var n [8]byte
	for i, l := 0, uint64(len(part)); i < 8; i++ {
		n[i] = byte(l >> (56 - 8*i))
	}
	h.Write(n[:])
	h.Write(part)
}

// requestHash identifies a request for its idempotency key: the method,
// the escaped path, the query in canonical (sorted) form and the body. A
// JSON body counts by its meaning, not its bytes: whitespace and the order
// of object keys do not matter (numbers keep their literal form); any
// other body counts byte for byte. Headers other than the key do not
// count.
func requestHash(req *http.Request, body []byte) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(req.Method), []byte(req.URL.EscapedPath()), []byte(req.URL.Query().Encode()), canonicalBody(body)} {
		writeFramed(h, part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// canonicalBody re-encodes a JSON body with sorted keys and no
// insignificant whitespace; a body that is not one JSON value is returned
// as it is.
func canonicalBody(body []byte) []byte {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	if _, err := dec.Token(); err != io.EOF {
		return body // trailing data: not one JSON value
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}
