package consent_test

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/consent"
	"github.com/parley-voice/parley/internal/media"
	"github.com/parley-voice/parley/internal/provider/elevenlabs"
	"github.com/parley-voice/parley/internal/provider/elevenlabs/elevenlabsfake"
	"github.com/parley-voice/parley/internal/tts"
)

// TestElevenLabs runs the prompt on the real ElevenLabs client against the
// fake service: the message is spoken from one websocket stream, repeated
// without a second one, and the caller agrees during the repeat.
func TestElevenLabs(t *testing.T) {
	synth := func(text string, rate int) []int16 { return tone(1, 100*len(text))[0] } // no zero samples
	srv := elevenlabsfake.New(elevenlabsfake.Config{
		APIKey:        "sk_test",
		Synth:         synth,
		ChunkDuration: 50 * time.Millisecond, // 400 samples: not whole frames
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()
	p := consent.New(consent.Config{
		Message: message,
		TTS:     elevenlabs.NewTTS(elevenlabs.Config{BaseURL: ts.URL}),
		Voice:   tts.Config{Voice: "v1", SampleRate: 8000, APIKey: "sk_test"},
		Wait:    10 * time.Millisecond,
	})
	res := run(t.Context(), p)

	// The client sends the message as one piece (checked below).
	want := synth(message, 8000)
	first, _, _ := play(t, p, media.FrameSamples)
	if !slices.Equal(first, want[:len(first)]) {
		t.Fatal("first frame is not the fake's audio")
	}
	playMessage(t, p, want[len(first):])
	playMessage(t, p, want[:2*media.FrameSamples]) // the repeat
	p.DTMF('1')
	expect(t, res, consent.Agreed)
	if st := srv.Stats(); st.Connections != 1 {
		t.Errorf("%d websocket connections, want 1 for the message and its repeat", st.Connections)
	}
	if got := srv.Texts(); len(got) != 1 || !slices.Equal(got[0], []string{message}) {
		t.Errorf("fake spoke %q, want the message once", got)
	}
}
