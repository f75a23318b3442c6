// Package store is Gofer's bbolt schema: bucket names, key encoding and
// typed read/write helpers that operate on a *bbolt.Tx.
//
// Only the FSM opens write transactions (through DB.Update); everyone else
// reads through DB.View. Keys are composite ids joined by NUL (ids can never
// contain NUL) and numbers are big-endian, so bbolt cursors iterate in id
// and version order and a prefix scan finds one pipeline's children.
package store
