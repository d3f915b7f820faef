package ratelimit

import (
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 30, 0, time.UTC)
	l := New(3, time.Minute, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		d := l.Allow("a")
		if !d.Allowed || d.Remaining != 2-i || d.Limit != 3 || !d.Reset.Equal(now.Truncate(time.Minute).Add(time.Minute)) {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	d := l.Allow("a")
	if d.Allowed || d.Remaining != 0 || d.RetryAfter != 30*time.Second {
		t.Fatalf("4th request: %+v", d)
	}
	if !l.Allow("b").Allowed {
		t.Fatal("keys share a bucket")
	}
	now = now.Add(30 * time.Second) // next window
	if d := l.Allow("a"); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("new window: %+v", d)
	}
	if len(l.buckets) != 1 {
		t.Fatalf("old buckets kept: %d", len(l.buckets))
	}
}
