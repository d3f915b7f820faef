// Package ratelimit counts requests per key in fixed windows: at most Limit
// requests per Window for each key (an API key, a call id). Fixed windows match
// the API's headers exactly: X-RateLimit-Reset is the end of the current window
// and Retry-After the time until then.
//
// A Limiter lives in one process. Behind several nodes each node counts on its
// own, so an operator divides the configured limit by the node count.
package ratelimit

import (
	"sync"
	"time"
)

// Decision is the outcome of one Allow call, with what the headers need.
type Decision struct {
	Allowed    bool
	Limit      int
	Remaining  int
	Reset      time.Time     // end of the current window
	RetryAfter time.Duration // zero when allowed
}

// Limiter is safe for concurrent use. Create it with New.
type Limiter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	start time.Time
	count int
}

// New returns a limiter of limit requests per window. now may be nil (time.Now).
func New(limit int, window time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{limit: limit, window: window, now: now, buckets: map[string]*bucket{}}
}

// Limit returns the configured requests per window.
func (l *Limiter) Limit() int { return l.limit }

// Allow counts one request for key and says whether it may proceed.
func (l *Limiter) Allow(key string) Decision {
	now := l.now()
	start := now.Truncate(l.window)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(start)
	b := l.buckets[key]
	if b == nil || !b.start.Equal(start) {
		b = &bucket{start: start}
		l.buckets[key] = b
	}
	reset := start.Add(l.window)
	d := Decision{Limit: l.limit, Reset: reset}
	if b.count >= l.limit {
		d.RetryAfter = reset.Sub(now)
		return d
	}
	b.count++
	d.Allowed, d.Remaining = true, l.limit-b.count
	return d
}

// sweep drops buckets of past windows, at most once per window.
func (l *Limiter) sweep(current time.Time) {
	if !l.swept.Before(current) {
		return
	}
	for k, b := range l.buckets {
		if b.start.Before(current) {
			delete(l.buckets, k)
		}
	}
	l.swept = current
}
