package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/realtime"
	"github.com/parley-voice/parley/internal/tts"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeProvider hands out one fakeSession, or fails to connect.
type fakeProvider struct {
	s      *fakeSession
	err    error
	delay  time.Duration // Connect takes this long
	mu     sync.Mutex
	gotCfg realtime.Config
}

func (p *fakeProvider) config() realtime.Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gotCfg
}

func (p *fakeProvider) Connect(ctx context.Context, cfg realtime.Config) (realtime.Session, error) {
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	p.gotCfg = cfg
	p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	return p.s, nil
}

// fakeSession is a realtime.Session the test drives: it emits what the
// test pushes and records every request.
type fakeSession struct {
	events chan realtime.Event
	fail   chan error
	done   chan struct{}
	once   sync.Once

	mu       sync.Mutex
	requests []string // "respond:<instructions>", "truncate:<item>:<ms>", "cancel", "add:<role>:<text>", "results:<name>=<output>,..."
	audio    int      // samples received
	notify   chan struct{}
}

func newFakeSession() *fakeSession {
	return &fakeSession{events: make(chan realtime.Event, 256), fail: make(chan error, 1), done: make(chan struct{}), notify: make(chan struct{}, 64)}
}

func (s *fakeSession) note(r string) error {
	select {
	case <-s.done:
		return errors.New("session closed")
	default:
	}
	s.mu.Lock()
	s.requests = append(s.requests, r)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

func (s *fakeSession) SendAudio(pcm []int16) error {
	s.mu.Lock()
	s.audio += len(pcm)
	s.mu.Unlock()
	return nil
}

func (s *fakeSession) Recv() (realtime.Event, error) {
	select {
	case ev := <-s.events:
		return ev, nil
	case err := <-s.fail:
		return realtime.Event{}, err
	case <-s.done:
		return realtime.Event{}, io.EOF
	}
}

func (s *fakeSession) AddMessage(_ context.Context, role llm.Role, text string) error {
	return s.note("add:" + string(role) + ":" + text)
}
func (s *fakeSession) Respond(_ context.Context, instructions string) error {
	return s.note("respond:" + instructions)
}
func (s *fakeSession) ToolResults(_ context.Context, rs []realtime.ToolResult) error {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.Name + "=" + r.Output
	}
	return s.note("results:" + strings.Join(parts, ","))
}
func (s *fakeSession) Truncate(_ context.Context, item string, heard time.Duration) error {
	return s.note(fmt.Sprintf("truncate:%s:%d", item, heard.Milliseconds()))
}
func (s *fakeSession) Cancel(context.Context) error { return s.note("cancel") }
func (s *fakeSession) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

func (s *fakeSession) emit(ev realtime.Event) { s.events <- ev }

// speak emits d of the model's audio in item, in 100 ms pieces, and the
// end of the response with text.
func (s *fakeSession) speak(item string, d time.Duration, text string) {
	n := int(d / (100 * time.Millisecond))
	for range n {
		pcm := make([]int16, 800)
		for i := range pcm {
			pcm[i] = 1000
		}
		s.emit(realtime.Event{Type: realtime.Audio, ItemID: item, Audio: pcm})
	}
	s.emit(realtime.Event{Type: realtime.ResponseDone, Text: text})
}

// waitRequest waits for a request with the prefix and returns it.
func (s *fakeSession) waitRequest(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		s.mu.Lock()
		for _, r := range s.requests {
			if strings.HasPrefix(r, prefix) {
				s.mu.Unlock()
				return r
			}
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %q request; got %q", prefix, s.all())
		}
	}
}

func (s *fakeSession) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

type memRecorder struct {
	mu    sync.Mutex
	msgs  []pipeline.Message
	turns []pipeline.TurnMetrics
}

func (r *memRecorder) Message(m pipeline.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}
func (r *memRecorder) Turn(m pipeline.TurnMetrics) {
	r.mu.Lock()
	r.turns = append(r.turns, m)
	r.mu.Unlock()
}

func (r *memRecorder) messages() []pipeline.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pipeline.Message(nil), r.msgs...)
}

func (r *memRecorder) waitMessage(t *testing.T, role llm.Role, contains string) pipeline.Message {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range r.messages() {
			if m.Role == role && strings.Contains(m.Content, contains) {
				return m
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s message containing %q; transcript %+v", role, contains, r.messages())
	return pipeline.Message{}
}

// rig runs a conversation on a fake session with a 20 ms clock standing
// in for the media session.
type rig struct {
	t    *testing.T
	conv *Conversation
	s    *fakeSession
	p    *fakeProvider
	rec  *memRecorder

	mu     sync.Mutex
	played int // frames of audio sent to the caller
	done   chan struct{}
	end    pipeline.Ending
	err    error
}

func newRig(t *testing.T, cfg Config, deps Deps) *rig {
	t.Helper()
	r := &rig{t: t, s: newFakeSession(), rec: &memRecorder{}, done: make(chan struct{})}
	if deps.Provider == nil {
		r.p = &fakeProvider{s: r.s}
		deps.Provider = r.p
	}
	deps.Recorder = r.rec
	r.conv = New(cfg, deps)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(r.done)
		r.end, r.err = r.conv.Run(ctx)
	}()
	go func() { // the media sender
		defer wg.Done()
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		frame := make([]int16, 160)
		for {
			select {
			case <-r.done:
				return
			case <-tk.C:
				if r.conv.ReadFrame(frame) {
					r.mu.Lock()
					r.played++
					r.mu.Unlock()
				}
				r.conv.WriteFrame(frame)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		r.conv.Background()
		r.s.Close()
	})
	return r
}

func (r *rig) frames() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.played
}

// waitFrames waits until at least n frames have played.
func (r *rig) waitFrames(n int) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.frames() < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("only %d frames played, want %d", r.frames(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wait waits for Run to return.
func (r *rig) wait() (pipeline.Ending, error) {
	r.t.Helper()
	select {
	case <-r.done:
		return r.end, r.err
	case <-time.After(20 * time.Second):
		r.t.Fatal("the conversation did not end")
		return pipeline.Ending{}, nil
	}
}

// fakeTTS speaks 50 ms of audio per character.
type fakeTTS struct {
	mu   sync.Mutex
	said []string
	err  error
}

func (f *fakeTTS) Open(context.Context, tts.Config) (tts.Stream, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &fakeTTSStream{f: f, out: make(chan []int16, 1)}, nil
}

type fakeTTSStream struct {
	f   *fakeTTS
	out chan []int16
}

func (s *fakeTTSStream) Send(text string) error {
	s.f.mu.Lock()
	s.f.said = append(s.f.said, text)
	s.f.mu.Unlock()
	s.out <- make([]int16, 400*len(text))
	close(s.out)
	return nil
}
func (s *fakeTTSStream) Flush() error { return nil }
func (s *fakeTTSStream) Recv() (tts.Chunk, error) {
	pcm, ok := <-s.out
	if !ok {
		return tts.Chunk{}, io.EOF
	}
	return tts.Chunk{PCM: pcm}, nil
}
func (s *fakeTTSStream) Close() error { return nil }

// runner answers tool calls with a fixed result.
type runner struct {
	mu    sync.Mutex
	calls []llm.ToolCall
}

func (r *runner) Run(_ context.Context, tc llm.ToolCall) string {
	r.mu.Lock()
	r.calls = append(r.calls, tc)
	r.mu.Unlock()
	return `{"booked":true}`
}
