package consent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/parley-voice/parley/internal/tts"
)

var errClosed = errors.New("fake tts: stream closed")

// fakeTTS is a tts.Provider whose streams return fixed chunks of audio.
type fakeTTS struct {
	chunks    [][]int16
	openErr   error // Open fails with it
	blockOpen bool  // Open waits for its context to end
	failAt    int   // when > 0, Recv fails with failErr instead of returning chunk failAt (1-based)
	failErr   error
	// gated makes each Recv wait for a token on release; it first reports
	// the index of the chunk it is about to return on recving.
	gated   bool
	release chan struct{}
	recving chan int

	opening chan struct{} // receives when Open is called
	eof     chan struct{} // closed when a stream returned io.EOF

	mu      sync.Mutex
	cfgs    []tts.Config
	streams []*fakeStream
	eofOnce sync.Once
}

func newFakeTTS(chunks [][]int16) *fakeTTS {
	return &fakeTTS{
		chunks:  chunks,
		release: make(chan struct{}),
		recving: make(chan int, 64),
		opening: make(chan struct{}, 64),
		eof:     make(chan struct{}),
	}
}

func (f *fakeTTS) Open(ctx context.Context, cfg tts.Config) (tts.Stream, error) {
	f.opening <- struct{}{}
	f.mu.Lock()
	f.cfgs = append(f.cfgs, cfg)
	f.mu.Unlock()
	if f.blockOpen {
		<-ctx.Done()
		return nil, fmt.Errorf("fake tts: dial: %w", ctx.Err())
	}
	if f.openErr != nil {
		return nil, f.openErr
	}
	s := &fakeStream{f: f, closed: make(chan struct{})}
	f.mu.Lock()
	f.streams = append(f.streams, s)
	f.mu.Unlock()
	return s, nil
}

// opens is how many times Open was called.
func (f *fakeTTS) opens() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.cfgs)
}

func (f *fakeTTS) stream(t *testing.T, i int) *fakeStream {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.streams) {
		t.Fatalf("stream %d was never opened (%d streams)", i, len(f.streams))
	}
	return f.streams[i]
}

type fakeStream struct {
	f         *fakeTTS
	closed    chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	texts   []string
	flushed bool
	next    int
}

func (s *fakeStream) Send(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flushed {
		return errors.New("fake tts: Send after Flush")
	}
	s.texts = append(s.texts, text)
	return nil
}

func (s *fakeStream) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushed = true
	return nil
}

func (s *fakeStream) Recv() (tts.Chunk, error) {
	s.mu.Lock()
	i, flushed := s.next, s.flushed
	s.next++
	s.mu.Unlock()
	if !flushed {
		return tts.Chunk{}, errors.New("fake tts: Recv before Flush")
	}
	if s.f.gated {
		s.f.recving <- i
		select {
		case <-s.f.release:
		case <-s.closed:
			return tts.Chunk{}, errClosed
		}
	}
	select {
	case <-s.closed:
		return tts.Chunk{}, errClosed
	default:
	}
	if s.f.failAt > 0 && i == s.f.failAt-1 {
		return tts.Chunk{}, s.f.failErr
	}
	if i >= len(s.f.chunks) {
		s.f.eofOnce.Do(func() { close(s.f.eof) })
		return tts.Chunk{}, io.EOF
	}
	return tts.Chunk{PCM: slices.Clone(s.f.chunks[i])}, nil
}

func (s *fakeStream) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

func (s *fakeStream) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

func (s *fakeStream) sent() ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.texts), s.flushed
}

// tone returns n chunks of size samples each; every sample is non-zero and
// each chunk differs from the others.
func tone(n, size int) [][]int16 {
	out := make([][]int16, n)
	for i := range out {
		c := make([]int16, size)
		for k := range c {
			v := 2000 + 37*(k%40) // a sawtooth
			if (k/40)%2 == 1 {
				v = -v
			}
			c[k] = int16(v + 100*i)
		}
		out[i] = c
	}
	return out
}
