package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMinInterval(t *testing.T) {
	for _, tc := range []struct {
		settings map[string]string
		want     time.Duration
		err      string
	}{
		{nil, time.Minute, ""},
		{map[string]string{"MIN_INTERVAL": ""}, time.Minute, ""},
		{map[string]string{"MIN_INTERVAL": "5m"}, 5 * time.Minute, ""},
		{map[string]string{"MIN_DURATION": "30s"}, 30 * time.Second, ""},
		{map[string]string{"MIN_INTERVAL": "2m", "MIN_DURATION": "120s"}, 2 * time.Minute, ""},
		{map[string]string{"MIN_INTERVAL": "2m", "MIN_DURATION": "3m"}, 0, "MIN_INTERVAL (2m0s) and MIN_DURATION (3m0s) disagree"},
		{map[string]string{"MIN_INTERVAL": "soon"}, 0, `install setting MIN_INTERVAL "soon" is not a duration`},
		{map[string]string{"MIN_DURATION": "10"}, 0, `install setting MIN_DURATION "10" is not a duration`},
		{map[string]string{"MIN_INTERVAL": "500ms"}, 0, `install setting MIN_INTERVAL "500ms" is below 1s`},
		{map[string]string{"MIN_INTERVAL": "-1m"}, 0, "is below 1s"},
	} {
		got, err := MinInterval(tc.settings)
		if tc.err != "" {
			if err == nil || !errors.Is(err, ErrInvalidInterval) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("MinInterval(%v) = %v, %v; want error containing %q", tc.settings, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("MinInterval(%v) = %v, %v; want %v", tc.settings, got, err, tc.want)
		}
	}
}

func TestParseInterval(t *testing.T) {
	start := utc(2026, 1, 1, 0, 0)
	for _, tc := range []struct {
		every string
		min   time.Duration
		want  time.Duration
		err   string
	}{
		{"1m", time.Minute, time.Minute, ""},
		{"1h30m", time.Minute, 90 * time.Minute, ""},
		{"5s", 0, 5 * time.Second, ""}, // a zero minimum still means at least 1s
		{"", time.Minute, 0, "parameter every is required"},
		{"5", time.Minute, 0, `parameter every "5" is not a duration`},
		{"often", time.Minute, 0, `parameter every "often" is not a duration`},
		{"30s", time.Minute, 0, `parameter every "30s" is below the minimum 1m0s (install setting MIN_INTERVAL or MIN_DURATION)`},
		{"500ms", 0, 0, "below the minimum 1s"},
		{"-5m", time.Minute, 0, "below the minimum"},
		{"0s", time.Minute, 0, "below the minimum"},
	} {
		got, err := ParseInterval(tc.every, tc.min, start)
		if tc.err != "" {
			if err == nil || !errors.Is(err, ErrInvalidInterval) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseInterval(%q, %v) = %v, %v; want error containing %q", tc.every, tc.min, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.Every != tc.want || !got.Start.Equal(start) {
			t.Errorf("ParseInterval(%q, %v) = %+v, %v; want every %v", tc.every, tc.min, got, err, tc.want)
		}
	}
}

func TestIntervalNext(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 500, time.UTC)
	iv := Interval{Start: start, Every: 10 * time.Minute}
	for _, tc := range []struct {
		after, want time.Time
	}{
		{start.Add(-time.Hour), start.Add(10 * time.Minute)}, // before the start: first tick
		{start, start.Add(10 * time.Minute)},                 // strictly after the start
		{start.Add(10*time.Minute - 1), start.Add(10 * time.Minute)},
		{start.Add(10 * time.Minute), start.Add(20 * time.Minute)}, // on a tick: the next one
		{start.Add(time.Hour + time.Second), start.Add(70 * time.Minute)},
	} {
		if got := iv.Next(tc.after); !got.Equal(tc.want) {
			t.Errorf("Next(%v) = %v, want %v", tc.after, got, tc.want)
		}
	}
	// Beyond Sub's ~292-year range the result is still the next grid point.
	far := start.AddDate(500, 0, 0).Add(time.Second)
	if got := iv.Next(far); !got.After(far) || got.Sub(far) > iv.Every || got.Unix()%600 != 0 || got.Nanosecond() != 500 {
		t.Errorf("Next(%v) = %v, want the next 10-minute grid point", far, got)
	}
	if got := (Interval{Start: start}).Next(start); !got.IsZero() {
		t.Errorf("zero Every: Next = %v, want zero", got)
	}
}

func TestKeys(t *testing.T) {
	// 21:00 at UTC+1 is 20:00 UTC: keys carry the instant, not the wall clock.
	tick := time.Date(2026, 12, 6, 21, 0, 0, 0, time.FixedZone("x", 3600))
	sub := Subscription{Namespace: "default", Pipeline: "simple", ID: "nightly"}
	if got, want := IntervalKey(sub, tick), "interval:default/simple/nightly:1796587200"; got != want {
		t.Errorf("IntervalKey = %q, want %q", got, want)
	}
	if got, want := CronKey(sub, tick), "cron:default/simple/nightly:1796587200"; got != want {
		t.Errorf("CronKey = %q, want %q", got, want)
	}
	// The same subscription id in another pipeline is another key.
	other := Subscription{Namespace: "default", Pipeline: "other", ID: "nightly"}
	if CronKey(sub, tick) == CronKey(other, tick) {
		t.Errorf("two pipelines share key %q", CronKey(sub, tick))
	}
	// Longest identifiers and the last tick of MaxYear fit the API's 128 characters.
	long := strings.Repeat("x", 32)
	last := time.Date(MaxYear, 12, 31, 23, 59, 0, 0, time.UTC)
	if k := IntervalKey(Subscription{long, long, long}, last); len(k) > 128 {
		t.Errorf("key %q is %d characters", k, len(k))
	}
}
