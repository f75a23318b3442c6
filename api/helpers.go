package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
)

// applyTimeout bounds how long a write waits for raft. Past it the
// outcome is unknown and the client retries with its idempotency key.
const applyTimeout = 30 * time.Second

const maxIdempotencyKey = 128

// decodeJSON reads the request body into v, refusing unknown fields so a
// misspelt field is an error that names it.
func decodeJSON(c echo.Context, v any) error {
	present, err := decodeOptionalJSON(c, v)
	if err == nil && !present {
		return badRequest("request body is empty; send a JSON object")
	}
	return err
}

// decodeOptionalJSON is decodeJSON for routes whose body may be left out:
// an empty body (none, or only whitespace, however it is framed) leaves v
// untouched and reports present=false.
func decodeOptionalJSON(c echo.Context, v any) (present bool, err error) {
	if c.Request().Body == nil {
		return false, nil
	}
	var src io.Reader = c.Request().Body
	if fast, ok := v.(fastRequest); ok && c.Request().ContentLength > 0 && c.Request().ContentLength <= maxFastBody {
		// The whole body first. Whatever the hand decoder does not take,
		// encoding/json reads as the same stream, bytes then the error
		// the body ended with, so it answers as if it had read the body
		// itself: one that stops early (a slow client, a cut connection,
		// the body limit) is never read again.
		raw := make([]byte, c.Request().ContentLength)
		n, err := io.ReadFull(src, raw)
		if err == nil && fast.decodeFast(raw) {
			return true, nil
		}
		src = bytes.NewReader(raw[:n])
		if err != nil {
			src = io.MultiReader(src, failedReader{err})
		}
	}
	dec := json.NewDecoder(src)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		return true, bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return true, badRequest("invalid JSON body: trailing data after the object")
	}
	return true, nil
}

// maxFastBody bounds the bodies decodeOptionalJSON reads whole for a
// fastRequest (theirs are a few hundred bytes); a larger one is decoded
// as it streams in.
const maxFastBody = 64 << 10

// failedReader repeats the error a body ended with.
type failedReader struct{ err error }

func (r failedReader) Read([]byte) (int, error) { return 0, r.err }

// fastRequest is a request body that decodes the JSON our own clients
// send (json.Marshal's form) without reflection, reporting false for
// anything else; decodeOptionalJSON then decodes it with encoding/json, so
// the answer to every body, an error's message included, is the same
// either way. Only the hot write routes' bodies have one.
type fastRequest interface {
	decodeFast(body []byte) bool
}

// bodyError is the answer to a body that could not be read or decoded.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return badRequest("invalid JSON body: field %s must be %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return badRequest("invalid JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names a Go kind as a JSON client thinks of it.
func jsonKind(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "bool":
		return "true or false"
	case kind == "string":
		return "a string"
	case kind == "slice", kind == "array":
		return "an array"
	case kind == "map", kind == "struct":
		return "an object"
	}
	return kind
}

// noBody checks the body of a route that takes none (deploy, retry,
// bootstrap): nothing, {} or null pass; anything else is refused before
// anything is written, so a malformed request never acts.
func noBody(c echo.Context) error {
	var none struct{}
	if _, err := decodeOptionalJSON(c, &none); err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return badRequest("this route takes no body (send none or {}): %s", ae.message)
		}
		return err
	}
	return nil
}

// pageParams parses limit, offset and reverse.
func pageParams(c echo.Context) (store.Page, error) {
	return pageParamsDefault(c, store.DefaultLimit)
}

// pageParamsDefault is pageParams with another limit when none is given
// (a run's tasks: all of them, as upstream answers).
func pageParamsDefault(c echo.Context, defaultLimit int) (store.Page, error) {
	p := store.Page{Limit: defaultLimit}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, badRequest("limit must be a non-negative integer, got %q", v)
		}
		if n > store.MaxLimit {
			return p, badRequest("limit may be at most %d, got %d", store.MaxLimit, n)
		}
		if n > 0 {
			p.Limit = n
		}
	}
	if v := c.QueryParam("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, badRequest("offset must be a non-negative integer, got %q", v)
		}
		p.Offset = n
	}
	rev, err := boolQuery(c, "reverse")
	p.Reverse = rev
	return p.Normalize(), err
}

// boolQuery parses an optional boolean query parameter: the one parser
// for every boolean parameter (consistent, reverse, history, follow, force,
// include_secret). It accepts what strconv.ParseBool does (true/false,
// 1/0, t/f in any case) and refuses anything else with 400 naming the
// parameter; absent or empty means false.
func boolQuery(c echo.Context, name string) (bool, error) {
	v := c.QueryParam(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("%s must be true or false, got %q", name, v)
	}
	return b, nil
}

// keyParam is the :key path parameter of a secret or object route,
// checked against the identifier rule.
func keyParam(c echo.Context) (string, error) {
	key := c.Param("key")
	return key, validID("key", key)
}

// validID checks a path or body id against the one identifier rule.
func validID(field, id string) error {
	if err := sdk.ValidateIdentifier(id); err != nil {
		return badRequest("%s: %s", field, err)
	}
	return nil
}

// meta stamps a command with the request id, caller, leader time and the
// client's idempotency key.
func (s *Server) meta(c echo.Context) (fsm.Meta, error) {
	id := callerOf(c)
	key := c.Request().Header.Get(HeaderIdempotency)
	if len(key) > maxIdempotencyKey {
		return fsm.Meta{}, badRequest("%s may be at most %d characters", HeaderIdempotency, maxIdempotencyKey)
	}
	meta := fsm.Meta{
		RequestID:      requestID(c),
		Actor:          id.actor(),
		ActorID:        id.TokenID,
		Timestamp:      s.opts.Now().UnixMilli(),
		IdempotencyKey: key,
	}
	if trigger, _ := c.Get(ctxTriggerStart).(bool); trigger {
		meta.IdempotencyKey = ""
	}
	if meta.IdempotencyKey != "" {
		meta.RequestHash = requestHashOf(c)
	}
	return meta, nil
}

// apply replicates a command and returns its result. The write is
// detached from the client connection: a client that hangs up does not
// make the outcome unknown.
func (s *Server) apply(c echo.Context, t fsm.CommandType, body any) (*fsm.Result, error) {
	meta, err := s.meta(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), applyTimeout)
	defer cancel()
	res, index, err := s.cluster.Apply(ctx, t, meta, body)
	if err != nil {
		return nil, err
	}
	c.Response().Header().Set(HeaderIndex, strconv.FormatUint(index, 10))
	if res.Err != nil {
		return res, res.Err
	}
	return res, nil
}

// applyAs is apply for commands whose result is a *T.
func applyAs[T any](s *Server, c echo.Context, t fsm.CommandType, body any) (*T, error) {
	res, err := s.apply(c, t, body)
	if err != nil {
		return nil, err
	}
	return fsm.ResultAs[T](res)
}

// view runs a read transaction on local state, including every entry
// this node has applied.
func (s *Server) view(fn func(tx *bbolt.Tx) error) error {
	return s.cluster.FSM().View(fn)
}

// wrap returns {name: v}, the response shape upstream uses.
func wrap(name string, v any) map[string]any { return map[string]any{name: v} }

func parseInt64Param(c echo.Context, name string) (int64, error) {
	raw := c.Param(name)
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("%s must be a non-negative integer, got %q", name, raw)
	}
	return n, nil
}

// respondList answers {name: items} for a list query run in a read
// transaction with the request's page.
func respondList[T any](s *Server, c echo.Context, name string, list func(tx *bbolt.Tx, page store.Page) ([]T, error)) error {
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	var out []T
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		out, err = list(tx, page)
		return err
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap(name, out))
}

// pageSlice applies a page to a list held in memory (cluster members).
func pageSlice[T any](items []T, p store.Page) []T {
	p = p.Normalize()
	out := make([]T, 0, min(len(items), p.Limit))
	for i := range items {
		j := i
		if p.Reverse {
			j = len(items) - 1 - i
		}
		if i < p.Offset {
			continue
		}
		if len(out) == p.Limit {
			break
		}
		out = append(out, items[j])
	}
	return out
}

// respondOne answers {name: item} for a lookup run in a read transaction,
// or missing (a 404) when the lookup finds nothing.
func respondOne[T any](s *Server, c echo.Context, name string, get func(tx *bbolt.Tx) (*T, error), missing error) error {
	var out *T
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		out, err = get(tx)
		return err
	}); err != nil {
		return err
	}
	if out == nil {
		return missing
	}
	return c.JSON(http.StatusOK, wrap(name, out))
}
