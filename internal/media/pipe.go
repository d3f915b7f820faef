package media

import "sync"

// Pipe connects one session's received audio to another session's sent
// audio (a bridged call): it is a Sink on one side and a Source on the
// other. It holds at most depth frames; when the reader falls behind, the
// oldest frames are dropped so delay cannot build up.
type Pipe struct {
	mu     sync.Mutex
	frames [][]int16
	head   int
	n      int
}

// NewPipe makes a pipe holding up to depth frames (at least 2).
func NewPipe(depth int) *Pipe {
	depth = max(depth, 2)
	p := &Pipe{frames: make([][]int16, depth)}
	for i := range p.frames {
		p.frames[i] = make([]int16, FrameSamples)
	}
	return p
}

// WriteFrame implements Sink.
func (p *Pipe) WriteFrame(frame []int16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == len(p.frames) {
		p.head = (p.head + 1) % len(p.frames)
		p.n--
	}
	copy(p.frames[(p.head+p.n)%len(p.frames)], frame)
	p.n++
}

// ReadFrame implements Source; false (silence) when nothing is buffered.
func (p *Pipe) ReadFrame(frame []int16) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 {
		return false
	}
	copy(frame, p.frames[p.head])
	p.head = (p.head + 1) % len(p.frames)
	p.n--
	return true
}

// Bridge connects two sessions' audio both ways until either is given a
// new source or sink.
func Bridge(a, b *Session) {
	ab, ba := NewPipe(5), NewPipe(5)
	a.SetSink(ab)
	b.SetSource(ab)
	b.SetSink(ba)
	a.SetSource(ba)
}
