package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/tts"
)

// DefaultVoice is the espeak-ng voice used when neither tts.Config.Voice nor
// tts.Config.Language names one.
const DefaultVoice = "en-us"

const (
	// baseWPM is espeak-ng's own speed, what tts.Config.Speed 1.0 means.
	baseWPM = 175
	// minWPM and maxWPM bound the speed espeak-ng is asked for.
	minWPM = 80
	maxWPM = 450
	// ttsChunk is the length of the audio chunks Recv returns.
	ttsChunk = 100 * time.Millisecond
	// readSize is how much of espeak-ng's output is read at a time.
	readSize = 8 << 10
)

// voicePattern is what an espeak-ng voice name may look like: "en-us",
// "nl", "en-us+f3", "mb/mb-en1".
var voicePattern = regexp.MustCompile(`^[a-zA-Z0-9_+\-/]{1,64}$`)

// TTSConfig configures the espeak-ng text-to-speech provider.
type TTSConfig struct {
	// Binary is the espeak-ng executable, a path or a name looked up in
	// PATH; empty means "espeak-ng".
	Binary string
	// Logger receives debug events; nil discards them. Text is never logged.
	Logger *slog.Logger
}

// TTS opens espeak-ng synthesis streams. It is safe for concurrent use.
type TTS struct {
	bin string
	log *slog.Logger
}

var _ tts.Provider = (*TTS)(nil)

// NewTTS returns a provider using cfg, with defaults filled in.
func NewTTS(cfg TTSConfig) *TTS {
	t := &TTS{bin: cfg.Binary, log: cfg.Logger}
	if t.bin == "" {
		t.bin = "espeak-ng"
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t
}

// Open starts a stream speaking with the espeak-ng voice cfg.Voice (or, when
// it is empty, cfg.Language, or DefaultVoice) at cfg.Speed × 175 words per
// minute, clamped to 80–450, returning PCM at cfg.SampleRate. Model and
// APIKey are ignored. The stream lives until Close, the end of its audio, a
// failure or the cancellation of ctx.
func (t *TTS) Open(ctx context.Context, cfg tts.Config) (tts.Stream, error) {
	voice := cfg.Voice
	if voice == "" {
		voice = cfg.Language
	}
	if voice == "" {
		voice = DefaultVoice
	}
	if !voicePattern.MatchString(voice) {
		return nil, fmt.Errorf("local tts: opening stream: invalid espeak-ng voice name %q", voice)
	}
	if cfg.SampleRate <= 0 {
		return nil, fmt.Errorf("local tts: opening stream: sample rate %d", cfg.SampleRate)
	}
	bin, err := exec.LookPath(t.bin)
	if err != nil {
		return nil, fmt.Errorf("local tts: opening stream: espeak-ng not found (Debian: apt-get install espeak-ng): %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &ttsStream{
		bin:    bin,
		voice:  voice,
		wpm:    wordsPerMinute(cfg.Speed),
		rate:   cfg.SampleRate,
		log:    t.log.With("provider", "espeak-ng", "voice", voice),
		ctx:    sctx,
		cancel: cancel,
		wake:   make(chan struct{}, 1),
		out:    make(chan tts.Chunk, 4),
		done:   make(chan struct{}),
	}
	go s.run()
	return s, nil
}

// wordsPerMinute maps a tts.Config.Speed factor to espeak-ng's -s value.
func wordsPerMinute(speed float64) int {
	if speed <= 0 || math.IsNaN(speed) || math.IsInf(speed, 0) {
		speed = 1
	}
	return int(min(maxWPM, max(minWPM, math.Round(baseWPM*speed))))
}

// ttsStream is one synthesis stream. Send and Flush queue work for the
// worker goroutine (run), which synthesises the texts in order, one
// espeak-ng process at a time, and hands chunks to Recv through out.
type ttsStream struct {
	bin   string
	voice string
	wpm   int
	rate  int
	log   *slog.Logger

	ctx    context.Context // cancelled by Close; parent of every process
	cancel context.CancelFunc

	mu      sync.Mutex
	queue   []string // texts waiting for the worker
	flushed bool     // Flush was called: no more texts
	closed  bool     // Close was called
	err     error    // why the worker ended: io.EOF after the last chunk

	wake chan struct{}  // tells the worker the queue changed
	out  chan tts.Chunk // closed by the worker when it ends
	done chan struct{}  // closed when the worker has ended
}

// Send queues text to speak. Empty or blank text is ignored.
func (s *ttsStream) Send(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.flushed:
		return errors.New("local tts: Send after Flush")
	case s.err != nil:
		return s.err
	}
	if strings.TrimSpace(text) == "" {
		return nil
	}
	s.queue = append(s.queue, text)
	s.signal()
	return nil
}

// Flush says no more text follows: Recv returns io.EOF after the audio of
// the texts already sent. Flushing twice is a no-op.
func (s *ttsStream) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.flushed = true
	s.signal()
	return nil
}

// signal wakes the worker; s.mu is held.
func (s *ttsStream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Recv returns the next chunk of about 100 ms, io.EOF after the last one,
// ErrClosed after Close, or the error that ended the stream.
func (s *ttsStream) Recv() (tts.Chunk, error) {
	if s.isClosed() {
		return tts.Chunk{}, ErrClosed
	}
	c, ok := <-s.out
	if ok {
		return c, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return tts.Chunk{}, ErrClosed
	}
	return tts.Chunk{}, s.err
}

func (s *ttsStream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close abandons the stream at once: a running espeak-ng is killed and Close
// returns when the worker has ended.
func (s *ttsStream) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	<-s.done
	return nil
}

// run is the worker: it speaks the queued texts until Flush empties the
// queue, a failure, or the stream's context ends.
func (s *ttsStream) run() {
	defer close(s.done)
	defer close(s.out)
	defer s.cancel() // release the context when the audio ends by itself
	err := s.speakAll()
	if !errors.Is(err, io.EOF) {
		s.log.Debug("espeak-ng stream ended", "err", err)
	}
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *ttsStream) speakAll() error {
	for {
		text, ok, err := s.next()
		if err != nil {
			return err
		}
		if !ok {
			return io.EOF
		}
		if err := s.speak(text); err != nil {
			return err
		}
	}
}

// next waits for the next text; ok is false when the stream was flushed and
// every text spoken.
func (s *ttsStream) next() (text string, ok bool, err error) {
	for {
		s.mu.Lock()
		switch {
		case len(s.queue) > 0:
			text = s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return text, true, nil
		case s.flushed:
			s.mu.Unlock()
			return "", false, nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.ctx.Done():
			return "", false, fmt.Errorf("local tts: %w", s.ctx.Err())
		}
	}
}

// speak runs one espeak-ng process for text (given on its standard input,
// never as an argument) and streams its audio while it is being made.
func (s *ttsStream) speak(text string) error {
	started := time.Now()
	cmd := exec.CommandContext(s.ctx, s.bin, "-v", s.voice, "-s", strconv.Itoa(s.wpm), "--stdout")
	cmd.Stdin = strings.NewReader(text)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("local tts: starting espeak-ng: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("local tts: starting espeak-ng: %w", err)
	}
	samples, streamErr := s.stream(stdout)
	if streamErr != nil {
		_ = cmd.Process.Kill() // no-op when it already exited
	}
	waitErr := cmd.Wait()
	switch {
	case s.ctx.Err() != nil:
		return fmt.Errorf("local tts: %w", s.ctx.Err())
	case waitErr != nil:
		return fmt.Errorf("local tts: espeak-ng -v %s failed: %w: %s", s.voice, waitErr, stderr.String())
	case streamErr != nil:
		return streamErr
	}
	s.log.Debug("espeak-ng spoke", "chars", len(text), "samples", samples, "elapsed", time.Since(started))
	return nil
}

// stream reads espeak-ng's WAV output as it arrives, converts it to the
// stream's rate and sends it in ttsChunk pieces. It returns how many samples
// it sent.
func (s *ttsStream) stream(r io.Reader) (int, error) {
	h, err := audio.ReadWAVHeader(r)
	if err != nil {
		return 0, fmt.Errorf("local tts: reading espeak-ng output: %w", err)
	}
	if h.DataSize >= 0 {
		r = io.LimitReader(r, h.DataSize)
	}
	rs, err := audio.NewResampler(h.Rate, s.rate)
	if err != nil {
		return 0, fmt.Errorf("local tts: converting espeak-ng output: %w", err)
	}
	chunk := max(1, int(int64(s.rate)*int64(ttsChunk)/int64(time.Second)))
	buf := make([]byte, readSize)
	var pending []byte // bytes of an incomplete sample frame
	var decoded, pcm []int16
	sent := 0
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			pending = append(pending, buf[:n]...)
			var used int
			decoded, used = h.Decode(decoded[:0], pending)
			pending = append(pending[:0], pending[used:]...)
			pcm = rs.Process(pcm, decoded)
			for len(pcm) >= chunk {
				if err := s.send(pcm[:chunk]); err != nil {
					return sent, err
				}
				sent += chunk
				pcm = append(pcm[:0], pcm[chunk:]...)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return sent, fmt.Errorf("local tts: reading espeak-ng output: %w", rerr)
		}
	}
	pcm = rs.Flush(pcm)
	for len(pcm) > 0 {
		n := min(chunk, len(pcm))
		if err := s.send(pcm[:n]); err != nil {
			return sent, err
		}
		sent += n
		pcm = pcm[n:]
	}
	return sent, nil
}

// send hands a copy of pcm to Recv, waiting while Recv is behind.
func (s *ttsStream) send(pcm []int16) error {
	c := tts.Chunk{PCM: append([]int16(nil), pcm...)}
	select {
	case s.out <- c:
		return nil
	case <-s.ctx.Done():
		return fmt.Errorf("local tts: %w", s.ctx.Err())
	}
}
