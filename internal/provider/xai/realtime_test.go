package xai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/openai"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/provider/xai/xaifake"
	"github.com/parley-voice/parley/internal/realtime"
	"github.com/parley-voice/parley/internal/realtime/realtimefake"
)

func rtServe(t *testing.T, cfg openaifake.RealtimeConfig) (*openaifake.RealtimeServer, string) {
	t.Helper()
	fake := xaifake.NewRealtime(cfg)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = fake.Close() })
	return fake, "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/realtime"
}

type rtPump struct {
	ch   chan realtime.Event
	err  error
	done chan struct{}
}

func rtConnect(t *testing.T, url string, cfg realtime.Config) (realtime.Session, *rtPump) {
	t.Helper()
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	s, err := NewRealtime(RealtimeConfig{URL: url, DialTimeout: 5 * time.Second}).Connect(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	p := &rtPump{ch: make(chan realtime.Event, 1024), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			ev, err := s.Recv()
			if err != nil {
				p.err = err
				close(p.ch)
				return
			}
			p.ch <- ev
		}
	}()
	t.Cleanup(func() {
		_ = s.Close()
		<-p.done
	})
	return s, p
}

func (p *rtPump) until(t *testing.T, typ realtime.EventType) (realtime.Event, []realtime.Event) {
	t.Helper()
	var seen []realtime.Event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-p.ch:
			if !ok {
				t.Fatalf("session ended waiting for %v: %v", typ, p.err)
			}
			if ev.Type == typ {
				return ev, seen
			}
			seen = append(seen, ev)
		case <-timeout:
			t.Fatalf("no %v within 10s", typ)
		}
	}
}

func rtSpeak(t *testing.T, s realtime.Session, text string) {
	t.Helper()
	pcm := append(make([]int16, 1600), realtimefake.Synth(text, 8000)...)
	pcm = append(pcm, make([]int16, 6400)...)
	for len(pcm) > 0 {
		n := min(160, len(pcm))
		if err := s.SendAudio(pcm[:n]); err != nil {
			t.Fatalf("SendAudio: %v", err)
		}
		pcm = pcm[n:]
	}
}

func TestRealtimeXAISessionConfig(t *testing.T) {
	fake, url := rtServe(t, openaifake.RealtimeConfig{APIKey: testKey})
	temp := 0.9
	rtConnect(t, url, realtime.Config{
		Model:           "grok-voice-think-fast-2.0",
		Instructions:    "Be kind.",
		Voice:           "Rex",
		Temperature:     &temp,
		ReasoningEffort: "high",
		Speed:           1.3,
		Language:        "fr",
		Keyterms:        []string{"Parley", "Grok"},
		Tools:           []llm.ToolSpec{{Name: "book", Description: "Book a slot.", Parameters: json.RawMessage(`{"type":"object","properties":{"day":{"type":"string"}}}`)}},
		ServerTools: []realtime.ServerTool{{Type: "web_search"}, {Type: "x_search", AllowedXHandles: []string{"xai"}},
			{Type: "file_search", VectorStoreIDs: []string{"vs_1"}, MaxResults: 5}},
		Turn: realtime.TurnDetection{Threshold: 0.95, PrefixPadding: 333 * time.Millisecond, Silence: 50 * time.Millisecond, IdleTimeout: 5 * time.Second},
	})
	rec := fake.Sessions()[0]
	if rec.Query.Get("model") != "grok-voice-think-fast-2.0" || rec.Updates != 1 || rec.Rejected != 0 {
		t.Fatalf("session record %+v", rec)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Session, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["type"]; ok {
		t.Errorf("xAI session has a type: %s", rec.Session)
	}
	if got["voice"] != "rex" || got["instructions"] != "Be kind." || got["temperature"] != 0.9 || got["reasoning_effort"] != "high" || got["speed"] != 1.3 {
		t.Errorf("session = %s", rec.Session)
	}
	// Values go as given: the service clamps them.
	td, _ := got["turn_detection"].(map[string]any)
	if td["type"] != "server_vad" || td["threshold"] != 0.95 || td["prefix_padding_ms"] != 333.0 || td["silence_duration_ms"] != 50.0 || td["idle_timeout_ms"] != 5000.0 {
		t.Errorf("turn_detection = %v", td)
	}
	au, _ := got["audio"].(map[string]any)
	in, _ := au["input"].(map[string]any)
	out, _ := au["output"].(map[string]any)
	if in["format"].(map[string]any)["type"] != "audio/pcmu" || out["format"].(map[string]any)["type"] != "audio/pcmu" {
		t.Errorf("audio = %v", au)
	}
	tr, _ := in["transcription"].(map[string]any)
	if tr["language_hint"] != "fr" || len(tr["keyterms"].([]any)) != 2 {
		t.Errorf("transcription = %v", tr)
	}
	tools, _ := got["tools"].([]any)
	want := []string{
		`{"description":"Book a slot.","name":"book","parameters":{"properties":{"day":{"type":"string"}},"type":"object"},"type":"function"}`,
		`{"type":"web_search"}`,
		`{"allowed_x_handles":["xai"],"type":"x_search"}`,
		`{"max_num_results":5,"type":"file_search","vector_store_ids":["vs_1"]}`,
	}
	if len(tools) != len(want) {
		t.Fatalf("tools = %v", tools)
	}
	for i, tool := range tools {
		if b, _ := json.Marshal(tool); string(b) != want[i] {
			t.Errorf("tool %d = %s, want %s", i, b, want[i])
		}
	}
}

func TestRealtimeXAIConfigErrors(t *testing.T) {
	_, url := rtServe(t, openaifake.RealtimeConfig{})
	p := NewRealtime(RealtimeConfig{URL: url})
	ctx := context.Background()
	for _, cfg := range []realtime.Config{
		{APIKey: testKey, ReasoningEffort: "medium"},
		{APIKey: testKey, ServerTools: []realtime.ServerTool{{Type: "file_search"}}},
		{APIKey: testKey, ServerTools: []realtime.ServerTool{{Type: "mcp"}}},
	} {
		if _, err := p.Connect(ctx, cfg); err == nil || !strings.HasPrefix(err.Error(), "xai realtime: configuring session") {
			t.Errorf("Connect(%+v) = %v", cfg, err)
		}
	}
	_, err := p.Connect(ctx, realtime.Config{APIKey: testKey, Voice: "marin"})
	var re *openai.RealtimeError
	if !errors.As(err, &re) || re.Param != "voice" {
		t.Errorf("unknown voice: %v", err)
	}
}

func TestRealtimeXAIBadKey(t *testing.T) {
	_, url := rtServe(t, openaifake.RealtimeConfig{APIKey: testKey})
	p := NewRealtime(RealtimeConfig{URL: url})
	_, err := p.Connect(context.Background(), realtime.Config{APIKey: "xai-wrong"})
	var re *openai.RealtimeError
	if !errors.As(err, &re) || !re.Unauthorized() || !strings.Contains(err.Error(), "xAI API key was rejected") || strings.Contains(err.Error(), "xai-wrong") {
		t.Errorf("bad key: %v", err)
	}
	if _, err := p.Connect(context.Background(), realtime.Config{}); err == nil || !strings.Contains(err.Error(), "no xAI API key") {
		t.Errorf("no key: %v", err)
	}
}

func TestRealtimeXAIConversation(t *testing.T) {
	fake, url := rtServe(t, openaifake.RealtimeConfig{ChunkInterval: 20 * time.Millisecond, Script: realtimefake.Script{
		Transcripts: []string{"tell me a story", "check my order", "thanks"},
		Replies:     map[string]string{"story": strings.Repeat("Once upon a time. ", 4)},
		Tools:       []realtimefake.ToolTrigger{{Trigger: "order", Name: "order_status", Arguments: `{"id":7}`}},
	}})
	s, p := rtConnect(t, url, realtime.Config{})
	ctx := context.Background()

	// A spoken turn, interrupted.
	rtSpeak(t, s, "tell me a story")
	if ev, _ := p.until(t, realtime.UserTranscript); ev.Text != "tell me a story" {
		t.Errorf("transcript %q", ev.Text)
	}
	a, _ := p.until(t, realtime.Audio)
	if a.ItemID == "" || len(a.Audio) != 800 {
		t.Errorf("audio event: item %q, %d samples", a.ItemID, len(a.Audio))
	}
	rtSpeak(t, s, "check my order")
	p.until(t, realtime.SpeechStarted)
	if done, _ := p.until(t, realtime.ResponseDone); !done.Cancelled || !strings.HasPrefix(done.Text, "Once upon a time.") {
		t.Errorf("interrupted response %+v", done)
	}
	// The interrupted item is cut where the caller stopped hearing it.
	if err := s.Truncate(ctx, a.ItemID, time.Second); err != nil {
		t.Errorf("Truncate: %v", err)
	}

	// The second utterance calls a tool.
	ev, _ := p.until(t, realtime.ToolCalls)
	if len(ev.Calls) != 1 || ev.Calls[0].Name != "order_status" || ev.Calls[0].Arguments != `{"id":7}` {
		t.Fatalf("calls %+v", ev.Calls)
	}
	if err := s.ToolResults(ctx, []realtime.ToolResult{{CallID: ev.Calls[0].ID, Name: "order_status", Output: "shipped"}}); err != nil {
		t.Fatal(err)
	}
	if done, _ := p.until(t, realtime.ResponseDone); done.Text != "The order_status tool says shipped." {
		t.Errorf("after the tool %q", done.Text)
	}

	// Verbatim text and a context message.
	if err := s.AddMessage(ctx, llm.System, "The order ships Monday."); err != nil {
		t.Fatal(err)
	}
	if err := s.Respond(ctx, realtime.Verbatim("Goodbye!")); err != nil {
		t.Fatal(err)
	}
	if done, _ := p.until(t, realtime.ResponseDone); done.Text != "Goodbye!" {
		t.Errorf("verbatim %q", done.Text)
	}
	rec := fake.Sessions()[0]
	if len(rec.Truncates) != 1 || rec.Truncates[0].ItemID != a.ItemID || rec.Truncates[0].AudioEndMs != 1000 || len(rec.Messages) != 1 || rec.Messages[0].Role != "system" || len(rec.ToolOutputs) != 1 || rec.Cancelled != 1 {
		t.Errorf("fake record %+v", rec)
	}
}

func TestRealtimeXAIDisconnect(t *testing.T) {
	_, url := rtServe(t, openaifake.RealtimeConfig{Fault: openaifake.FaultDisconnect})
	s, p := rtConnect(t, url, realtime.Config{})
	start := time.Now()
	if err := s.Respond(context.Background(), realtime.Verbatim("Hello there.")); err != nil {
		t.Fatal(err)
	}
	for range p.ch {
	}
	if p.err == nil || errors.Is(p.err, io.EOF) || !strings.Contains(p.err.Error(), "xai realtime: connection lost") {
		t.Errorf("Recv ended with %v", p.err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v to notice", d)
	}
}
