package consent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/consent"
	"github.com/parley-voice/parley/internal/media"
	"github.com/parley-voice/parley/internal/tts"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The prompt is the call's media source, waker and DTMF sink.
var (
	_ media.Source   = (*consent.Prompt)(nil)
	_ media.Waker    = (*consent.Prompt)(nil)
	_ media.DTMFSink = (*consent.Prompt)(nil)
)

const (
	message = "This call may be recorded. Press 1 to agree or 2 to decline."
	// never is a Wait no test reaches: the test decides first.
	never = time.Hour
	// patience bounds every wait for something that must happen.
	patience = 5 * time.Second
)

var voice = tts.Config{Voice: "rachel", Model: "turbo", Language: "en", SampleRate: 8000, APIKey: "sk_test"}

type result struct {
	d   consent.Decision
	err error
	at  time.Time
}

// run starts p.Run; the test must receive its result (goleak checks).
func run(ctx context.Context, p *consent.Prompt) <-chan result {
	ch := make(chan result, 1)
	go func() {
		d, err := p.Run(ctx)
		ch <- result{d, err, time.Now()}
	}()
	return ch
}

func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(patience):
		t.Fatalf("Run did not return within %s", patience)
		return result{}
	}
}

func expect(t *testing.T, ch <-chan result, want consent.Decision) result {
	t.Helper()
	r := await(t, ch)
	if r.err != nil || r.d != want {
		t.Fatalf("Run = %v, %v; want %v, nil", r.d, r.err, want)
	}
	return r
}

func pending(t *testing.T, ch <-chan result, when string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s: Run returned %v, %v early", when, r.d, r.err)
	default:
	}
}

// must receives from ch, failing the test after patience.
func must[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(patience):
		t.Fatalf("waited %s for the fake", patience)
		panic("unreachable")
	}
}

func awaitWake(t *testing.T, p *consent.Prompt) {
	t.Helper()
	select {
	case <-p.Wake():
	case <-time.After(patience):
		t.Fatalf("Wake not signalled within %s", patience)
	}
}

// woken reports whether Wake is signalled now, consuming the signal.
func woken(p *consent.Prompt) bool {
	select {
	case <-p.Wake():
		return true
	default:
		return false
	}
}

// play reads n samples of audio as the media sender would, frame by frame,
// waiting for Wake whenever ReadFrame has nothing yet. It returns the audio,
// the time just before the frame that carried the last sample, and the rest
// of that frame. Test audio has no zero samples, so zeros are padding: a
// frame handed out when synthesis lags ends in silence.
func play(t *testing.T, p *consent.Prompt, n int) (audio []int16, last time.Time, tail []int16) {
	t.Helper()
	frame := make([]int16, media.FrameSamples)
	for len(audio) < n {
		last = time.Now()
		if !p.ReadFrame(frame) {
			awaitWake(t, p)
			continue
		}
		k := min(len(frame), n-len(audio))
		got := frame[:k]
		for len(got) > 0 && got[len(got)-1] == 0 {
			got = got[:len(got)-1]
		}
		if slices.Contains(got, 0) {
			t.Fatalf("silence inside a frame of audio: %v", frame)
		}
		audio = append(audio, got...)
		tail = frame[len(got):]
	}
	return audio, last, tail
}

// playMessage plays the whole message, checks it is want followed by
// silence, and returns the time just before its last frame was read.
func playMessage(t *testing.T, p *consent.Prompt, want []int16) time.Time {
	t.Helper()
	got, last, tail := play(t, p, len(want))
	if !slices.Equal(got, want) {
		t.Fatal("played audio differs from the synthesized message")
	}
	if slices.ContainsFunc(tail, func(s int16) bool { return s != 0 }) {
		t.Fatalf("the last frame is not padded with silence: %v", tail)
	}
	return last
}

func silent(t *testing.T, p *consent.Prompt, when string) {
	t.Helper()
	frame := make([]int16, media.FrameSamples)
	if p.ReadFrame(frame) {
		t.Fatalf("%s: ReadFrame returned audio, want silence", when)
	}
}

func concat(chunks [][]int16) []int16 { return slices.Concat(chunks...) }

// checkStream asserts the message went to one stream, whole, then Flush,
// with the voice settings, and that the stream was closed.
func checkStream(t *testing.T, f *fakeTTS) {
	t.Helper()
	if n := f.opens(); n != 1 {
		t.Fatalf("%d TTS streams opened, want exactly 1", n)
	}
	if !reflect.DeepEqual(f.cfgs[0], voice) {
		t.Errorf("TTS opened with %+v, want %+v", f.cfgs[0], voice)
	}
	s := f.stream(t, 0)
	texts, flushed := s.sent()
	if !slices.Equal(texts, []string{message}) || !flushed {
		t.Errorf("stream got %q (flushed %v), want the message then Flush", texts, flushed)
	}
	if !s.isClosed() {
		t.Error("TTS stream not closed")
	}
}

func TestAgreeDuringPlayback(t *testing.T) {
	f := newFakeTTS(tone(5, 400))
	f.gated = true
	p := consent.New(consent.Config{Message: message, TTS: f, Voice: voice, Wait: never})
	res := run(t.Context(), p)
	must(t, f.recving)
	f.release <- struct{}{} // only the first chunk: synthesis is still going on
	got, _, _ := play(t, p, 2*media.FrameSamples)
	if !slices.Equal(got, f.chunks[0][:len(got)]) {
		t.Fatal("played audio is not the first chunk")
	}
	p.DTMF('1')
	silent(t, p, "right after 1")
	expect(t, res, consent.Agreed)
	silent(t, p, "after Run")
	checkStream(t, f) // closed although more audio was to come
}

func TestAgreeAfterPlayback(t *testing.T) {
	f := newFakeTTS(tone(5, 400))
	p := consent.New(consent.Config{Message: message, TTS: f, Voice: voice, Wait: never})
	res := run(t.Context(), p)
	want := concat(f.chunks)
	playMessage(t, p, want)
	silent(t, p, "after the message")
	pending(t, res, "after the message")
	p.DTMF('1')
	expect(t, res, consent.Agreed)
	checkStream(t, f)
}

func TestDecline(t *testing.T) {
	for _, during := range []bool{true, false} {
		name := map[bool]string{true: "during playback", false: "after playback"}[during]
		t.Run(name, func(t *testing.T) {
			f := newFakeTTS(tone(5, 400))
			p := consent.New(consent.Config{Message: message, TTS: f, Voice: voice, Wait: never})
			res := run(t.Context(), p)
			n := len(concat(f.chunks))
			if during {
				n = media.FrameSamples
			}
			play(t, p, n)
			p.DTMF('2')
			silent(t, p, "right after 2")
			expect(t, res, consent.Declined)
			p.DTMF('1') // too late: harmless
			silent(t, p, "after Run")
			checkStream(t, f)
		})
	}
}

func TestNoAnswerRepeats(t *testing.T) {
	const wait = 20 * time.Millisecond
	tests := []struct {
		repeats int
		rounds  int
	}{
		{0, 2}, // the default: repeated once
		{-1, 1},
		{2, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("repeats=%d", tt.repeats), func(t *testing.T) {
			f := newFakeTTS(tone(3, 500))
			p := consent.New(consent.Config{Message: message, TTS: f, Voice: voice, Wait: wait, Repeats: tt.repeats})
			res := run(t.Context(), p)
			want := concat(f.chunks)
			var last time.Time
			for round := 1; round <= tt.rounds; round++ {
				last = playMessage(t, p, want)
				woken(p) // a signal left from synthesis is not a repeat
				if round < tt.rounds {
					pending(t, res, "before the last round")
				}
			}
			r := expect(t, res, consent.NoAnswer)
			if d := r.at.Sub(last); d < wait {
				t.Errorf("gave up %s after the message ended, want ≥ %s", d, wait)
			}
			silent(t, p, "after Run")
			if woken(p) {
				t.Error("Wake signalled after the last round: the message was said once more")
			}
			checkStream(t, f) // one stream for every round
		})
	}
}

func TestOtherKeysIgnored(t *testing.T) {
	var logs syncBuffer
	f := newFakeTTS(tone(5, 400))
	p := consent.New(consent.Config{
		Message: message, TTS: f, Voice: voice, Wait: never,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	res := run(t.Context(), p)
	want := concat(f.chunks)
	first, _, _ := play(t, p, media.FrameSamples)
	ignored := []rune{'0', '3', '9', '*', '#', 'A'}
	for _, d := range ignored {
		p.DTMF(d)
	}
	playMessage(t, p, want[len(first):]) // the message goes on
	pending(t, res, "after other keys")
	p.DTMF('2')
	expect(t, res, consent.Declined)
	if n := strings.Count(logs.String(), "consent key ignored"); n != len(ignored) {
		t.Errorf("%d ignored keys logged, want %d:\n%s", n, len(ignored), logs.String())
	}
}

func TestKeyBeforeRun(t *testing.T) {
	tests := []struct {
		keys string
		want consent.Decision
	}{
		{"1", consent.Agreed},
		{"2", consent.Declined},
		{"#21", consent.Declined}, // the first of 1 and 2 wins
	}
	for _, tt := range tests {
		t.Run(tt.keys, func(t *testing.T) {
			f := newFakeTTS(tone(5, 400))
			p := consent.New(consent.Config{Message: message, TTS: f, Voice: voice, Wait: never})
			for _, d := range tt.keys {
				p.DTMF(d)
			}
			expect(t, run(t.Context(), p), tt.want)
			if n := f.opens(); n != 0 {
				t.Errorf("%d TTS streams opened for a decision already made", n)
			}
			silent(t, p, "after Run")
		})
	}
}

func TestContextEnds(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeTTS)
		reach func(t *testing.T, f *fakeTTS, p *consent.Prompt) // the state to cancel in
	}{
		{"opening", func(f *fakeTTS) { f.blockOpen = true }, func(t *testing.T, f *fakeTTS, p *consent.Prompt) {
			must(t, f.opening)
		}},
		{"synthesizing", func(f *fakeTTS) { f.gated = true }, func(t *testing.T, f *fakeTTS, p *consent.Prompt) {
			must(t, f.recving)
			f.release <- struct{}{}
			play(t, p, media.FrameSamples)
		}},
		{"waiting", func(f *fakeTTS) {}, func(t *testing.T, f *fakeTTS, p *consent.Prompt) {
			play(t, p, len(concat(f.chunks)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTTS(tone(5, 400))
			tt.setup(f)
			p := consent.New(consent.Config{Message: message, TTS: f, Voice: voice, Wait: never})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			res := run(ctx, p)
			tt.reach(t, f, p)
			pending(t, res, "before the hang-up")
			cancel()
			r := await(t, res)
			if !errors.Is(r.err, context.Canceled) || r.d != 0 {
				t.Fatalf("Run = %v, %v; want no decision and context.Canceled", r.d, r.err)
			}
			silent(t, p, "after Run")
			if f.opens() > 0 && !f.blockOpen && !f.stream(t, 0).isClosed() {
				t.Error("TTS stream not closed")
			}
		})
	}
	t.Run("before Run", func(t *testing.T) {
		f := newFakeTTS(tone(5, 400))
		p := consent.New(consent.Config{Message: message, TTS: f, Voice: voice})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if d, err := p.Run(ctx); !errors.Is(err, context.Canceled) || d != 0 {
			t.Fatalf("Run = %v, %v; want context.Canceled", d, err)
		}
		if f.opens() != 0 {
			t.Error("TTS opened for a call already over")
		}
	})
}

func TestTTSFailure(t *testing.T) {
	errDial := errors.New("dial tts: connection refused")
	errMid := errors.New("tts: websocket closed 1011")
	tests := []struct {
		name    string
		setup   func(f *fakeTTS)
		chunks  int
		wantErr error
		wantMsg string
	}{
		{"open", func(f *fakeTTS) { f.openErr = errDial }, 5, errDial, "open tts stream"},
		{"mid-stream", func(f *fakeTTS) { f.failAt, f.failErr = 3, errMid }, 5, errMid, "receive audio"},
		{"no audio", func(f *fakeTTS) {}, 0, nil, "without audio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTTS(tone(tt.chunks, 400))
			tt.setup(f)
			p := consent.New(consent.Config{Message: message, TTS: f, Voice: voice, Wait: never})
			r := await(t, run(t.Context(), p)) // nobody plays: the error comes anyway
			if r.err == nil || r.d != 0 {
				t.Fatalf("Run = %v, %v; want an error", r.d, r.err)
			}
			if tt.wantErr != nil && !errors.Is(r.err, tt.wantErr) {
				t.Errorf("error %q does not wrap %q", r.err, tt.wantErr)
			}
			for _, s := range []string{"synthesize the consent message", tt.wantMsg} {
				if !strings.Contains(r.err.Error(), s) {
					t.Errorf("error %q does not say %q", r.err, s)
				}
			}
			silent(t, p, "after Run")
			if f.openErr == nil && !f.stream(t, 0).isClosed() {
				t.Error("TTS stream not closed")
			}
		})
	}
}

func TestWake(t *testing.T) {
	f := newFakeTTS(tone(5, 400))
	f.gated = true
	p := consent.New(consent.Config{Message: message, TTS: f, Voice: voice, Wait: never})
	res := run(t.Context(), p)
	frame := make([]int16, media.FrameSamples)

	must(t, f.recving) // waiting for the first chunk
	silent(t, p, "before any audio")
	if woken(p) {
		t.Fatal("Wake signalled before any audio")
	}
	f.release <- struct{}{}
	must(t, f.recving) // chunk 0 is queued
	if !woken(p) {
		t.Fatal("Wake not signalled when the first audio was ready")
	}
	if !p.ReadFrame(frame) || !slices.Equal(frame, f.chunks[0][:len(frame)]) {
		t.Fatal("first frame is not the start of the message")
	}

	f.release <- struct{}{}
	must(t, f.recving) // chunk 1 is queued while chunk 0 is still playing
	if woken(p) {
		t.Fatal("Wake signalled while audio was playing")
	}
	play(t, p, 2*400-media.FrameSamples) // everything so far, in whole frames

	f.release <- struct{}{}
	must(t, f.recving) // chunk 2 is queued in time: no silence was sent
	if woken(p) {
		t.Fatal("Wake signalled although the sender's next tick is on time")
	}
	play(t, p, 400) // ends with a partial frame
	silent(t, p, "underrun")
	f.release <- struct{}{}
	must(t, f.recving) // chunk 3 is queued after silence was sent
	if !woken(p) {
		t.Fatal("Wake not signalled when audio was ready after an underrun")
	}
	p.DTMF('1')
	expect(t, res, consent.Agreed)
}

func TestWaitStartsAfterPlayback(t *testing.T) {
	const wait = 30 * time.Millisecond
	f := newFakeTTS(tone(5, 400))
	p := consent.New(consent.Config{Message: message, TTS: f, Voice: voice, Wait: wait, Repeats: -1})
	res := run(t.Context(), p)
	want := concat(f.chunks)
	must(t, f.eof) // synthesis is complete long before the slow reader is done
	half := len(want) / 2 / media.FrameSamples * media.FrameSamples
	play(t, p, half)
	time.Sleep(10 * wait)
	pending(t, res, "while the message is still playing")
	last := playMessage(t, p, want[half:])
	r := expect(t, res, consent.NoAnswer)
	if d := r.at.Sub(last); d < wait {
		t.Errorf("gave up %s after the message ended, want ≥ %s", d, wait)
	}
}

func TestAfterRun(t *testing.T) {
	f := newFakeTTS(tone(2, 400))
	p := consent.New(consent.Config{Message: message, TTS: f, Voice: voice, Wait: never})
	res := run(t.Context(), p)
	play(t, p, 400)
	p.DTMF('1')
	expect(t, res, consent.Agreed)
	p.DTMF('2')
	silent(t, p, "after Run")
	if d, err := p.Run(t.Context()); err == nil {
		t.Errorf("second Run = %v, nil; want an error", d)
	}
	if f.opens() != 1 {
		t.Errorf("%d TTS streams opened", f.opens())
	}
}

func TestSampleRate(t *testing.T) {
	f := newFakeTTS(tone(2, 400))
	v := voice
	v.SampleRate = 16000
	p := consent.New(consent.Config{Message: message, TTS: f, Voice: v})
	if _, err := p.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "16000") {
		t.Errorf("Run at 16 kHz = %v, want an error naming the rate", err)
	}
	if f.opens() != 0 {
		t.Error("TTS opened at the wrong rate")
	}

	v.SampleRate = 0
	p = consent.New(consent.Config{Message: message, TTS: f, Voice: v, Wait: never})
	res := run(t.Context(), p)
	must(t, f.opening)
	p.DTMF('2')
	expect(t, res, consent.Declined)
	if got := f.cfgs[0].SampleRate; got != 8000 {
		t.Errorf("TTS opened at %d Hz, want 8000", got)
	}
}

func TestBadConfig(t *testing.T) {
	f := newFakeTTS(tone(2, 400))
	for name, cfg := range map[string]consent.Config{
		"no message": {Message: " \n", TTS: f, Voice: voice},
		"no tts":     {Message: message, Voice: voice},
	} {
		t.Run(name, func(t *testing.T) {
			if d, err := consent.New(cfg).Run(t.Context()); err == nil {
				t.Errorf("Run = %v, nil; want an error", d)
			}
		})
	}
	if f.opens() != 0 {
		t.Error("TTS opened")
	}
}

func TestDecisionString(t *testing.T) {
	for d, want := range map[consent.Decision]string{
		consent.Agreed: "agreed", consent.Declined: "declined", consent.NoAnswer: "no_answer", 0: "undecided",
	} {
		if d.String() != want {
			t.Errorf("%d.String() = %q, want %q", d, d.String(), want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
