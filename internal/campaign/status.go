// Package campaign holds the pure rules of outbound campaigns, with no I/O:
//
//   - status.go: campaign and lead statuses, the transitions a client may ask
//     for, the window's defaults and time-of-day and time-zone checks;
//   - window.go: the days of the week (Days) and the daily calling window in
//     the campaign's IANA zone (Window: Open, Next, Closes), exact across DST
//     gaps and repeated hours;
//   - render.go: {{name}} placeholders filled from a lead's variables;
//   - outcome.go: what a finished call attempt means for its lead (Decide:
//     completed, failed, or retried; uncounted attempts, backoff, pausing the
//     campaign);
//   - pacing.go: concurrency, calls per second and retry limits and defaults.
//
// The dialer that places the calls builds on these rules.
package campaign

import (
	"fmt"
	"regexp"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

// Status is a campaign's state. The zero value is StatusUnknown.
type Status uint8

// Campaign statuses (spec §8.19).
const (
	StatusUnknown Status = iota
	Draft
	Scheduled
	Paused
	Completed
	Cancelled
)

var statusNames = [...]string{"unknown", "draft", "scheduled", "paused", "completed", "cancelled"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", s)
}

// ParseStatus parses a wire spelling.
func ParseStatus(s string) (Status, bool) {
	for i, n := range statusNames {
		if i > 0 && n == s {
			return Status(i), true
		}
	}
	return StatusUnknown, false
}

// Settable reports whether a client may set s (completed is set by the platform only).
func (s Status) Settable() bool {
	return s == Draft || s == Scheduled || s == Paused || s == Cancelled
}

// Final reports whether the campaign can no longer change.
func (s Status) Final() bool { return s == Completed || s == Cancelled }

// CheckTransition returns nil when a client may move a campaign from one status to
// another, and a fault describing why not otherwise.
func CheckTransition(from, to Status) error {
	if err := CheckEditable(from); err != nil {
		return err
	}
	if !to.Settable() {
		return fault.Invalidf("status", "must be one of draft, scheduled, paused, cancelled (got %q; completed is set by the platform)", to.String())
	}
	return nil
}

// CheckEditable returns a conflict when a campaign in status s can no longer change.
func CheckEditable(s Status) error {
	if s.Final() {
		return fault.Conflictf("campaign_final", "campaign is %s and can no longer be changed", s)
	}
	return nil
}

// LeadStatus is a lead's state.
type LeadStatus uint8

// Lead statuses (spec §8.19); the old spelling no_answer parses as Skipped.
const (
	LeadUnknown LeadStatus = iota
	LeadPending
	LeadCalling
	LeadCompleted
	LeadFailed
	LeadSkipped
)

var leadNames = [...]string{"unknown", "pending", "calling", "completed", "failed", "skipped"}

func (s LeadStatus) String() string {
	if int(s) < len(leadNames) {
		return leadNames[s]
	}
	return fmt.Sprintf("LeadStatus(%d)", s)
}

// Statuses lists every campaign status in order (without StatusUnknown).
func Statuses() []Status {
	out := make([]Status, 0, len(statusNames)-1)
	for i := 1; i < len(statusNames); i++ {
		out = append(out, Status(i))
	}
	return out
}

// LeadStatuses lists every lead status in order (without LeadUnknown).
func LeadStatuses() []LeadStatus {
	out := make([]LeadStatus, 0, len(leadNames)-1)
	for i := 1; i < len(leadNames); i++ {
		out = append(out, LeadStatus(i))
	}
	return out
}

// ParseLeadStatus parses a wire spelling, accepting the legacy "no_answer".
func ParseLeadStatus(s string) (LeadStatus, bool) {
	if s == "no_answer" {
		return LeadSkipped, true
	}
	for i, n := range leadNames {
		if i > 0 && n == s {
			return LeadStatus(i), true
		}
	}
	return LeadUnknown, false
}

// Defaults for a campaign's window (API-DOC).
const (
	DefaultStart    = "09:00:00"
	DefaultEnd      = "17:00:00"
	DefaultTimezone = "Europe/Amsterdam"
)

// ClockPattern is the regular expression of a time of day as clients may
// send it: HH:MM:SS, or HH:MM (read as HH:MM:00).
const ClockPattern = `^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$`

var clockRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$`)

// ValidClock reports whether s is a "HH:MM:SS" time of day.
func ValidClock(s string) bool { return clockRE.MatchString(s) }

// ParseClock reads a time of day written "HH:MM:SS" or "HH:MM" (the SDK's
// README example sends "09:00") and returns it as "HH:MM:SS", the form
// stored and answered.
func ParseClock(s string) (string, bool) {
	if len(s) == len("15:04") {
		s += ":00"
	}
	return s, ValidClock(s)
}

// ValidTimezone reports whether tz names an IANA zone known to this server.
func ValidTimezone(tz string) bool {
	if tz == "" || tz == "Local" {
		return false
	}
	_, err := time.LoadLocation(tz)
	return err == nil
}
