// Package ambience is the background audio an assistant can play under its
// voice (speech_config.background_audio, spec §8.5): four looping clips —
// office, city, forest, crowded_room — and a Mixer that adds one of them, at
// the configured volume, to every 20 ms frame a call sends, under the
// assistant's speech and in the silences between.
//
// The clips are synthesised here, not recorded, so they are free to ship and
// take no space in the repository: filtered noise with slow modulation for
// the office (room tone and distant typing), the city (traffic rumble and
// passing cars) and the forest (wind, leaves and bird chirps), and a murmur
// of several synthetic talkers (voiced and noise excitation through moving
// formant filters, gated at syllable rate) for the crowded room. Each clip
// is ClipSeconds of 8 kHz μ-law, generated deterministically the first time
// a call asks for it and shared read-only by every call afterwards. Its end
// is crossfaded into its beginning, so it loops without a click.
//
// Levels: every clip is normalised to RefRMS (−20 dBFS) with its peaks
// softly limited to PeakLimit; the Mixer scales it by volume (0.05–1), so at
// the default 0.3 the ambience sits near −30.5 dBFS. Speech plus ambience is
// added with saturation (never wrapping); at any volume the ambience peaks
// below PeakLimit, so a voice peaking below full scale minus PeakLimit is
// never clipped.
package ambience

import (
	"fmt"
	"math"
	"sync"

	"github.com/parley-voice/parley/internal/audio"
)

// Rate is the clips' sample rate.
const Rate = 8000

// ClipSeconds is the length of each clip before it loops.
const ClipSeconds = 6

// RefRMS is a clip's RMS level at volume 1 (−20 dBFS, on the 16-bit scale).
const RefRMS = 3277

// PeakLimit bounds a clip's samples at volume 1 (about −9 dBFS).
const PeakLimit = 11600

// The clip names spec §8.5 allows.
const (
	Office      = "office"
	City        = "city"
	Forest      = "forest"
	CrowdedRoom = "crowded_room"
)

// names is the order of Library.clips.
var names = [...]string{Office, City, Forest, CrowdedRoom}

// Names returns the clip names, in the spec's order.
func Names() []string { n := names; return n[:] }

// Library generates clips on first use and keeps them. It is safe for
// concurrent use; the returned clips must not be modified.
type Library struct {
	once  [len(names)]sync.Once
	clips [len(names)][]byte
	// decode maps a μ-law code to its sample.
	decode [256]int16
}

// NewLibrary returns an empty library; nothing is generated until a clip is
// asked for.
func NewLibrary() *Library {
	l := &Library{}
	codes := make([]byte, 256)
	for i := range codes {
		codes[i] = byte(i)
	}
	copy(l.decode[:], audio.DecodeUlaw(nil, codes))
	return l
}

// Clip returns the named clip as 8 kHz μ-law, generating it on first use.
func (l *Library) Clip(name string) ([]byte, error) {
	for i, n := range names {
		if n == name {
			l.once[i].Do(func() { l.clips[i] = audio.EncodeUlaw(nil, synthesize(name)) })
			return l.clips[i], nil
		}
	}
	return nil, fmt.Errorf("ambience: unknown clip %q", name)
}

// Source is what a call sends: one frame of its outgoing audio at a time,
// false when it has nothing to send (media.Source).
type Source interface {
	ReadFrame(frame []int16) bool
}

// waker is a Source that can say its first audio is ready (media.Waker).
type waker interface {
	Wake() <-chan struct{}
}

// Mixer is a Source that adds a looping clip to another Source's frames and
// fills its silences with the clip alone, so it always has a frame to send.
// It is used by one goroutine (the call's sender) and does not allocate.
type Mixer struct {
	inner  Source
	clip   []byte
	decode *[256]int16
	pos    int
	gain   int32 // Q15: volume × 32768
	fill   bool  // the last frame was the clip alone
}

// Mixer returns a Mixer that plays the named clip at volume (clamped to
// 0–1) under inner (which may be nil: the clip alone).
func (l *Library) Mixer(inner Source, name string, volume float64) (*Mixer, error) {
	clip, err := l.Clip(name)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(volume) {
		volume = 0
	}
	volume = min(max(volume, 0), 1)
	return &Mixer{inner: inner, clip: clip, decode: &l.decode, gain: int32(math.Round(volume * 32768))}, nil
}

// ReadFrame reads a frame from the inner source (silence when it has none)
// and adds the next len(frame) samples of the clip. It always returns true.
func (m *Mixer) ReadFrame(frame []int16) bool {
	m.fill = m.inner == nil || !m.inner.ReadFrame(frame)
	if m.fill {
		clear(frame)
	}
	clip, dec, g, pos := m.clip, m.decode, m.gain, m.pos
	for i, v := range frame {
		s := int32(v) + (int32(dec[clip[pos]])*g)>>15
		frame[i] = int16(min(max(s, math.MinInt16), math.MaxInt16))
		if pos++; pos == len(clip) {
			pos = 0
		}
	}
	m.pos = pos
	return true
}

// Filler reports whether the last frame was the clip alone: the inner
// source had nothing to send (recording.Filler).
func (m *Mixer) Filler() bool { return m.fill }

// Wake delegates to the inner source when it is a media.Waker and otherwise
// returns a nil channel (never ready).
func (m *Mixer) Wake() <-chan struct{} {
	if w, ok := m.inner.(waker); ok {
		return w.Wake()
	}
	return nil
}
