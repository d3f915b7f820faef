package stt

import "sync"

// Queue hands a stream's events from the goroutines that produce them (the
// adapter's reader, sometimes its writer) to Recv, and then the error that
// ended the stream. It is the event half of an adapter's Stream: Push and
// Finish on one side, Recv on the other. Its methods may be called from
// different goroutines. The zero Queue is empty and ready to use; a Queue
// must not be copied after first use.
type Queue struct {
	mu       sync.Mutex
	ready    chan struct{} // cap 1: an event was pushed
	done     chan struct{} // closed by the first Finish, to wake Recv
	events   []Event
	finished bool
	err      error
}

// initLocked makes the channels of a zero Queue.
func (q *Queue) initLocked() {
	if q.done == nil {
		q.ready = make(chan struct{}, 1)
		q.done = make(chan struct{})
	}
}

// Push appends events, in order, for Recv. It never blocks on Recv, and
// takes no lock but the Queue's own: an adapter may call it with its own
// lock held, so that events are queued in the same critical section as the
// state they come from.
func (q *Queue) Push(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	q.mu.Lock()
	q.initLocked()
	q.events = append(q.events, evs...)
	ready := q.ready
	q.mu.Unlock()
	select {
	case ready <- struct{}{}:
	default:
	}
}

// Finish records err as what Recv returns once the queued events are
// drained (io.EOF for a stream closed normally) and wakes a waiting Recv.
// Only the first call counts.
func (q *Queue) Finish(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.finished {
		return
	}
	q.initLocked()
	q.finished = true
	q.err = err
	close(q.done)
}

// Finished reports whether Finish was called.
func (q *Queue) Finished() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.finished
}

// Err returns the error Finish recorded, or nil before Finish.
func (q *Queue) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// Recv blocks for the next event. Once Finish was called and the events
// pushed before it are drained, it returns the recorded error.
func (q *Queue) Recv() (Event, error) {
	for {
		q.mu.Lock()
		if len(q.events) > 0 {
			ev := q.events[0]
			q.events[0] = Event{}
			q.events = q.events[1:]
			q.mu.Unlock()
			return ev, nil
		}
		if q.finished {
			err := q.err
			q.mu.Unlock()
			return Event{}, err
		}
		q.initLocked()
		ready, done := q.ready, q.done
		q.mu.Unlock()
		select {
		case <-ready:
		case <-done:
		}
	}
}
