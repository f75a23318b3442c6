package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, expr, tz string) *Schedule {
	t.Helper()
	s, err := Parse(expr, tz)
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", expr, tz, err)
	}
	return s
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		expr, tz string
		check    func(s *Schedule) bool
	}{
		{"* * * * * *", "", func(s *Schedule) bool {
			return s.minute.has(0) && s.minute.has(59) && s.year.has(0) && s.year.has(MaxYear-MinYear)
		}},
		{"0 0 1 1 * 2030", "", func(s *Schedule) bool { return s.year.has(2030-MinYear) && !s.year.has(2031-MinYear) }},
		{"5,10-12 * * * * *", "", func(s *Schedule) bool {
			return s.minute.has(5) && s.minute.has(10) && s.minute.has(12) && !s.minute.has(13) && !s.minute.has(6)
		}},
		{"*/15 * * * *", "", func(s *Schedule) bool {
			return s.minute.has(0) && s.minute.has(45) && !s.minute.has(50) && s.year.has(2100-MinYear)
		}},
		{"10-30/10 * * * * *", "", func(s *Schedule) bool { return s.minute.has(10) && s.minute.has(30) && !s.minute.has(40) }},
		{"50/5 * * * * *", "", func(s *Schedule) bool { return s.minute.has(55) && !s.minute.has(45) }},
		{"0 0 * JAN,dec MON-fri *", "", func(s *Schedule) bool {
			return s.month.has(1) && s.month.has(12) && !s.month.has(2) && s.dow.has(1) && s.dow.has(5) && !s.dow.has(6)
		}},
		{"0 0 * * 7 *", "", func(s *Schedule) bool { return s.dow.has(0) && !s.dow.has(7) }},
		{"0 0 * * 5-7 *", "", func(s *Schedule) bool { return s.dow.has(0) && s.dow.has(5) && s.dow.has(6) }},
		{"  0   0 * * *  ", "", func(s *Schedule) bool { return s.String() == "0 0 * * * *" }},
		{"0 9 * * * *", "America/New_York", func(s *Schedule) bool { return s.Location().String() == "America/New_York" }},
		{"CRON_TZ=Europe/Berlin 0 9 * * * *", "", func(s *Schedule) bool { return s.Location().String() == "Europe/Berlin" }},
		{"TZ=Europe/Berlin\t0 9 * * *", "Europe/Berlin", func(s *Schedule) bool { return s.Location().String() == "Europe/Berlin" }},
		{"0 9 * * * *", "UTC", func(s *Schedule) bool { return s.Location() == time.UTC }},
		// A step beyond the field's span selects the start only (and must not
		// overflow: 5 + MaxInt64 once wrapped to a negative bit index).
		{"5/9223372036854775807 * * * * 2000/9223372036854775807", "", func(s *Schedule) bool {
			return s.minute.has(5) && !s.minute.has(6) && s.year.has(2000-MinYear) && !s.year.has(2001-MinYear)
		}},
		{"0 0 * * * 1970-2199", "", func(s *Schedule) bool { return s.year.has(0) && s.year.has(2199-MinYear) }},
	} {
		s := mustParse(t, tc.expr, tc.tz)
		if !tc.check(s) {
			t.Errorf("Parse(%q, %q): unexpected schedule %+v", tc.expr, tc.tz, s)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct {
		expr, tz string
		want     []string // substrings of the message
	}{
		{"", "", []string{"want 6 fields", "got 0"}},
		{"* * * *", "", []string{"want 6 fields", "got 4"}},
		{"* * * * * * *", "", []string{"got 7"}},
		{"60 * * * * *", "", []string{`minute field "60"`, "60 is out of range 0-59"}},
		{"* 24 * * * *", "", []string{`hour field "24"`, "out of range 0-23"}},
		{"* * 0 * * *", "", []string{`day-of-month field "0"`, "out of range 1-31"}},
		{"* * 32 * * *", "", []string{`day-of-month field "32"`}},
		{"* * * 13 * *", "", []string{`month field "13"`, "out of range 1-12"}},
		{"* * * foo * *", "", []string{`month field "foo"`, "neither a number nor a name"}},
		{"* * * * 8 *", "", []string{`day-of-week field "8"`, "out of range 0-7"}},
		{"* * * * * 1969", "", []string{`year field "1969"`, "out of range 1970-2199"}},
		{"* * * * * 2200", "", []string{`year field "2200"`}},
		{"* * * * * x", "", []string{`year field "x"`, "not a number"}},
		{"5-1 * * * * *", "", []string{`minute field "5-1"`, "range start 5 is after its end 1"}},
		{"1-2-3 * * * * *", "", []string{`minute field "1-2-3"`}},
		{"*/0 * * * * *", "", []string{`minute field "*/0"`, "not a positive number"}},
		{"*/x * * * * *", "", []string{`minute field "*/x"`}},
		{"1/2/3 * * * * *", "", []string{`minute field "1/2/3"`}},
		{"1,,2 * * * * *", "", []string{`minute field "1,,2"`, "empty list element"}},
		{"- * * * * *", "", []string{`minute field "-"`, "missing value"}},
		{"-1 * * * * *", "", []string{`minute field "-1"`}},
		{"+1 * * * * *", "", []string{`minute field "+1"`}},
		{"99999999999999999999 * * * * *", "", []string{"minute field", "out of range"}},
		{"* * * * * *", "Mars/Olympus", []string{`unknown timezone "Mars/Olympus"`}},
		{"* * * * * *", "/etc/passwd", []string{"not an IANA zone name"}},
		{"* * * * * *", "../../etc/localtime", []string{"not an IANA zone name"}},
		{"* * * * * *", "Local", []string{"not an IANA zone name"}},
		{"TZ=", "", []string{"TZ prefix without a zone name"}},
		{"CRON_TZ=Europe/Berlin * * * * *", "America/New_York", []string{"names zone", "timezone setting"}},
		{"@daily", "", []string{"want 6 fields"}},
		{strings.Repeat("1,", 300) + "1 * * * *", "", []string{"expression is 609 bytes, at most 512"}},
		{"* * * * *", strings.Repeat("A", 129), []string{"timezone is 129 bytes"}},
	} {
		_, err := Parse(tc.expr, tc.tz)
		if err == nil {
			t.Errorf("Parse(%q, %q): no error", tc.expr, tc.tz)
			continue
		}
		if !errors.Is(err, ErrInvalidCron) {
			t.Errorf("Parse(%q, %q): %v does not wrap ErrInvalidCron", tc.expr, tc.tz, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Parse(%q, %q) = %q, want it to contain %q", tc.expr, tc.tz, err, w)
			}
		}
	}
}

// seq returns the first n ticks after from, formatted in the schedule's zone.
func seq(s *Schedule, from time.Time, n int) []string {
	var out []string
	t := from
	for i := 0; i < n; i++ {
		t = s.Next(t)
		if t.IsZero() {
			out = append(out, "zero")
			break
		}
		out = append(out, t.In(s.Location()).Format("2006-01-02 15:04 MST"))
	}
	return out
}

func eqSeq(t *testing.T, name string, got, want []string) {
	t.Helper()
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("%s:\n got  %s\n want %s", name, strings.Join(got, " | "), strings.Join(want, " | "))
	}
}

func utc(y int, m time.Month, d, h, mi int) time.Time {
	return time.Date(y, m, d, h, mi, 0, 0, time.UTC)
}

func TestNextUTC(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		from       time.Time
		want       []string
	}{
		{"every minute, strictly after", "* * * * * *", utc(2026, 1, 1, 0, 0),
			[]string{"2026-01-01 00:01 UTC", "2026-01-01 00:02 UTC"}},
		{"sub-minute after rounds up", "* * * * * *", utc(2026, 1, 1, 0, 0).Add(30 * time.Second),
			[]string{"2026-01-01 00:01 UTC"}},
		{"month end", "0 0 * * * *", utc(2026, 1, 31, 12, 0),
			[]string{"2026-02-01 00:00 UTC", "2026-02-02 00:00 UTC"}},
		{"year end", "30 23 31 12 * *", utc(2026, 12, 31, 23, 30),
			[]string{"2027-12-31 23:30 UTC", "2028-12-31 23:30 UTC"}},
		{"new year's midnight", "0 0 1 1 * *", utc(2026, 12, 31, 23, 59),
			[]string{"2027-01-01 00:00 UTC"}},
		{"day 31 skips short months", "0 12 31 * * *", utc(2026, 1, 31, 12, 0),
			[]string{"2026-03-31 12:00 UTC", "2026-05-31 12:00 UTC", "2026-07-31 12:00 UTC", "2026-08-31 12:00 UTC"}},
		{"leap day", "0 0 29 2 * *", utc(2026, 1, 1, 0, 0),
			[]string{"2028-02-29 00:00 UTC", "2032-02-29 00:00 UTC"}},
		{"2100 is not a leap year", "0 0 29 2 * 2096-2105", utc(2096, 3, 1, 0, 0),
			[]string{"2104-02-29 00:00 UTC", "zero"}},
		{"never: 30 February", "0 0 30 2 * *", utc(2026, 1, 1, 0, 0), []string{"zero"}},
		{"year range in the past", "0 0 * * * 2020-2024", utc(2026, 1, 1, 0, 0), []string{"zero"}},
		{"year in the future jumps", "0 0 1 1 * 2150", utc(2026, 6, 1, 0, 0), []string{"2150-01-01 00:00 UTC", "zero"}},
		{"last tick of MaxYear", "59 23 31 12 * *", utc(2199, 12, 31, 23, 58), []string{"2199-12-31 23:59 UTC", "zero"}},
		{"before 1970 starts at 1970", "0 0 1 1 * *", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
			[]string{"1970-01-01 00:00 UTC"}},
		{"steps", "*/20 9-10 * * * *", utc(2026, 3, 2, 9, 40),
			[]string{"2026-03-02 10:00 UTC", "2026-03-02 10:20 UTC", "2026-03-02 10:40 UTC", "2026-03-03 09:00 UTC"}},
		{"weekdays by name", "0 9 * * mon-fri *", utc(2026, 12, 4, 9, 0), // a Friday
			[]string{"2026-12-07 09:00 UTC", "2026-12-08 09:00 UTC"}},
		// Both day fields restricted: either matches (cron's OR). The 13th
		// of December 2026 is a Sunday; Fridays are the 4th, 11th, 18th.
		{"dom OR dow", "0 0 13 * 5 *", utc(2026, 12, 1, 0, 0),
			[]string{"2026-12-04 00:00 UTC", "2026-12-11 00:00 UTC", "2026-12-13 00:00 UTC", "2026-12-18 00:00 UTC"}},
		// One day field "*": the other decides alone.
		{"dow only", "0 0 * * 5 *", utc(2026, 12, 1, 0, 0),
			[]string{"2026-12-04 00:00 UTC", "2026-12-11 00:00 UTC"}},
		{"dom only", "0 0 13 * * *", utc(2026, 12, 1, 0, 0),
			[]string{"2026-12-13 00:00 UTC", "2027-01-13 00:00 UTC"}},
		// A stepped field counts as restricted ("*" alone is unrestricted).
		{"stepped dom is restricted", "0 0 */10 * 0 *", utc(2026, 12, 1, 0, 0),
			[]string{"2026-12-06 00:00 UTC", "2026-12-11 00:00 UTC", "2026-12-13 00:00 UTC"}},
		{"sunday as 7", "0 0 * * 7 *", utc(2026, 12, 1, 0, 0), []string{"2026-12-06 00:00 UTC"}},
	} {
		s := mustParse(t, tc.expr, "")
		eqSeq(t, tc.name, seq(s, tc.from, len(tc.want)), tc.want)
	}
}

// TestNextDST pins the DST rules documented on Next and in docs/triggers.md.
func TestNextDST(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	berlin := mustZone(t, "Europe/Berlin")
	for _, tc := range []struct {
		name, expr, tz string
		from           time.Time
		want           []string
	}{
		// New York springs forward at 02:00 EST on 8 March 2026 to 03:00 EDT.
		{"NY spring: skipped fixed time fires at the jump", "30 2 * * *", "America/New_York",
			time.Date(2026, 3, 7, 3, 0, 0, 0, ny),
			[]string{"2026-03-08 03:00 EDT", "2026-03-09 02:30 EDT"}},
		{"NY spring: skipped and real times at the jump fire once", "0,30 2,3 * * *", "America/New_York",
			time.Date(2026, 3, 8, 1, 0, 0, 0, ny),
			[]string{"2026-03-08 03:00 EDT", "2026-03-08 03:30 EDT", "2026-03-09 02:00 EDT"}},
		{"NY spring: wildcard minutes follow elapsed time", "*/30 * * * *", "America/New_York",
			time.Date(2026, 3, 8, 1, 0, 0, 0, ny),
			[]string{"2026-03-08 01:30 EST", "2026-03-08 03:00 EDT", "2026-03-08 03:30 EDT"}},
		{"NY spring: wildcard hour skips the missing hour", "15 * * * *", "America/New_York",
			time.Date(2026, 3, 8, 1, 0, 0, 0, ny),
			[]string{"2026-03-08 01:15 EST", "2026-03-08 03:15 EDT"}},
		// New York falls back at 02:00 EDT on 1 November 2026 to 01:00 EST.
		{"NY fall: repeated fixed time fires once", "30 1 * * *", "America/New_York",
			time.Date(2026, 10, 31, 12, 0, 0, 0, ny),
			[]string{"2026-11-01 01:30 EDT", "2026-11-02 01:30 EST"}},
		{"NY fall: wildcard fires in both occurrences", "*/30 * * * *", "America/New_York",
			time.Date(2026, 11, 1, 0, 45, 0, 0, ny),
			[]string{"2026-11-01 01:00 EDT", "2026-11-01 01:30 EDT", "2026-11-01 01:00 EST", "2026-11-01 01:30 EST", "2026-11-01 02:00 EST"}},
		{"NY fall: after the first 01:30 the fixed job waits a day", "30 1 * * *", "America/New_York",
			time.Date(2026, 11, 1, 1, 30, 0, 0, ny), // EDT, the first occurrence
			[]string{"2026-11-02 01:30 EST"}},
		// Berlin springs forward at 02:00 CET on 29 March 2026 to 03:00 CEST
		// and falls back at 03:00 CEST on 25 October 2026 to 02:00 CET.
		{"Berlin spring: skipped fixed time fires at the jump", "30 2 * * * *", "Europe/Berlin",
			time.Date(2026, 3, 28, 12, 0, 0, 0, berlin),
			[]string{"2026-03-29 03:00 CEST", "2026-03-30 02:30 CEST"}},
		{"Berlin fall: repeated fixed time fires once", "30 2 * * * *", "Europe/Berlin",
			time.Date(2026, 10, 24, 12, 0, 0, 0, berlin),
			[]string{"2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"}},
		{"Berlin fall: hourly follows elapsed time", "0 * * * * *", "Europe/Berlin",
			time.Date(2026, 10, 25, 1, 30, 0, 0, berlin),
			[]string{"2026-10-25 02:00 CEST", "2026-10-25 02:00 CET", "2026-10-25 03:00 CET"}},
		{"Berlin: daily across both changes keeps local time", "0 9 * * * *", "Europe/Berlin",
			time.Date(2026, 3, 28, 10, 0, 0, 0, berlin),
			[]string{"2026-03-29 09:00 CEST", "2026-03-30 09:00 CEST"}},
	} {
		s := mustParse(t, tc.expr, tc.tz)
		eqSeq(t, tc.name, seq(s, tc.from, len(tc.want)), tc.want)
	}
}

// TestNextProperties checks, over many starting points and zones, that Next
// is strictly increasing, lands on a matching wall minute (or a spring-forward
// jump for fixed schedules), and that stepping tick by tick finds no instant
// the schedule matches that Next jumped over.
func TestNextProperties(t *testing.T) {
	for _, tz := range []string{"UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Apia"} {
		for _, expr := range []string{"*/7 * * * *", "0 */5 * * *", "30 2 * * *", "0,30 1-3 * * 0,6", "15 1 1,15 * mon"} {
			s := mustParse(t, expr, tz)
			loc := s.Location()
			// Walk a year minute by minute in steps of Next and compare
			// with brute force over the instants in between.
			from := time.Date(2011, 1, 1, 0, 0, 0, 0, time.UTC)
			end := from.AddDate(1, 0, 0)
			prev := from
			fired := map[string]bool{}
			for prev.Before(end) {
				next := s.Next(prev)
				if next.IsZero() || !next.After(prev) {
					t.Fatalf("%s %q: Next(%v) = %v, not after", tz, expr, prev, next)
				}
				if s.wild {
					// Every real minute in between must not match.
					for m := prev.Truncate(time.Minute).Add(time.Minute); m.Before(next); m = m.Add(time.Minute) {
						if s.matchesWall(m.In(loc)) {
							t.Fatalf("%s %q: Next(%v) = %v skipped matching %v", tz, expr, prev, next, m.In(loc))
						}
					}
					if !s.matchesWall(next.In(loc)) {
						t.Fatalf("%s %q: Next(%v) = %v does not match", tz, expr, prev, next.In(loc))
					}
				} else {
					// Fixed: each matching wall time fires once, at itself or,
					// when the clocks skipped it, at the jump.
					w := next.In(loc)
					start, _ := w.ZoneBounds()
					if !s.matchesWall(w) && !next.Equal(start) {
						t.Fatalf("%s %q: Next(%v) = %v neither matches nor is a zone change", tz, expr, prev, w)
					}
					key := w.Format("2006-01-02 15:04")
					if fired[key] {
						t.Fatalf("%s %q: wall time %s fired twice", tz, expr, key)
					}
					fired[key] = true
				}
				prev = next
			}
		}
	}
}

// matchesWall reports whether t's wall clock matches all fields (test helper).
func (s *Schedule) matchesWall(t time.Time) bool {
	return t.Second() == 0 && s.minute.has(t.Minute()) && s.hour.has(t.Hour()) && s.month.has(int(t.Month())) &&
		s.year.has(t.Year()-MinYear) && s.dayMatches(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC))
}
