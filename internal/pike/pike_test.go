package pike

import (
	"net/netip"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLimiter(t *testing.T) {
	a := netip.MustParseAddr("127.0.0.2")
	b := netip.MustParseAddr("127.0.0.3")
	type step struct {
		after time.Duration // clock advance before the request
		ip    netip.Addr
		n     int // requests sent
		want  Verdict
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"within the limit", []step{{0, a, 4, Allow}}},
		{"over the limit bans once", []step{{0, a, 4, Allow}, {0, a, 1, Banned}, {0, a, 3, Refused}}},
		{"other sources unaffected", []step{{0, a, 4, Allow}, {0, a, 1, Banned}, {0, a, 1, Refused}, {0, b, 4, Allow}}},
		{"a new window starts afresh", []step{{0, a, 4, Allow}, {2 * time.Second, a, 4, Allow}, {0, a, 1, Banned}}},
		{"the ban runs out", []step{{0, a, 4, Allow}, {0, a, 1, Banned}, {10*time.Second - time.Millisecond, a, 1, Refused}, {time.Millisecond, a, 4, Allow}}},
		{"IPv4-mapped counts as IPv4", []step{{0, a, 4, Allow}, {0, netip.AddrFrom16(a.As16()), 1, Banned}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: time.Unix(1000, 0)}
			l := New(Config{Limit: 4, Window: 2 * time.Second, Ban: 10 * time.Second, Now: c.now})
			for i, s := range tt.steps {
				c.t = c.t.Add(s.after)
				for j := 0; j < s.n; j++ {
					got := l.Check(s.ip)
					if got != s.want {
						t.Fatalf("step %d request %d from %s: got %v, want %v", i, j, s.ip, got, s.want)
					}
				}
			}
		})
	}
}

func TestLimiterFirstOverLimitIsBanned(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(Config{Limit: 16, Window: 2 * time.Second, Ban: 300 * time.Second, Now: c.now})
	ip := netip.MustParseAddr("127.0.0.2")
	var verdicts [20]Verdict
	for i := range verdicts {
		verdicts[i] = l.Check(ip)
	}
	for i, v := range verdicts {
		want := Allow
		switch {
		case i == 16:
			want = Banned
		case i > 16:
			want = Refused
		}
		if v != want {
			t.Errorf("request %d: %v, want %v", i+1, v, want)
		}
	}
	if !l.Banned(ip) {
		t.Error("Banned(ip) = false after the ban")
	}
	st := l.Stats()
	if st.Bans != 1 || st.Refused != 4 || st.Sources != 1 {
		t.Errorf("stats %+v, want 1 ban, 4 refused, 1 source", st)
	}
}

// A flood from ever new (spoofed) sources keeps the table at its cap, and
// the banned sources outlive the churn.
func TestLimiterBoundedUnderSpoofedFlood(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(Config{Limit: 2, Window: time.Second, Ban: time.Hour, MaxSources: 1000, Now: c.now})
	banned := netip.MustParseAddr("198.51.100.7")
	for range 3 {
		l.Check(banned)
	}
	if !l.Banned(banned) {
		t.Fatal("not banned")
	}
	for i := range 200_000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if v := l.Check(ip); v != Allow {
			t.Fatalf("first request from %s: %v", ip, v)
		}
		if n := l.Stats().Sources; n > 1000 {
			t.Fatalf("table grew to %d sources (cap 1000)", n)
		}
	}
	if !l.Banned(banned) {
		t.Error("the banned source was evicted by the flood of unbanned ones")
	}
	if l.Stats().Evicted == 0 {
		t.Error("no eviction counted")
	}
}
