package cli

import (
	"strings"
	"time"

	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/store/model"
)

// builtinKind names the built-in scheduled extension a registration runs
// ("interval" or "cron"), from its image (gofer/extension-<kind>) or, for
// an install without that image, its id; "" for any other extension.
func builtinKind(ext *model.ExtensionView) string {
	if ext == nil {
		return ""
	}
	name, _, _ := strings.Cut(ext.Image, ":")
	for _, k := range []string{"interval", "cron"} {
		if name == "gofer/extension-"+k || strings.HasSuffix(name, "/gofer/extension-"+k) {
			return k
		}
	}
	if ext.ID == "interval" || ext.ID == "cron" {
		return ext.ID
	}
	return ""
}

// nextTick is the subscription's next scheduled tick after now (and after
// the last one decided), computed as the built-in interval and cron
// extensions do; "" when ext is not one of them, "-" when there is none,
// or the reason the settings do not parse.
func nextTick(ext *model.ExtensionView, s *model.Subscription, now time.Time) string {
	var ticker schedule.Ticker
	switch builtinKind(ext) {
	case "interval":
		min, err := schedule.MinInterval(ext.Settings)
		if err != nil {
			return err.Error()
		}
		iv, err := schedule.ParseInterval(s.Settings["every"], min, time.UnixMilli(s.Created).Truncate(time.Second))
		if err != nil {
			return err.Error()
		}
		ticker = iv
	case "cron":
		sc, err := schedule.Parse(s.Settings["expression"], s.Settings["timezone"])
		if err != nil {
			return err.Error()
		}
		ticker = sc
	default:
		return ""
	}
	after := now
	if wm := time.UnixMilli(s.Watermark); s.Watermark > 0 && wm.After(after) {
		after = wm
	}
	next := ticker.Next(after)
	if next.IsZero() {
		return "-"
	}
	return next.UTC().Format(time.RFC3339) + " (in " + next.Sub(now).Round(time.Second).String() + ")"
}
