package campaign

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

func TestParseDays(t *testing.T) {
	tests := []struct {
		in    []string
		want  Days
		names []string
		bad   string // the entry the error must name
	}{
		{in: nil, want: 0},
		{in: []string{}, want: 0},
		{in: []string{"mon"}, want: 1 << time.Monday, names: []string{"mon"}},
		{in: []string{"Sunday", "SAT", "fri"}, want: 1<<time.Sunday | 1<<time.Saturday | 1<<time.Friday, names: []string{"fri", "sat", "sun"}},
		{in: []string{"tue", "Tuesday", "tue"}, want: 1 << time.Tuesday, names: []string{"tue"}},
		{in: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, want: everyDay, names: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}},
		{in: []string{"mon", "tues"}, bad: "tues"},
		{in: []string{""}, bad: `""`},
		{in: []string{"1"}, bad: "1"},
	}
	for _, tc := range tests {
		got, err := ParseDays(tc.in)
		if tc.bad != "" {
			e, ok := fault.As(err)
			if !ok || e.Kind != fault.Invalid || e.Field != "days_of_week" || !strings.Contains(e.Message, tc.bad) || !strings.Contains(e.Message, "mon, tue") {
				t.Errorf("ParseDays(%q) = %v, %v; want an invalid days_of_week naming %s", tc.in, got, err, tc.bad)
			}
			continue
		}
		if err != nil || got != tc.want || !slices.Equal(got.Names(), tc.names) {
			t.Errorf("ParseDays(%q) = %07b %v, %v; want %07b %v", tc.in, got, got.Names(), err, tc.want, tc.names)
		}
	}
	for w := time.Sunday; w <= time.Saturday; w++ {
		if !Days(0).Has(w) || !Days(1<<7).Has(w) {
			t.Errorf("the empty set does not have %v", w)
		}
	}
	if d := Days(1 << time.Friday); !d.Has(time.Friday) || d.Has(time.Saturday) {
		t.Error("Has(Friday)")
	}
}

func TestNewWindow(t *testing.T) {
	tests := []struct {
		start, end, tz string
		fields         []string // invalid fields, in order; none means valid
	}{
		{"09:00:00", "17:00:00", "Europe/Amsterdam", nil},
		{"22:00:00", "02:30:15", "UTC", nil},
		{"09:00", "17:00:00", "UTC", []string{"schedule_start_time"}},
		{"09:00:00", "24:00:00", "UTC", []string{"schedule_end_time"}},
		{"09:00:00", "17:00:00", "Mars/Olympus", []string{"timezone"}},
		{"x", "y", "", []string{"schedule_start_time", "schedule_end_time", "timezone"}},
		{"09:00:00", "17:00:00", "Local", []string{"timezone"}},
	}
	for _, tc := range tests {
		w, err := NewWindow(tc.start, tc.end, tc.tz, 0)
		if tc.fields == nil {
			if err != nil || w.Loc == nil || w.Loc.String() != tc.tz {
				t.Errorf("NewWindow(%q, %q, %q) = %+v, %v", tc.start, tc.end, tc.tz, w, err)
			}
			continue
		}
		e, ok := fault.As(err)
		if !ok || e.Kind != fault.Invalid || e.Field != tc.fields[0] || len(e.Details) != len(tc.fields) {
			t.Errorf("NewWindow(%q, %q, %q) error %v; want invalid %v", tc.start, tc.end, tc.tz, err, tc.fields)
			continue
		}
		for i, f := range tc.fields {
			if !strings.HasPrefix(e.Details[i], f+" ") {
				t.Errorf("detail %d = %q, want field %s", i, e.Details[i], f)
			}
		}
	}
	w, _ := NewWindow("08:30:15", "22:00:00", "UTC", 3)
	if w.Start != 8*3600+30*60+15 || w.End != 22*3600 || w.Days != 3 {
		t.Errorf("NewWindow = %+v", w)
	}
}

func mustWindow(t testing.TB, start, end, tz string, days ...string) Window {
	t.Helper()
	d, err := ParseDays(days)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWindow(start, end, tz, d)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func ts(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestWindow pins the semantics, DST included, at chosen instants. Amsterdam
// 2026: 03-29 02:00 CET → 03:00 CEST; 10-25 03:00 CEST → 02:00 CET.
// Lord Howe 2026: 04-05 02:00 → 01:30 (+11 → +10:30); 10-04 02:00 → 02:30.
func TestWindow(t *testing.T) {
	tests := []struct {
		name           string
		start, end, tz string
		days           []string
		at             string
		open           bool
		next           string // "" means at itself
		closes         string // when open
	}{
		{"inside", "09:00:00", "17:00:00", "Europe/Amsterdam", nil, "2026-01-05T10:00:00+01:00", true, "", "2026-01-05T17:00:00+01:00"},
		{"at start", "09:00:00", "17:00:00", "UTC", nil, "2026-01-05T09:00:00Z", true, "", "2026-01-05T17:00:00Z"},
		{"at end", "09:00:00", "17:00:00", "UTC", nil, "2026-01-05T17:00:00Z", false, "2026-01-06T09:00:00Z", ""},
		{"before, fraction", "09:00:00", "17:00:00", "UTC", nil, "2026-01-05T08:59:59.5Z", false, "2026-01-05T09:00:00Z", ""},
		{"open, fraction", "09:00:00", "17:00:00", "UTC", nil, "2026-01-05T16:59:59.999Z", true, "", "2026-01-05T17:00:00Z"},
		{"seconds", "08:30:15", "08:30:45", "Asia/Kolkata", nil, "2026-06-01T08:30:14+05:30", false, "2026-06-01T08:30:15+05:30", ""},
		{"other zone", "09:00:00", "17:00:00", "America/New_York", nil, "2026-01-05T13:59:59Z", false, "2026-01-05T09:00:00-05:00", ""},
		{"skip weekend", "09:00:00", "17:00:00", "UTC", []string{"mon", "tue", "wed", "thu", "fri"}, "2026-01-02T18:00:00Z", false, "2026-01-05T09:00:00Z", ""},
		{"not a day", "09:00:00", "17:00:00", "UTC", []string{"tue"}, "2026-01-05T10:00:00Z", false, "2026-01-06T09:00:00Z", ""},

		// Crossing midnight: the days filter applies to the day the window starts.
		{"fri night, sat 01:00", "22:00:00", "02:00:00", "UTC", []string{"fri"}, "2026-01-03T01:00:00Z", true, "", "2026-01-03T02:00:00Z"},
		{"fri night, fri 01:00", "22:00:00", "02:00:00", "UTC", []string{"fri"}, "2026-01-02T01:00:00Z", false, "2026-01-02T22:00:00Z", ""},
		{"fri night, sat 22:30", "22:00:00", "02:00:00", "UTC", []string{"fri"}, "2026-01-03T22:30:00Z", false, "2026-01-09T22:00:00Z", ""},
		{"cross to 00:00", "22:00:00", "00:00:00", "UTC", nil, "2026-01-03T23:59:59Z", true, "", "2026-01-04T00:00:00Z"},

		// Start == End: all day on allowed days; back-to-back days are one opening.
		{"all day", "09:00:00", "09:00:00", "UTC", []string{"mon", "tue"}, "2026-01-05T00:00:00Z", true, "", "2026-01-07T00:00:00Z"},
		{"all day, off", "09:00:00", "09:00:00", "UTC", []string{"mon", "tue"}, "2026-01-07T00:00:00Z", false, "2026-01-12T00:00:00Z", ""},
		{"around the clock", "00:00:00", "00:00:00", "UTC", nil, "2026-01-05T12:00:00Z", true, "", "2026-01-14T00:00:00Z"},
		{"nearly around the clock", "03:00:00", "02:30:00", "UTC", nil, "2026-01-05T02:45:00Z", false, "2026-01-05T03:00:00Z", ""},

		// Spring forward: a start in the gap opens when the gap ends.
		{"gap start, before", "02:30:00", "05:00:00", "Europe/Amsterdam", nil, "2026-03-29T01:59:59+01:00", false, "2026-03-29T03:00:00+02:00", ""},
		{"gap start, after", "02:30:00", "05:00:00", "Europe/Amsterdam", nil, "2026-03-29T03:00:00+02:00", true, "", "2026-03-29T05:00:00+02:00"},
		{"gap start, day before", "02:30:00", "05:00:00", "Europe/Amsterdam", nil, "2026-03-28T02:29:00+01:00", false, "2026-03-28T02:30:00+01:00", ""},
		{"gap end", "01:00:00", "02:30:00", "Europe/Amsterdam", nil, "2026-03-29T01:30:00+01:00", true, "", "2026-03-29T03:00:00+02:00"},
		{"all in gap: empty", "02:15:00", "02:45:00", "Europe/Amsterdam", nil, "2026-03-29T00:00:00+01:00", false, "2026-03-30T02:15:00+02:00", ""},
		{"new york gap", "02:30:00", "04:00:00", "America/New_York", nil, "2026-03-08T01:59:00-05:00", false, "2026-03-08T03:00:00-04:00", ""},
		{"lord howe gap", "02:10:00", "03:00:00", "Australia/Lord_Howe", nil, "2026-10-04T01:59:59+10:30", false, "2026-10-04T02:30:00+11:00", ""},

		// Fall back: start and end at the first occurrence; no reopening.
		{"repeat start, first", "02:30:00", "05:00:00", "Europe/Amsterdam", nil, "2026-10-25T02:00:00+02:00", false, "2026-10-25T02:30:00+02:00", ""},
		{"repeat start, stays open", "02:30:00", "05:00:00", "Europe/Amsterdam", nil, "2026-10-25T02:10:00+01:00", true, "", "2026-10-25T05:00:00+01:00"},
		{"repeat end, open", "22:00:00", "02:30:00", "Europe/Amsterdam", nil, "2026-10-25T02:29:59+02:00", true, "", "2026-10-25T02:30:00+02:00"},
		{"repeat end, closes", "22:00:00", "02:30:00", "Europe/Amsterdam", nil, "2026-10-24T23:00:00+02:00", true, "", "2026-10-25T02:30:00+02:00"},
		{"repeat end, no reopen", "22:00:00", "02:30:00", "Europe/Amsterdam", nil, "2026-10-25T02:10:00+01:00", false, "2026-10-25T22:00:00+01:00", ""},
		{"repeat end, after first", "22:00:00", "02:30:00", "Europe/Amsterdam", nil, "2026-10-25T02:30:00+02:00", false, "2026-10-25T22:00:00+01:00", ""},
		{"lord howe repeat", "01:45:00", "03:00:00", "Australia/Lord_Howe", nil, "2026-04-05T01:40:00+10:30", true, "", "2026-04-05T03:00:00+10:30"},
		{"lord howe repeat end", "01:00:00", "01:45:00", "Australia/Lord_Howe", nil, "2026-04-05T01:40:00+10:30", false, "2026-04-06T01:00:00+10:30", ""},
	}
	for _, tc := range tests {
		w := mustWindow(t, tc.start, tc.end, tc.tz, tc.days...)
		at := ts(t, tc.at)
		if got := w.Open(at); got != tc.open {
			t.Errorf("%s: Open(%s) = %v", tc.name, tc.at, got)
		}
		want := at
		if tc.next != "" {
			want = ts(t, tc.next)
		}
		if got := w.Next(at); !got.Equal(want) {
			t.Errorf("%s: Next(%s) = %s, want %s", tc.name, tc.at, got.In(w.Loc), want)
		}
		var wantC time.Time
		if tc.closes != "" {
			wantC = ts(t, tc.closes)
		}
		if got := w.Closes(at); !got.Equal(wantC) {
			t.Errorf("%s: Closes(%s) = %s, want %s", tc.name, tc.at, got.In(w.Loc), wantC)
		}
	}
}

func TestWindowNilLoc(t *testing.T) {
	w := Window{Start: 9 * 3600, End: 17 * 3600}
	at := ts(t, "2026-01-05T08:00:00Z")
	if w.Open(at) || !w.Next(at).Equal(ts(t, "2026-01-05T09:00:00Z")) {
		t.Errorf("nil Loc is not UTC: %v %v", w.Open(at), w.Next(at))
	}
}

// scan finds the first whole second ≥ from (itself a whole second) at which
// Open is want, stepping by minutes and then by seconds inside the minute
// found. Exact when no opening or closed spell is shorter than a minute.
func scan(w Window, from time.Time, want bool, limit time.Duration) (time.Time, bool) {
	s := from
	for ; s.Second() != 0 || s.Equal(from); s = s.Add(time.Second) { // to a whole minute
		if w.Open(s) == want {
			return s, true
		}
	}
	for end := from.Add(limit); s.Before(end); s = s.Add(time.Minute) {
		if w.Open(s) == want {
			for p := s.Add(-59 * time.Second); ; p = p.Add(time.Second) {
				if w.Open(p) == want {
					return p, true
				}
			}
		}
	}
	return time.Time{}, false
}

// transitions lists the DST changes of loc in [from, to).
func transitions(loc *time.Location, from, to time.Time) []time.Time {
	var out []time.Time
	for t := from; t.Before(to); {
		_, end := t.In(loc).ZoneBounds()
		if end.IsZero() || !end.Before(to) {
			break
		}
		out = append(out, end)
		t = end
	}
	return out
}

// TestWindowScan checks Next and Closes against a brute-force scan of Open
// at many instants, around every 2026 DST change of each zone and at random.
func TestWindowScan(t *testing.T) {
	zones := []string{"Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"}
	windows := []struct {
		start, end string
		days       []string
	}{
		{"09:00:00", "17:00:00", nil},
		{"02:30:00", "05:00:00", nil},
		{"22:00:00", "02:00:00", []string{"fri"}},
		{"23:30:00", "02:30:15", []string{"sat", "sun", "tue"}},
		{"01:45:00", "02:15:30", []string{"sun", "mon"}},
		{"00:00:00", "00:00:00", []string{"sat", "sun"}},
		{"03:00:00", "01:59:00", []string{"sun"}},
	}
	rng := rand.New(rand.NewPCG(7, 11))
	perZone := 40
	if testing.Short() {
		perZone = 5
	}
	year := ts(t, "2026-01-01T00:00:00Z")
	for _, z := range zones {
		loc, err := time.LoadLocation(z)
		if err != nil {
			t.Fatal(err)
		}
		var instants []time.Time
		for _, tr := range transitions(loc, year, year.AddDate(1, 0, 0)) {
			for _, d := range []time.Duration{-90 * time.Minute, -time.Second, 0, 30 * time.Minute, 61 * time.Minute} {
				instants = append(instants, tr.Add(d))
			}
		}
		for range perZone {
			instants = append(instants, year.Add(time.Duration(rng.Int64N(int64(365*24*time.Hour)))).Add(time.Duration(rng.IntN(1e9))))
		}
		for _, win := range windows {
			w := mustWindow(t, win.start, win.end, z, win.days...)
			for _, at := range instants {
				checkScan(t, w, at)
			}
		}
	}
}

func checkScan(t *testing.T, w Window, at time.Time) {
	t.Helper()
	name := func() string { return w.Loc.String() + " " + at.In(w.Loc).Format(time.RFC3339Nano) }
	whole := at.Truncate(time.Second)
	if w.Open(at) != w.Open(whole) {
		t.Errorf("%s %+v: Open differs inside one second", name(), w)
	}
	if w.Open(at) {
		if got := w.Next(at); !got.Equal(at) {
			t.Errorf("%s %+v: open but Next = %s", name(), w, got)
		}
		want, ok := scan(w, whole, false, 9*24*time.Hour)
		if got := w.Closes(at); !ok || !got.Equal(want) {
			t.Errorf("%s %+v: Closes = %s, scan %s", name(), w, got.In(w.Loc), want.In(w.Loc))
		}
		return
	}
	if got := w.Closes(at); !got.IsZero() {
		t.Errorf("%s %+v: closed but Closes = %s", name(), w, got)
	}
	want, ok := scan(w, whole, true, 9*24*time.Hour)
	if got := w.Next(at); !ok || !got.Equal(want) {
		t.Errorf("%s %+v: Next = %s, scan %s", name(), w, got.In(w.Loc), want.In(w.Loc))
	}
}

// TestWindowWallClock checks that away from DST changes Open is the plain
// wall-clock rule the doc comment describes.
func TestWindowWallClock(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	year := ts(t, "2026-01-01T00:00:00Z")
	for _, z := range []string{"Europe/Amsterdam", "Australia/Lord_Howe", "Asia/Kolkata", "America/New_York"} {
		for _, win := range [][2]string{{"09:00:00", "17:00:00"}, {"22:00:00", "02:00:00"}, {"05:00:00", "05:00:00"}} {
			w := mustWindow(t, win[0], win[1], z, "mon", "wed", "fri", "sat")
			for range 500 {
				at := year.Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
				_, o1 := at.Add(-30 * time.Hour).In(w.Loc).Zone()
				_, o2 := at.In(w.Loc).Zone()
				_, o3 := at.Add(30 * time.Hour).In(w.Loc).Zone()
				if o1 != o2 || o2 != o3 {
					continue
				}
				if got, want := w.Open(at), naiveOpen(w, at); got != want {
					t.Errorf("%s %v: Open(%s) = %v, wall clock says %v", z, win, at.In(w.Loc), got, want)
				}
			}
		}
	}
}

func naiveOpen(w Window, t time.Time) bool {
	lt := t.In(w.Loc)
	h, m, s := lt.Clock()
	sec := h*3600 + m*60 + s
	today, yesterday := w.Days.Has(lt.Weekday()), w.Days.Has((lt.Weekday()+6)%7)
	switch {
	case w.Start == w.End:
		return today
	case w.Start < w.End:
		return today && w.Start <= sec && sec < w.End
	default:
		return today && sec >= w.Start || yesterday && sec < w.End
	}
}

func TestNextDial(t *testing.T) {
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	w, err := NewWindow("09:00:00", "17:00:00", "Europe/Amsterdam", 0)
	if err != nil {
		t.Fatal(err)
	}
	at := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, ams) }
	var zero time.Time
	for _, c := range []struct {
		name                    string
		now, due, backoff, want time.Time
	}{
		{"open, due now", at(3, 10, 0), zero, zero, at(3, 10, 0)},
		{"before the window", at(3, 8, 0), zero, zero, at(3, 9, 0)},
		{"after the window", at(3, 18, 0), zero, zero, at(4, 9, 0)},
		{"retry later today", at(3, 10, 0), at(3, 10, 30), zero, at(3, 10, 30)},
		{"retry after closing", at(3, 10, 0), at(3, 16, 59).Add(2 * time.Minute), zero, at(4, 9, 0)},
		{"backoff wins over an earlier retry", at(3, 10, 0), at(3, 10, 1), at(3, 10, 5), at(3, 10, 5)},
		{"due in the past", at(3, 10, 0), at(3, 9, 0), zero, at(3, 10, 0)},
	} {
		if got := NextDial(w, c.now, c.due, c.backoff); !got.Equal(c.want) {
			t.Errorf("%s: NextDial = %v, want %v", c.name, got, c.want)
		}
	}
}
