package schedule

import "time"

// Next returns the first scheduled instant strictly after after, or the zero
// time when there is none up to the end of MaxYear. Ticks fall on whole
// minutes of the schedule's wall clock.
//
// DST rules (those of Vixie cron, which cronie and most cron daemons keep):
//   - A schedule whose minute or hour field starts with "*" (e.g. "*/5 * * * *",
//     "0 * * * *") follows elapsed time: it fires at every instant whose wall
//     clock matches. A wall time skipped by spring-forward simply does not
//     happen; a repeated wall time at fall-back fires in both occurrences, so
//     "every 5 minutes" keeps firing every 5 real minutes.
//   - Any other schedule (fixed times such as "30 2 * * *") follows the wall
//     clock and fires once per matching wall time: a time skipped by
//     spring-forward fires at the instant the clocks jump (03:00 local for a
//     02:30 job in New York), and a time that occurs twice at fall-back fires
//     only at its first occurrence.
//
// Several skipped wall times map to the same jump instant, which fires once.
func (s *Schedule) Next(after time.Time) time.Time {
	var best time.Time
	// Wall candidates are scanned in wall-clock order starting a day before
	// after's wall date (an instant's wall date differs from its UTC date by
	// at most a day). Instant order equals wall order except near a zone
	// transition, so once a candidate is found the scan stops unless a
	// transition is near (then it scans a further 56 h of wall time, more
	// than any offset change, and keeps the earliest instant).
	a := after.In(s.loc)
	startDay := time.Date(a.Year(), a.Month(), a.Day()-1, 0, 0, 0, 0, time.UTC)
	afterUnix := after.Unix()
	var stopWall int64 // wall-as-UTC seconds past which no candidate can beat best
	y0 := startDay.Year()
	if y0 < MinYear {
		y0, startDay = MinYear, time.Date(MinYear, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	for y := y0; y <= MaxYear; y++ {
		if !s.year.has(y - MinYear) {
			continue
		}
		for m := 1; m <= 12; m++ {
			if !s.month.has(m) {
				continue
			}
			if y == startDay.Year() && m < int(startDay.Month()) {
				continue
			}
			days := daysIn(y, time.Month(m))
			for d := 1; d <= days; d++ {
				day := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
				if day.Before(startDay) || !s.dayMatches(day) {
					continue
				}
				dayUnix := day.Unix()
				if stopWall != 0 && dayUnix > stopWall {
					return best
				}
				// Every instant of this day is at most 39 h after its wall
				// midnight; skip days that end too early to matter.
				if dayUnix+40*3600 <= afterUnix {
					continue
				}
				for h := 0; h < 24; h++ {
					if !s.hour.has(h) {
						continue
					}
					for mi := 0; mi < 60; mi++ {
						if !s.minute.has(mi) {
							continue
						}
						wall := dayUnix + int64(h)*3600 + int64(mi)*60
						if stopWall != 0 && wall > stopWall {
							return best
						}
						if wall+15*3600 < afterUnix { // no zone is behind UTC by more than 15 h
							continue
						}
						t, ok := s.instant(wall, after)
						if !ok || (!best.IsZero() && !t.Before(best)) {
							continue
						}
						best = t
						if s.nearTransition(best) {
							stopWall = wall + 56*3600
						} else {
							return best
						}
					}
				}
			}
		}
	}
	return best
}

// dayMatches applies cron's day rule: when both day fields are restricted a
// day matches if either does; otherwise the restricted one decides.
func (s *Schedule) dayMatches(day time.Time) bool {
	dom := s.dom.has(day.Day())
	dow := s.dow.has(int(day.Weekday()))
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// instant maps a matching wall time (seconds of the wall clock read as UTC)
// to the earliest instant after after at which it fires, per the DST rules.
func (s *Schedule) instant(wall int64, after time.Time) (time.Time, bool) {
	if s.loc == time.UTC {
		t := time.Unix(wall, 0).UTC()
		return t, t.After(after)
	}
	occ, gapEnd := resolve(s.loc, wall)
	if len(occ) == 0 {
		if s.wild || gapEnd.IsZero() {
			return time.Time{}, false
		}
		return gapEnd, gapEnd.After(after)
	}
	if !s.wild {
		occ = occ[:1]
	}
	for _, t := range occ {
		if t.After(after) {
			return t, true
		}
	}
	return time.Time{}, false
}

// resolve returns the instants (ascending) whose wall clock in loc reads wall,
// and, when there are none (a spring-forward gap), the instant the clocks
// jumped over it. It walks the zone periods around wall, which is exact for
// any offset change and costs one or two lookups away from transitions.
func resolve(loc *time.Location, wall int64) (occ []time.Time, gapEnd time.Time) {
	const margin = 30 * 3600
	t := time.Unix(wall-margin, 0).In(loc)
	prevOff, havePrev := 0, false
	for i := 0; i < 8; i++ {
		start, end := t.ZoneBounds()
		_, off := t.Zone()
		c := wall - int64(off)
		inStart := start.IsZero() || c >= start.Unix()
		inEnd := end.IsZero() || c < end.Unix()
		if inStart && inEnd {
			occ = append(occ, time.Unix(c, 0).In(loc))
		}
		if havePrev && !start.IsZero() && gapEnd.IsZero() {
			// wall fell between the previous period's last wall time and
			// this period's first: the clocks jumped over it at start.
			b := start.Unix()
			if wall-int64(prevOff) >= b && c < b {
				gapEnd = start.In(loc)
			}
		}
		if end.IsZero() || end.Unix() > wall+margin {
			break
		}
		prevOff, havePrev = off, true
		t = end.In(loc)
	}
	if len(occ) > 0 {
		gapEnd = time.Time{}
	}
	return occ, gapEnd
}

// nearTransition reports whether loc changes offset within 30 h of t, where
// wall order and instant order of candidates may differ.
func (s *Schedule) nearTransition(t time.Time) bool {
	if s.loc == time.UTC {
		return false
	}
	start, end := t.In(s.loc).ZoneBounds()
	const span = 30 * 3600
	return (!start.IsZero() && t.Unix()-start.Unix() < span) || (!end.IsZero() && end.Unix()-t.Unix() < span)
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
