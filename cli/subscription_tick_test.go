package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/store/model"
)

// TestNextTick: the next tick of built-in interval and cron subscriptions,
// after now and after the watermark; nothing for other extensions.
func TestNextTick(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	created := time.Date(2026, 3, 1, 11, 0, 10, 500_000_000, time.UTC).UnixMilli()
	iv := &model.ExtensionView{ID: "ticks", Image: "gofer/extension-interval:1.0", Settings: map[string]string{"MIN_INTERVAL": "1s"}}
	sub := &model.Subscription{Settings: map[string]string{"every": "1m"}, Created: created}
	if got := nextTick(iv, sub, now); !strings.HasPrefix(got, "2026-03-01T12:01:10Z") {
		t.Errorf("interval: %q", got)
	}
	// A watermark ahead of now (a clock skew) moves it on.
	sub.Watermark = time.Date(2026, 3, 1, 12, 1, 10, 0, time.UTC).UnixMilli()
	if got := nextTick(iv, sub, now); !strings.HasPrefix(got, "2026-03-01T12:02:10Z") {
		t.Errorf("interval after watermark: %q", got)
	}
	cron := &model.ExtensionView{ID: "cron", Image: "example/other:1"}
	csub := &model.Subscription{Settings: map[string]string{"expression": "30 9 * * * *", "timezone": "Europe/Berlin"}, Created: created}
	if got := nextTick(cron, csub, now); !strings.HasPrefix(got, "2026-03-02T08:30:00Z") {
		t.Errorf("cron: %q", got)
	}
	if got := nextTick(&model.ExtensionView{ID: "github", Image: "gofer/extension-github:1"}, csub, now); got != "" {
		t.Errorf("github: %q", got)
	}
}
