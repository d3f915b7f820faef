package mistralfake

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/providertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const key = "fake-key"

func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	cfg.APIKey = key
	fake := New(cfg)
	mux := http.NewServeMux()
	mux.Handle(RealtimePath, fake)
	srv := providertest.Serve(t, mux)
	return fake, "ws" + strings.TrimPrefix(srv.URL, "http") + RealtimePath
}

type client struct {
	t    *testing.T
	conn *websocket.Conn
}

func dial(t *testing.T, u string, header http.Header) (*client, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { conn.CloseNow() })
	return &client{t: t, conn: conn}, resp, nil
}

func bearer(k string) http.Header { return http.Header{"Authorization": {"Bearer " + k}} }

func (c *client) send(v any) {
	c.t.Helper()
	data, _ := json.Marshal(v)
	if err := c.conn.Write(context.Background(), websocket.MessageText, data); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *client) recv() map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, data, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("recv %s: %v", data, err)
	}
	return m
}

func (c *client) update(enc string, rate int) {
	c.send(map[string]any{"type": "session.update", "session": map[string]any{
		"audio_format": map[string]any{"encoding": enc, "sample_rate": rate}, "target_streaming_delay_ms": 240}})
}

func loudUlaw(d time.Duration) string {
	pcm := make([]int16, int(d/time.Millisecond)*8)
	for i := range pcm {
		pcm[i] = 8000
		if i%2 == 1 {
			pcm[i] = -8000
		}
	}
	return base64.StdEncoding.EncodeToString(audio.EncodeUlaw(nil, pcm))
}

// TestAuthAndModel: a wrong or missing key is 401, a missing model 400.
func TestAuthAndModel(t *testing.T) {
	_, u := start(t, Config{})
	for _, tc := range []struct {
		url    string
		header http.Header
		status int
	}{
		{u + "?model=m-realtime", bearer("wrong"), http.StatusUnauthorized},
		{u + "?model=m-realtime", nil, http.StatusUnauthorized},
		{u, bearer(key), http.StatusBadRequest},
	} {
		_, resp, err := dial(t, tc.url, tc.header)
		if err == nil || resp == nil || resp.StatusCode != tc.status {
			t.Errorf("%s with %v: %v, want HTTP %d", tc.url, tc.header, err, tc.status)
		}
	}
}

// TestScriptedUtterance: µ-law speech reveals words as deltas; flush ends
// the utterance with done; the session records the request.
func TestScriptedUtterance(t *testing.T) {
	fake, u := start(t, Config{Transcripts: []string{"alpha beta gamma"}, WordEvery: 100 * time.Millisecond})
	c, _, err := dial(t, u+"?model=m-realtime&language=it", bearer(key))
	if err != nil {
		t.Fatal(err)
	}
	if m := c.recv(); m["type"] != "session.created" {
		t.Fatalf("first message %v, want session.created", m)
	}
	c.update("pcm_mulaw", 8000)
	if m := c.recv(); m["type"] != "session.updated" {
		t.Fatalf("reply %v, want session.updated", m)
	}
	c.send(map[string]any{"type": "input_audio.append", "audio": loudUlaw(200 * time.Millisecond)})
	var text string
	for range 2 {
		m := c.recv()
		if m["type"] != "transcription.text.delta" {
			t.Fatalf("got %v, want a delta", m)
		}
		text += m["text"].(string)
	}
	c.send(map[string]any{"type": "input_audio.flush"})
	m := c.recv()
	text += m["text"].(string)
	if done := c.recv(); done["type"] != "transcription.done" || done["text"] != "alpha beta gamma" || text != "alpha beta gamma" {
		t.Fatalf("deltas %q then %v, want the transcript", text, done)
	}
	c.send(map[string]any{"type": "input_audio.end"})
	if done := c.recv(); done["type"] != "transcription.done" || done["text"] != "" {
		t.Fatalf("end answered with %v, want an empty done", done)
	}
	c.conn.Close(websocket.StatusNormalClosure, "")
	s := fake.Sessions()[0]
	if s.Model != "m-realtime" || s.Language != "it" || s.Encoding != "pcm_mulaw" || s.SampleRate != 8000 ||
		s.TargetDelayMs != 240 || s.Samples != 1600 || s.Flushes != 1 || !s.Ended || len(s.Errors) != 0 {
		t.Errorf("session %+v", s)
	}
}

// TestProtocolErrors: the fake reports what the real service rejects.
func TestProtocolErrors(t *testing.T) {
	fake, u := start(t, Config{})
	c, _, err := dial(t, u+"?model=m-realtime", bearer(key))
	if err != nil {
		t.Fatal(err)
	}
	c.recv()
	c.update("pcm_s24le", 16000)
	c.recv()
	c.send(map[string]any{"type": "input_audio.append", "audio": base64.StdEncoding.EncodeToString(make([]byte, maxAppendBytes+2))})
	c.recv()
	c.send(map[string]any{"type": "input_audio.append", "audio": base64.StdEncoding.EncodeToString(make([]byte, 320))})
	c.update("pcm_s16le", 16000)
	c.recv()
	c.send(map[string]any{"type": "nonsense"})
	if m := c.recv(); m["type"] != "error" {
		t.Fatalf("got %v, want an error event", m)
	}
	c.conn.Close(websocket.StatusNormalClosure, "")
	errs := fake.Sessions()[0].Errors
	want := []string{"unsupported audio format", "exceeds 262144", "after audio", "unknown message type"}
	if len(errs) != len(want) {
		t.Fatalf("errors %q, want %d", errs, len(want))
	}
	for i, w := range want {
		if !strings.Contains(errs[i], w) {
			t.Errorf("error %d %q, want it to mention %q", i, errs[i], w)
		}
	}
}
