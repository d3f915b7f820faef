package googlefake

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/realtime/realtimefake"
)

func liveServer(t *testing.T, cfg LiveConfig) (*Live, string) {
	t.Helper()
	l := NewLive(cfg)
	srv := httptest.NewServer(l)
	t.Cleanup(func() {
		l.Close()
		srv.Close()
	})
	return l, "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/any/path"
}

func liveDial(t *testing.T, u string, hdr http.Header) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(t.Context(), u, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(8 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func studioHeader(key string) http.Header { return http.Header{"X-Goog-Api-Key": {key}} }

func send(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := c.Write(t.Context(), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// serverMsg is what these tests read of a server message.
type serverMsg struct {
	SetupComplete *json.RawMessage `json:"setupComplete"`
	ServerContent *struct {
		ModelTurn *struct {
			Parts []struct {
				InlineData *struct{ MimeType, Data string } `json:"inlineData"`
			} `json:"parts"`
		} `json:"modelTurn"`
		InputTranscription  *struct{ Text string } `json:"inputTranscription"`
		OutputTranscription *struct{ Text string } `json:"outputTranscription"`
		GenerationComplete  bool                   `json:"generationComplete"`
		TurnComplete        bool                   `json:"turnComplete"`
	} `json:"serverContent"`
}

func recv(t *testing.T, c *websocket.Conn) serverMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if typ != websocket.MessageBinary {
		t.Errorf("a %v frame, want binary as the service sends", typ)
	}
	var m serverMsg
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sendAudio(t *testing.T, c *websocket.Conn, pcm []int16) {
	t.Helper()
	for len(pcm) > 0 {
		n := min(len(pcm), 640)
		raw := make([]byte, 2*n)
		for i, v := range pcm[:n] {
			raw[2*i], raw[2*i+1] = byte(v), byte(uint16(v)>>8)
		}
		send(t, c, map[string]any{"realtimeInput": map[string]any{"audio": map[string]string{"mimeType": "audio/pcm;rate=16000", "data": base64.StdEncoding.EncodeToString(raw)}}})
		pcm = pcm[n:]
	}
}

// A spoken turn on the wire: setupComplete, the transcript in pieces, the
// answer's 24 kHz audio and transcription, generationComplete, and
// turnComplete once the caller's audio has covered the answer.
func TestLiveSpeaksATurn(t *testing.T) {
	l, u := liveServer(t, LiveConfig{StudioKey: "k", Script: realtimefake.Script{Transcripts: []string{"good morning"}}})
	c := liveDial(t, u, studioHeader("k"))
	send(t, c, map[string]any{"setup": map[string]any{"model": "models/gemini-3.1-flash-live-preview",
		"generationConfig":    map[string]any{"responseModalities": []string{"AUDIO"}},
		"realtimeInputConfig": map[string]any{"automaticActivityDetection": map[string]any{"silenceDurationMs": 300}}}})
	if m := recv(t, c); m.SetupComplete == nil {
		t.Fatalf("first message %+v, want setupComplete", m)
	}
	sendAudio(t, c, append(realtimefake.Synth("good morning", LiveInRate), make([]int16, LiveInRate/2)...))
	var heard, said strings.Builder
	audioBytes := 0
	for {
		m := recv(t, c)
		sc := m.ServerContent
		if sc == nil {
			t.Fatalf("unexpected message %+v", m)
		}
		if sc.TurnComplete {
			t.Fatal("turnComplete before the answer's length of caller audio")
		}
		if sc.InputTranscription != nil {
			heard.WriteString(sc.InputTranscription.Text)
		}
		if sc.OutputTranscription != nil {
			said.WriteString(sc.OutputTranscription.Text)
		}
		if sc.ModelTurn != nil {
			for _, p := range sc.ModelTurn.Parts {
				if p.InlineData.MimeType != "audio/pcm;rate=24000" {
					t.Errorf("mime type %q", p.InlineData.MimeType)
				}
				raw, _ := base64.StdEncoding.DecodeString(p.InlineData.Data)
				audioBytes += len(raw)
			}
		}
		if sc.GenerationComplete {
			break
		}
	}
	answer := "You said: good morning."
	if heard.String() != "good morning" || said.String() != answer {
		t.Errorf("heard %q, said %q", heard.String(), said.String())
	}
	if want := 2 * len(realtimefake.Synth(answer, LiveOutRate)); audioBytes != want {
		t.Errorf("%d bytes of audio, want %d", audioBytes, want)
	}
	sendAudio(t, c, make([]int16, int(realtimefake.SynthDuration(answer)*LiveInRate/time.Second)+LiveInRate/50))
	if m := recv(t, c); m.ServerContent == nil || !m.ServerContent.TurnComplete {
		t.Errorf("after the answer's length of audio: %+v, want turnComplete", m)
	}
	s := l.Sessions()[0]
	if s.Service != "studio" || s.Path != "/ws/any/path" || len(s.Spoken) != 1 || s.Spoken[0] != answer {
		t.Errorf("session %+v", s)
	}
}

// What the service refuses, and how.
func TestLiveRefuses(t *testing.T) {
	acct, err := NewAccount("p1", "sa@p1.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]any{"model": "models/gemini-3.1-flash-live-preview", "generationConfig": map[string]any{"responseModalities": []string{"AUDIO"}}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		m[k] = v
		return map[string]any{"setup": m}
	}
	audio := map[string]any{"realtimeInput": map[string]any{"mediaChunks": []any{map[string]string{"mimeType": "audio/pcm;rate=16000", "data": ""}}}}
	tests := []struct {
		name   string
		hdr    http.Header
		msgs   []any
		code   websocket.StatusCode
		reason string
	}{
		{"bad key", studioHeader("wrong"), []any{map[string]any{"setup": good}}, websocket.StatusInvalidFramePayloadData, "API key not valid"},
		{"not setup first", studioHeader("k"), []any{audio}, websocket.StatusInvalidFramePayloadData, "first message must be setup"},
		{"vertex model on studio", studioHeader("k"), []any{with("model", "models/gemini-live-2.5-flash-native-audio")}, websocket.StatusPolicyViolation, "not found for API version v1beta"},
		{"text modality", studioHeader("k"), []any{with("generationConfig", map[string]any{"responseModalities": []string{"TEXT"}})}, websocket.StatusInvalidFramePayloadData, "modalities"},
		{"unknown voice", studioHeader("k"), []any{with("generationConfig", map[string]any{"responseModalities": []string{"AUDIO"},
			"speechConfig": map[string]any{"voiceConfig": map[string]any{"prebuiltVoiceConfig": map[string]string{"voiceName": "Robot"}}}})}, websocket.StatusInvalidFramePayloadData, "Robot"},
		{"unknown resumption handle", studioHeader("k"), []any{with("sessionResumption", map[string]string{"handle": "nope"})}, websocket.StatusInvalidFramePayloadData, "invalid session resumption handle"},
		{"media chunks", studioHeader("k"), []any{map[string]any{"setup": good}, audio}, websocket.StatusInvalidFramePayloadData, "media_chunks is deprecated"},
		{"studio model on vertex", http.Header{"Authorization": {"Bearer t"}}, []any{with("model", "projects/p1/locations/europe-west4/publishers/google/models/gemini-3.1-flash-live-preview")}, websocket.StatusPolicyViolation, "was not found"},
		{"other project", http.Header{"Authorization": {"Bearer t"}}, []any{with("model", "projects/p2/locations/europe-west4/publishers/google/models/gemini-live-2.5-flash-native-audio")}, websocket.StatusPolicyViolation, "Permission denied on project p2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := LiveConfig{StudioKey: "k"}
			if tt.name == "other project" {
				cfg.Server = New(Config{Account: acct})
				cfg.Server.issued["t"] = time.Now().Add(time.Hour)
			}
			_, u := liveServer(t, cfg)
			c := liveDial(t, u, tt.hdr)
			for _, m := range tt.msgs {
				send(t, c, m)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			var ce websocket.CloseError
			for {
				_, _, err := c.Read(ctx)
				if err == nil {
					continue // setupComplete
				}
				if !errors.As(err, &ce) {
					t.Fatalf("read: %v, want a close frame", err)
				}
				break
			}
			if ce.Code != tt.code || !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("closed %d %q, want %d with %q", ce.Code, ce.Reason, tt.code, tt.reason)
			}
		})
	}
	t.Run("no credentials", func(t *testing.T) {
		_, u := liveServer(t, LiveConfig{})
		_, resp, err := websocket.Dial(t.Context(), u, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("dial without a key: %v", err)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		_, u := liveServer(t, LiveConfig{Server: New(Config{Account: acct})})
		_, resp, err := websocket.Dial(t.Context(), u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer ya29.forged"}}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("dial with a forged token: %v", err)
		}
	})
}
