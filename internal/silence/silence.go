// Package silence decides when to check on a caller who has gone quiet and
// when to give up on them (spec §12.1, §8.5 speech_config.silence). It is a
// pure state machine: the caller of the package reports what happens on the
// line (the caller was heard, the line is busy or idle) with the time it
// happened, asks when the next attempt falls due, and at that time asks for
// the attempt to make. It keeps no clock and starts no goroutine.
//
// The silence clock runs only while the line is idle: neither the caller nor
// the assistant speaking and no tool running. It starts from the moment the
// line went idle (the end of the assistant's playout or of the caller's
// speech). Attempt 1 falls due FirstCheck after that, and each later attempt
// Interval after the line went idle again following the previous attempt
// (so after its prompt finished playing). Attempts 1 … MaxAttempts-1 are
// checks; attempt MaxAttempts is the final one: FinalMessage is spoken and
// the call ends. Hearing the caller (speech or a key) resets the count.
package silence

import "time"

// Config is one call's silence handling, already resolved from the assistant.
type Config struct {
	// Messages are spoken on successive check attempts; when there are
	// fewer than checks, the last one is repeated. None: the model writes
	// each check (Action.Text is empty).
	Messages []string
	// FinalMessage is spoken on the last attempt before hanging up; empty:
	// the model writes the goodbye.
	FinalMessage string
	// FirstCheck is the silence before the first attempt.
	FirstCheck time.Duration
	// Interval is the silence between later attempts.
	Interval time.Duration
	// MaxAttempts counts every attempt, the final one included (≥ 1).
	MaxAttempts int
}

// Kind says what an attempt does.
type Kind uint8

// Attempt kinds.
const (
	// Check asks whether the caller is still there.
	Check Kind = iota + 1
	// Final says goodbye; the call ends when it has played.
	Final
)

func (k Kind) String() string {
	switch k {
	case Check:
		return "check"
	case Final:
		return "final"
	}
	return "none"
}

// Action is one attempt to make.
type Action struct {
	Kind    Kind
	Attempt int // 1-based
	// Text to speak; empty means the model writes it in the conversation's
	// context.
	Text string
}

// Machine tracks one call's silence. The zero value is not usable; use New.
// It is not safe for concurrent use.
type Machine struct {
	cfg       Config
	attempts  int
	busy      bool
	idleSince time.Time
	done      bool
}

// New starts a machine with the line idle from now (nobody has spoken yet).
func New(cfg Config, now time.Time) *Machine {
	if cfg.MaxAttempts < 1 {
		cfg.MaxAttempts = 1
	}
	return &Machine{cfg: cfg, idleSince: now}
}

// Heard reports the caller speaking or pressing a key: the count starts
// over, and so does the silence clock (while the line is busy it restarts
// anyway when the line turns idle).
func (m *Machine) Heard(now time.Time) {
	m.attempts = 0
	m.idleSince = now
}

// Busy reports whether the line is busy (someone speaking, a tool running).
// Only a change of state matters: the clock restarts when the line turns
// idle.
func (m *Machine) Busy(now time.Time, busy bool) {
	if busy == m.busy {
		return
	}
	m.busy = busy
	if !busy {
		m.idleSince = now
	}
}

// Due is when the next attempt falls due; false while the line is busy or
// after the final attempt.
func (m *Machine) Due() (time.Time, bool) {
	if m.busy || m.done {
		return time.Time{}, false
	}
	wait := m.cfg.Interval
	if m.attempts == 0 {
		wait = m.cfg.FirstCheck
	}
	return m.idleSince.Add(wait), true
}

// Tick returns the attempt due at now, if one is. The clock restarts from
// now, so an attempt that never makes the line busy (a prompt with nothing
// to say) is followed by the next one an Interval later.
func (m *Machine) Tick(now time.Time) (Action, bool) {
	due, ok := m.Due()
	if !ok || now.Before(due) {
		return Action{}, false
	}
	m.attempts++
	m.idleSince = now
	a := Action{Kind: Check, Attempt: m.attempts}
	if m.attempts >= m.cfg.MaxAttempts {
		m.done = true
		a.Kind, a.Text = Final, m.cfg.FinalMessage
		return a, true
	}
	if n := len(m.cfg.Messages); n > 0 {
		a.Text = m.cfg.Messages[min(m.attempts, n)-1]
	}
	return a, true
}

// Attempts is how many attempts were made since the caller was last heard.
func (m *Machine) Attempts() int { return m.attempts }
