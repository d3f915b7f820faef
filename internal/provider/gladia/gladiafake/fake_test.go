package gladiafake_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/provider/gladia/gladiafake"
	"github.com/parley-voice/parley/internal/provider/providertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const key = "fake-key"

const pcm16k = `{"model":"solaria-1","encoding":"wav/pcm","sample_rate":16000,"bit_depth":16,"channels":1,
	"messages_config":{"receive_partial_transcripts":false,"receive_final_transcripts":true,"receive_speech_events":true}}`

func start(t *testing.T, cfg gladiafake.Config) (*gladiafake.Server, *httptest.Server) {
	t.Helper()
	fake := gladiafake.New(cfg)
	mux := http.NewServeMux()
	mux.Handle(gladiafake.LivePath, fake)
	return fake, providertest.Serve(t, mux)
}

// post sends a session request and returns the status and decoded body.
func post(t *testing.T, srv *httptest.Server, query, apiKey, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+gladiafake.LivePath+query, strings.NewReader(body))
	if apiKey != "" {
		req.Header.Set("X-Gladia-Key", apiKey)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decoding body: %v", err)
	}
	return resp.StatusCode, out
}

func TestSessionRequestNeedsKey(t *testing.T) {
	_, srv := start(t, gladiafake.Config{APIKey: key})
	for _, k := range []string{"", "other"} {
		status, body := post(t, srv, "", k, pcm16k)
		if status != http.StatusUnauthorized || body["statusCode"] != float64(401) || body["message"] == "" {
			t.Errorf("key %q: %d %v, want a Gladia-shaped 401", k, status, body)
		}
	}
}

func TestSessionRequestValidated(t *testing.T) {
	_, srv := start(t, gladiafake.Config{APIKey: key})
	for name, tc := range map[string]struct{ query, body string }{
		"bad JSON":    {"", `{`},
		"encoding":    {"", `{"encoding":"mp3","sample_rate":16000,"bit_depth":16,"channels":1}`},
		"ulaw 16-bit": {"", `{"encoding":"wav/ulaw","sample_rate":8000,"bit_depth":16,"channels":1}`},
		"sample rate": {"", `{"encoding":"wav/pcm","sample_rate":22050,"bit_depth":16,"channels":1}`},
		"endpointing": {"", `{"encoding":"wav/pcm","sample_rate":16000,"bit_depth":16,"channels":1,"endpointing":20}`},
		"model":       {"", `{"model":"whisper","encoding":"wav/pcm","sample_rate":16000,"bit_depth":16,"channels":1}`},
		"region":      {"?region=mars", pcm16k},
		"stereo":      {"", `{"encoding":"wav/pcm","sample_rate":16000,"bit_depth":16,"channels":2}`},
	} {
		status, body := post(t, srv, tc.query, key, tc.body)
		if status != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", name, status, body)
		}
		if errs, _ := body["validation_errors"].([]any); name != "bad JSON" && len(errs) != 1 {
			t.Errorf("%s: validation_errors %v, want the one problem", name, body["validation_errors"])
		}
	}
}

// TestSocketURLPointsBack: the answer's url is a ws:// URL on this server
// and path carrying a token, and the session is recorded.
func TestSocketURLPointsBack(t *testing.T) {
	fake, srv := start(t, gladiafake.Config{APIKey: key})
	status, body := post(t, srv, "?region=eu-west", key, pcm16k)
	if status != http.StatusCreated {
		t.Fatalf("status %d %v", status, body)
	}
	u, err := url.Parse(body["url"].(string))
	if err != nil || u.Scheme != "ws" || u.Host != strings.TrimPrefix(srv.URL, "http://") ||
		u.Path != gladiafake.LivePath || u.Query().Get("token") == "" {
		t.Fatalf("url %q does not point back at %s%s with a token", body["url"], srv.URL, gladiafake.LivePath)
	}
	sessions := fake.Sessions()
	if len(sessions) != 1 || sessions[0].ID != body["id"] || sessions[0].Region != "eu-west" || sessions[0].Request.SampleRate != 16000 {
		t.Fatalf("sessions %+v, want the one created (id %v)", sessions, body["id"])
	}
}

func TestSocketNeedsToken(t *testing.T) {
	_, srv := start(t, gladiafake.Config{APIKey: key})
	ctx := context.Background()
	wsBase := strings.Replace(srv.URL, "http", "ws", 1) + gladiafake.LivePath
	_, resp, err := websocket.Dial(ctx, wsBase+"?token=nope", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown token: err %v resp %v, want 401", err, resp)
	}

	_, body := post(t, srv, "", key, pcm16k)
	conn, _, err := websocket.Dial(ctx, body["url"].(string), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseNow()
	_, resp, err = websocket.Dial(ctx, body["url"].(string), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusConflict {
		t.Fatalf("second socket: err %v, want 409", err)
	}
}

// TestJSONChunksAndStop: audio sent as base64 audio_chunk messages is
// heard; stop_recording finishes the utterance, sends post_final_transcript
// and closes normally.
func TestJSONChunksAndStop(t *testing.T) {
	fake, srv := start(t, gladiafake.Config{APIKey: key, Transcripts: []string{"json audio"}})
	_, body := post(t, srv, "", key, pcm16k)
	ctx := context.Background()
	conn, _, err := websocket.Dial(ctx, body["url"].(string), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseNow()

	var raw bytes.Buffer
	for i := range 16000 / 2 { // 0.5 s of 300 Hz tone
		_ = binary.Write(&raw, binary.LittleEndian, int16(8000*math.Sin(2*math.Pi*300*float64(i)/16000)))
	}
	chunk, _ := json.Marshal(map[string]any{"type": "audio_chunk", "data": map[string]string{"chunk": base64.StdEncoding.EncodeToString(raw.Bytes())}})
	for _, msg := range [][]byte{chunk, []byte(`{"type":"nonsense"}`), []byte(`{"type":"stop_recording"}`)} {
		if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatalf("write: %v", err)
		}
	}

	var types []string
	var final map[string]any
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("read ended with %v, want a normal closure", err)
			}
			break
		}
		var m struct {
			Type      string         `json:"type"`
			SessionID string         `json:"session_id"`
			Data      map[string]any `json:"data"`
		}
		if err := json.Unmarshal(data, &m); err != nil || m.SessionID != body["id"] {
			t.Fatalf("message %s: %v", data, err)
		}
		types = append(types, m.Type)
		if m.Type == "transcript" {
			final = m.Data
		}
	}
	want := []string{"speech_start", "error", "transcript", "speech_end", "post_final_transcript"}
	if !slices.Equal(types, want) {
		t.Fatalf("messages %q, want %q", types, want)
	}
	utt, _ := final["utterance"].(map[string]any)
	if final["is_final"] != true || utt["text"] != "json audio" || utt["end"] != 0.5 {
		t.Fatalf("final transcript %v", final)
	}
	if words, _ := utt["words"].([]any); len(words) != 2 || words[0].(map[string]any)["word"] != "json" {
		t.Fatalf("words %v, want two with the field \"word\"", utt["words"])
	}
	s := fake.Sessions()[0]
	if s.JSONChunks != 1 || s.AudioBytes != int64(raw.Len()) || len(s.Samples) != 8000 || !s.Stopped || s.Finals != 1 {
		t.Fatalf("session %+v", s)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	_, srv := start(t, gladiafake.Config{})
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+gladiafake.LivePath, nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("status %d, want 405", resp.StatusCode)
	}
}
