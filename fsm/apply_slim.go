package fsm

import (
	"fmt"

	"github.com/goferhq/gofer/store"
)

// applyTasksSlim rewrites the named fat task executions slim where the
// state allows it (store.SlimTask decides from the state alone, so every
// replica rewrites the same records). Repeating it changes nothing: a
// slim record is skipped. The answers readers get are the same before
// and after.
func applyTasksSlim(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[TasksSlim](body)
	if len(cmd.Tasks) > MaxTasksSlim {
		return nil, fmt.Errorf("%w: tasks: %d named, at most %d per command", ErrInvalid, len(cmd.Tasks), MaxTasksSlim)
	}
	res := &TasksSlimResult{}
	for _, ref := range cmd.Tasks {
		done, err := store.SlimTask(a.tx, ref)
		if err != nil {
			return nil, err
		}
		if done {
			res.Slimmed++
		}
	}
	return res, nil
}
