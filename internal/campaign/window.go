package campaign

import (
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

// Days is a set of weekdays a campaign may dial on: bit i is time.Weekday(i).
// Zero means every day (so does a value with none of the seven bits set).
type Days uint8

const everyDay Days = 1<<7 - 1

// Short day names, Monday first; index i names time.Weekday((i+1)%7).
var dayNames = [7]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

var fullDayNames = [7]string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

// ParseDays reads day names: "mon".."sun" or "monday".."sunday", in any case,
// duplicates allowed. No names means every day (0).
func ParseDays(names []string) (Days, error) {
	var d Days
	for _, n := range names {
		k := strings.ToLower(strings.TrimSpace(n))
		found := false
		for i := range dayNames {
			if k == dayNames[i] || k == fullDayNames[i] {
				d |= 1 << ((i + 1) % 7)
				found = true
				break
			}
		}
		if !found {
			return 0, fault.Invalidf("days_of_week", "has %q, which is not a day: use mon, tue, wed, thu, fri, sat, sun or the full names monday … sunday", n)
		}
	}
	return d, nil
}

// Names lists the days in d by short name, Monday first; nil for every day (0).
func (d Days) Names() []string {
	if d&everyDay == 0 {
		return nil
	}
	var out []string
	for i, n := range dayNames {
		if d&(1<<((i+1)%7)) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// Has reports whether w is in d; every day is in the zero set.
func (d Days) Has(w time.Weekday) bool {
	return d&everyDay == 0 || d&(1<<uint(w)) != 0
}

// Window is a campaign's daily calling window in its own time zone.
//
// Start and End are wall-clock times of day in Loc, as seconds after local
// midnight (0 ≤ s < 86400). Each allowed day D (its weekday in Days) has one
// opening:
//
//   - Start < End: from Start to End on D;
//   - Start > End: from Start on D to End on D+1 (crossing midnight; the days
//     filter applies to the day the window starts, so Friday 22:00–02:00
//     with only Friday allowed is open on Saturday 01:00);
//   - Start == End: all of D, midnight to midnight.
//
// Daylight saving time: a wall-clock time T on a day maps to the first
// instant whose local clock reads T or later on that day. So a time in a
// spring-forward gap (02:30 when clocks go 02:00 → 03:00) maps to the end of
// the gap (03:00 new time), and a time repeated when clocks fall back (02:30
// when they go 03:00 → 02:00) maps to its first occurrence. An opening is
// the half-open interval of instants between its mapped start and end: a
// window starting 02:30 on a fall-back day opens at the first 02:30 and stays
// open through the repeated hour; one ending 02:30 closes at the first 02:30
// and does not reopen when the clock reads 02:00–02:30 again. Away from
// transitions this is simply "the local clock reads between Start and End".
// An opening that falls entirely into a gap is empty (02:15–02:45 on a day
// clocks go 02:00 → 03:00). Openings have whole-second bounds.
type Window struct {
	Start, End int // seconds after local midnight
	Loc        *time.Location
	Days       Days
}

const secondsPerDay = 24 * 60 * 60

// NewWindow builds a window from "HH:MM:SS" times, an IANA zone name and days.
func NewWindow(start, end, tz string, days Days) (Window, error) {
	var f fault.Fields
	if !ValidClock(start) {
		f.Invalidf("schedule_start_time", "must be a time of day HH:MM:SS (got %q)", start)
	}
	if !ValidClock(end) {
		f.Invalidf("schedule_end_time", "must be a time of day HH:MM:SS (got %q)", end)
	}
	var loc *time.Location
	if ValidTimezone(tz) {
		loc, _ = time.LoadLocation(tz)
	} else {
		f.Invalidf("timezone", "must be an IANA time zone such as Europe/Amsterdam (got %q)", tz)
	}
	if err := f.Err(); err != nil {
		return Window{}, err
	}
	return Window{Start: clockSeconds(start), End: clockSeconds(end), Loc: loc, Days: days}, nil
}

// clockSeconds reads a valid "HH:MM:SS".
func clockSeconds(s string) int {
	n := func(i int) int { return int(s[i]-'0')*10 + int(s[i+1]-'0') }
	return n(0)*3600 + n(3)*60 + n(6)
}

// Open reports whether t falls into an opening of the window.
func (w Window) Open(t time.Time) bool {
	_, _, ok := w.opening(t)
	return ok
}

// Next returns t when the window is open at t, otherwise the earliest later
// instant at which it is open. It looks at most 9 days ahead, which is always
// enough unless DST empties every allowed opening; it then returns the zero Time.
func (w Window) Next(t time.Time) time.Time {
	if w.Open(t) {
		return t
	}
	loc := w.loc()
	day := civilDay(t.In(loc))
	sec := t.Unix()
	for k := -1; k <= 9; k++ {
		a, b, ok := w.bounds(day.AddDate(0, 0, k), loc)
		if ok && a < b && a > sec {
			return time.Unix(a, 0).In(t.Location())
		}
	}
	return time.Time{}
}

// Closes returns, when the window is open at t, the instant its current
// opening ends; back-to-back openings (all-day windows on consecutive days)
// count as one, looked at up to 8 days ahead, so a window open around the
// clock reports an end at least a week after t. It returns the zero Time
// when the window is closed at t.
func (w Window) Closes(t time.Time) time.Time {
	_, end, ok := w.opening(t)
	if !ok {
		return time.Time{}
	}
	for range 8 {
		_, e, ok := w.opening(time.Unix(end, 0))
		if !ok {
			break
		}
		end = e
	}
	return time.Unix(end, 0).In(t.Location())
}

// opening finds the opening containing t, as Unix seconds [start, end).
func (w Window) opening(t time.Time) (start, end int64, ok bool) {
	loc := w.loc()
	day := civilDay(t.In(loc))
	sec := t.Unix() // floor: bounds are whole seconds
	// The opening containing t starts on t's local day or up to two days
	// before (crossing midnight; a fall-back across midnight), or on the
	// next day (clocks falling back across midnight show t on the day before).
	for k := -2; k <= 1; k++ {
		a, b, ok := w.bounds(day.AddDate(0, 0, k), loc)
		if ok && a <= sec && sec < b {
			return a, b, true
		}
	}
	return 0, 0, false
}

// bounds returns the opening of day (a civil date at UTC midnight) as Unix
// seconds, and false when day's weekday is not allowed.
func (w Window) bounds(day time.Time, loc *time.Location) (start, end int64, ok bool) {
	if !w.Days.Has(day.Weekday()) {
		return 0, 0, false
	}
	s, e, endDay := w.Start, w.End, day
	switch {
	case s == e:
		s, e, endDay = 0, 0, day.AddDate(0, 0, 1)
	case s > e:
		endDay = day.AddDate(0, 0, 1)
	}
	return firstAtOrAfter(day, s, loc), firstAtOrAfter(endDay, e, loc), true
}

func (w Window) loc() *time.Location {
	if w.Loc == nil {
		return time.UTC
	}
	return w.Loc
}

// civilDay returns lt's local date as midnight UTC (a plain calendar date).
func civilDay(lt time.Time) time.Time {
	y, m, d := lt.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// firstAtOrAfter returns the first instant (Unix seconds) at which the local
// clock in loc reads day at sec seconds after midnight, or later. It walks
// the zone's periods of constant offset (time.ZoneBounds) instead of using
// time.Date, which does not say which side of a gap it picks: inside one
// period the local clock is the instant plus a fixed offset, so the earliest
// qualifying instant of the period is known exactly, and the first period
// with one holds the answer.
func firstAtOrAfter(day time.Time, sec int, loc *time.Location) int64 {
	wall := day.Unix() + int64(sec) // the wanted wall clock, counted as if UTC
	// Offsets stay within ±15 hours, so nothing before wall-48h reads wall.
	p := wall - 48*3600
	for range 64 {
		t := time.Unix(p, 0).In(loc)
		_, off := t.Zone()
		cand := max(p, wall-int64(off))
		_, end := t.ZoneBounds()
		if end.IsZero() || cand < end.Unix() {
			return cand
		}
		p = max(end.Unix(), p+1)
	}
	return p // unreachable for real zones: 64 transitions in two days
}

// NextDial is when a scheduled campaign dials next: the first instant, not
// before now, before a lead is due (firstDue; zero when a lead is due now)
// or before a backoff ends (zero: none), at which the window is open. It is
// now itself when the campaign can dial at once.
func NextDial(w Window, now, firstDue, backoffUntil time.Time) time.Time {
	t := now
	if firstDue.After(t) {
		t = firstDue
	}
	if backoffUntil.After(t) {
		t = backoffUntil
	}
	return w.Next(t)
}
