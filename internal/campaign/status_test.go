package campaign

import (
	"testing"

	"github.com/parley-voice/parley/internal/fault"
)

func TestCheckTransition(t *testing.T) {
	tests := []struct {
		from, to Status
		want     fault.Kind // Internal means allowed
	}{
		{Draft, Scheduled, fault.Internal},
		{Scheduled, Paused, fault.Internal},
		{Paused, Scheduled, fault.Internal},
		{Paused, Draft, fault.Internal},
		{Scheduled, Cancelled, fault.Internal},
		{Draft, Completed, fault.Invalid},
		{Completed, Draft, fault.Conflict},
		{Cancelled, Scheduled, fault.Conflict},
	}
	for _, tc := range tests {
		err := CheckTransition(tc.from, tc.to)
		if got := fault.KindOf(err); (err == nil) != (tc.want == fault.Internal) || (err != nil && got != tc.want) {
			t.Errorf("%s → %s: %v, want kind %v", tc.from, tc.to, err, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, s := range []string{"draft", "scheduled", "paused", "completed", "cancelled"} {
		st, ok := ParseStatus(s)
		if !ok || st.String() != s {
			t.Errorf("ParseStatus(%q) = %v, %v", s, st, ok)
		}
	}
	if _, ok := ParseStatus("unknown"); ok {
		t.Error("unknown parsed")
	}
	if st, ok := ParseLeadStatus("no_answer"); !ok || st != LeadSkipped {
		t.Errorf("legacy no_answer = %v, %v", st, ok)
	}
	for _, c := range []struct {
		s  string
		ok bool
	}{{"09:00:00", true}, {"23:59:59", true}, {"24:00:00", false}, {"9:00:00", false}, {"09:00", false}} {
		if ValidClock(c.s) != c.ok {
			t.Errorf("ValidClock(%q) = %v", c.s, !c.ok)
		}
	}
	for _, c := range []struct{ in, out string }{{"09:00", "09:00:00"}, {"23:59", "23:59:00"}, {"08:30:15", "08:30:15"}} {
		if got, ok := ParseClock(c.in); !ok || got != c.out {
			t.Errorf("ParseClock(%q) = %q, %v; want %q", c.in, got, ok, c.out)
		}
	}
	for _, bad := range []string{"9:00", "24:00", "09:60", "0900", "09:00:0", ""} {
		if got, ok := ParseClock(bad); ok {
			t.Errorf("ParseClock(%q) = %q, accepted", bad, got)
		}
	}
	if !ValidTimezone("Europe/Amsterdam") || ValidTimezone("Mars/Olympus") || ValidTimezone("") || ValidTimezone("Local") {
		t.Error("ValidTimezone")
	}
}
