package realtimefake

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/realtime"
)

// Provider is an in-process realtime.Provider that holds the Script's
// conversation with no wire protocol in between, for tests of what sits
// above the contract (the call handler, the conversation engine). The
// protocol fakes of each vendor are what adapters are tested against.
type Provider struct {
	Script Script
	// Threshold and Silence tune the Ear (zero: its defaults).
	Threshold float64
	Silence   time.Duration

	mu       sync.Mutex
	configs  []realtime.Config
	requests []string
}

// Connect opens a session.
func (p *Provider) Connect(ctx context.Context, cfg realtime.Config) (realtime.Session, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("realtimefake: no API key")
	}
	p.mu.Lock()
	p.configs = append(p.configs, cfg)
	p.mu.Unlock()
	s := &session{p: p, ear: NewEar(realtime.SampleRate, p.Threshold, p.Silence),
		events: make(chan realtime.Event, 1024), done: make(chan struct{})}
	context.AfterFunc(ctx, func() { s.Close() })
	return s, nil
}

// Configs returns the configurations sessions were opened with.
func (p *Provider) Configs() []realtime.Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]realtime.Config(nil), p.configs...)
}

// Requests returns what sessions were asked, in order: "respond:<text>",
// "add:<role>:<text>", "results:<name>=<output>", "truncate:<item>:<ms>",
// "cancel".
func (p *Provider) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

func (p *Provider) note(r string) {
	p.mu.Lock()
	p.requests = append(p.requests, r)
	p.mu.Unlock()
}

type session struct {
	p      *Provider
	mu     sync.Mutex
	ear    *Ear
	heard  int // utterances heard
	items  int
	events chan realtime.Event
	done   chan struct{}
	once   sync.Once
}

func (s *session) emit(ev realtime.Event) {
	select {
	case s.events <- ev:
	case <-s.done:
	}
}

// speak emits text as the model's audio, in 100 ms pieces, and ends the
// response.
func (s *session) speak(text string) {
	s.mu.Lock()
	s.items++
	id := "item-" + strconv.Itoa(s.items)
	s.mu.Unlock()
	pcm := Synth(text, realtime.SampleRate)
	for len(pcm) > 0 {
		n := min(len(pcm), realtime.SampleRate/10)
		s.emit(realtime.Event{Type: realtime.Audio, ItemID: id, Audio: pcm[:n]})
		pcm = pcm[n:]
	}
	s.emit(realtime.Event{Type: realtime.ResponseDone, Text: text})
}

// answer responds to what the caller said.
func (s *session) answer(transcript string) {
	a := s.p.Script.Answer(transcript)
	if a.Call == nil {
		s.speak(a.Text)
		return
	}
	args := a.Call.Arguments
	if args == "" {
		args = "{}"
	}
	s.emit(realtime.Event{Type: realtime.ToolCalls, Calls: []llm.ToolCall{{ID: "call-" + a.Call.Name, Name: a.Call.Name, Arguments: args}}})
}

func (s *session) SendAudio(pcm []int16) error {
	select {
	case <-s.done:
		return errors.New("realtimefake: session closed")
	default:
	}
	s.mu.Lock()
	heard := s.ear.Hear(pcm)
	var transcripts []string
	for _, h := range heard {
		if h.Kind == SpeechStopped {
			transcripts = append(transcripts, s.p.Script.Transcript(s.heard))
			s.heard++
		}
	}
	s.mu.Unlock()
	i := 0
	for _, h := range heard {
		switch h.Kind {
		case SpeechStarted:
			s.emit(realtime.Event{Type: realtime.SpeechStarted})
		case SpeechStopped:
			t := transcripts[i]
			i++
			s.emit(realtime.Event{Type: realtime.SpeechStopped})
			s.emit(realtime.Event{Type: realtime.UserTranscript, Text: t})
			go s.answer(t)
		}
	}
	return nil
}

func (s *session) Recv() (realtime.Event, error) {
	select {
	case ev := <-s.events:
		return ev, nil
	case <-s.done:
		return realtime.Event{}, io.EOF
	}
}

func (s *session) AddMessage(_ context.Context, role llm.Role, text string) error {
	s.p.note("add:" + string(role) + ":" + text)
	return nil
}

func (s *session) Respond(_ context.Context, instructions string) error {
	s.p.note("respond:" + instructions)
	go s.speak(s.p.Script.Instructed(instructions))
	return nil
}

func (s *session) ToolResults(_ context.Context, results []realtime.ToolResult) error {
	for _, r := range results {
		s.p.note("results:" + r.Name + "=" + r.Output)
	}
	if len(results) > 0 {
		go s.speak(s.p.Script.AfterTool(results[0].Name, results[0].Output))
	}
	return nil
}

func (s *session) Truncate(_ context.Context, item string, heard time.Duration) error {
	s.p.note("truncate:" + item + ":" + strconv.FormatInt(heard.Milliseconds(), 10))
	return nil
}

func (s *session) Cancel(context.Context) error {
	s.p.note("cancel")
	return nil
}

func (s *session) Close() error {
	s.once.Do(func() {
		close(s.done)
	})
	return nil
}
