// Package call holds the vocabulary of a call's life: its status, direction and
// end reason. The live-call engine builds on these; the control plane stores and
// filters by them.
package call

import "fmt"

// Status is where a call is in its life. The zero value is StatusUnknown.
type Status uint8

// Statuses, as spelled on the wire (spec §8.11, §10.5).
const (
	StatusUnknown Status = iota
	StatusConnecting
	StatusRinging
	StatusDialing
	StatusInProgress
	StatusEnded
	StatusEndedWithError
	StatusTransferred
	StatusFailed
	StatusRejected
	StatusInsufficientCredits
)

var statusNames = [...]string{"unknown", "connecting", "ringing", "dialing", "in-progress", "ended", "ended-with-error", "transferred", "failed", "rejected", "insufficient-credits"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", s)
}

// ParseStatus parses a wire spelling; ok is false for anything unknown.
func ParseStatus(s string) (Status, bool) {
	for i, n := range statusNames {
		if i > 0 && n == s {
			return Status(i), true
		}
	}
	return StatusUnknown, false
}

// Statuses lists every known status in order (without StatusUnknown).
func Statuses() []Status {
	out := make([]Status, 0, len(statusNames)-1)
	for i := 1; i < len(statusNames); i++ {
		out = append(out, Status(i))
	}
	return out
}

// Final reports whether no further transition can happen.
func (s Status) Final() bool {
	switch s {
	case StatusEnded, StatusEndedWithError, StatusTransferred, StatusFailed, StatusRejected, StatusInsufficientCredits:
		return true
	}
	return false
}

// Direction is which way a call was placed.
type Direction uint8

// Directions.
const (
	DirectionUnknown Direction = iota
	Inbound
	Outbound
	Web
)

var directionNames = [...]string{"unknown", "inbound", "outbound", "web"}

func (d Direction) String() string {
	if int(d) < len(directionNames) {
		return directionNames[d]
	}
	return fmt.Sprintf("Direction(%d)", d)
}

// ParseDirection parses a wire spelling.
func ParseDirection(s string) (Direction, bool) {
	for i, n := range directionNames {
		if i > 0 && n == s {
			return Direction(i), true
		}
	}
	return DirectionUnknown, false
}

// Directions lists every known direction in order (without DirectionUnknown).
func Directions() []Direction {
	out := make([]Direction, 0, len(directionNames)-1)
	for i := 1; i < len(directionNames); i++ {
		out = append(out, Direction(i))
	}
	return out
}

// UsageType is the usage log's call_type for calls in this direction.
func (d Direction) UsageType() string {
	if d == Web {
		return "web"
	}
	return "phone"
}
