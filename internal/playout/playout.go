// Package playout is the queue of an assistant's audio between the
// conversation that produces it and the media sender that drains it one
// 20 ms frame at a time. It knows which reply is playing, how much of it
// has been heard, and signals the conversation when a reply's first frame
// went out and when its audio ran out. Both conversation engines, the
// pipeline and the realtime one, play through it.
package playout

import (
	"sync"
	"time"
)

// Queue holds the audio of one reply at a time. ReadFrame runs on the media
// sender's goroutine; the other methods on the conversation's.
type Queue struct {
	mu       sync.Mutex
	chunks   [][]int16
	head     int // samples of chunks[0] already played
	reply    int // id of the reply being played; 0 = none
	complete bool
	paused   bool
	played   int // samples of this reply played
	queued   int // samples of this reply received
	firstAt  time.Time
	doneAt   time.Time
	signal   chan struct{}
	wake     chan struct{}
}

// New returns an empty queue.
func New() *Queue {
	return &Queue{signal: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
}

// ReadFrame implements the media Source: it fills frame with the next
// samples of the playing reply and reports whether there were any.
func (q *Queue) ReadFrame(frame []int16) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reply == 0 || q.paused {
		return false
	}
	if len(q.chunks) == 0 {
		if q.complete && q.doneAt.IsZero() {
			q.doneAt = time.Now()
			q.notify()
		}
		return false
	}
	n := 0
	for n < len(frame) && len(q.chunks) > 0 {
		c := q.chunks[0][q.head:]
		k := copy(frame[n:], c)
		n += k
		q.head += k
		if q.head == len(q.chunks[0]) {
			q.chunks[0] = nil
			q.chunks = q.chunks[1:]
			q.head = 0
		}
	}
	clear(frame[n:])
	q.played += n
	if q.firstAt.IsZero() {
		q.firstAt = time.Now()
		q.notify()
	}
	return true
}

// Signal fires (coalesced) when a reply's first frame went out and when
// its audio ran out after Finish; read State then.
func (q *Queue) Signal() <-chan struct{} { return q.signal }

// Wake implements the media waker: a reply's first audio is ready, so the
// sender need not wait for its next tick.
func (q *Queue) Wake() <-chan struct{} { return q.wake }

func (q *Queue) notify() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// Start begins reply (a non-zero id), dropping anything left of the
// previous one.
func (q *Queue) Start(reply int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reset()
	q.reply = reply
}

// reset forgets the current reply; q.mu is held.
func (q *Queue) reset() {
	q.chunks, q.head, q.reply, q.complete, q.paused = nil, 0, 0, false, false
	q.played, q.queued, q.firstAt, q.doneAt = 0, 0, time.Time{}, time.Time{}
}

// Push queues audio of reply; audio of any other reply is dropped. pcm is
// kept, not copied.
func (q *Queue) Push(reply int, pcm []int16) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reply != reply || len(pcm) == 0 {
		return
	}
	q.chunks = append(q.chunks, pcm)
	if q.queued == 0 && !q.paused {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	q.queued += len(pcm)
}

// Finish says all of reply's audio is queued.
func (q *Queue) Finish(reply int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reply == reply {
		q.complete = true
	}
}

// Pause stops sending at the next frame, keeping the audio, or resumes.
func (q *Queue) Pause(paused bool) {
	q.mu.Lock()
	q.paused = paused
	q.mu.Unlock()
}

// Stop drops the current reply's audio and returns how many of its
// samples were played and how many had been received.
func (q *Queue) Stop() (played, queued int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	played, queued = q.played, q.queued
	q.reset()
	return played, queued
}

// State is the playing reply's progress.
type State struct {
	Reply          int
	FirstAt        time.Time // its first frame went out; zero = not yet
	DoneAt         time.Time // its audio ran out after Finish; zero = not yet
	Played, Queued int       // samples
}

// State returns the playing reply's progress.
func (q *Queue) State() State {
	q.mu.Lock()
	defer q.mu.Unlock()
	return State{Reply: q.reply, FirstAt: q.firstAt, DoneAt: q.doneAt, Played: q.played, Queued: q.queued}
}
