package campaign

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

func TestCheckPacing(t *testing.T) {
	ok := Pacing{MaxConcurrent: 10, CallsPerSecond: 1, MaxAttempts: 3, RetryDelay: time.Minute}
	with := func(f func(*Pacing)) Pacing { p := ok; f(&p); return p }
	tests := []struct {
		name   string
		p      Pacing
		fields []string
	}{
		{"valid", ok, nil},
		{"low edges", Pacing{MaxConcurrent: 1, CallsPerSecond: 0.01, MaxAttempts: 1, RetryDelay: time.Second}, nil},
		{"high edges", Pacing{MaxConcurrent: 1000, CallsPerSecond: 100, MaxAttempts: 10, RetryDelay: 604800 * time.Second}, nil},
		{"defaults", Pacing{}.WithDefaults(), nil},
		{"zero", Pacing{}, []string{"max_concurrent_calls", "calls_per_second", "max_attempts", "retry_delay_seconds"}},
		{"concurrent high", with(func(p *Pacing) { p.MaxConcurrent = 1001 }), []string{"max_concurrent_calls"}},
		{"cps low", with(func(p *Pacing) { p.CallsPerSecond = 0.009 }), []string{"calls_per_second"}},
		{"cps high", with(func(p *Pacing) { p.CallsPerSecond = 100.5 }), []string{"calls_per_second"}},
		{"cps NaN", with(func(p *Pacing) { p.CallsPerSecond = math.NaN() }), []string{"calls_per_second"}},
		{"attempts high", with(func(p *Pacing) { p.MaxAttempts = 11 }), []string{"max_attempts"}},
		{"attempts negative", with(func(p *Pacing) { p.MaxAttempts = -1 }), []string{"max_attempts"}},
		{"delay short", with(func(p *Pacing) { p.RetryDelay = 999 * time.Millisecond }), []string{"retry_delay_seconds"}},
		{"delay long", with(func(p *Pacing) { p.RetryDelay = 604801 * time.Second }), []string{"retry_delay_seconds"}},
	}
	for _, tc := range tests {
		err := CheckPacing(tc.p)
		if tc.fields == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		e, isFault := fault.As(err)
		if !isFault || e.Kind != fault.Invalid || e.Field != tc.fields[0] || len(e.Details) != len(tc.fields) {
			t.Errorf("%s: %v; want invalid %v", tc.name, err, tc.fields)
			continue
		}
		for i, f := range tc.fields {
			if !strings.HasPrefix(e.Details[i], f+" must be from ") {
				t.Errorf("%s: detail %q, want %s and its range", tc.name, e.Details[i], f)
			}
		}
	}
}

func TestWithDefaults(t *testing.T) {
	got := Pacing{}.WithDefaults()
	want := Pacing{MaxConcurrent: DefaultMaxConcurrent, CallsPerSecond: DefaultCallsPerSecond, MaxAttempts: DefaultMaxAttempts, RetryDelay: DefaultRetryDelay}
	if got != want {
		t.Errorf("WithDefaults() = %+v", got)
	}
	set := Pacing{MaxConcurrent: 2, CallsPerSecond: 0.5, MaxAttempts: 1, RetryDelay: time.Second}
	if set.WithDefaults() != set {
		t.Errorf("WithDefaults changed set fields: %+v", set.WithDefaults())
	}
}

func TestRateAllowance(t *testing.T) {
	tests := []struct {
		cps     float64
		window  time.Duration
		started int
		want    int
	}{
		{1, time.Second, 0, 1},
		{1, time.Second, 1, 0},
		{3, time.Second, 1, 2},
		{2.5, time.Second, 0, 2},
		{100, time.Second, 40, 60},
		{0.5, 2 * time.Second, 0, 1},
		{0.2, 5 * time.Second, 0, 1},
		{0.2, 5 * time.Second, 1, 0},
		{0.3, 3333333333, 0, 1}, // 0.3 * (1/0.3) rounds below 1 in floating point
		{0.01, 100 * time.Second, 0, 1},
		{0.7, 1428571429, 0, 1},
		{1, time.Second, 5, 0}, // never below 0
		{0, time.Second, 0, 1}, // unset: the default rate
		{-1, time.Second, 0, 1},
		{math.NaN(), time.Second, 0, 1},
	}
	for _, tc := range tests {
		p := Pacing{CallsPerSecond: tc.cps}
		if got := p.RateWindow(); got != tc.window {
			t.Errorf("cps %v: RateWindow() = %v, want %v", tc.cps, got, tc.window)
		}
		if got := p.RateAllowance(tc.started); got != tc.want {
			t.Errorf("cps %v: RateAllowance(%d) = %d, want %d", tc.cps, tc.started, got, tc.want)
		}
	}
}
