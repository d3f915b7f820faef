package pipeline

import (
	"sync"
	"time"
)

// playout is the queue of reply audio the media sender drains one frame
// every 20 ms. ReadFrame runs on the sender's goroutine; everything else on
// the conversation's. It signals the conversation (coalesced, never
// blocking) when a reply's first frame went out and when its audio ran out.
type playout struct {
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
	// wake tells the media sender that a reply's first audio is ready.
	wake chan struct{}
}

func newPlayout() *playout {
	return &playout{signal: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
}

// ReadFrame implements the media Source.
func (p *playout) ReadFrame(frame []int16) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reply == 0 || p.paused {
		return false
	}
	if len(p.chunks) == 0 {
		if p.complete && p.doneAt.IsZero() {
			p.doneAt = time.Now()
			p.notify()
		}
		return false
	}
	n := 0
	for n < len(frame) && len(p.chunks) > 0 {
		c := p.chunks[0][p.head:]
		k := copy(frame[n:], c)
		n += k
		p.head += k
		if p.head == len(p.chunks[0]) {
			p.chunks[0] = nil
			p.chunks = p.chunks[1:]
			p.head = 0
		}
	}
	clear(frame[n:])
	p.played += n
	if p.firstAt.IsZero() {
		p.firstAt = time.Now()
		p.notify()
	}
	return true
}

func (p *playout) notify() {
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// start begins a new reply, dropping anything left of the previous one.
func (p *playout) start(reply int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reset()
	p.reply = reply
}

// reset forgets the current reply; p.mu is held.
func (p *playout) reset() {
	p.chunks, p.head, p.reply, p.complete, p.paused = nil, 0, 0, false, false
	p.played, p.queued, p.firstAt, p.doneAt = 0, 0, time.Time{}, time.Time{}
}

// push queues audio of the current reply (pcm is kept, not copied).
func (p *playout) push(reply int, pcm []int16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reply != reply || len(pcm) == 0 {
		return
	}
	p.chunks = append(p.chunks, pcm)
	if p.queued == 0 && !p.paused {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	p.queued += len(pcm)
}

// finish says the reply's audio is all queued.
func (p *playout) finish(reply int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reply == reply {
		p.complete = true
	}
}

// pause stops sending at the next frame, keeping the audio.
func (p *playout) pause(paused bool) {
	p.mu.Lock()
	p.paused = paused
	p.mu.Unlock()
}

// stop drops the current reply's audio and returns how much of it was
// played and how much had been received.
func (p *playout) stop() (played, queued int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	played, queued = p.played, p.queued
	p.reset()
	return played, queued
}

// state is what the conversation reads after a signal.
type playState struct {
	reply          int
	firstAt        time.Time
	doneAt         time.Time
	played, queued int
}

func (p *playout) state() playState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return playState{reply: p.reply, firstAt: p.firstAt, doneAt: p.doneAt, played: p.played, queued: p.queued}
}
