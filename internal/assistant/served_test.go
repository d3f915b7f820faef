package assistant

import (
	"errors"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/catalog"
)

// served is a server with no Gladia client, no realtime engine and Google
// TTS without Chirp 3 HD.
func served(s catalog.Section, provider, model string) error {
	switch {
	case s == catalog.STT && provider == "gladia":
		return errors.New("this server has no client for it")
	case s == catalog.LLM && (provider == "xai_realtime" || provider == "openai_live" || provider == "google_realtime"):
		return errors.New("realtime assistants are not served yet")
	case s == catalog.TTS && provider == "google" && model == "chirp-3-hd":
		return errors.New("Chirp 3 HD is not served yet")
	}
	return nil
}

// A choice the server cannot run is refused where it is made, naming the
// field and why; what it can run is accepted as before.
func TestServedRefusals(t *testing.T) {
	v := newValidator(t).WithServed(served)
	tests := []struct {
		name, in, field, msg string
	}{
		{"stt provider", `{"name":"x","stt_config":{"provider":"gladia"}}`, "stt_config.provider", `stt_config.provider "gladia" is not available on this server: this server has no client for it`},
		{"realtime llm", `{"name":"x","llm_config":{"provider":"xai_realtime"}}`, "llm_config.provider", `llm_config.provider "xai_realtime" is not available on this server: realtime assistants are not served yet`},
		{"tts model", `{"name":"x","tts_config":{"provider":"google","model":"chirp-3-hd"}}`, "tts_config.model", `tts_config.model "chirp-3-hd" of provider "google" is not available on this server: Chirp 3 HD is not served yet`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Normalize(parseDoc(t, tt.in), Options{})
			e := invalid(t, err)
			if e.Field != tt.field || e.Code != "invalid_field" || !strings.HasPrefix(e.Message, tt.msg) {
				t.Errorf("got field %q code %q message %q\nwant field %q message starting %q", e.Field, e.Code, e.Message, tt.field, tt.msg)
			}
		})
	}
	for _, ok := range []string{
		`{"name":"x","stt_config":{"provider":"deepgram"}}`,
		`{"name":"x","tts_config":{"provider":"google","model":"gemini-2.5-flash-preview-tts"}}`,
		`{"name":"x","tts_config":{"provider":"google"}}`, // the default model is served
		`{"name":"x","llm_config":{"provider":"openai","model":"gpt-5.4"}}`,
	} {
		if _, err := v.Normalize(parseDoc(t, ok), Options{}); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
		// Without WithServed every catalog choice is accepted.
		if _, err := newValidator(t).Normalize(parseDoc(t, ok), Options{}); err != nil {
			t.Errorf("%s without a served check: %v", ok, err)
		}
	}
	if _, err := newValidator(t).Normalize(parseDoc(t, `{"name":"x","stt_config":{"provider":"gladia"}}`), Options{}); err != nil {
		t.Errorf("gladia without a served check: %v", err)
	}
}

func TestServesVoiceSet(t *testing.T) {
	v := newValidator(t).WithServed(served)
	for set, want := range map[string]bool{"google": true, "xai": true, "openai_live": false} {
		if got := v.ServesVoiceSet(set); got != want {
			t.Errorf("ServesVoiceSet(%q) = %v, want %v", set, got, want)
		}
	}
	none := newValidator(t).WithServed(func(catalog.Section, string, string) error { return errors.New("no") })
	if none.ServesVoiceSet("google") {
		t.Error("a server that runs nothing serves the google voices")
	}
}
