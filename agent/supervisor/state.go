package supervisor

import (
	"bytes"
	"context"
	"errors"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store/model"
)

// maxReason bounds a recorded reason (the state machine refuses more).
const maxReason = 2 << 10

// record replicates the extension's runtime state when it differs from
// what is recorded (ext.Runtime, which the worker keeps current), so a
// healthy extension costs no raft entry however often it is checked, and
// an adopted one none at all. A refusal because the extension was
// reinstalled or uninstalled meanwhile is expected and ignored.
func (s *Supervisor) record(ctx context.Context, ext *model.Extension, rt model.ExtensionRuntime) {
	if len(rt.Reason) > maxReason {
		rt.Reason = rt.Reason[:maxReason]
	}
	cur := ext.Runtime
	if cur.State == rt.State && cur.Reason == rt.Reason && cur.Started == rt.Started &&
		(rt.Documentation == nil || bytes.Equal(cur.Documentation, rt.Documentation)) {
		return
	}
	res, err := s.apply.Apply(ctx, fsm.CmdExtensionSetState, fsm.ExtensionSetState{ID: ext.ID, TokenID: ext.TokenID, Runtime: rt})
	if err == nil && res != nil && res.Err != nil {
		err = res.Err
	}
	if err != nil {
		if !errors.Is(err, fsm.ErrConflict) && !errors.Is(err, fsm.ErrNotFound) && ctx.Err() == nil {
			s.logger.Warn("could not record extension state", "extension", ext.ID, "state", rt.State, "error", err)
		}
		return
	}
	if rt.Documentation == nil {
		rt.Documentation = cur.Documentation
	}
	ext.Runtime = rt
	s.logger.Info("extension state", "extension", ext.ID, "state", rt.State, "reason", rt.Reason)
}
