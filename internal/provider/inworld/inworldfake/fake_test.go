package inworldfake

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const key = "dGVzdDprZXk="

// serve mounts a fake on a mux at Path, as callers do.
func serve(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	srv := New(cfg)
	mux := http.NewServeMux()
	mux.Handle(Path, srv)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = srv.Close()
		ts.Close()
	})
	return srv, "ws" + strings.TrimPrefix(ts.URL, "http") + "/tts/v1/voice:streamBidirectional"
}

// dial connects with the test key.
func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Basic " + key}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

func send(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	if err := ws.Write(t.Context(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// next reads one message as decoded JSON.
func next(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("message %s is not JSON: %v", b, err)
	}
	return m
}

// resultKind returns the message's result kind (contextCreated, audioChunk,
// …, status) and the result.
func resultKind(t *testing.T, m map[string]any) (string, map[string]any) {
	t.Helper()
	r, ok := m["result"].(map[string]any)
	if !ok {
		t.Fatalf("no result in %v", m)
	}
	for k := range r {
		if k != "contextId" {
			return k, r
		}
	}
	t.Fatalf("empty result %v", m)
	return "", nil
}

const create = `{"contextId":"c1","create":{"voiceId":"Ashley","modelId":"inworld-tts-2","audioConfig":{"audioEncoding":"LINEAR16","sampleRateHertz":8000}}}`

func TestProtocol(t *testing.T) {
	srv, url := serve(t, Config{APIKey: key})
	ws := dial(t, url)
	send(t, ws, create)
	if k, r := resultKind(t, next(t, ws)); k != "contextCreated" || r["contextId"] != "c1" {
		t.Fatalf("first reply %s %v", k, r)
	}
	send(t, ws, `{"send_text":{"text":""}}`) // keepalive without a context
	send(t, ws, `{"contextId":"c1","send_text":{"text":"Hello "}}`)
	send(t, ws, `{"contextId":"c1","send_text":{"text":"there."}}`)
	send(t, ws, `{"contextId":"c1","flush_context":{}}`)
	var audio []byte
	for {
		k, r := resultKind(t, next(t, ws))
		if k == "flushCompleted" {
			break
		}
		if k != "audioChunk" {
			t.Fatalf("got %s during a generation", k)
		}
		b, err := base64.StdEncoding.DecodeString(r["audioChunk"].(map[string]any)["audioContent"].(string))
		if err != nil {
			t.Fatal(err)
		}
		audio = append(audio, b...)
	}
	if want := 2 * len(DefaultSynth("Hello there.", 8000)); len(audio) != want {
		t.Errorf("%d bytes of audio, want %d", len(audio), want)
	}
	send(t, ws, `{"contextId":"c1","close_context":{}}`)
	if k, _ := resultKind(t, next(t, ws)); k != "contextClosed" {
		t.Fatalf("close answered %s", k)
	}
	send(t, ws, `{"contextId":"c1","send_text":{"text":"gone"}}`)
	k, r := resultKind(t, next(t, ws))
	if st, _ := r["status"].(map[string]any); k != "status" || st["code"] != 5.0 {
		t.Errorf("text to a closed context answered %s %v", k, r)
	}
	sess := srv.Sessions()[0]
	if sess.Texts[0] != "Hello there." || sess.Creates["c1"]["voiceId"] != "Ashley" || sess.Messages[1] != "keepalive" {
		t.Errorf("session %+v", sess)
	}
}

func TestRejections(t *testing.T) {
	_, url := serve(t, Config{SampleRates: []int{8000}})
	tests := []struct {
		name, msg string
		code      float64
		inError   bool // a top-level error rather than a context status
	}{
		{"not JSON", `{`, 3, true},
		{"no action", `{"contextId":"c1"}`, 3, true},
		{"unknown model", strings.Replace(create, "inworld-tts-2", "x", 1), 3, false},
		{"mp3", strings.Replace(create, "LINEAR16", "MP3", 1), 3, false},
		{"rate", strings.Replace(create, "8000", "16000", 1), 3, false},
		{"no voice", strings.Replace(create, "Ashley", "", 1), 3, false},
		{"flush unknown context", `{"contextId":"zz","flush_context":{}}`, 5, false},
	}
	ws := dial(t, url)
	for _, tt := range tests {
		send(t, ws, tt.msg)
		m := next(t, ws)
		var st map[string]any
		if tt.inError {
			st, _ = m["error"].(map[string]any)
		} else {
			_, r := resultKind(t, m)
			st, _ = r["status"].(map[string]any)
		}
		if st == nil || st["code"] != tt.code {
			t.Errorf("%s: got %v, want code %v", tt.name, m, tt.code)
		}
	}
}

func TestContextLimit(t *testing.T) {
	_, url := serve(t, Config{})
	ws := dial(t, url)
	for i := range 6 {
		send(t, ws, strings.Replace(create, `"c1"`, `"c`+string(rune('a'+i))+`"`, 1))
		k, r := resultKind(t, next(t, ws))
		if i < 5 && k != "contextCreated" {
			t.Fatalf("context %d: %s", i, k)
		}
		if i == 5 && (k != "status" || r["status"].(map[string]any)["code"] != 8.0) {
			t.Fatalf("sixth context: %s %v", k, r)
		}
	}
	send(t, ws, strings.Replace(create, `"c1"`, `"ca"`, 1))
	if _, r := resultKind(t, next(t, ws)); r["status"].(map[string]any)["code"] != 6.0 {
		t.Errorf("duplicate context: %v", r)
	}
}

func TestUpgradeRefusals(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		auth       string
		wantStatus int
		wantCode   float64
	}{
		{"missing key", Config{APIKey: key}, "", 401, 16},
		{"wrong key", Config{APIKey: key}, "Basic nope", 401, 16},
		{"bearer instead of basic", Config{APIKey: key}, "Bearer " + key, 401, 16},
		{"rejected", Config{RejectStatus: 429}, "", 429, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, url := serve(t, tt.cfg)
			hdr := http.Header{}
			if tt.auth != "" {
				hdr.Set("Authorization", tt.auth)
			}
			_, resp, err := websocket.Dial(t.Context(), url, &websocket.DialOptions{HTTPHeader: hdr})
			if err == nil || resp == nil || resp.StatusCode != tt.wantStatus {
				t.Fatalf("dial = %v, %v", resp, err)
			}
			body, _ := io.ReadAll(resp.Body)
			var st map[string]any
			if json.Unmarshal(body, &st) != nil || st["code"] != tt.wantCode {
				t.Errorf("body %s", body)
			}
			if srv.Stats().Connections != 0 {
				t.Error("connection accepted")
			}
		})
	}
}

func TestFailModes(t *testing.T) {
	for _, mode := range []FailMode{FailDisconnect, FailMalformed, FailError, FailStatus} {
		_, url := serve(t, Config{FailAfter: 1, FailMode: mode})
		ws := dial(t, url)
		send(t, ws, create)
		next(t, ws)
		send(t, ws, `{"contextId":"c1","send_text":{"text":"Long enough text."}}`)
		send(t, ws, `{"contextId":"c1","flush_context":{}}`)
		if k, _ := resultKind(t, next(t, ws)); k != "audioChunk" {
			t.Fatalf("mode %d: first reply %s", mode, k)
		}
		_, b, err := ws.Read(t.Context())
		switch mode {
		case FailDisconnect:
			if err == nil {
				t.Errorf("disconnect: read %s", b)
			}
		case FailMalformed:
			if err != nil || json.Valid(b) {
				t.Errorf("malformed: %s, %v", b, err)
			}
		case FailError:
			if err != nil || !strings.Contains(string(b), `"error":{"code":13`) {
				t.Errorf("error: %s, %v", b, err)
			}
		case FailStatus:
			if err != nil || !strings.Contains(string(b), `"status":{"code":13`) {
				t.Errorf("status: %s, %v", b, err)
			}
		}
	}
}

func TestServerCloseEndsConnections(t *testing.T) {
	srv, url := serve(t, Config{RealTime: true})
	ws := dial(t, url)
	send(t, ws, create)
	next(t, ws)
	send(t, ws, `{"contextId":"c1","send_text":{"text":"A long sentence that takes seconds to play."}}`)
	send(t, ws, `{"contextId":"c1","flush_context":{}}`)
	next(t, ws)
	done := make(chan struct{})
	go func() {
		_ = srv.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not end a paced connection")
	}
	if st := srv.Stats(); st.Active != 0 {
		t.Errorf("%d connections still active", st.Active)
	}
}
