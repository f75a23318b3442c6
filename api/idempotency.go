package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
)

// ctxRequestHash holds the hash of a request that carries an
// Idempotency-Key.
const ctxRequestHash = "gofer.request_hash"

// maxHashedBody bounds how much of a body without a route limit (object
// uploads) is buffered to hash it; a larger body is refused by its handler
// anyway, so it goes unhashed.
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
			req.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(body), req.Body), req.Body}
			return next(c)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		c.Set(ctxRequestHash, requestHash(req, body))
		return next(c)
	}
}

// requestHashOf is the hash requestHashMiddleware computed, or "".
func requestHashOf(c echo.Context) string {
	h, _ := c.Get(ctxRequestHash).(string)
	return h
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
		var n [8]byte
		for i, l := 0, uint64(len(part)); i < 8; i++ {
			n[i] = byte(l >> (56 - 8*i))
		}
		h.Write(n[:])
		h.Write(part)
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
