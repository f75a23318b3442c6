//go:build !linux

package writeback

import (
	"errors"
	"os"
)

var errUnsupported = errors.New("writeback: no sync_file_range on this platform")

// Other platforms write back on their own schedule; the first call turns
// the Writer into a plain pass-through.
func startRange(*os.File, int64, int64) error { return errUnsupported }
func waitRange(*os.File, int64, int64) error  { return errUnsupported }
