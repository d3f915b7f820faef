package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/llm"
)

// ev frames one SSE data event.
func ev(data string) string { return "data: " + data + "\n\n" }

// textChunk is an OpenAI chunk carrying text.
func textChunk(s string) string {
	return ev(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":` + quote(s) + `},"finish_reason":null}]}`)
}

// finishChunk is an OpenAI chunk carrying a finish reason.
func finishChunk(reason string) string {
	return ev(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"` + reason + `"}]}`)
}

// toolChunk is a chunk carrying tool call fragments (a JSON array's items).
func toolChunk(items string) string {
	return ev(`{"choices":[{"index":0,"delta":{"tool_calls":[` + items + `]},"finish_reason":null}]}`)
}

const (
	roleChunk  = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n"
	usageChunk = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}` + "\n\n"
	done       = "data: [DONE]\n\n"
)

func quote(s string) string { return fmt.Sprintf("%q", s) } // fine for the ASCII used here

// streamCase is an SSE body and what Recv must make of it.
type streamCase struct {
	name    string
	body    string
	want    []llm.Delta
	wantErr error     // nil: io.EOF after want
	wantAPI *APIError // the error must be this *APIError
}

// streamCases are the bodies TestStreamCases plays.
func streamCases() []streamCase {
	return []streamCase{
		{
			name: "text with usage chunk",
			body: roleChunk + textChunk("Hel") + textChunk("lo") + finishChunk("stop") + usageChunk + done,
			want: []llm.Delta{{Text: "Hel"}, {Text: "lo"}, {FinishReason: "stop"}, {Usage: &llm.Usage{PromptTokens: 12, CompletionTokens: 5}}},
		},
		{
			name: "usage in the finish chunk",
			body: textChunk("Hi") + ev(`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`) + done,
			want: []llm.Delta{{Text: "Hi"}, {FinishReason: "stop", Usage: &llm.Usage{PromptTokens: 3, CompletionTokens: 1}}},
		},
		{
			name: "no usage, usage null on chunks",
			body: ev(`{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}`) + finishChunk("length") + done,
			want: []llm.Delta{{Text: "Hi"}, {FinishReason: "length"}},
		},
		{
			name: "text and finish in one chunk",
			body: ev(`{"choices":[{"index":0,"delta":{"content":"Bye."},"finish_reason":"stop"}]}`) + done,
			want: []llm.Delta{{Text: "Bye.", FinishReason: "stop"}},
		},
		{
			name: "comments, event, id and retry lines are ignored",
			body: ": keep-alive\n\nevent: message\nid: 7\nretry: 100\n" + textChunk("a") + ": ping\n" + textChunk("b") + finishChunk("stop") + done,
			want: []llm.Delta{{Text: "a"}, {Text: "b"}, {FinishReason: "stop"}},
		},
		{
			name: "CRLF line endings and data without a space",
			body: strings.ReplaceAll(strings.ReplaceAll(textChunk("x")+finishChunk("stop")+done, "data: ", "data:"), "\n", "\r\n"),
			want: []llm.Delta{{Text: "x"}, {FinishReason: "stop"}},
		},
		{
			name: "no blank lines between events",
			body: strings.ReplaceAll(textChunk("one")+textChunk("two")+finishChunk("stop")+done, "\n\n", "\n"),
			want: []llm.Delta{{Text: "one"}, {Text: "two"}, {FinishReason: "stop"}},
		},
		{
			name: "JSON split over two data lines",
			body: "data: {\"choices\":[{\"index\":0,\n" + "data: \"delta\":{\"content\":\"joined\"}}]}\n\n" + finishChunk("stop") + done,
			want: []llm.Delta{{Text: "joined"}, {FinishReason: "stop"}},
		},
		{
			name: "empty data events are skipped",
			body: "data:\n\n" + textChunk("a") + "data: \n\n" + finishChunk("stop") + done,
			want: []llm.Delta{{Text: "a"}, {FinishReason: "stop"}},
		},
		{
			name: "other choices are ignored",
			body: ev(`{"choices":[{"index":1,"delta":{"content":"nope"}},{"index":0,"delta":{"content":"yes"}}]}`) + finishChunk("stop") + done,
			want: []llm.Delta{{Text: "yes"}, {FinishReason: "stop"}},
		},
		{
			name: "a repeated finish reason is reported once",
			body: textChunk("a") + finishChunk("stop") + ev(`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`) + done,
			want: []llm.Delta{{Text: "a"}, {FinishReason: "stop"}, {Usage: &llm.Usage{PromptTokens: 1, CompletionTokens: 1}}},
		},
		{
			name: "sequential tool calls after text",
			body: roleChunk + textChunk("Checking.") +
				toolChunk(`{"index":0,"id":"call_A","type":"function","function":{"name":"book_slot","arguments":""}}`) +
				toolChunk(`{"index":0,"function":{"arguments":"{\"day\":"}}`) +
				toolChunk(`{"index":0,"function":{"arguments":"\"tue\"}"}}`) +
				toolChunk(`{"index":1,"id":"call_B","type":"function","function":{"name":"end_call","arguments":""}}`) +
				toolChunk(`{"index":1,"function":{"arguments":"{}"}}`) +
				finishChunk("tool_calls") + usageChunk + done,
			want: []llm.Delta{
				{Text: "Checking."},
				{FinishReason: "tool_calls", ToolCalls: []llm.ToolCall{
					{ID: "call_A", Name: "book_slot", Arguments: `{"day":"tue"}`},
					{ID: "call_B", Name: "end_call", Arguments: `{}`},
				}},
				{Usage: &llm.Usage{PromptTokens: 12, CompletionTokens: 5}},
			},
		},
		{
			name: "parallel tool calls interleaved, index 1 first",
			body: toolChunk(`{"index":1,"id":"call_B","type":"function","function":{"name":"b","arguments":""}}`) +
				toolChunk(`{"index":0,"id":"call_A","type":"function","function":{"name":"a","arguments":""}}`) +
				toolChunk(`{"index":0,"function":{"arguments":"{\"x\""}},{"index":1,"function":{"arguments":"{\"y\""}}`) +
				toolChunk(`{"index":1,"function":{"arguments":":2}"}}`) +
				toolChunk(`{"index":0,"function":{"arguments":":1}"}}`) +
				finishChunk("tool_calls") + done,
			want: []llm.Delta{{FinishReason: "tool_calls", ToolCalls: []llm.ToolCall{
				{ID: "call_A", Name: "a", Arguments: `{"x":1}`},
				{ID: "call_B", Name: "b", Arguments: `{"y":2}`},
			}}},
		},
		{
			name: "Mistral: complete calls in one delta",
			body: toolChunk(`{"id":"D681PevKs","function":{"name":"book_slot","arguments":"{\"day\": \"tue\"}"},"index":0},{"id":"x9Y8z7W6v","function":{"name":"end_call","arguments":"{}"},"index":1}`) +
				finishChunk("tool_calls") + done,
			want: []llm.Delta{{FinishReason: "tool_calls", ToolCalls: []llm.ToolCall{
				{ID: "D681PevKs", Name: "book_slot", Arguments: `{"day": "tue"}`},
				{ID: "x9Y8z7W6v", Name: "end_call", Arguments: `{}`},
			}}},
		},
		{
			name: "Google: no index, ids start calls, fragments continue the last",
			body: toolChunk(`{"id":"g-1","type":"function","function":{"name":"a","arguments":"{\"x\":"}}`) +
				toolChunk(`{"function":{"arguments":"1}"}}`) +
				toolChunk(`{"id":"g-2","type":"function","function":{"name":"b","arguments":"{}"}}`) +
				finishChunk("tool_calls") + done,
			want: []llm.Delta{{FinishReason: "tool_calls", ToolCalls: []llm.ToolCall{
				{ID: "g-1", Name: "a", Arguments: `{"x":1}`},
				{ID: "g-2", Name: "b", Arguments: `{}`},
			}}},
		},
		{
			name: "every call numbered 0, told apart by id",
			body: toolChunk(`{"index":0,"id":"c1","function":{"name":"a","arguments":"{\"n\":"}}`) +
				toolChunk(`{"index":0,"function":{"arguments":"1}"}}`) +
				toolChunk(`{"index":0,"id":"c2","function":{"name":"b","arguments":"{\"n\":"}}`) +
				toolChunk(`{"index":0,"function":{"arguments":"2}"}}`) +
				finishChunk("tool_calls") + done,
			want: []llm.Delta{{FinishReason: "tool_calls", ToolCalls: []llm.ToolCall{
				{ID: "c1", Name: "a", Arguments: `{"n":1}`},
				{ID: "c2", Name: "b", Arguments: `{"n":2}`},
			}}},
		},
		{
			name: "the id repeated on every fragment",
			body: toolChunk(`{"index":0,"id":"c1","function":{"name":"a","arguments":"{\"n\":"}}`) +
				toolChunk(`{"index":0,"id":"c1","function":{"arguments":"1}"}}`) +
				finishChunk("tool_calls") + done,
			want: []llm.Delta{{FinishReason: "tool_calls", ToolCalls: []llm.ToolCall{{ID: "c1", Name: "a", Arguments: `{"n":1}`}}}},
		},
		{
			name: "no id and no arguments get defaults",
			body: toolChunk(`{"index":0,"function":{"name":"hang_up"}}`) + finishChunk("tool_calls") + done,
			want: []llm.Delta{{FinishReason: "tool_calls", ToolCalls: []llm.ToolCall{{ID: "call_0", Name: "hang_up", Arguments: "{}"}}}},
		},
		{
			name: "tool calls without a finish reason are delivered at [DONE]",
			body: toolChunk(`{"index":0,"id":"c1","function":{"name":"a","arguments":"{}"}}`) + done,
			want: []llm.Delta{{ToolCalls: []llm.ToolCall{{ID: "c1", Name: "a", Arguments: "{}"}}}},
		},
		{
			name: "finish reason stop with tool calls (older Ollama)",
			body: toolChunk(`{"index":0,"id":"c1","function":{"name":"a","arguments":"{}"}}`) + finishChunk("stop") + done,
			want: []llm.Delta{{FinishReason: "stop", ToolCalls: []llm.ToolCall{{ID: "c1", Name: "a", Arguments: "{}"}}}},
		},
		{
			name: "finish reason but no [DONE] ends normally",
			body: textChunk("a") + finishChunk("stop"),
			want: []llm.Delta{{Text: "a"}, {FinishReason: "stop"}},
		},
		{
			name: "last event without its blank line",
			body: textChunk("a") + finishChunk("stop") + "data: [DONE]",
			want: []llm.Delta{{Text: "a"}, {FinishReason: "stop"}},
		},
		{
			name:    "no finish reason and no [DONE]",
			body:    textChunk("a") + toolChunk(`{"index":0,"id":"c1","function":{"name":"a","arguments":"{\"half"}}`),
			want:    []llm.Delta{{Text: "a"}},
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name:    "empty body",
			body:    "",
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name: "error event",
			body: textChunk("a") + ev(`{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`),
			want: []llm.Delta{{Text: "a"}},
			wantAPI: &APIError{Type: "server_error", Message: "The server had an error while processing your request.",
				fromJSON: true},
		},
		{
			name:    "error event as text, with the key in it",
			body:    "event: error\n" + ev(`{"error":"overloaded for key sk-secret-key"}`),
			wantAPI: &APIError{Message: "overloaded for key [redacted]", fromJSON: true},
		},
		{
			name:    "error event with a numeric code",
			body:    ev(`{"error":{"message":"context too long","type":"invalid_request_error","param":"messages","code":400}}`),
			wantAPI: &APIError{Type: "invalid_request_error", Param: "messages", Code: "400", Message: "context too long", fromJSON: true},
		},
	}
}

// sseServer serves streamCases, choosing the body by the request's model.
func sseServer(t *testing.T, cases []streamCase) *httptest.Server {
	t.Helper()
	bodies := make(map[string]string, len(cases))
	for _, tc := range cases {
		bodies[tc.name] = tc.body
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Model string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, bodies[req.Model])
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestStreamCases(t *testing.T) {
	cases := streamCases()
	srv := sseServer(t, cases)
	chat := NewChat(Config{BaseURL: srv.URL, HTTPClient: srv.Client()})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := chat.Stream(context.Background(), llm.Request{Model: tc.name, APIKey: "sk-secret-key",
				Messages: []llm.Message{{Role: llm.User, Content: "hi"}}})
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			defer st.Close()
			got, err := recvAll(t, st)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("deltas:\n got %s\nwant %s", fmtDeltas(got), fmtDeltas(tc.want))
			}
			switch {
			case tc.wantAPI != nil:
				var ae *APIError
				if !errors.As(err, &ae) {
					t.Fatalf("err = %v, want *APIError", err)
				}
				if !reflect.DeepEqual(ae, tc.wantAPI) {
					t.Errorf("APIError = %+v, want %+v", ae, tc.wantAPI)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("err = %v, want %v", err, tc.wantErr)
				}
			case err != io.EOF:
				t.Errorf("err = %v, want io.EOF", err)
			}
			if _, again := st.Recv(); again != err {
				t.Errorf("Recv after the end = %v, want %v again", again, err)
			}
		})
	}
}

// recvAll reads st to its end and returns the deltas and the final error.
// It fails the test on an empty Delta.
func recvAll(t *testing.T, st llm.Stream) ([]llm.Delta, error) {
	t.Helper()
	var out []llm.Delta
	for range 100_000 {
		d, err := st.Recv()
		if err != nil {
			return out, err
		}
		if reflect.DeepEqual(d, llm.Delta{}) {
			t.Errorf("Recv returned an empty Delta after %d deltas", len(out))
		}
		out = append(out, d)
	}
	t.Fatal("stream does not end")
	return nil, nil
}

func fmtDeltas(ds []llm.Delta) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "{Text:%q Finish:%q Calls:%+v", d.Text, d.FinishReason, d.ToolCalls)
		if d.Usage != nil {
			fmt.Fprintf(&b, " Usage:%+v", *d.Usage)
		}
		b.WriteString("} ")
	}
	return b.String()
}

func TestStreamDecodeErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"not JSON", textChunk("a") + ev(`{"choices":[`), "decode stream event"},
		{"bad tool index", toolChunk(`{"index":-1,"id":"c"}`), "tool call index"},
		{"huge tool index", toolChunk(`{"index":12345678}`), "tool call index"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream(context.Background(), func() {}, io.NopCloser(strings.NewReader(tc.body)), "")
			var err error
			for err == nil {
				_, err = s.Recv()
			}
			if !strings.Contains(err.Error(), tc.want) || errors.Is(err, io.EOF) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestStreamLongLines(t *testing.T) {
	args := `{"notes":"` + strings.Repeat("x", maxLine-200) + `"}`
	line := toolChunk(`{"index":0,"id":"c1","function":{"name":"save","arguments":` + quote(args) + `}}`)
	body := line + finishChunk("tool_calls") + done
	s := newStream(context.Background(), func() {}, io.NopCloser(strings.NewReader(body)), "")
	d, err := s.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	if len(d.ToolCalls) != 1 || d.ToolCalls[0].Arguments != args {
		t.Fatalf("tool call of %d bytes not reassembled", len(args))
	}

	tooLong := textChunk(strings.Repeat("y", maxLine+10)) + done
	s = newStream(context.Background(), func() {}, io.NopCloser(strings.NewReader(tooLong)), "")
	if _, err := s.Recv(); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("Recv of a 1 MB line = %v, want a line-too-long error", err)
	}
}

// BenchmarkParse200Chunks parses a 200-chunk OpenAI text stream.
func BenchmarkParse200Chunks(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(roleChunk)
	for i := range 200 {
		fmt.Fprintf(&body, `data: {"id":"chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz","object":"chat.completion.chunk","created":1735689600,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":" word%d"},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n", i)
	}
	body.WriteString(finishChunk("stop") + usageChunk + done)
	raw := body.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		s := newStream(context.Background(), func() {}, io.NopCloser(bytes.NewReader(raw)), "")
		n := 0
		for {
			_, err := s.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 202 {
			b.Fatalf("%d deltas, want 202", n)
		}
	}
}
