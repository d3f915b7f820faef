// Package announce plays fixed recorded messages on a call, with no speech
// model involved: what a caller hears when Parley will not run a
// conversation (the organization has no minutes left, spec §12.11). The
// default message is a short recording embedded in the binary; an operator
// can replace it with a WAV file of their own.
package announce

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/media"
)

// unavailableWAV says, in English: "Sorry, this number cannot take your
// call right now. Please try again later. Goodbye." (espeak-ng, 8 kHz).
//
//go:embed unavailable.wav
var unavailableWAV []byte

// rate is the telephone sample rate clips are kept at.
const rate = 8000

// maxClip bounds a clip: an announcement, not a conversation.
const maxClip = 60 * time.Second

// Clip is a message ready to play, as 8 kHz samples. It is immutable and
// may be played on many calls at once.
type Clip struct{ pcm []int16 }

// Unavailable is the embedded "cannot take your call" message.
func Unavailable() (*Clip, error) { return decode(unavailableWAV, "the embedded message") }

// Load reads an operator's WAV file (16-bit PCM, A-law or μ-law, any rate;
// stereo is mixed down) of at most a minute.
func Load(path string) (*Clip, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read announcement: %w", err)
	}
	return decode(b, path)
}

func decode(b []byte, name string) (*Clip, error) {
	pcm, r, err := audio.ReadWAV(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("announcement %s: %w", name, err)
	}
	if r != rate {
		if pcm, err = audio.Resample(pcm, r, rate); err != nil {
			return nil, fmt.Errorf("announcement %s: %w", name, err)
		}
	}
	if len(pcm) == 0 {
		return nil, fmt.Errorf("announcement %s holds no audio", name)
	}
	if d := samplesDuration(len(pcm)); d > maxClip {
		return nil, fmt.Errorf("announcement %s lasts %s; keep it under %s", name, d.Round(time.Second), maxClip)
	}
	return &Clip{pcm: pcm}, nil
}

func samplesDuration(n int) time.Duration { return time.Duration(n) * time.Second / rate }

// Duration is how long the clip plays.
func (c *Clip) Duration() time.Duration { return samplesDuration(len(c.pcm)) }

// Play returns a media source that plays the clip once.
func (c *Clip) Play() *Player { return &Player{pcm: c.pcm, done: make(chan struct{})} }

// Player plays a clip once as a media.Source.
type Player struct {
	pcm  []int16
	pos  int // read only from the media pacing goroutine
	done chan struct{}
	once sync.Once
}

var _ media.Source = (*Player)(nil)

// ReadFrame implements media.Source.
func (p *Player) ReadFrame(frame []int16) bool {
	if p.pos >= len(p.pcm) {
		p.once.Do(func() { close(p.done) })
		return false
	}
	n := copy(frame, p.pcm[p.pos:])
	clear(frame[n:])
	p.pos += n
	return true
}

// Done is closed once the whole clip has been sent.
func (p *Player) Done() <-chan struct{} { return p.done }
