// Package fakeconns keeps count of a provider fake's live requests, so that
// the fake's Close can end every connection and wait for it.
package fakeconns

import (
	"context"
	"sync"
)

// Set is a fake server's live requests. Its methods may be called from
// different goroutines. The zero Set is not usable; call New.
type Set struct {
	ctx  context.Context // cancelled by Close
	stop context.CancelFunc
	wg   sync.WaitGroup // requests that entered and have not left

	mu     sync.Mutex
	closed bool
}

// New returns an empty, open Set.
func New() *Set {
	ctx, stop := context.WithCancel(context.Background())
	return &Set{ctx: ctx, stop: stop}
}

// Enter registers a request and reports true, or reports false once Close
// was called (the fake then refuses the request). A handler that entered
// calls Leave when it returns.
func (s *Set) Enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Leave ends a request that entered.
func (s *Set) Leave() { s.wg.Done() }

// Context ends when Close is called.
func (s *Set) Context() context.Context { return s.ctx }

// Bind returns a context that ends with parent (the request's) or on Close,
// and the function that releases it.
func (s *Set) Bind(parent context.Context) (ctx context.Context, release func()) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// Close refuses further requests, ends the live ones' contexts and waits
// for their handlers to leave.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
}
