package google

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/google/googlefake"
	"github.com/parley-voice/parley/internal/tts"
)

func ttsFixture(t *testing.T, acct *googlefake.Account, status int, fault ...googlefake.Fault) (*TTS, *googlefake.Server) {
	t.Helper()
	cfg := googlefake.Config{Account: acct, StudioKey: "AIza-studio", TTSStatus: status}
	if len(fault) > 0 {
		cfg.TTSFault = fault[0]
	}
	fake := googlefake.New(cfg)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return NewTTS(Config{StudioURL: srv.URL + "/v1beta/openai", VertexURL: srv.URL, TokenURL: srv.URL + googlefake.TokenPath, HTTPClient: srv.Client()}), fake
}

// speak sends texts and reads the audio to the end.
func speak(t *testing.T, p *TTS, cfg tts.Config, texts ...string) ([]int16, error) {
	t.Helper()
	s, err := p.Open(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	for _, x := range texts {
		if err := s.Send(x); err != nil {
			return nil, err
		}
	}
	if err := s.Flush(); err != nil {
		return nil, err
	}
	var pcm []int16
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return pcm, nil
		}
		if err != nil {
			return pcm, err
		}
		pcm = append(pcm, c.PCM...)
	}
}

// Both key kinds: the audio arrives at the call's rate, the request names
// the model and voice and carries the style instructions with the text.
func TestGeminiTTS(t *testing.T) {
	acct := account(t)
	p, fake := ttsFixture(t, acct, 0)
	tests := []struct {
		name, key string
		want      googlefake.Call
	}{
		{"ai studio key", "AIza-studio", googlefake.Call{Service: "studio-tts", Model: "gemini-2.5-flash-preview-tts", Voice: "Puck", Text: "Speak warmly:\\nHello there."}},
		{"vertex service account", acct.JSON, googlefake.Call{Service: "vertex-tts", Project: "eu-voice-project", Location: DefaultLocation, Model: "gemini-2.5-flash-preview-tts", Voice: "Puck", Text: "Speak warmly:\\nHello there."}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pcm, err := speak(t, p, tts.Config{APIKey: tt.key, Model: "gemini-2.5-flash-preview-tts", Voice: "Puck", SampleRate: 8000,
				Options: map[string]any{"instructions": "Speak warmly"}}, "Hello there.")
			if err != nil {
				t.Fatal(err)
			}
			// DefaultSynth: 50 ms per character of "Speak warmly:\nHello there." at 24 kHz, resampled to 8 kHz.
			wantLen := len("Speak warmly:\nHello there.") * 8000 / 20
			if d := len(pcm) - wantLen; d < -16 || d > 16 {
				t.Errorf("%d samples at 8 kHz, want %d", len(pcm), wantLen)
			}
			if audio.RMS(pcm[800:1600]) < 3000 {
				t.Errorf("audio too quiet: RMS %.0f", audio.RMS(pcm[800:1600]))
			}
			calls := fake.Calls()
			want := tt.want
			want.Text = strings.ReplaceAll(want.Text, `\n`, "\n")
			if len(calls) != i+1 || calls[i] != want {
				t.Errorf("calls %+v, want last %+v", calls, want)
			}
		})
	}
}

func TestGeminiTTSErrors(t *testing.T) {
	acct := account(t)
	p, _ := ttsFixture(t, acct, 0)
	_, err := speak(t, p, tts.Config{APIKey: "AIza-wrong", Model: "gemini-2.5-flash-preview-tts", SampleRate: 8000}, "Hello.")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "check the Google key") {
		t.Errorf("wrong key: %v", err)
	}
	failing, _ := ttsFixture(t, acct, 503)
	if _, err := speak(t, failing, tts.Config{APIKey: "AIza-studio", Model: "gemini-2.5-flash-preview-tts", SampleRate: 8000}, "Hello."); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: %v", err)
	}
	if _, err := p.Open(context.Background(), tts.Config{APIKey: "AIza-studio", SampleRate: 8000}); err == nil {
		t.Error("Open without a model succeeded")
	}
}

// Close while audio streams ends the stream and its goroutine at once.
func TestGeminiTTSClose(t *testing.T) {
	p, _ := ttsFixture(t, account(t), 0)
	s, err := p.Open(context.Background(), tts.Config{APIKey: "AIza-studio", Model: "gemini-2.5-flash-preview-tts", SampleRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	s.Send(strings.Repeat("A long reply. ", 40))
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return")
	}
}

// Chirp 3 HD: Cloud Text-to-Speech's REST synthesis with the locale-named
// voice, LINEAR16 at the call's rate, a service account's token and project.
func TestChirp3HD(t *testing.T) {
	acct := account(t)
	fake := googlefake.New(googlefake.Config{Account: acct})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	p := NewTTS(Config{VertexURL: srv.URL, CloudTTSURL: srv.URL, TokenURL: srv.URL + googlefake.TokenPath, HTTPClient: srv.Client(),
		Locale: func(lang string) string { return map[string]string{"nl": "nl-NL"}[lang] }})
	pcm, err := speak(t, p, tts.Config{APIKey: acct.JSON, Model: ChirpModel, Voice: "Kore", Language: "nl", SampleRate: 8000,
		Options: map[string]any{"speaking_rate": 1.2}}, "Goedemorgen. Tot ziens.")
	if err != nil {
		t.Fatal(err)
	}
	if want := len("Goedemorgen. Tot ziens.") * 8000 / 20; len(pcm) != want {
		t.Errorf("%d samples, want %d", len(pcm), want)
	}
	calls := fake.Calls()
	want := googlefake.Call{Service: "cloud-tts", Project: "eu-voice-project", Model: "chirp-3-hd", Voice: "nl-NL-Chirp3-HD-Kore", Text: "Goedemorgen. Tot ziens."}
	if len(calls) != 1 || calls[0] != want {
		t.Errorf("calls %+v, want %+v", calls, want)
	}
}

// A stream that breaks after some audio ends with an error from Recv, not
// io.EOF and not a panic: a malformed event, or a dropped connection.
func TestGeminiTTSBrokenStream(t *testing.T) {
	for name, tc := range map[string]struct {
		fault googlefake.Fault
		want  string
	}{
		"malformed event":   {googlefake.FaultMalformed, "not JSON"},
		"dropped mid-reply": {googlefake.FaultCut, "text-to-speech stream"},
	} {
		t.Run(name, func(t *testing.T) {
			p, _ := ttsFixture(t, account(t), 0, tc.fault)
			pcm, err := speak(t, p, tts.Config{APIKey: "AIza-studio", Model: "gemini-2.5-flash-preview-tts", SampleRate: 8000}, strings.Repeat("A long reply. ", 10))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if len(pcm) == 0 {
				t.Error("no audio before the break")
			}
		})
	}
}

// A stream abandoned before Flush ends Recv with an error, not io.EOF
// (which would tell the pipeline the reply was said), and refuses Send.
func TestGeminiTTSAbandoned(t *testing.T) {
	p, _ := ttsFixture(t, account(t), 0)
	s, err := p.Open(context.Background(), tts.Config{APIKey: "AIza-studio", Model: "gemini-2.5-flash-preview-tts", SampleRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for {
		_, err := s.Recv()
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "closed") {
			t.Errorf("Recv after Close: %v, want an error saying the stream was closed", err)
		}
		break
	}
	if err := s.Send("More."); err == nil {
		t.Error("Send after Close succeeded")
	}
}
