package campaign

import (
	"math"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

// Pacing is how fast a campaign dials and how often it tries a lead.
type Pacing struct {
	MaxConcurrent  int
	CallsPerSecond float64
	MaxAttempts    int
	RetryDelay     time.Duration
}

// Pacing defaults; DefaultOrgMaxConcurrent caps an organization's campaign
// calls together.
const (
	DefaultMaxConcurrent    = 10
	DefaultCallsPerSecond   = 1.0
	DefaultMaxAttempts      = 3
	DefaultRetryDelay       = 30 * time.Minute
	DefaultOrgMaxConcurrent = 50
)

// CheckPacing checks every field against its range, naming each bad one:
// max_concurrent_calls 1..1000, calls_per_second 0.01..100, max_attempts
// 1..10, retry_delay_seconds 1..604800. Zero is out of range; call
// WithDefaults first to fill the fields a client did not send.
func CheckPacing(p Pacing) error {
	var f fault.Fields
	if p.MaxConcurrent < 1 || p.MaxConcurrent > 1000 {
		f.Invalidf("max_concurrent_calls", "must be from 1 to 1000, or null for the default (got %d)", p.MaxConcurrent)
	}
	if !(p.CallsPerSecond >= 0.01 && p.CallsPerSecond <= 100) { // NaN fails too
		f.Invalidf("calls_per_second", "must be from 0.01 to 100, or null for the default (got %v)", p.CallsPerSecond)
	}
	if p.MaxAttempts < 1 || p.MaxAttempts > 10 {
		f.Invalidf("max_attempts", "must be from 1 to 10, or null for the default (got %d)", p.MaxAttempts)
	}
	if p.RetryDelay < time.Second || p.RetryDelay > 604800*time.Second {
		f.Invalidf("retry_delay_seconds", "must be from 1 to 604800 (a week), or null for the default (got %v)", p.RetryDelay.Seconds())
	}
	return f.Err()
}

// WithDefaults returns p with its zero fields set to the defaults.
func (p Pacing) WithDefaults() Pacing {
	if p.MaxConcurrent == 0 {
		p.MaxConcurrent = DefaultMaxConcurrent
	}
	if p.CallsPerSecond == 0 {
		p.CallsPerSecond = DefaultCallsPerSecond
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.RetryDelay == 0 {
		p.RetryDelay = DefaultRetryDelay
	}
	return p
}

// cps is the rate, DefaultCallsPerSecond when not a positive number.
func (p Pacing) cps() float64 {
	if !(p.CallsPerSecond > 0) || math.IsInf(p.CallsPerSecond, 0) {
		return DefaultCallsPerSecond
	}
	return p.CallsPerSecond
}

// windowSeconds is max(1, 1/cps).
func (p Pacing) windowSeconds() float64 { return max(1, 1/p.cps()) }

// RateWindow is the span over which starts are counted: max(1s, 1/cps), so
// 0.2 calls per second is one call per 5 s window and 3 per second is three
// per 1 s window.
func (p Pacing) RateWindow() time.Duration {
	return time.Duration(math.Round(p.windowSeconds() * float64(time.Second)))
}

// RateAllowance is how many calls may start now, given how many started in
// the last RateWindow: floor(cps*window) - startedInWindow, never below 0.
func (p Pacing) RateAllowance(startedInWindow int) int {
	// The epsilon keeps cps*(1/cps) at 1 despite rounding (0.3*(1/0.3) < 1).
	perWindow := int(math.Floor(p.cps()*p.windowSeconds() + 1e-9))
	return max(0, perWindow-startedInWindow)
}
