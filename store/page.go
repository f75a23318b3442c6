package store

import (
	"bytes"

	"go.etcd.io/bbolt"
)

// Page selects a window of a list. Limit 0 means DefaultLimit.
type Page struct {
	Limit   int
	Offset  int
	Reverse bool
}

// Pagination bounds shared by every list route.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// Normalize applies the default and the maximum limit.
func (p Page) Normalize() Page {
	if p.Limit <= 0 {
		p.Limit = DefaultLimit
	}
	if p.Limit > MaxLimit {
		p.Limit = MaxLimit
	}
	if p.Offset < 0 {
		p.Offset = 0
	}
	return p
}

// scanPage walks keys under pfx (all keys if pfx is empty) in order, or in
// reverse, skipping Offset entries and decoding at most Limit values into
// T. keep, when non-nil, filters values before offset and limit count them.
func scanPage[T any](b *bbolt.Bucket, pfx []byte, page Page, keep func(*T) bool) ([]*T, error) {
	return scan(b, pfx, page.Normalize(), keep)
}

// scanAll decodes every value under pfx; only for bounded internal walks.
func scanAll[T any](b *bbolt.Bucket, pfx []byte) ([]*T, error) {
	return scan[T](b, pfx, Page{Limit: -1}, nil)
}

// scan is scanPage without normalisation; Limit < 0 means no limit.
func scan[T any](b *bbolt.Bucket, pfx []byte, page Page, keep func(*T) bool) ([]*T, error) {
	out := make([]*T, 0, 16)
	c := b.Cursor()
	var k, v []byte
	if page.Reverse {
		k, v = seekLast(c, pfx)
	} else {
		k, v = c.Seek(pfx)
	}
	skipped := 0
	for ; k != nil && bytes.HasPrefix(k, pfx); k, v = step(c, page.Reverse) {
		item := new(T)
		if err := unmarshalRecord(v, item); err != nil {
			return nil, err
		}
		if keep != nil && !keep(item) {
			continue
		}
		if skipped < page.Offset {
			skipped++
			continue
		}
		out = append(out, item)
		if len(out) == page.Limit {
			break
		}
	}
	return out, nil
}

func step(c *bbolt.Cursor, reverse bool) ([]byte, []byte) {
	if reverse {
		return c.Prev()
	}
	return c.Next()
}

// seekLast positions c on the last key with prefix pfx.
func seekLast(c *bbolt.Cursor, pfx []byte) ([]byte, []byte) {
	if len(pfx) == 0 {
		return c.Last()
	}
	// The smallest key greater than every key with this prefix is the
	// prefix with its last byte that is not 0xff incremented and what
	// follows dropped. Identifiers never hold 0xff, but a prefix may end in
	// a big-endian number (a run's tasks: run 255 ends in 0xff).
	end := append([]byte(nil), pfx...)
	for len(end) > 0 && end[len(end)-1] == 0xff {
		end = end[:len(end)-1]
	}
	if len(end) == 0 {
		return c.Last()
	}
	end[len(end)-1]++
	if k, _ := c.Seek(end); k == nil {
		return c.Last()
	}
	return c.Prev()
}
