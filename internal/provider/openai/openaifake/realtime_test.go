package openaifake

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/realtime/realtimefake"
)

func rtStart(t *testing.T, cfg RealtimeConfig) (*RealtimeServer, string) {
	t.Helper()
	fake := NewRealtime(cfg)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = fake.Close() })
	return fake, srv.URL
}

func rtDial(t *testing.T, base, path, key string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(base, "http")+path, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

type rtEvent struct {
	Type       string
	ItemID     string `json:"item_id"`
	Transcript string
	Delta      string
	Response   struct{ Status string }
	Error      struct{ Type, Code, Param, Message string }
}

// rtNext reads until an event of type typ (any of them when empty).
func rtNext(t *testing.T, c *websocket.Conn, typ string) rtEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		var ev rtEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("bad event %s: %v", data, err)
		}
		if typ == "" || ev.Type == typ {
			return ev
		}
	}
}

func rtSend(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestRealtimeFakeAuth(t *testing.T) {
	for _, mode := range []RealtimeMode{RealtimeOpenAI, RealtimeXAI} {
		_, base := rtStart(t, RealtimeConfig{APIKey: "k", Mode: mode})
		resp, err := http.Get(base + "/v1/realtime")
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || body["error"] == nil {
			t.Errorf("mode %d: %d %v", mode, resp.StatusCode, body)
		}
		rtNext(t, rtDial(t, base, "/anywhere", "k"), "session.created")
	}
	_, base := rtStart(t, RealtimeConfig{})
	rtNext(t, rtDial(t, base, "/", ""), "session.created") // any key when none is configured
}

func TestRealtimeFakeValidatesSession(t *testing.T) {
	fake, base := rtStart(t, RealtimeConfig{})
	c := rtDial(t, base, "/v1/realtime", "")
	for _, tc := range []struct{ session, param string }{
		{`{"audio":{"output":{"voice":"marin"}}}`, "session.type"},
		{`{"type":"realtime","audio":{"output":{"voice":"nobody"}}}`, "voice"},
		{`{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcm","rate":24000}}}}`, "session.audio.input.format.type"},
		{`{"type":"realtime","audio":{"input":{"turn_detection":{"type":"magic"}}}}`, "session.audio.input.turn_detection.type"},
	} {
		rtSend(t, c, `{"type":"session.update","session":`+tc.session+`}`)
		if ev := rtNext(t, c, "error"); ev.Error.Param != tc.param || ev.Error.Code != "invalid_value" {
			t.Errorf("%s: error %+v", tc.session, ev.Error)
		}
	}
	rtSend(t, c, `not json`)
	if ev := rtNext(t, c, "error"); ev.Error.Code != "invalid_json" {
		t.Errorf("non-JSON: %+v", ev.Error)
	}
	rtSend(t, c, `{"type":"response.cancel"}`)
	if ev := rtNext(t, c, "error"); ev.Error.Code != "response_cancel_not_active" {
		t.Errorf("cancel: %+v", ev.Error)
	}
	rtSend(t, c, `{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"nope","output":"x"}}`)
	if ev := rtNext(t, c, "error"); ev.Error.Param != "item.call_id" {
		t.Errorf("unknown call: %+v", ev.Error)
	}
	rtSend(t, c, `{"type":"session.update","session":{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcmu"}},"output":{"voice":"vesper"}}}}`)
	rtNext(t, c, "session.updated")
	if rec := fake.Sessions()[0]; rec.Updates != 5 || rec.Rejected != 4 || !strings.Contains(string(rec.Session), "vesper") {
		t.Errorf("record %+v", rec)
	}
}

func TestRealtimeFakeXAIMode(t *testing.T) {
	_, base := rtStart(t, RealtimeConfig{Mode: RealtimeXAI})
	c := rtDial(t, base, "/v1/realtime", "")
	rtSend(t, c, `{"type":"session.update","session":{"voice":"marin"}}`)
	if ev := rtNext(t, c, "error"); ev.Error.Param != "voice" {
		t.Errorf("OpenAI voice in xAI mode: %+v", ev.Error)
	}
	rtSend(t, c, `{"type":"session.update","session":{"voice":"Ara","turn_detection":{"type":"server_vad","silence_duration_ms":300}}}`)
	rtNext(t, c, "session.updated")
	rtSend(t, c, `{"type":"conversation.item.truncate","item_id":"x","content_index":0,"audio_end_ms":5}`)
	if ev := rtNext(t, c, "error"); ev.Error.Code != "item_not_found" {
		t.Errorf("truncate of an unknown item: %+v", ev.Error)
	}
}

// TestRealtimeFakeHears feeds µ-law speech and checks the turn's events.
func TestRealtimeFakeHears(t *testing.T) {
	fake, base := rtStart(t, RealtimeConfig{Script: realtimefake.Script{Transcripts: []string{"hi there"}}})
	c := rtDial(t, base, "/", "")
	pcm := append(append(make([]int16, 800), realtimefake.Synth("hi there", 8000)...), make([]int16, 8000)...)
	for len(pcm) > 0 {
		n := min(320, len(pcm))
		rtSend(t, c, `{"type":"input_audio_buffer.append","audio":"`+base64.StdEncoding.EncodeToString(audio.EncodeUlaw(nil, pcm[:n]))+`"}`)
		pcm = pcm[n:]
	}
	started := rtNext(t, c, "input_audio_buffer.speech_started")
	if stopped := rtNext(t, c, "input_audio_buffer.speech_stopped"); stopped.ItemID != started.ItemID || started.ItemID == "" {
		t.Errorf("item ids %q, %q", started.ItemID, stopped.ItemID)
	}
	if ev := rtNext(t, c, "conversation.item.input_audio_transcription.completed"); ev.Transcript != "hi there" {
		t.Errorf("transcript %q", ev.Transcript)
	}
	var samples int
	var transcript string
	for {
		ev := rtNext(t, c, "")
		switch ev.Type {
		case "response.output_audio.delta":
			b, _ := base64.StdEncoding.DecodeString(ev.Delta)
			samples += len(b)
		case "response.output_audio_transcript.delta":
			transcript += ev.Delta
		}
		if ev.Type == "response.done" {
			if ev.Response.Status != "completed" {
				t.Errorf("status %q", ev.Response.Status)
			}
			break
		}
	}
	if want := "You said: hi there."; transcript != want || samples != len(realtimefake.Synth(want, 8000)) {
		t.Errorf("transcript %q, %d samples", transcript, samples)
	}
	for deadline := time.Now().Add(5 * time.Second); fake.Sessions()[0].Audio != 1580*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("audio received %v, want 1.58s", fake.Sessions()[0].Audio)
		}
	}
}

func TestRealtimeFakeCloseEndsConnections(t *testing.T) {
	fake, base := rtStart(t, RealtimeConfig{})
	c := rtDial(t, base, "/", "")
	rtNext(t, c, "session.created")
	_ = fake.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, _, err := c.Read(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("read after Close: %v", err)
	}
	if !fake.Sessions()[0].Closed {
		t.Error("session not marked closed")
	}
}
