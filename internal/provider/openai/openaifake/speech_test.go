package openaifake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const speechBody = `{"model":"gpt-4o-mini-tts","input":"Hello there.","voice":"coral","response_format":"pcm","instructions":"Be kind.","speed":1.5}`

func TestSpeechRaw(t *testing.T) {
	fake, srv := start(t, Config{APIKey: "sk-right"})
	resp := post(t, srv, SpeechPath, "sk-right", speechBody)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "audio/pcm" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if want := pcmBytes(DefaultSynth("Hello there.", SpeechRate)); !bytes.Equal(got, want) {
		t.Errorf("body: %d bytes, want %d bytes of the tone at 24 kHz", len(got), len(want))
	}
	speed := 1.5
	reqs := fake.SpeechRequests()
	want := SpeechRequest{Model: "gpt-4o-mini-tts", Input: "Hello there.", Voice: "coral", ResponseFormat: "pcm", Instructions: "Be kind.", Speed: &speed}
	if len(reqs) != 1 || reqs[0].Model != want.Model || reqs[0].Input != want.Input || reqs[0].Voice != want.Voice ||
		reqs[0].Instructions != want.Instructions || reqs[0].Speed == nil || *reqs[0].Speed != speed {
		t.Errorf("recorded %+v, want %+v", reqs, want)
	}
}

func TestSpeechEvents(t *testing.T) {
	_, srv := start(t, Config{})
	body := strings.Replace(speechBody, `"pcm"`, `"pcm","stream_format":"sse"`, 1)
	resp := post(t, srv, "/audio/speech", "", body)
	data, err := events(resp)
	if err != nil || len(data) < 2 {
		t.Fatalf("events %d, %v", len(data), err)
	}
	var pcm []byte
	for _, d := range data[:len(data)-1] {
		var ev struct{ Type, Audio string }
		if err := json.Unmarshal([]byte(d), &ev); err != nil || ev.Type != "speech.audio.delta" {
			t.Fatalf("event %q: %v", d, err)
		}
		b, err := base64.StdEncoding.DecodeString(ev.Audio)
		if err != nil {
			t.Fatal(err)
		}
		pcm = append(pcm, b...)
	}
	if !strings.Contains(data[len(data)-1], `"type":"speech.audio.done"`) {
		t.Errorf("last event %q", data[len(data)-1])
	}
	if want := pcmBytes(DefaultSynth("Hello there.", SpeechRate)); !bytes.Equal(pcm, want) {
		t.Errorf("audio: %d bytes, want %d", len(pcm), len(want))
	}
}

func TestSpeechRefusals(t *testing.T) {
	replace := func(old, new string) string { return strings.Replace(speechBody, old, new, 1) }
	tests := []struct {
		name   string
		key    string
		body   string
		status int
		param  string
	}{
		{"no key", "", speechBody, 401, ""},
		{"wrong key", "sk-wrong", speechBody, 401, ""},
		{"unknown model", "sk-right", replace("gpt-4o-mini-tts", "gpt-9"), 400, "model"},
		{"unknown voice", "sk-right", replace("coral", "Kore"), 400, "voice"},
		{"no input", "sk-right", replace(`"input":"Hello there.",`, ""), 400, "input"},
		{"input too long", "sk-right", replace("Hello there.", strings.Repeat("a", 4097)), 400, "input"},
		{"mp3", "sk-right", replace(`"pcm"`, `"mp3"`), 400, "response_format"},
		{"speed", "sk-right", replace("1.5", "4.5"), 400, "speed"},
		{"instructions with tts-1", "sk-right", replace("gpt-4o-mini-tts", "tts-1"), 400, "instructions"},
		{"sse with tts-1", "sk-right", `{"model":"tts-1","input":"x","voice":"alloy","response_format":"pcm","stream_format":"sse"}`, 400, "stream_format"},
		{"not JSON", "sk-right", "{", 400, ""},
	}
	_, srv := start(t, Config{APIKey: "sk-right"})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, srv, SpeechPath, tc.key, tc.body)
			var e errorBody
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != tc.status {
				t.Fatalf("status %d (%v), want %d", resp.StatusCode, err, tc.status)
			}
			param := ""
			if e.Error.Param != nil {
				param = *e.Error.Param
			}
			if param != tc.param {
				t.Errorf("param %q, want %q", param, tc.param)
			}
		})
	}
	if resp := do(t, srv, t.Context(), http.MethodGet, SpeechPath, "sk-right", ""); resp.StatusCode != 405 {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}

func TestSpeechFaults(t *testing.T) {
	t.Run("status", func(t *testing.T) {
		_, srv := start(t, Config{Speeches: []Speech{{Status: 429}, {}}})
		if resp := post(t, srv, SpeechPath, "", speechBody); resp.StatusCode != 429 {
			t.Errorf("first: %d", resp.StatusCode)
		}
		if resp := post(t, srv, SpeechPath, "", speechBody); resp.StatusCode != 200 {
			t.Errorf("second: %d", resp.StatusCode)
		}
	})
	t.Run("cut", func(t *testing.T) {
		_, srv := start(t, Config{Speeches: []Speech{{CutAfter: 1, ChunkBytes: 100}}})
		resp := post(t, srv, SpeechPath, "", speechBody)
		got, err := io.ReadAll(resp.Body)
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 100 {
			t.Errorf("read %d bytes, %v; want 100 and io.ErrUnexpectedEOF", len(got), err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		_, srv := start(t, Config{Speeches: []Speech{{Malformed: true}}})
		resp := post(t, srv, SpeechPath, "", speechBody)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || json.Valid(b) {
			t.Errorf("%d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	})
	t.Run("synth", func(t *testing.T) {
		_, srv := start(t, Config{Synth: func(text string, rate int) []int16 { return []int16{int16(len(text)), int16(rate / 1000)} }})
		b, _ := io.ReadAll(post(t, srv, SpeechPath, "", speechBody).Body)
		if want := pcmBytes([]int16{12, 24}); !bytes.Equal(b, want) {
			t.Errorf("body %v, want %v", b, want)
		}
	})
}

func TestSpeechMountPaths(t *testing.T) {
	fake := New(Config{})
	mux := http.NewServeMux()
	mux.Handle(ChatPath, fake)
	mux.Handle(SpeechPath, fake)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if resp := post(t, srv, SpeechPath, "", speechBody); resp.StatusCode != 200 {
		t.Errorf("speech: %d", resp.StatusCode)
	}
	if resp := post(t, srv, ChatPath, "", streamBody); resp.StatusCode != 200 {
		t.Errorf("chat: %d", resp.StatusCode)
	}
}
