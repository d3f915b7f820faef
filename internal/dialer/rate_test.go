package dialer

import (
	"testing"
	"time"
)

func TestRateWindow(t *testing.T) {
	for _, c := range []struct {
		window, tick, want time.Duration
	}{
		{time.Second, 250 * time.Millisecond, 875 * time.Millisecond},
		{10 * time.Second, 250 * time.Millisecond, 9875 * time.Millisecond},
		{time.Second, 40 * time.Millisecond, 980 * time.Millisecond},
		{time.Second, 10 * time.Millisecond, 995 * time.Millisecond},
		{time.Second, 5 * time.Second, 500 * time.Millisecond}, // a tick longer than the window
	} {
		if got := rateWindow(c.window, c.tick); got != c.want {
			t.Errorf("rateWindow(%s, %s) = %s, want %s", c.window, c.tick, got, c.want)
		}
	}
}
