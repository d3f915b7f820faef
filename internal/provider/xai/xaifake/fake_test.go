package xaifake

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/audio"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const key = "fake-key"

func serve(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	cfg.APIKey = key
	srv := New(cfg)
	mux := http.NewServeMux()
	mux.Handle(Path, srv)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = srv.Close()
		ts.Close()
	})
	return srv, ts.URL
}

func query(codec, rate string) string {
	return url.Values{"voice": {"Eve"}, "language": {"en"}, "codec": {codec}, "sample_rate": {rate}}.Encode()
}

func dial(t *testing.T, base, rawQuery string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/v1/tts?"+rawQuery,
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + key}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.Write(t.Context(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

type event struct {
	Type, Delta, Message string
}

// readUntil reads events until one of type typ and returns the audio
// bytes before it and that event.
func readUntil(t *testing.T, c *websocket.Conn, typ string) ([]byte, event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var audioBytes []byte
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read waiting for %s: %v", typ, err)
		}
		var e event
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatalf("server sent %q: %v", data, err)
		}
		if e.Type == typ {
			return audioBytes, e
		}
		if e.Type != "audio.delta" {
			t.Fatalf("unexpected event %+v waiting for %s", e, typ)
		}
		b, err := base64.StdEncoding.DecodeString(e.Delta)
		if err != nil {
			t.Fatal(err)
		}
		audioBytes = append(audioBytes, b...)
	}
}

// TestAuth: a missing or wrong bearer key is refused before the upgrade
// with 401 and xAI's error body; the right one is upgraded.
func TestAuth(t *testing.T) {
	_, base := serve(t, Config{})
	for _, tc := range []struct {
		name, header string
		want         int
	}{
		{"missing", "", 401},
		{"wrong", "Bearer nope", 401},
		{"not bearer", key, 401},
		{"right", "Bearer " + key, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Authorization", tc.header)
			}
			c, resp, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/v1/tts?"+query("pcm", "8000"),
				&websocket.DialOptions{HTTPHeader: h})
			if tc.want == 0 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				_ = c.CloseNow()
				return
			}
			if err == nil || resp == nil || resp.StatusCode != tc.want {
				t.Fatalf("dial: %v (%v), want HTTP %d", err, resp, tc.want)
			}
			body, _ := io.ReadAll(resp.Body)
			var b struct{ Code, Error string }
			if json.Unmarshal(body, &b) != nil || !strings.Contains(b.Error, "Incorrect API key") {
				t.Fatalf("body %q, want xAI's error shape", body)
			}
		})
	}
}

// TestQueryChecked: a bad voice, codec, rate, speed or a missing language
// is refused with 400 before the upgrade.
func TestQueryChecked(t *testing.T) {
	_, base := serve(t, Config{})
	good := url.Values{"voice": {"ara"}, "language": {"auto"}, "codec": {"pcm"}, "sample_rate": {"8000"}}
	for _, tc := range []struct{ name, key, value, want string }{
		{"voice", "voice", "nobody", "unknown voice"},
		{"codec", "codec", "mp3", "codec"},
		{"rate", "sample_rate", "11025", "sample_rate"},
		{"language", "language", "", "language"},
		{"speed", "speed", "-1", "speed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range good {
				q[k] = slices.Clone(v)
			}
			q.Set(tc.key, tc.value)
			req, _ := http.NewRequest(http.MethodGet, base+"/v1/tts?"+q.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 400 || !strings.Contains(string(body), tc.want) {
				t.Fatalf("HTTP %d %s, want 400 naming %s", resp.StatusCode, body, tc.want)
			}
		})
	}
}

// TestProtocol: each delta is spoken as audio.delta messages, text.done is
// answered with audio.done, the socket stays open for more text, and bad
// messages get error events without ending the connection.
func TestProtocol(t *testing.T) {
	srv, base := serve(t, Config{ChunkBytes: 333})
	c := dial(t, base, query("pcm", "16000"))

	send(t, c, `{"type":"text.delta","delta":"Hello."}`)
	send(t, c, `{"type":"text.done"}`)
	got, _ := readUntil(t, c, "audio.done")
	if want := encode("pcm", DefaultSynth("Hello.", 16000)); !slices.Equal(got, want) {
		t.Fatalf("audio: %d bytes, want %d bytes of the tone", len(got), len(want))
	}

	send(t, c, `{"type":"nonsense"}`)
	if _, e := readUntil(t, c, "error"); !strings.Contains(e.Message, "nonsense") {
		t.Fatalf("error event %+v", e)
	}
	send(t, c, `{not json`)
	readUntil(t, c, "error")

	send(t, c, `{"type":"text.delta","delta":" Again."}`)
	send(t, c, `{"type":"text.done"}`)
	if got, _ := readUntil(t, c, "audio.done"); len(got) == 0 {
		t.Fatal("no audio for the second utterance on the same socket")
	}
	s := srv.Sessions()[0]
	if !slices.Equal(s.Deltas, []string{"Hello.", " Again."}) || s.Done != 2 || s.Query.Get("voice") != "Eve" {
		t.Fatalf("session %+v", s)
	}
}

// TestG711: codec=mulaw and alaw send one G.711 byte per sample.
func TestG711(t *testing.T) {
	_, base := serve(t, Config{})
	for codec, enc := range map[string]func([]byte, []int16) []byte{"mulaw": audio.EncodeUlaw, "alaw": audio.EncodeAlaw} {
		c := dial(t, base, query(codec, "8000"))
		send(t, c, `{"type":"text.delta","delta":"Telephony."}`)
		send(t, c, `{"type":"text.done"}`)
		got, _ := readUntil(t, c, "audio.done")
		if want := enc(nil, DefaultSynth("Telephony.", 8000)); !slices.Equal(got, want) {
			t.Errorf("%s: %d bytes differ from the encoded tone (%d bytes)", codec, len(got), len(want))
		}
	}
}

// TestFaultsStrike: each fault comes after FaultAfter audio messages.
func TestFaultsStrike(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault Fault
		check func(t *testing.T, data []byte, err error)
	}{
		{"disconnect", Disconnect, func(t *testing.T, _ []byte, err error) {
			if err == nil {
				t.Fatal("read succeeded after a disconnect")
			}
		}},
		{"malformed", Malformed, func(t *testing.T, data []byte, err error) {
			if err != nil || json.Valid(data) {
				t.Fatalf("got %q, %v; want invalid JSON", data, err)
			}
		}},
		{"error event", ErrorEvent, func(t *testing.T, data []byte, err error) {
			if err != nil || !strings.Contains(string(data), `"type":"error"`) {
				t.Fatalf("got %q, %v; want an error event", data, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base := serve(t, Config{Fault: tc.fault, FaultAfter: 1})
			c := dial(t, base, query("pcm", "8000"))
			send(t, c, `{"type":"text.delta","delta":"Several messages of audio here."}`)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if _, first, err := c.Read(ctx); err != nil || !strings.Contains(string(first), "audio.delta") {
				t.Fatalf("first message %q, %v", first, err)
			}
			_, data, err := c.Read(ctx)
			tc.check(t, data, err)
		})
	}
}

// TestRefuseStatus scripts a refused upgrade.
func TestRefuseStatus(t *testing.T) {
	_, base := serve(t, Config{RefuseStatus: 429})
	_, resp, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/v1/tts?"+query("pcm", "8000"),
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + key}}})
	if err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("dial: %v, want HTTP 429", err)
	}
}

// TestCloseEndsConnections: Close ends open connections and refuses new
// requests with 503.
func TestCloseEndsConnections(t *testing.T) {
	srv, base := serve(t, Config{})
	c := dial(t, base, query("pcm", "8000"))
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Read(context.Background())
		done <- err
	}()
	_ = srv.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read succeeded after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connection still open after Close")
	}
	if !srv.Sessions()[0].Closed {
		t.Fatal("session not marked closed")
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/tts?"+query("pcm", "8000"), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after Close: HTTP %d, want 503", resp.StatusCode)
	}
}
