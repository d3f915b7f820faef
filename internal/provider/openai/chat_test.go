package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

// fakeServer starts the fake behind an httptest server.
func fakeServer(t *testing.T, cfg openaifake.Config) (*openaifake.Server, *httptest.Server) {
	t.Helper()
	fake := openaifake.New(cfg)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

// chatFor is a Chat talking to srv.
func chatFor(srv *httptest.Server, cfg Config) *Chat {
	cfg.BaseURL = srv.URL + "/v1/"
	cfg.HTTPClient = srv.Client()
	return NewChat(cfg)
}

// userRequest is a one-message request.
func userRequest(key string) llm.Request {
	return llm.Request{Model: "gpt-4o-mini", APIKey: key, Messages: []llm.Message{
		{Role: llm.System, Content: "You are brief."},
		{Role: llm.User, Content: "Book me a cleaning on Tuesday please"},
	}}
}

// summary is what a whole reply amounts to.
type summary struct {
	text      string
	calls     []llm.ToolCall
	finish    string
	usage     *llm.Usage
	deltas    int
	callDelta int // how many deltas carried tool calls
}

// summarize reads st to io.EOF.
func summarize(t *testing.T, st llm.Stream) summary {
	t.Helper()
	ds, err := recvAll(t, st)
	if err != io.EOF {
		t.Fatalf("stream ended with %v, want io.EOF", err)
	}
	var s summary
	var text strings.Builder
	for _, d := range ds {
		text.WriteString(d.Text)
		if len(d.ToolCalls) > 0 {
			s.calls = append(s.calls, d.ToolCalls...)
			s.callDelta++
		}
		if d.FinishReason != "" {
			if s.finish != "" {
				t.Errorf("finish reason %q after %q", d.FinishReason, s.finish)
			}
			s.finish = d.FinishReason
		}
		if d.Usage != nil {
			s.usage = d.Usage
		}
	}
	s.text, s.deltas = text.String(), len(ds)
	return s
}

func TestStreamFromFake(t *testing.T) {
	bookCalls := []llm.ToolCall{
		{ID: "call_A1b2C3", Name: "book_slot", Arguments: `{"day":"tuesday","time":"10:00","notes":"first visit, \"anxious\""}`},
		{ID: "call_Z9y8X7", Name: "send_sms", Arguments: `{"to":"+15551234567","text":"Booked ✓"}`},
	}
	tests := []struct {
		name       string
		reply      openaifake.Reply
		wantText   string
		wantCalls  []llm.ToolCall // nil: compare ToolCalls of the reply
		wantFinish string
		minDeltas  int
	}{
		{
			name:       "text in small chunks",
			reply:      openaifake.Reply{Text: "Sure — Tuesday at 10:00 works. Ça va? 👋 See you!", ChunkSize: 3},
			wantText:   "Sure — Tuesday at 10:00 works. Ça va? 👋 See you!",
			wantFinish: "stop",
			minDeltas:  17,
		},
		{
			name:       "text then two tool calls in sequence",
			reply:      openaifake.Reply{Text: "One moment.", ToolCalls: bookCalls},
			wantText:   "One moment.",
			wantFinish: "tool_calls",
		},
		{
			name:       "parallel tool calls interleaved",
			reply:      openaifake.Reply{ToolCalls: bookCalls, Interleave: true},
			wantFinish: "tool_calls",
		},
		{
			name:       "Mistral: calls complete in one delta",
			reply:      openaifake.Reply{ToolCalls: []llm.ToolCall{{ID: "D681PevKs", Name: "book_slot", Arguments: `{"day": "tuesday"}`}}, Mistral: true},
			wantFinish: "tool_calls",
		},
		{
			name:       "length",
			reply:      openaifake.Reply{Text: "It was a dark and", FinishReason: "length"},
			wantText:   "It was a dark and",
			wantFinish: "length",
		},
		{
			name:       "empty reply",
			reply:      openaifake.Reply{},
			wantFinish: "stop",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, srv := fakeServer(t, openaifake.Config{Replies: []openaifake.Reply{tc.reply}})
			st, err := chatFor(srv, Config{}).Stream(context.Background(), userRequest(""))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			defer st.Close()
			got := summarize(t, st)
			if got.text != tc.wantText {
				t.Errorf("text = %q, want %q", got.text, tc.wantText)
			}
			wantCalls := tc.wantCalls
			if wantCalls == nil {
				wantCalls = tc.reply.ToolCalls
			}
			if !reflect.DeepEqual(got.calls, wantCalls) {
				t.Errorf("tool calls = %+v, want %+v", got.calls, wantCalls)
			}
			if len(wantCalls) > 0 && got.callDelta != 1 {
				t.Errorf("tool calls came in %d deltas, want 1", got.callDelta)
			}
			if got.finish != tc.wantFinish {
				t.Errorf("finish = %q, want %q", got.finish, tc.wantFinish)
			}
			if got.deltas < tc.minDeltas {
				t.Errorf("%d deltas, want at least %d: text is not streamed", got.deltas, tc.minDeltas)
			}
			// The fake counts words: 10 in the prompt.
			if got.usage == nil || got.usage.PromptTokens != 10 {
				t.Errorf("usage = %+v, want 10 prompt tokens", got.usage)
			}
			reqs := fake.Requests()
			if len(reqs) != 1 || !reqs[0].Stream || !reqs[0].IncludeUsage || reqs[0].Model != "gpt-4o-mini" {
				t.Errorf("fake saw %+v", reqs)
			}
		})
	}
}

// TestMistralIDsEchoed checks that ids the server made up come back exactly
// in the next turn's history.
func TestMistralIDsEchoed(t *testing.T) {
	fake, srv := fakeServer(t, openaifake.Config{Replies: []openaifake.Reply{
		{ToolCalls: []llm.ToolCall{{Name: "book_slot", Arguments: `{"day":"tue"}`}, {Name: "end_call"}}, Mistral: true},
		{Text: "Done."},
	}})
	chat := chatFor(srv, Config{MaxTokensField: MaxTokens})
	req := userRequest("")
	st, err := chat.Stream(context.Background(), req)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	first := summarize(t, st)
	st.Close()
	if len(first.calls) != 2 {
		t.Fatalf("calls = %+v, want 2", first.calls)
	}
	for _, c := range first.calls {
		if len(c.ID) != 9 || strings.Trim(c.ID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
			t.Errorf("id %q is not 9 alphanumerics", c.ID)
		}
	}
	if first.calls[1].Arguments != "{}" {
		t.Errorf("call without arguments got %q, want {}", first.calls[1].Arguments)
	}

	req.Messages = append(req.Messages,
		llm.Message{Role: llm.Assistant, ToolCalls: first.calls},
		llm.Message{Role: llm.Tool, ToolCallID: first.calls[0].ID, Content: `{"ok":true}`},
		llm.Message{Role: llm.Tool, ToolCallID: first.calls[1].ID, Content: `{"ok":true}`},
	)
	st, err = chat.Stream(context.Background(), req)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if got := summarize(t, st); got.text != "Done." {
		t.Errorf("second turn text = %q", got.text)
	}
	st.Close()

	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("fake saw %d requests", len(reqs))
	}
	msgs := reqs[1].Messages
	if len(msgs) != 5 {
		t.Fatalf("second request has %d messages", len(msgs))
	}
	if !reflect.DeepEqual(msgs[2].ToolCalls, first.calls) {
		t.Errorf("assistant tool calls sent back = %+v, want %+v", msgs[2].ToolCalls, first.calls)
	}
	if msgs[3].ToolCallID != first.calls[0].ID || msgs[4].ToolCallID != first.calls[1].ID {
		t.Errorf("tool_call_ids = %q, %q", msgs[3].ToolCallID, msgs[4].ToolCallID)
	}
}

// captureServer records request headers and bodies and answers with a
// minimal stream.
type captureServer struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
	bodies  [][]byte
}

func newCaptureServer(t *testing.T) *captureServer {
	t.Helper()
	cs := &captureServer{}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		cs.mu.Lock()
		cs.headers = append(cs.headers, r.Header.Clone())
		cs.bodies = append(cs.bodies, body)
		cs.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, textChunk("ok")+finishChunk("stop")+done)
	}))
	t.Cleanup(cs.Close)
	return cs
}

// last is the latest request's header and body.
func (cs *captureServer) last() (http.Header, []byte) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.headers[len(cs.headers)-1], cs.bodies[len(cs.bodies)-1]
}

// send streams req through a Chat with cfg and returns what the server saw.
func (cs *captureServer) send(t *testing.T, cfg Config, req llm.Request) (http.Header, []byte) {
	t.Helper()
	cfg.BaseURL, cfg.HTTPClient = cs.URL, cs.Client()
	st, err := NewChat(cfg).Stream(context.Background(), req)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	summarize(t, st)
	st.Close()
	return cs.last()
}

// goldenRequest covers every kind of message and tool.
func goldenRequest() llm.Request {
	temp := 0.3
	return llm.Request{
		Model:  "gpt-4o-mini",
		APIKey: "sk-golden",
		Messages: []llm.Message{
			{Role: llm.System, Content: "You are the receptionist of a dental clinic. Be brief."},
			{Role: llm.User, Content: "Can I book a cleaning on Tuesday?"},
			{Role: llm.Assistant, ToolCalls: []llm.ToolCall{
				{ID: "call_abc123", Name: "book_slot", Arguments: `{"day":"tuesday"}`},
				{ID: "call_def456", Name: "end_call"},
			}},
			{Role: llm.Tool, ToolCallID: "call_abc123", Content: `{"ok":true,"time":"10:00"}`},
			{Role: llm.Tool, ToolCallID: "call_def456", Content: "not yet"},
			{Role: llm.Assistant, Content: "You are booked for Tuesday at ten."},
		},
		Tools: []llm.ToolSpec{
			{Name: "book_slot", Description: "Book an appointment slot.",
				Parameters: json.RawMessage(`{"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}`)},
			{Name: "end_call", Description: "Hang up."},
		},
		Temperature: &temp,
		MaxTokens:   256,
	}
}

// normalJSON decodes b for comparison.
func normalJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return v
}

func TestRequestGolden(t *testing.T) {
	golden, err := os.ReadFile("testdata/request.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	cs := newCaptureServer(t)
	_, body := cs.send(t, Config{}, goldenRequest())
	if got, want := normalJSON(t, body), normalJSON(t, golden); !reflect.DeepEqual(got, want) {
		pretty, _ := json.MarshalIndent(got, "", "  ")
		t.Errorf("request body differs from testdata/request.golden.json; got:\n%s", pretty)
	}
}

func TestRequestFields(t *testing.T) {
	zero := 0.0
	tests := []struct {
		name    string
		field   string
		modify  func(*llm.Request)
		present []string
		absent  []string
		check   func(t *testing.T, body map[string]any)
	}{
		{name: "default field", present: []string{"max_completion_tokens"}, absent: []string{"max_tokens"}},
		{name: "max_tokens for compatible servers", field: MaxTokens, present: []string{"max_tokens"}, absent: []string{"max_completion_tokens"},
			check: func(t *testing.T, b map[string]any) {
				if b["max_tokens"] != 256.0 {
					t.Errorf("max_tokens = %v", b["max_tokens"])
				}
			}},
		{name: "custom field", field: "num_predict", present: []string{"num_predict"}, absent: []string{"max_tokens", "max_completion_tokens"}},
		{name: "no cap", modify: func(r *llm.Request) { r.MaxTokens = 0 }, absent: []string{"max_tokens", "max_completion_tokens"}},
		{name: "no tools", modify: func(r *llm.Request) { r.Tools = nil }, absent: []string{"tools", "tool_choice"}},
		{name: "no temperature", modify: func(r *llm.Request) { r.Temperature = nil }, absent: []string{"temperature"}},
		{name: "no response format", absent: []string{"response_format"}},
		{name: "response format with a schema",
			modify: func(r *llm.Request) {
				r.ResponseFormat = &llm.ResponseFormat{Name: "call_analysis", Schema: json.RawMessage(`{"type":"object","properties":{"ok":{"type":"boolean"}}}`)}
			},
			check: func(t *testing.T, b map[string]any) {
				want := map[string]any{"type": "json_schema", "json_schema": map[string]any{
					"name": "call_analysis", "strict": false,
					"schema": map[string]any{"type": "object", "properties": map[string]any{"ok": map[string]any{"type": "boolean"}}},
				}}
				if !reflect.DeepEqual(b["response_format"], want) {
					t.Errorf("response_format = %v, want %v", b["response_format"], want)
				}
			}},
		{name: "response format without a name",
			modify: func(r *llm.Request) {
				r.ResponseFormat = &llm.ResponseFormat{Schema: json.RawMessage(`{"type":"object"}`)}
			},
			check: func(t *testing.T, b map[string]any) {
				js, _ := b["response_format"].(map[string]any)["json_schema"].(map[string]any)
				if js["name"] != "response" {
					t.Errorf("response_format = %v, want the default name", b["response_format"])
				}
			}},
		{name: "response format without a schema asks for a JSON object",
			modify: func(r *llm.Request) { r.ResponseFormat = &llm.ResponseFormat{Name: "x"} },
			check: func(t *testing.T, b map[string]any) {
				if want := map[string]any{"type": "json_object"}; !reflect.DeepEqual(b["response_format"], want) {
					t.Errorf("response_format = %v, want %v", b["response_format"], want)
				}
			}},
		{name: "temperature zero is sent", modify: func(r *llm.Request) { r.Temperature = &zero }, present: []string{"temperature"}},
		{name: "assistant text with tool calls keeps its text",
			modify: func(r *llm.Request) { r.Messages[2].Content = "Let me book that." },
			check: func(t *testing.T, b map[string]any) {
				m := b["messages"].([]any)[2].(map[string]any)
				if m["content"] != "Let me book that." || m["tool_calls"] == nil {
					t.Errorf("assistant message = %v", m)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := goldenRequest()
			if tc.modify != nil {
				tc.modify(&req)
			}
			body, err := NewChat(Config{MaxTokensField: tc.field}).encode(&req)
			if err != nil {
				t.Fatal(err)
			}
			m := normalJSON(t, body).(map[string]any)
			for _, k := range tc.present {
				if _, ok := m[k]; !ok {
					t.Errorf("%q missing from %s", k, body)
				}
			}
			for _, k := range tc.absent {
				if _, ok := m[k]; ok {
					t.Errorf("%q present in %s", k, body)
				}
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

// TestResponseFormatReachesFake checks the format end to end: the fake
// records what the adapter sent.
func TestResponseFormatReachesFake(t *testing.T) {
	fake, srv := fakeServer(t, openaifake.Config{Replies: []openaifake.Reply{{Text: `{"ok":true}`}}})
	req := userRequest("")
	schema := `{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}`
	req.ResponseFormat = &llm.ResponseFormat{Name: "call_analysis", Schema: json.RawMessage(schema)}
	st, err := chatFor(srv, Config{}).Stream(context.Background(), req)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	got := summarize(t, st)
	st.Close()
	if got.text != `{"ok":true}` {
		t.Errorf("text = %q", got.text)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake saw %d requests", len(reqs))
	}
	want := `{"type":"json_schema","json_schema":{"name":"call_analysis","schema":` + schema + `,"strict":false}}`
	if !reflect.DeepEqual(normalJSON(t, reqs[0].ResponseFormat), normalJSON(t, []byte(want))) {
		t.Errorf("response_format = %s, want %s", reqs[0].ResponseFormat, want)
	}
}

func TestEncodeRejectsBadSchema(t *testing.T) {
	req := goldenRequest()
	req.Tools[0].Parameters = json.RawMessage(`{"type":`)
	if _, err := NewChat(Config{}).encode(&req); err == nil || !strings.Contains(err.Error(), "encode request") {
		t.Errorf("encode = %v, want an encode error", err)
	}
	if _, err := NewChat(Config{}).Stream(context.Background(), llm.Request{}); err == nil {
		t.Error("Stream without a model succeeded")
	}
}

func TestHeaders(t *testing.T) {
	tests := []struct {
		name     string
		key      string
		headers  map[string]string
		wantAuth string
		want     map[string]string
	}{
		{name: "empty key sends no Authorization", wantAuth: ""},
		{name: "key as bearer", key: "sk-live", wantAuth: "Bearer sk-live"},
		{name: "gateway token when there is no key", headers: map[string]string{"authorization": "Bearer gw-token"}, wantAuth: "Bearer gw-token"},
		{name: "the key wins over a configured Authorization", key: "sk-live", headers: map[string]string{"Authorization": "Bearer gw-token"}, wantAuth: "Bearer sk-live"},
		{name: "extra headers, protocol headers kept",
			headers: map[string]string{"X-Gateway-Route": "eu", "Content-Type": "text/plain", "Accept": "*/*"},
			want:    map[string]string{"X-Gateway-Route": "eu", "Content-Type": "application/json", "Accept": "text/event-stream"}},
	}
	cs := newCaptureServer(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := userRequest(tc.key)
			h, _ := cs.send(t, Config{Headers: tc.headers}, req)
			if got := h.Get("Authorization"); got != tc.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tc.wantAuth)
			}
			if _, ok := h["Authorization"]; tc.wantAuth == "" && ok {
				t.Error("Authorization header present")
			}
			for k, v := range tc.want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestAPIErrors(t *testing.T) {
	const key = "sk-proj-TOPSECRET"
	_, fake := fakeServer(t, openaifake.Config{APIKey: "sk-right", Replies: []openaifake.Reply{
		{Status: http.StatusTooManyRequests, RetryAfter: 2 * time.Second},
	}})
	raw := func(status int, contentType, body string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			drain(r)
			w.Header().Set("Content-Type", contentType)
			w.Header().Set("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT") // in the past: no wait
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	tests := []struct {
		name      string
		srv       *httptest.Server
		key       string
		want      APIError
		retryable bool
	}{
		{name: "wrong key", srv: fake, key: key,
			want: APIError{StatusCode: 401, Type: "invalid_request_error", Code: "invalid_api_key", Message: "Incorrect API key provided."}},
		{name: "rate limited with Retry-After", srv: fake, key: "sk-right", retryable: true,
			want: APIError{StatusCode: 429, Type: "requests", Code: "rate_limit_exceeded", RetryAfter: 2 * time.Second,
				Message: "The fake server was scripted to fail with status 429."}},
		{name: "plain text", srv: raw(502, "text/plain", "upstream exploded\n"), retryable: true,
			want: APIError{StatusCode: 502, Message: "upstream exploded"}},
		{name: "empty body", srv: raw(503, "text/plain", ""), retryable: true,
			want: APIError{StatusCode: 503, Message: "Service Unavailable"}},
		{name: "error as a string", srv: raw(404, "application/json", `{"error":"model 'llama9' not found"}`),
			want: APIError{StatusCode: 404, Message: "model 'llama9' not found"}},
		{name: "key echoed by the server is redacted", srv: raw(401, "application/json", `{"error":{"message":"bad key `+key+`","type":"auth","param":null,"code":401}}`), key: key,
			want: APIError{StatusCode: 401, Type: "auth", Code: "401", Message: "bad key [redacted]"}},
		{name: "quota exhausted is not retryable", srv: raw(429, "application/json", `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`),
			want: APIError{StatusCode: 429, Type: "insufficient_quota", Code: "insufficient_quota", Message: "You exceeded your current quota"}},
		{name: "error with status 200", srv: raw(200, "application/json", `{"error":{"message":"gateway says no","type":"gateway_error"}}`),
			want: APIError{StatusCode: 200, Type: "gateway_error", Message: "gateway says no"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := chatFor(tc.srv, Config{}).Stream(context.Background(), userRequest(tc.key))
			if err == nil {
				st.Close()
				t.Fatal("Stream succeeded")
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			got := *ae
			got.fromJSON = false
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("APIError = %+v\n          want %+v", got, tc.want)
			}
			if ae.Retryable() != tc.retryable {
				t.Errorf("Retryable = %v, want %v", ae.Retryable(), tc.retryable)
			}
			if msg := err.Error(); strings.Contains(msg, key) || !strings.Contains(msg, http.StatusText(tc.want.StatusCode)) {
				t.Errorf("Error() = %q: must name the status and not the key", msg)
			}
		})
	}
}

func TestJSONWithoutErrorIsNotAStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","choices":[]}`)
	}))
	defer srv.Close()
	_, err := chatFor(srv, Config{}).Stream(context.Background(), userRequest(""))
	if err == nil || !strings.Contains(err.Error(), "instead of an event stream") {
		t.Errorf("err = %v", err)
	}
}

func TestConnectionError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	chat := chatFor(srv, Config{})
	srv.Close()
	_, err := chat.Stream(context.Background(), userRequest("sk-secret"))
	if err == nil || !strings.HasPrefix(err.Error(), "openai: send request:") || strings.Contains(err.Error(), "sk-secret") {
		t.Errorf("err = %v", err)
	}
}

func TestCutConnection(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name := "HTTP/1.1"
		if h2 {
			name = "HTTP/2"
		}
		t.Run(name, func(t *testing.T) {
			fake := openaifake.New(openaifake.Config{Replies: []openaifake.Reply{{Text: "Hello there, how are you?", ChunkSize: 5, CutAfter: 3}}})
			srv := httptest.NewUnstartedServer(fake)
			if h2 {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			st, err := chatFor(srv, Config{}).Stream(context.Background(), userRequest(""))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			defer st.Close()
			ds, err := recvAll(t, st)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
			}
			var text strings.Builder
			for _, d := range ds {
				text.WriteString(d.Text)
			}
			if text.String() != "Hello there, ho" {
				t.Errorf("text before the cut = %q", text.String())
			}
		})
	}
}

// drain reads the request body, which lets the server notice when the
// client goes away.
func drain(r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }

// blockingServer sends the headers, then one text chunk, then waits until
// the client goes away.
func blockingServer(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	gone := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, textChunk("first"))
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
		once.Do(func() { close(gone) })
	}))
	t.Cleanup(srv.Close)
	return srv, gone
}

// recvAsync runs one Recv in a goroutine; the channel yields its error.
func recvAsync(st llm.Stream) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := st.Recv()
		ch <- err
	}()
	return ch
}

func TestCloseMidStream(t *testing.T) {
	srv, gone := blockingServer(t)
	st, err := chatFor(srv, Config{}).Stream(context.Background(), userRequest(""))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if d, err := st.Recv(); err != nil || d.Text != "first" {
		t.Fatalf("Recv = %+v, %v", d, err)
	}
	pending := recvAsync(st)
	time.Sleep(20 * time.Millisecond) // let Recv block
	start := time.Now()
	if err := st.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-pending:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("blocked Recv returned %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("blocked Recv did not return after Close")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	select {
	case <-gone:
	case <-time.After(2 * time.Second):
		t.Fatal("the server did not see the client go")
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := st.Recv(); !errors.Is(err, ErrClosed) {
		t.Errorf("Recv after Close = %v", err)
	}
}

func TestContextCancel(t *testing.T) {
	t.Run("while streaming", func(t *testing.T) {
		srv, gone := blockingServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st, err := chatFor(srv, Config{}).Stream(ctx, userRequest(""))
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
		defer st.Close()
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		pending := recvAsync(st)
		time.Sleep(20 * time.Millisecond)
		cancel()
		select {
		case err := <-pending:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Recv = %v, want context.Canceled", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Recv did not return after cancel")
		}
		<-gone
	})
	t.Run("before the headers", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			drain(r)
			<-r.Context().Done()
		}))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := chatFor(srv, Config{}).Stream(ctx, userRequest(""))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Stream = %v, want context.DeadlineExceeded", err)
		}
	})
}

// TestStreamReturnsAtHeaders checks that Stream does not wait for the first
// token.
func TestStreamReturnsAtHeaders(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, textChunk("late")+finishChunk("stop")+done)
	}))
	defer srv.Close()
	returned := make(chan error, 1)
	var st llm.Stream
	go func() {
		var err error
		st, err = chatFor(srv, Config{}).Stream(context.Background(), userRequest(""))
		returned <- err
	}()
	select {
	case err := <-returned:
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("Stream waited for the first token")
	}
	defer st.Close()
	close(release)
	if got := summarize(t, st); got.text != "late" {
		t.Errorf("text = %q", got.text)
	}
}

// TestFirstTokenTiming uses the fake's delays and OnFirstToken hook.
func TestFirstTokenTiming(t *testing.T) {
	firstToken := make(chan time.Time, 1)
	_, srv := fakeServer(t, openaifake.Config{
		Replies:      []openaifake.Reply{{Text: "Hi!", FirstTokenDelay: 100 * time.Millisecond}},
		OnFirstToken: func(at time.Time) { firstToken <- at },
	})
	start := time.Now()
	st, err := chatFor(srv, Config{}).Stream(context.Background(), userRequest(""))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	headers := time.Since(start)
	d, err := st.Recv()
	if err != nil || d.Text != "Hi!" {
		t.Fatalf("Recv = %+v, %v", d, err)
	}
	first := time.Since(start)
	if first-headers < 90*time.Millisecond {
		t.Errorf("headers after %v, first token after %v: want the delay in between", headers, first)
	}
	select {
	case at := <-firstToken:
		if at.Before(start) {
			t.Errorf("OnFirstToken at %v, before the request", at)
		}
	case <-time.After(2 * time.Second): // it runs just after the flush
		t.Error("OnFirstToken was not called")
	}
}

// TestCloseWhileReading closes a stream while Recv is busy decoding, for
// the race detector.
func TestCloseWhileReading(t *testing.T) {
	_, srv := fakeServer(t, openaifake.Config{Replies: []openaifake.Reply{
		{Text: strings.Repeat("streaming text ", 2000), ChunkSize: 4, ToolCalls: []llm.ToolCall{{ID: "c", Name: "n", Arguments: "{}"}}},
	}})
	st, err := chatFor(srv, Config{}).Stream(context.Background(), userRequest(""))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			if i == 10 {
				close(started)
			}
			if _, err := st.Recv(); err != nil {
				errc <- err
				return
			}
		}
	}()
	<-started
	st.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) && err != io.EOF {
			t.Errorf("Recv = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv did not stop after Close")
	}
}

// TestLogsKeepSecrets checks that debug logs name neither the key nor what
// was said.
func TestLogsKeepSecrets(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, srv := fakeServer(t, openaifake.Config{APIKey: "sk-the-right-one", Logger: logger,
		Replies: []openaifake.Reply{{Text: "Your code word is aubergine."}}})
	chat := chatFor(srv, Config{Logger: logger})
	req := userRequest("sk-the-right-one")
	req.Messages[1].Content = "my password is octopus"
	st, err := chat.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	summarize(t, st)
	st.Close()
	req.APIKey = "sk-wrong-one"
	if _, err := chat.Stream(context.Background(), req); err == nil {
		t.Fatal("wrong key accepted")
	}
	logs := buf.String()
	// Words, not digits: a logged duration such as ttfb=2.698765ms once
	// matched "9876".
	for _, secret := range []string{"sk-the-right-one", "sk-wrong-one", "octopus", "aubergine"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
	for _, want := range []string{"stream started", "stream ended", "request refused", "openaifake: chat completion"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
