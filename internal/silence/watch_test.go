package silence

import (
	"testing"
	"time"
)

func TestWatch(t *testing.T) {
	var off *Watch = NewWatch(nil)
	off.Heard()
	off.Sync(false)
	off.Stop()
	if off.C() != nil {
		t.Fatal("a watch that is off has a timer")
	}
	if _, ok := off.Tick(); ok {
		t.Fatal("a watch that is off made an attempt")
	}

	w := NewWatch(&Config{FirstCheck: 30 * time.Millisecond, Interval: 30 * time.Millisecond, MaxAttempts: 2})
	defer w.Stop()
	w.Sync(true) // busy: nothing is due
	select {
	case <-w.C():
		t.Fatal("fired while the line was busy")
	case <-time.After(60 * time.Millisecond):
	}
	w.Sync(false)
	start := time.Now()
	<-w.C()
	if a, ok := w.Tick(); !ok || a.Kind != Check || time.Since(start) < 25*time.Millisecond {
		t.Fatalf("first attempt %+v, %v after %v", a, ok, time.Since(start))
	}
	w.Heard() // the caller spoke: the count starts again
	w.Sync(false)
	<-w.C()
	if a, ok := w.Tick(); !ok || a.Kind != Check || a.Attempt != 1 {
		t.Fatalf("after the caller spoke: %+v, %v; want a first check again", a, ok)
	}
}
