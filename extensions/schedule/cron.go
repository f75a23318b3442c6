package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	// The extensions run in a FROM scratch image with no zone database on
	// disk; embedding it (~450 KB) makes every IANA zone name resolve.
	_ "time/tzdata"
)

// ErrInvalidCron marks every cron parse error; the message after it names the
// field and the token so a refused subscription tells the user what to fix.
var ErrInvalidCron = errors.New("invalid cron expression")

// MinYear and MaxYear bound the year field. Upstream accepts 1970–2100; we
// accept a little more, and Next never searches past MaxYear, which is what
// bounds its work on expressions that never match.
const (
	MinYear = 1970
	MaxYear = 2199
)

// MaxExprLen bounds an expression (with any timezone prefix) in bytes.
const MaxExprLen = 512

// field describes one position of the expression.
type field struct {
	name     string
	min, max int
	names    map[string]int
	// base is subtracted before a value is stored in a bitset (years).
	base int
}

var (
	monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	dowNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

	fields = [6]field{
		{name: "minute", min: 0, max: 59},
		{name: "hour", min: 0, max: 23},
		{name: "day-of-month", min: 1, max: 31},
		{name: "month", min: 1, max: 12, names: monthNames},
		// 7 is accepted as Sunday, as in Vixie cron.
		{name: "day-of-week", min: 0, max: 7, names: dowNames},
		{name: "year", min: MinYear, max: MaxYear, base: MinYear},
	}
)

// bitset holds the values of one field; years are stored from MinYear on.
type bitset [4]uint64

func (b *bitset) set(i int)      { b[i/64] |= 1 << (uint(i) % 64) }
func (b *bitset) has(i int) bool { return i >= 0 && i < 256 && b[i/64]&(1<<(uint(i)%64)) != 0 }
func (b *bitset) clear(i int)    { b[i/64] &^= 1 << (uint(i) % 64) }

// Schedule is a parsed cron expression in a time zone. It is immutable and
// safe for concurrent use.
type Schedule struct {
	expr   string
	loc    *time.Location
	minute bitset
	hour   bitset
	dom    bitset
	month  bitset
	dow    bitset
	year   bitset
	// domStar/dowStar: the field is exactly "*", which makes the other day
	// field decide alone (cron's rule; both restricted means either matches).
	domStar, dowStar bool
	// wild: the minute or hour field starts with "*". Such schedules follow
	// elapsed time across DST changes; the others follow the wall clock
	// (see Next).
	wild bool
}

// String returns the six fields, space-separated (a five-field expression
// gains a year of "*"; a timezone prefix is dropped: see Location).
func (s *Schedule) String() string { return s.expr }

// Location returns the time zone the expression is evaluated in.
func (s *Schedule) Location() *time.Location { return s.loc }

// Parse parses a cron expression of six fields, "minute hour day-of-month
// month day-of-week year" (upstream's format), or five fields with the year
// taken as "*". Each field accepts "*", numbers, "a-b" ranges, "," lists and,
// beyond upstream, "/n" steps and the names jan–dec and sun–sat. tz is an IANA
// zone name; empty means UTC. The expression may also start with "CRON_TZ=Zone"
// or "TZ=Zone" (as robfig/cron and cronie accept); given both ways, the two must
// name the same zone.
func Parse(expr, tz string) (*Schedule, error) {
	// Errors quote the input; a bound keeps them readable (a real expression
	// is a few dozen characters).
	if len(expr) > MaxExprLen {
		return nil, fmt.Errorf("%w: expression is %d bytes, at most %d", ErrInvalidCron, len(expr), MaxExprLen)
	}
	body := strings.TrimSpace(expr)
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		if !strings.HasPrefix(body, prefix) {
			continue
		}
		rest := body[len(prefix):]
		zone, after := rest, ""
		if i := strings.IndexFunc(rest, unicode.IsSpace); i >= 0 {
			zone, after = rest[:i], rest[i:]
		}
		if zone == "" {
			return nil, fmt.Errorf("%w: %s prefix without a zone name", ErrInvalidCron, strings.TrimSuffix(prefix, "="))
		}
		if tz != "" && tz != zone {
			return nil, fmt.Errorf("%w: the expression names zone %q but the timezone setting is %q", ErrInvalidCron, zone, tz)
		}
		tz, body = zone, strings.TrimSpace(after)
		break
	}
	loc, err := LoadZone(tz)
	if err != nil {
		return nil, err
	}
	parts := strings.Fields(body)
	switch len(parts) {
	case 5:
		parts = append(parts, "*")
	case 6:
	default:
		return nil, fmt.Errorf("%w: want 6 fields \"minute hour day-of-month month day-of-week year\" (or 5 without the year), got %d in %q",
			ErrInvalidCron, len(parts), body)
	}
	s := &Schedule{expr: strings.Join(parts, " "), loc: loc}
	sets := [6]*bitset{&s.minute, &s.hour, &s.dom, &s.month, &s.dow, &s.year}
	for i, f := range fields {
		if err := parseField(parts[i], f, sets[i]); err != nil {
			return nil, err
		}
	}
	if s.dow.has(7) {
		s.dow.set(0)
		s.dow.clear(7)
	}
	s.domStar, s.dowStar = parts[2] == "*", parts[4] == "*"
	s.wild = strings.HasPrefix(parts[0], "*") || strings.HasPrefix(parts[1], "*")
	return s, nil
}

// LoadZone resolves an IANA zone name; empty and "UTC" are UTC. The binary
// embeds the zone database (time/tzdata) so this works on hosts without one.
func LoadZone(tz string) (*time.Location, error) {
	if len(tz) > 128 {
		return nil, fmt.Errorf("%w: timezone is %d bytes; an IANA zone name is short (e.g. Europe/Berlin)", ErrInvalidCron, len(tz))
	}
	if tz == "" || tz == "UTC" {
		return time.UTC, nil
	}
	// time.LoadLocation also reads files named by absolute paths; a zone name
	// from a user must be a name, never a path on the extension's host.
	if strings.HasPrefix(tz, "/") || strings.Contains(tz, "..") || tz == "Local" {
		return nil, fmt.Errorf("%w: timezone %q is not an IANA zone name (e.g. Europe/Berlin)", ErrInvalidCron, tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("%w: unknown timezone %q (want an IANA zone name such as America/New_York)", ErrInvalidCron, tz)
	}
	return loc, nil
}

// parseField fills set from one field's text: a comma list of items, each
// "*", "v", "a-b", optionally followed by "/step" ("a/step" runs to the max).
func parseField(text string, f field, set *bitset) error {
	bad := func(token, format string, args ...any) error {
		return fmt.Errorf("%w: %s field %q: %s", ErrInvalidCron, f.name, token, fmt.Sprintf(format, args...))
	}
	for _, item := range strings.Split(text, ",") {
		if item == "" {
			return bad(text, "empty list element")
		}
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n <= 0 {
				return bad(item, "step %q is not a positive number", stepText)
			}
			// A step beyond the field's span selects only the start; clamping
			// it keeps v += step below from overflowing into a negative index.
			step = min(n, f.max-f.min+1)
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = value(a, f); err != nil {
				return bad(item, "%v", err)
			}
			if hi, err = value(b, f); err != nil {
				return bad(item, "%v", err)
			}
			if lo > hi {
				return bad(item, "range start %d is after its end %d", lo, hi)
			}
		default:
			v, err := value(rng, f)
			if err != nil {
				return bad(item, "%v", err)
			}
			lo = v
			if !hasStep {
				hi = v
			}
		}
		for v := lo; v <= hi; v += step {
			set.set(v - f.base)
		}
	}
	return nil
}

// value parses one number or name and checks the field's range.
func value(tok string, f field) (int, error) {
	if tok == "" {
		return 0, errors.New("missing value")
	}
	if v, ok := f.names[strings.ToLower(tok)]; ok {
		return v, nil
	}
	for _, c := range tok {
		if c < '0' || c > '9' {
			if f.names != nil {
				return 0, fmt.Errorf("%q is neither a number nor a name", tok)
			}
			return 0, fmt.Errorf("%q is not a number", tok)
		}
	}
	v, err := strconv.Atoi(tok)
	if err != nil || v < f.min || v > f.max {
		return 0, fmt.Errorf("%s is out of range %d-%d", tok, f.min, f.max)
	}
	return v, nil
}
