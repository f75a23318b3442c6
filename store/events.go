package store

import (
	"encoding/json"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// AppendEvent assigns the next event id and stores the event.
func AppendEvent(tx *bbolt.Tx, e *model.Event) error {
	meta := tx.Bucket(bucketMeta)
	e.ID = parseU64(meta.Get(keyEventSeq)) + 1
	if err := meta.Put(keyEventSeq, u64(e.ID)); err != nil {
		return err
	}
	raw, err := marshalEvent(e)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketEvents).Put(u64(e.ID), raw)
}

// GetEvent returns one event or nil.
func GetEvent(tx *bbolt.Tx, id uint64) (*model.Event, error) {
	var e model.Event
	ok, err := getJSON(tx.Bucket(bucketEvents), u64(id), &e)
	if !ok || err != nil {
		return nil, err
	}
	return &e, nil
}

// DeleteEvent removes one event.
func DeleteEvent(tx *bbolt.Tx, id uint64) error {
	return tx.Bucket(bucketEvents).Delete(u64(id))
}

// ListEvents returns a page of events, oldest first unless reversed.
// keep, when non-nil, hides events the caller may not read; it is applied
// while scanning, before offset and limit count, so a page is short only
// at the end of the log (the scan's cost grows with the events it skips,
// which event retention bounds).
func ListEvents(tx *bbolt.Tx, page Page, keep func(*model.Event) bool) ([]*model.Event, error) {
	return scanPage[model.Event](tx.Bucket(bucketEvents), nil, page, keep)
}

// EventsAfter returns up to limit events with id > after, oldest first:
// the cursor an event stream follows.
func EventsAfter(tx *bbolt.Tx, after uint64, limit int) ([]*model.Event, error) {
	var out []*model.Event
	c := tx.Bucket(bucketEvents).Cursor()
	for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
		var e model.Event
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, err
		}
		out = append(out, &e)
	}
	return out, nil
}

// LastEventID is the id of the newest event ever appended (0 if none).
func LastEventID(tx *bbolt.Tx) uint64 {
	return parseU64(tx.Bucket(bucketMeta).Get(keyEventSeq))
}

// PruneEvents deletes, oldest first, at most max events emitted before
// cutoff (epoch ms) and returns how many it removed. Event ids grow with
// time, so it stops at the first event that is new enough.
func PruneEvents(tx *bbolt.Tx, cutoff int64, max int) (int, error) {
	b := tx.Bucket(bucketEvents)
	var doomed [][]byte
	c := b.Cursor()
	for k, v := c.First(); k != nil && len(doomed) < max; k, v = c.Next() {
		var e model.Event
		if err := json.Unmarshal(v, &e); err != nil {
			return 0, err
		}
		if e.Emitted >= cutoff {
			break
		}
		doomed = append(doomed, append([]byte(nil), k...))
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}

// OldestEventTime is the emitted time of the oldest stored event, or 0.
func OldestEventTime(tx *bbolt.Tx) int64 {
	_, v := tx.Bucket(bucketEvents).Cursor().First()
	if v == nil {
		return 0
	}
	var e model.Event
	if json.Unmarshal(v, &e) != nil {
		return 0
	}
	return e.Emitted
}
