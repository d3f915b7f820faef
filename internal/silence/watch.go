package silence

import "time"

// Watch is a Machine with the timer of its next attempt, the part a
// conversation's event loop holds: it reports what happens on the line and
// selects on C. A nil *Watch is silence handling turned off: its methods
// do nothing and C never fires. Not safe for concurrent use.
type Watch struct {
	m *Machine
	t *time.Timer
}

// NewWatch returns a watch over cfg, or nil when cfg is nil (off).
func NewWatch(cfg *Config) *Watch {
	if cfg == nil {
		return nil
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &Watch{m: New(*cfg, time.Now()), t: t}
}

// C fires when the next attempt is due; nil (never ready) when off.
func (w *Watch) C() <-chan time.Time {
	if w == nil {
		return nil
	}
	return w.t.C
}

// Heard notes the caller's activity: speech, words, keys.
func (w *Watch) Heard() {
	if w != nil {
		w.m.Heard(time.Now())
	}
}

// Sync tells the machine whether the line is busy and re-arms the timer
// for the next attempt. Call it before each wait of the loop.
func (w *Watch) Sync(busy bool) {
	if w == nil {
		return
	}
	now := time.Now()
	w.m.Busy(now, busy)
	w.t.Stop()
	if due, ok := w.m.Due(); ok {
		w.t.Reset(max(0, due.Sub(now)))
	}
}

// Tick returns the attempt that fell due, if any.
func (w *Watch) Tick() (Action, bool) {
	if w == nil {
		return Action{}, false
	}
	return w.m.Tick(time.Now())
}

// Stop releases the timer.
func (w *Watch) Stop() {
	if w != nil {
		w.t.Stop()
	}
}
