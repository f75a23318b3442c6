package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/goferhq/gofer/fsm"
)

// maxSkippedTicksBody bounds a skipped-ticks request: 500 ticks of at most
// 13 digits and a short reason fit well within it.
const maxSkippedTicksBody = 16 << 10

type skippedTicksRequest struct {
	// Ticks are the skipped ticks' scheduled times, unix seconds.
	Ticks []int64 `json:"ticks"`
	// Through, when set, ends a range of further skipped ticks that are
	// not listed one by one.
	Through int64  `json:"through"`
	Reason  string `json:"reason"`
}

// recordSkippedTicks is POST …/subscriptions/:extension/:subscription/skipped-ticks,
// a Gofer addition (docs/api.md): a trigger extension reports the ticks it
// skipped under the subscription's catch-up policy; each becomes a
// skipped_trigger_tick event in the pipeline and the watermark moves past
// them. Only the extension's own token or an admin may call it
// (access.ownExtension).
func (s *Server) recordSkippedTicks(c echo.Context) error {
	ref, err := s.subscriptionPath(c)
	if err != nil {
		return err
	}
	var req skippedTicksRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.Ticks) == 0 && req.Through == 0 {
		return badRequest("ticks: at least one tick (unix seconds) is required")
	}
	if len(req.Ticks) > fsm.MaxSkippedTicks {
		return badRequest("ticks: %d listed, at most %d per request; send several", len(req.Ticks), fsm.MaxSkippedTicks)
	}
	if len(req.Reason) > fsm.MaxSkipReason {
		return badRequest("reason: longer than %d characters", fsm.MaxSkipReason)
	}
	res, err := applyAs[fsm.TriggerSkipped](s, c, fsm.CmdTriggerSkip, fsm.TriggerSkip{
		SubscriptionRef: ref, Ticks: req.Ticks, Through: req.Through, Reason: req.Reason,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
