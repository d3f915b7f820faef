package openaifake

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/llm"
)

// start serves a fake built from cfg.
func start(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	fake := New(cfg)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

// post sends body to path with key as a bearer token ("" for none).
func post(t *testing.T, srv *httptest.Server, path, key, body string) *http.Response {
	t.Helper()
	return do(t, srv, context.Background(), http.MethodPost, path, key, body)
}

func do(t *testing.T, srv *httptest.Server, ctx context.Context, method, path, key, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// streamBody is a minimal valid streaming request.
const streamBody = `{"model":"gpt-test","messages":[{"role":"user","content":"hello there"}],"stream":true,"stream_options":{"include_usage":true}}`

// events reads an SSE body into its data payloads and the read error that
// ended it (nil at a clean end).
func events(resp *http.Response) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			out = append(out, data)
		} else if line != "" {
			return out, fmt.Errorf("unexpected line %q", line)
		}
	}
	return out, sc.Err()
}

// chunk is the part of a streamed chunk the tests look at.
type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role      string  `json:"role"`
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    *int   `json:"index"`
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string  `json:"name"`
					Arguments *string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage json.RawMessage `json:"usage"`
}

// decodeChunks decodes every payload but the final [DONE].
func decodeChunks(t *testing.T, data []string) []chunk {
	t.Helper()
	if len(data) == 0 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", data)
	}
	out := make([]chunk, len(data)-1)
	for i, d := range data[:len(data)-1] {
		if err := json.Unmarshal([]byte(d), &out[i]); err != nil {
			t.Fatalf("chunk %d %q: %v", i, d, err)
		}
	}
	return out
}

// errorBody is an OpenAI error response.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func TestRefusals(t *testing.T) {
	const key = "sk-fake-secret"
	_, srv := start(t, Config{APIKey: key})
	tests := []struct {
		name       string
		method     string
		path       string
		key        string
		body       string
		wantStatus int
		wantCode   string
		wantParam  string
		wantInMsg  string
	}{
		{"no key", "POST", "/v1/chat/completions", "", streamBody, 401, "invalid_api_key", "", "API key"},
		{"wrong key", "POST", "/v1/chat/completions", "sk-other", streamBody, 401, "invalid_api_key", "", "API key"},
		{"not JSON", "POST", "/v1/chat/completions", key, `{"model":`, 400, "", "", "parse the JSON"},
		{"no model", "POST", "/v1/chat/completions", key, `{"messages":[],"stream":true}`, 400, "", "model", "model"},
		{"no messages", "POST", "/v1/chat/completions", key, `{"model":"m","stream":true}`, 400, "", "messages", "messages"},
		{"bad content", "POST", "/v1/chat/completions", key, `{"model":"m","messages":[{"role":"user","content":42}],"stream":true}`, 400, "", "messages[0].content", "content"},
		{"not streaming", "POST", "/v1/chat/completions", key, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, 400, "", "stream", "only supports streaming"},
		{"GET", "GET", "/v1/chat/completions", key, "", 405, "method_not_allowed", "", "POST"},
		{"unknown path", "POST", "/v1/embeddings", key, streamBody, 404, "unknown_url", "", "/v1/embeddings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, srv, context.Background(), tc.method, tc.path, tc.key, tc.body)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			raw, _ := io.ReadAll(resp.Body)
			var e errorBody
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("body %q: %v", raw, err)
			}
			if e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, tc.wantInMsg) {
				t.Errorf("error = %+v, want type invalid_request_error and %q in the message", e.Error, tc.wantInMsg)
			}
			if got := deref(e.Error.Code); got != tc.wantCode {
				t.Errorf("code = %q, want %q", got, tc.wantCode)
			}
			if got := deref(e.Error.Param); got != tc.wantParam {
				t.Errorf("param = %q, want %q", got, tc.wantParam)
			}
			if strings.Contains(string(raw), "sk-") {
				t.Errorf("error body mentions a key: %s", raw)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestAnyKeyAccepted(t *testing.T) {
	_, srv := start(t, Config{})
	for _, key := range []string{"", "sk-anything"} {
		resp := post(t, srv, "/v1/chat/completions", key, streamBody)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("key %q: status %d", key, resp.StatusCode)
		}
	}
}

func TestTextStream(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		reply        Reply
		wantPieces   []string
		includeUsage bool
		wantFinish   string
	}{
		{"chunks of 4 with usage", streamBody, Reply{Text: "abcdefghij", ChunkSize: 4}, []string{"abcd", "efgh", "ij"}, true, "stop"},
		{"default size, characters not bytes", strings.Replace(streamBody, `"include_usage":true`, `"include_usage":false`, 1),
			Reply{Text: "héllo wörld 👋!"}, []string{"héllo wö", "rld 👋!"}, false, "stop"},
		{"finish override", streamBody, Reply{Text: "cut", FinishReason: "length"}, []string{"cut"}, true, "length"},
		{"nothing to say", streamBody, Reply{}, []string{""}, true, "stop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := start(t, Config{Replies: []Reply{tc.reply}})
			resp := post(t, srv, "/v1/chat/completions", "", tc.body)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Fatalf("Content-Type = %q", ct)
			}
			data, err := events(resp)
			if err != nil {
				t.Fatal(err)
			}
			chunks := decodeChunks(t, data)
			want := len(tc.wantPieces) + 1
			if tc.includeUsage {
				want++
			}
			if len(chunks) != want {
				t.Fatalf("%d chunks, want %d: %q", len(chunks), want, data)
			}
			for i, c := range chunks {
				if c.Object != "chat.completion.chunk" || c.Model != "gpt-test" || c.ID != chunks[0].ID || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Created == 0 {
					t.Errorf("chunk %d header: %+v", i, c)
				}
				if tc.includeUsage != (c.Usage != nil) {
					t.Errorf("chunk %d usage = %s, include_usage %v", i, c.Usage, tc.includeUsage)
				}
			}
			for i, piece := range tc.wantPieces {
				d := chunks[i].Choices[0].Delta
				if (i == 0) != (d.Role == "assistant") {
					t.Errorf("chunk %d role = %q", i, d.Role)
				}
				if d.Content == nil || *d.Content != piece {
					t.Errorf("chunk %d content = %v, want %q", i, d.Content, piece)
				}
				if chunks[i].Choices[0].FinishReason != nil {
					t.Errorf("chunk %d has a finish reason", i)
				}
			}
			fin := chunks[len(tc.wantPieces)]
			if len(fin.Choices) != 1 || deref(fin.Choices[0].FinishReason) != tc.wantFinish {
				t.Errorf("finish chunk = %+v", fin)
			}
			if tc.includeUsage {
				u := chunks[len(chunks)-1]
				var usage struct {
					PromptTokens     int `json:"prompt_tokens"`
					CompletionTokens int `json:"completion_tokens"`
					TotalTokens      int `json:"total_tokens"`
				}
				if err := json.Unmarshal(u.Usage, &usage); err != nil || u.Choices == nil || len(u.Choices) != 0 {
					t.Fatalf("usage chunk = %+v (%v)", u, err)
				}
				wantCompletion := len(strings.Fields(tc.reply.Text))
				if usage.PromptTokens != 2 || usage.CompletionTokens != wantCompletion || usage.TotalTokens != 2+wantCompletion {
					t.Errorf("usage = %+v", usage)
				}
			}
		})
	}
}

// toolCallFragment is one tool call delta, flattened.
type toolCallFragment struct {
	index          int
	id, typ, name  string
	args           string
	argsPresent    bool
	role, finish   string
	chunkWithOther int // other calls in the same chunk
}

func toolFragments(t *testing.T, chunks []chunk) []toolCallFragment {
	t.Helper()
	var out []toolCallFragment
	for _, c := range chunks {
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Index == nil {
					t.Fatalf("tool call without index: %+v", tc)
				}
				out = append(out, toolCallFragment{
					index: *tc.Index, id: tc.ID, typ: tc.Type, name: tc.Function.Name,
					args: deref(tc.Function.Arguments), argsPresent: tc.Function.Arguments != nil,
					role: ch.Delta.Role, finish: deref(ch.FinishReason), chunkWithOther: len(ch.Delta.ToolCalls) - 1,
				})
			}
		}
	}
	return out
}

func TestToolCallStream(t *testing.T) {
	calls := []llm.ToolCall{
		{ID: "call_one", Name: "book_slot", Arguments: `{"day":"tuesday"}`},
		{ID: "call_two", Name: "send_sms", Arguments: `{"to":"+1555"}`},
	}
	t.Run("fragments in sequence", func(t *testing.T) {
		_, srv := start(t, Config{Replies: []Reply{{ToolCalls: calls}}})
		data, err := events(post(t, srv, "/chat/completions", "", streamBody))
		if err != nil {
			t.Fatal(err)
		}
		chunks := decodeChunks(t, data)
		frags := toolFragments(t, chunks)
		var order []int
		args := map[int]string{}
		for i, f := range frags {
			order = append(order, f.index)
			if f.id != "" {
				if f.typ != "function" || f.name != calls[f.index].Name || f.id != calls[f.index].ID || f.args != "" || !f.argsPresent {
					t.Errorf("call head %+v", f)
				}
			} else if f.name != "" || len([]rune(f.args)) > 5 || f.args == "" {
				t.Errorf("fragment %+v", f)
			}
			if (i == 0) != (f.role == "assistant") {
				t.Errorf("fragment %d role %q", i, f.role)
			}
			args[f.index] += f.args
		}
		for i, c := range calls {
			if args[i] != c.Arguments {
				t.Errorf("call %d arguments = %q", i, args[i])
			}
		}
		// call 0: head + 4 fragments of 17 characters; call 1: head + 3 of 13.
		if want := []int{0, 0, 0, 0, 0, 1, 1, 1, 1}; !reflect.DeepEqual(order, want) {
			t.Errorf("order = %v, want %v", order, want)
		}
		fin := chunks[len(chunks)-2]
		if deref(fin.Choices[0].FinishReason) != "tool_calls" {
			t.Errorf("finish = %+v", fin.Choices)
		}
	})
	t.Run("interleaved", func(t *testing.T) {
		_, srv := start(t, Config{Replies: []Reply{{ToolCalls: calls, Interleave: true}}})
		data, err := events(post(t, srv, "/v1/chat/completions", "", streamBody))
		if err != nil {
			t.Fatal(err)
		}
		var order []int
		for _, f := range toolFragments(t, decodeChunks(t, data)) {
			order = append(order, f.index)
		}
		if want := []int{0, 1, 0, 1, 0, 1, 0, 1, 0}; !reflect.DeepEqual(order, want) {
			t.Errorf("order = %v, want %v", order, want)
		}
	})
	t.Run("Mistral", func(t *testing.T) {
		noIDs := []llm.ToolCall{{Name: "a", Arguments: `{"x":1}`}, {Name: "b", Arguments: `{}`}}
		_, srv := start(t, Config{Replies: []Reply{{ToolCalls: noIDs, Mistral: true}}})
		data, err := events(post(t, srv, "/v1/chat/completions", "", streamBody))
		if err != nil {
			t.Fatal(err)
		}
		frags := toolFragments(t, decodeChunks(t, data))
		if len(frags) != 2 {
			t.Fatalf("%d fragments, want 2 complete calls: %+v", len(frags), frags)
		}
		seen := map[string]bool{}
		for i, f := range frags {
			if f.index != i || f.name != noIDs[i].Name || f.args != noIDs[i].Arguments || len(f.id) != 9 || seen[f.id] {
				t.Errorf("call %d = %+v", i, f)
			}
			seen[f.id] = true
		}
	})
}

func TestRequestsRecorded(t *testing.T) {
	fake, srv := start(t, Config{})
	body := `{
		"model": "mistral-small-latest",
		"messages": [
			{"role": "system", "content": "Be brief."},
			{"role": "user", "content": [{"type": "text", "text": "Book "}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "Tuesday"}]},
			{"role": "assistant", "content": null, "tool_calls": [{"id": "D681PevKs", "type": "function", "function": {"name": "book_slot", "arguments": "{\"day\":\"tue\"}"}}]},
			{"role": "tool", "tool_call_id": "D681PevKs", "content": "ok"}
		],
		"tools": [{"type": "function", "function": {"name": "book_slot", "parameters": {"type": "object"}}}, {"type": "function", "function": {"name": "end_call"}}],
		"tool_choice": "auto",
		"temperature": 0.2,
		"max_tokens": 150,
		"stream": true
	}`
	post(t, srv, "/v1/chat/completions", "", body)
	post(t, srv, "/v1/chat/completions", "", `{"model":"gpt-5","messages":[{"role":"user","content":"hi"}],"stream":true,"max_completion_tokens":99,"tool_choice":{"type":"function","function":{"name":"x"}}}`)
	post(t, srv, "/v1/chat/completions", "", `{"model":"gpt-5","messages":[{"role":"user","content":"hi"}]}`) // refused, still recorded
	post(t, srv, "/v1/chat/completions", "", `not json`)                                                      // not recorded

	temp := 0.2
	want := []Request{
		{
			Model: "mistral-small-latest",
			Messages: []llm.Message{
				{Role: llm.System, Content: "Be brief."},
				{Role: llm.User, Content: "Book Tuesday"},
				{Role: llm.Assistant, ToolCalls: []llm.ToolCall{{ID: "D681PevKs", Name: "book_slot", Arguments: `{"day":"tue"}`}}},
				{Role: llm.Tool, ToolCallID: "D681PevKs", Content: "ok"},
			},
			Tools: []string{"book_slot", "end_call"}, ToolChoice: "auto", Stream: true, Temperature: &temp,
			MaxTokens: 150, MaxTokensField: "max_tokens",
		},
		{
			Model: "gpt-5", Messages: []llm.Message{{Role: llm.User, Content: "hi"}}, Stream: true,
			ToolChoice: `{"type":"function","function":{"name":"x"}}`, MaxTokens: 99, MaxTokensField: "max_completion_tokens",
		},
		{Model: "gpt-5", Messages: []llm.Message{{Role: llm.User, Content: "hi"}}},
	}
	got := fake.Requests()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Requests() =\n%+v\nwant\n%+v", got, want)
	}
	got[0].Model = "changed"
	if fake.Requests()[0].Model != "mistral-small-latest" {
		t.Error("Requests() does not return a copy")
	}
}

func TestResponseFormatRecorded(t *testing.T) {
	fake, srv := start(t, Config{})
	format := `{"type":"json_schema","json_schema":{"name":"call_analysis","schema":{"type":"object","properties":{"ok":{"type":"boolean"}}},"strict":false}}`
	bodies := []string{
		`{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"stream":true,"response_format":` + format + `}`,
		`{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"stream":true,"response_format":{"type":"json_object"}}`,
		`{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"stream":true,"response_format":null}`,
		streamBody,
	}
	for _, b := range bodies {
		if got := replyText(t, post(t, srv, "/v1/chat/completions", "", b)); got != "You said: hi" && got != "You said: hello there" {
			t.Errorf("reply = %q", got)
		}
	}
	reqs := fake.Requests()
	if len(reqs) != len(bodies) {
		t.Fatalf("%d requests recorded, want %d", len(reqs), len(bodies))
	}
	want := []string{format, `{"type":"json_object"}`, "", ""}
	for i, w := range want {
		if got := string(reqs[i].ResponseFormat); got != w {
			t.Errorf("request %d: ResponseFormat = %q, want %q", i, got, w)
		}
	}
	var decoded struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	}
	if err := json.Unmarshal(reqs[0].ResponseFormat, &decoded); err != nil {
		t.Fatalf("recorded format is not JSON: %v", err)
	}
	if decoded.Type != "json_schema" || decoded.JSONSchema.Name != "call_analysis" || !strings.Contains(string(decoded.JSONSchema.Schema), `"ok"`) {
		t.Errorf("decoded format = %+v", decoded)
	}
}

func TestReplySelection(t *testing.T) {
	t.Run("scripted replies cycle", func(t *testing.T) {
		_, srv := start(t, Config{Replies: []Reply{{Text: "one"}, {Text: "two"}}})
		var got []string
		for range 3 {
			got = append(got, replyText(t, post(t, srv, "/v1/chat/completions", "", streamBody)))
		}
		if want := []string{"one", "two", "one"}; !reflect.DeepEqual(got, want) {
			t.Errorf("replies = %q, want %q", got, want)
		}
	})
	t.Run("Respond overrides", func(t *testing.T) {
		_, srv := start(t, Config{Replies: []Reply{{Text: "scripted"}}, Respond: func(r Request) Reply {
			return Reply{Text: "model " + r.Model}
		}})
		if got := replyText(t, post(t, srv, "/v1/chat/completions", "", streamBody)); got != "model gpt-test" {
			t.Errorf("reply = %q", got)
		}
	})
	t.Run("default echoes the user", func(t *testing.T) {
		_, srv := start(t, Config{})
		if got := replyText(t, post(t, srv, "/v1/chat/completions", "", streamBody)); got != "You said: hello there" {
			t.Errorf("reply = %q", got)
		}
	})
}

// replyText joins the streamed text of resp.
func replyText(t *testing.T, resp *http.Response) string {
	t.Helper()
	data, err := events(resp)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range decodeChunks(t, data) {
		for _, ch := range c.Choices {
			b.WriteString(deref(ch.Delta.Content))
		}
	}
	return b.String()
}

func TestErrorReply(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter time.Duration
		wantType   string
		wantCode   string
		wantRA     string
		wantRAMs   string
	}{
		{429, 1500 * time.Millisecond, "requests", "rate_limit_exceeded", "2", "1500"},
		{503, 0, "server_error", "", "", ""},
		{400, 0, "invalid_request_error", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			_, srv := start(t, Config{Replies: []Reply{{Status: tc.status, RetryAfter: tc.retryAfter}}})
			resp := post(t, srv, "/v1/chat/completions", "", streamBody)
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Retry-After"); got != tc.wantRA {
				t.Errorf("Retry-After = %q, want %q", got, tc.wantRA)
			}
			if got := resp.Header.Get("Retry-After-Ms"); got != tc.wantRAMs {
				t.Errorf("retry-after-ms = %q, want %q", got, tc.wantRAMs)
			}
			var e errorBody
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if e.Error.Type != tc.wantType || deref(e.Error.Code) != tc.wantCode || e.Error.Message == "" {
				t.Errorf("error = %+v", e.Error)
			}
		})
	}
}

func TestCutAfter(t *testing.T) {
	tests := []struct {
		name     string
		reply    Reply
		wantData int
	}{
		{"mid text", Reply{Text: "abcdefghijkl", ChunkSize: 2, CutAfter: 3}, 3},
		{"after everything but [DONE]", Reply{Text: "ab", CutAfter: 100}, 3}, // text, finish, usage
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := start(t, Config{Replies: []Reply{tc.reply}})
			resp := post(t, srv, "/v1/chat/completions", "", streamBody)
			data, err := events(resp)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("read error = %v, want io.ErrUnexpectedEOF", err)
			}
			if len(data) != tc.wantData || strings.Contains(strings.Join(data, ""), "[DONE]") {
				t.Errorf("got %d events %q, want %d without [DONE]", len(data), data, tc.wantData)
			}
		})
	}
}

func TestDelaysAndFirstToken(t *testing.T) {
	var mu sync.Mutex
	var firsts []time.Time
	_, srv := start(t, Config{
		Replies: []Reply{{Text: "abc", ChunkSize: 1, FirstTokenDelay: 60 * time.Millisecond, ChunkDelay: 20 * time.Millisecond}},
		OnFirstToken: func(at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			firsts = append(firsts, at)
		},
	})
	t0 := time.Now()
	resp := post(t, srv, "/v1/chat/completions", "", streamBody)
	headers := time.Since(t0)
	if _, err := events(resp); err != nil {
		t.Fatal(err)
	}
	total := time.Since(t0)
	if total-headers < 100*time.Millisecond {
		t.Errorf("headers after %v, end after %v: the headers must come before the delays", headers, total)
	}
	if total < 60*time.Millisecond+4*20*time.Millisecond { // 3 text chunks, finish, usage
		t.Errorf("stream took %v, want at least 140ms", total)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(firsts) != 1 || firsts[0].Sub(t0) < 60*time.Millisecond {
		t.Errorf("OnFirstToken calls = %v (start %v)", firsts, t0)
	}
}

// TestClientGone checks that a reply in a long delay stops when the client
// leaves (goleak and srv.Close would hang otherwise).
func TestClientGone(t *testing.T) {
	_, srv := start(t, Config{Replies: []Reply{{Text: "abcdef", ChunkSize: 1, ChunkDelay: time.Hour}}})
	ctx, cancel := context.WithCancel(context.Background())
	resp := do(t, srv, ctx, http.MethodPost, "/v1/chat/completions", "", streamBody)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	done := make(chan struct{})
	go func() {
		srv.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler kept running after the client left")
	}
}

func TestConcurrentRequests(t *testing.T) {
	fake, srv := start(t, Config{Replies: []Reply{{Text: "a"}, {Text: "b"}}})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			resp, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(streamBody))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = fake.Requests()
		})
	}
	wg.Wait()
	if n := len(fake.Requests()); n != 8 {
		t.Errorf("%d requests recorded", n)
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		s          string
		n          int
		head, tail string
	}{
		{"abcdef", 4, "abcd", "ef"},
		{"ab", 4, "ab", ""},
		{"", 3, "", ""},
		{"héllo", 2, "hé", "llo"},
		{"👋👋👋", 2, "👋👋", "👋"},
	}
	for _, tc := range tests {
		if h, tl := cut(tc.s, tc.n); h != tc.head || tl != tc.tail {
			t.Errorf("cut(%q, %d) = %q, %q; want %q, %q", tc.s, tc.n, h, tl, tc.head, tc.tail)
		}
	}
}
