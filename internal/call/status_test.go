package call

import "testing"

func TestStatusRoundTrip(t *testing.T) {
	if n := len(Statuses()); n != 10 {
		t.Fatalf("%d statuses, want the 10 of spec §10.5", n)
	}
	for _, s := range Statuses() {
		got, ok := ParseStatus(s.String())
		if !ok || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v", s, got, ok)
		}
	}
	for _, bad := range []string{"unknown", "", "In-Progress"} {
		if _, ok := ParseStatus(bad); ok {
			t.Errorf("ParseStatus(%q) accepted", bad)
		}
	}
	if !StatusEnded.Final() || StatusInProgress.Final() {
		t.Error("Final")
	}
	if Web.UsageType() != "web" || Inbound.UsageType() != "phone" {
		t.Error("UsageType")
	}
}
