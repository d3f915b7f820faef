package main

import (
	"strings"
	"testing"
	"time"
)

func TestCrossAt(t *testing.T) {
	at := func(s int, dialled int64) sample {
		return sample{At: time.Duration(s) * time.Second, Dialer: dialerStats{Dialled: dialled}}
	}
	samples := []sample{at(1, 40), at(2, 80), at(3, 80), at(4, 120)}
	for _, c := range []struct {
		target float64
		want   time.Duration
	}{
		{20, 500 * time.Millisecond}, // from 0 at time 0
		{40, time.Second},
		{60, 1500 * time.Millisecond},
		{80, 2 * time.Second},
		{100, 3500 * time.Millisecond}, // after the flat second
		{500, 4 * time.Second},         // never reached: the last sample
	} {
		if got := crossAt(samples, c.target); got != c.want {
			t.Errorf("crossAt(%v) = %s, want %s", c.target, got, c.want)
		}
	}
}

func TestSummarizeSteadyPhase(t *testing.T) {
	// 10 dials a second for 10 s, 50 calling throughout, then 5 s of tail.
	var r result
	for s := 1; s <= 15; s++ {
		d := int64(min(10*s, 100))
		r.Samples = append(r.Samples, sample{At: time.Duration(s) * time.Second,
			Dialer:   dialerStats{Claimed: d, Dialled: d, Settled: max(0, d-50)},
			Campaign: campaignState{TotalLeads: 100, CallingLeads: 50}})
	}
	s := summarize(&r)
	if s.SteadyRate != 10 || s.DialRate != 10 || s.LastDial != 10*time.Second || s.MedianCalling != 50 || s.SlotSeconds != 5 {
		t.Errorf("summary %+v: want 10 dials/s steady and overall, last dial at 10 s, 50 calling, 5 s a slot", s)
	}
}

func TestAnsweringNumber(t *testing.T) {
	seen := map[string]bool{}
	for i := range 10000 {
		n := answeringNumber(i)
		if len(n) != 12 || strings.ContainsAny(n[len(n)-1:], "123") || seen[n] {
			t.Fatalf("lead %d: %s (a busy, unanswered or congested number, a duplicate, or not 11 digits)", i, n)
		}
		seen[n] = true
	}
}

func TestProcCPU(t *testing.T) {
	stat := []byte("4242 (parley serve) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 0 0")
	if got, err := procCPU(stat); err != nil || got != 3250*time.Millisecond {
		t.Errorf("procCPU = %s, %v; want 3.25s", got, err)
	}
	if _, err := procCPU([]byte("garbage")); err == nil {
		t.Error("procCPU of garbage: no error")
	}
}
