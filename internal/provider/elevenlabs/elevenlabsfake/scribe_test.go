package elevenlabsfake

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
)

// dialSTT connects a raw client to a fake with cfg and reads session_started.
func dialSTT(t *testing.T, cfg Config, query string) *websocket.Conn {
	t.Helper()
	srv := New(cfg)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Close()
		ts.Close()
	})
	u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/speech-to-text/realtime?" + query
	ws, _, err := websocket.Dial(t.Context(), u, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	if m := readSTT(t, ws); m["message_type"] != "session_started" {
		t.Fatalf("first message %v", m)
	}
	return ws
}

func readSTT(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	_, data, err := ws.Read(t.Context())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decoding %q: %v", data, err)
	}
	return m
}

func sendSTT(t *testing.T, ws *websocket.Conn, v map[string]any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := ws.Write(t.Context(), websocket.MessageText, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func chunk(pcm []int16, ulaw bool) string {
	if ulaw {
		return base64.StdEncoding.EncodeToString(audio.EncodeUlaw(nil, pcm))
	}
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		b[2*i], b[2*i+1] = byte(v), byte(uint16(v)>>8)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestSTTRefusals(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		query  string
		key    string
		status int
	}{
		{"wrong key", Config{APIKey: "k"}, "model_id=scribe_v2_realtime&audio_format=ulaw_8000", "x", 401},
		{"unknown model", Config{}, "model_id=nova-3&audio_format=ulaw_8000", "", 400},
		{"unknown format", Config{}, "model_id=scribe_v2_realtime&audio_format=alaw_8000", "", 400},
		{"bad silence", Config{}, "model_id=scribe_v2_realtime&audio_format=pcm_16000&commit_strategy=vad&vad_silence_threshold_secs=5", "", 400},
		{"rejected", Config{STT: STTConfig{RejectStatus: 429}}, "model_id=scribe_v2_realtime&audio_format=pcm_16000", "", 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := New(tt.cfg)
			ts := httptest.NewServer(srv)
			defer ts.Close()
			defer srv.Close()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+"/v1/speech-to-text/realtime?"+tt.query, nil)
			req.Header.Set("xi-api-key", tt.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Detail struct{ Status, Message string }
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.status || body.Detail.Message == "" {
				t.Errorf("status %d body %+v, want %d with a detail message", resp.StatusCode, body, tt.status)
			}
		})
	}
}

func TestSTTVADCommit(t *testing.T) {
	ws := dialSTT(t, Config{STT: STTConfig{Segments: []STTSegment{{Partials: []string{"a", "ab"}, Text: "abc"}}}},
		"model_id=scribe_v2_realtime&audio_format=ulaw_8000&commit_strategy=vad&vad_silence_threshold_secs=0.3&include_timestamps=true")
	pcm := append(audio.Tone(300, 8000, 1600, 8000), make([]int16, 2800)...) // 200 ms speech, 350 ms quiet
	sendSTT(t, ws, map[string]any{"message_type": "input_audio_chunk", "audio_base_64": chunk(pcm, true), "commit": false, "sample_rate": 8000})
	var got []string
	for range 4 {
		m := readSTT(t, ws)
		got = append(got, m["message_type"].(string)+":"+m["text"].(string))
	}
	want := "partial_transcript:a partial_transcript:ab committed_transcript:abc committed_transcript_with_timestamps:abc"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSTTManualCommitAndInputErrors(t *testing.T) {
	q := "model_id=scribe_v2_realtime&audio_format=pcm_16000&commit_strategy=manual"
	t.Run("no VAD commit, commit on request", func(t *testing.T) {
		ws := dialSTT(t, Config{STT: STTConfig{Segments: []STTSegment{{Text: "hi"}}}}, q)
		pcm := append(audio.Tone(300, 16000, 3200, 8000), make([]int16, 32000)...)
		sendSTT(t, ws, map[string]any{"message_type": "input_audio_chunk", "audio_base_64": chunk(pcm, false), "sample_rate": 16000, "previous_text": "Hello"})
		sendSTT(t, ws, map[string]any{"message_type": "input_audio_chunk", "audio_base_64": "", "commit": true, "sample_rate": 16000})
		// Partials are not scripted, so the first message is the commit.
		if m := readSTT(t, ws); m["message_type"] != "committed_transcript" || m["text"] != "hi" {
			t.Fatalf("got %v", m)
		}
		sendSTT(t, ws, map[string]any{"message_type": "input_audio_chunk", "audio_base_64": "", "commit": true})
		if m := readSTT(t, ws); m["message_type"] != "committed_transcript" || m["text"] != "" {
			t.Fatalf("commit without speech: %v", m)
		}
	})
	bad := []struct {
		name string
		msg  map[string]any
	}{
		{"wrong sample rate", map[string]any{"message_type": "input_audio_chunk", "audio_base_64": "", "sample_rate": 8000}},
		{"odd PCM bytes", map[string]any{"message_type": "input_audio_chunk", "audio_base_64": base64.StdEncoding.EncodeToString([]byte{1, 2, 3})}},
		{"not base64", map[string]any{"message_type": "input_audio_chunk", "audio_base_64": "!!"}},
		{"wrong type", map[string]any{"message_type": "audio", "audio_base_64": ""}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			ws := dialSTT(t, Config{}, q)
			sendSTT(t, ws, tt.msg)
			if m := readSTT(t, ws); m["message_type"] != "input_error" || m["error"] == "" {
				t.Fatalf("got %v, want input_error", m)
			}
			_, _, err := ws.Read(t.Context())
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("after input_error: %v, want close 1008", err)
			}
		})
	}
	t.Run("previous_text after the first chunk", func(t *testing.T) {
		ws := dialSTT(t, Config{}, q)
		sendSTT(t, ws, map[string]any{"message_type": "input_audio_chunk", "audio_base_64": ""})
		sendSTT(t, ws, map[string]any{"message_type": "input_audio_chunk", "audio_base_64": "", "previous_text": "x"})
		if m := readSTT(t, ws); m["message_type"] != "input_error" {
			t.Fatalf("got %v, want input_error", m)
		}
	})
}

func TestSTTSessionRecord(t *testing.T) {
	srv := New(Config{})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()
	u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/speech-to-text/realtime?model_id=scribe_v2_realtime&audio_format=ulaw_8000&keyterms=a&keyterms=b"
	ws, _, err := websocket.Dial(t.Context(), u, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = readSTT(t, ws)
	sendSTT(t, ws, map[string]any{"message_type": "input_audio_chunk", "audio_base_64": chunk(make([]int16, 80), true), "sample_rate": 8000})
	sendSTT(t, ws, map[string]any{"message_type": "input_audio_chunk", "audio_base_64": ""})
	_ = ws.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for !srv.STTSessions()[0].Closed && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s := srv.STTSessions()[0]
	if s.Chunks != 2 || s.KeepAlives != 1 || len(s.Audio) != 80 || s.CloseStatus != 1000 || len(s.Query["keyterms"]) != 2 {
		t.Fatalf("record %+v", s)
	}
}
