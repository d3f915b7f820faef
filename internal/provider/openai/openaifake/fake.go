// Package openaifake is a fake OpenAI-compatible server. It streams scripted
// chat completions (text, tool calls, delays, errors, dropped connections)
// the way OpenAI and Mistral do, and speaks text-to-speech requests
// (POST /v1/audio/speech, response_format pcm) with synthetic audio, for
// tests, load runs and for trying calls without provider keys.
package openaifake

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parley-voice/parley/internal/llm"
)

// Reply scripts one streamed answer.
type Reply struct {
	// Text is streamed in ChunkSize pieces; the first carries the role.
	Text string
	// ToolCalls are streamed after the text. A call without an ID gets one
	// in the provider's style ("call_…", or 9 alphanumerics with Mistral).
	ToolCalls []llm.ToolCall
	// FirstTokenDelay is the wait between the response headers and the
	// first chunk; ChunkDelay the wait before each further chunk.
	FirstTokenDelay, ChunkDelay time.Duration
	// ChunkSize is the number of characters per text chunk; 0 means 8.
	ChunkSize int
	// Status, when neither 0 nor 200, makes the reply an error response
	// with that status and an OpenAI error body.
	Status int
	// RetryAfter, with an error Status, is sent as Retry-After (whole
	// seconds, rounded up) and retry-after-ms.
	RetryAfter time.Duration
	// CutAfter, when > 0, drops the connection after that many chunks
	// (or before [DONE] if the reply has fewer), without [DONE].
	CutAfter int
	// Mistral delivers each tool call complete in one delta instead of
	// arguments split into fragments of about 5 characters.
	Mistral bool
	// Interleave sends the fragments of parallel tool calls round-robin
	// (call 0, call 1, call 0, ...) instead of one call after the other.
	Interleave bool
	// FinishReason overrides the finish reason; by default "tool_calls"
	// when there are tool calls, else "stop".
	FinishReason string
}

// Config configures a Server.
type Config struct {
	// APIKey is the key clients must send as a bearer token; "" accepts
	// any request, with or without a key.
	APIKey string
	// Replies are played in order, one per request, cycling. With none,
	// the server answers "You said: <last user message>".
	Replies []Reply
	// Respond, if set, chooses the reply to each request instead of Replies.
	// It is called from the request's goroutine.
	Respond func(req Request) Reply
	// Logger receives debug records (model, counts, statuses; never keys or
	// message contents). Nil discards them.
	Logger *slog.Logger
	// OnFirstToken, if set, is called with the time the first chunk of a
	// reply was flushed, from the request's goroutine.
	OnFirstToken func(at time.Time)

	// Speeches script the answers to speech requests, played in order, one
	// per request, cycling. With none, every request is answered with
	// Synth's audio.
	Speeches []Speech
	// Speak, if set, chooses the answer to each speech request instead of
	// Speeches. It is called from the request's goroutine.
	Speak func(req SpeechRequest) Speech
	// Synth returns the audio spoken for a speech request's input at rate
	// samples per second; nil means DefaultSynth. It is called from request
	// goroutines, concurrently.
	Synth func(text string, rate int) []int16
}

// Request is a request body as the server understood it.
type Request struct {
	Model string
	// Messages are the conversation; text parts of array contents are joined.
	Messages []llm.Message
	// Tools are the names of the offered functions, in order.
	Tools []string
	// ToolChoice is "auto", "none", "required", or the JSON text of an object.
	ToolChoice   string
	Stream       bool
	IncludeUsage bool // stream_options.include_usage
	Temperature  *float64
	// MaxTokens is the reply cap and MaxTokensField the field that carried
	// it ("max_completion_tokens" or "max_tokens"); 0 and "" when absent.
	MaxTokens      int
	MaxTokensField string
	// ResponseFormat is the response_format member as sent (e.g.
	// {"type":"json_schema","json_schema":{…}}), nil when absent or null.
	// The fake does not constrain its replies by it.
	ResponseFormat json.RawMessage
}

// Server is the fake, an http.Handler serving POST ChatPath and POST
// SpeechPath, and the same paths without /v1. It is safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	requests []Request
	next     int // index into cfg.Replies
	ids      int // counter for generated ids

	speechRequests []SpeechRequest
	nextSpeech     int // index into cfg.Speeches
}

// New returns a Server configured by cfg.
func New(cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log}
}

// Requests returns the requests received so far: those that were
// authorised and whose body was JSON, including ones then refused for a
// missing field or stream:false.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// maxBody bounds a request body.
const maxBody = 8 << 20

// The routes Server serves; mount it on an http.ServeMux at both, or at the
// root of an httptest.Server. The same paths without the /v1 prefix work
// too, for base URLs without it.
const (
	ChatPath   = "/v1/chat/completions"
	SpeechPath = "/v1/audio/speech"
)

// ServeHTTP answers one chat completion or speech request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case ChatPath, "/chat/completions":
	case SpeechPath, "/audio/speech":
		s.serveSpeech(w, r)
		return
	default:
		writeError(w, http.StatusNotFound, "invalid_request_error", "", "unknown_url",
			fmt.Sprintf("Unknown request URL: %s %s. This fake server only serves POST %s and POST %s.", r.Method, r.URL.Path, ChatPath, SpeechPath), 0)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "", "method_not_allowed",
			"Only POST is supported on /chat/completions.", 0)
		return
	}
	if !s.authorised(r) {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "", "invalid_api_key",
			"Incorrect API key provided.", 0)
		return
	}
	body := http.MaxBytesReader(w, r.Body, maxBody)
	req, problem, param := decodeRequest(body)
	// Read to the end so the server watches the connection and cancels the
	// request's context if the client goes away during a slow reply.
	_, _ = io.Copy(io.Discard, body)
	if req != nil {
		s.record(*req)
	}
	if problem != "" {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "openaifake: bad request", slog.String("param", param))
		writeError(w, http.StatusBadRequest, "invalid_request_error", param, "", problem, 0)
		return
	}
	reply := s.reply(*req)
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "openaifake: chat completion",
		slog.String("model", req.Model), slog.Int("messages", len(req.Messages)),
		slog.Int("tools", len(req.Tools)), slog.Int("status", max(reply.Status, http.StatusOK)))
	if reply.Status != 0 && reply.Status != http.StatusOK {
		typ, code := errorKind(reply.Status)
		writeError(w, reply.Status, typ, "", code,
			fmt.Sprintf("The fake server was scripted to fail with status %d.", reply.Status), reply.RetryAfter)
		return
	}
	if err := s.stream(r.Context(), w, req, &reply); errors.Is(err, errCut) {
		// Abort the response: the client sees the connection drop (or the
		// HTTP/2 stream reset) with no [DONE].
		panic(http.ErrAbortHandler)
	}
}

// authorised checks the bearer token.
func (s *Server) authorised(r *http.Request) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.APIKey)) == 1
}

// record remembers req.
func (s *Server) record(req Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
}

// reply picks the reply to req.
func (s *Server) reply(req Request) Reply {
	if s.cfg.Respond != nil {
		return s.cfg.Respond(req)
	}
	if len(s.cfg.Replies) == 0 {
		return Reply{Text: echo(req.Messages)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.cfg.Replies[s.next%len(s.cfg.Replies)]
	s.next++
	return r
}

// echo is the default reply: the last user message said back.
func echo(msgs []llm.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == llm.User && strings.TrimSpace(msgs[i].Content) != "" {
			return "You said: " + strings.TrimSpace(msgs[i].Content)
		}
	}
	return "Hello! This is a simulated assistant."
}

// newID returns a fresh tool call id in OpenAI's or Mistral's style.
func (s *Server) newID(mistral bool) string {
	s.mu.Lock()
	s.ids++
	n := s.ids
	s.mu.Unlock()
	if mistral {
		return fmt.Sprintf("fk%07d", n%10_000_000) // 9 alphanumerics
	}
	return fmt.Sprintf("call_fake%015d", n)
}

// Wire shapes of the request body.
type (
	wireRequest struct {
		Model    string        `json:"model"`
		Messages []wireMessage `json:"messages"`
		Tools    []struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		} `json:"tools"`
		ToolChoice    json.RawMessage `json:"tool_choice"`
		Stream        bool            `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
		Temperature         *float64        `json:"temperature"`
		MaxTokens           *int            `json:"max_tokens"`
		MaxCompletionTokens *int            `json:"max_completion_tokens"`
		ResponseFormat      json.RawMessage `json:"response_format"`
	}
	wireMessage struct {
		Role       string          `json:"role"`
		Content    json.RawMessage `json:"content"`
		ToolCalls  []wireToolCall  `json:"tool_calls"`
		ToolCallID string          `json:"tool_call_id"`
	}
	wireToolCall struct {
		ID       string `json:"id"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	contentPart struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
)

// decodeRequest reads a request body. It returns the request when the body
// was JSON, and a problem (with the offending parameter) when it is not
// acceptable.
func decodeRequest(body io.Reader) (*Request, string, string) {
	var wr wireRequest
	if err := json.NewDecoder(body).Decode(&wr); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fmt.Sprintf("The request body is larger than %d bytes.", maxBody), ""
		}
		return nil, "We could not parse the JSON body of your request: " + err.Error(), ""
	}
	req := &Request{Model: wr.Model, Stream: wr.Stream, Temperature: wr.Temperature}
	if wr.StreamOptions != nil {
		req.IncludeUsage = wr.StreamOptions.IncludeUsage
	}
	switch {
	case wr.MaxCompletionTokens != nil:
		req.MaxTokens, req.MaxTokensField = *wr.MaxCompletionTokens, "max_completion_tokens"
	case wr.MaxTokens != nil:
		req.MaxTokens, req.MaxTokensField = *wr.MaxTokens, "max_tokens"
	}
	if rf := bytes.TrimSpace(wr.ResponseFormat); len(rf) > 0 && string(rf) != "null" {
		req.ResponseFormat = rf
	}
	if tc := bytes.TrimSpace(wr.ToolChoice); len(tc) > 0 {
		var s string
		if json.Unmarshal(tc, &s) == nil {
			req.ToolChoice = s
		} else {
			req.ToolChoice = string(tc)
		}
	}
	for _, t := range wr.Tools {
		req.Tools = append(req.Tools, t.Function.Name)
	}
	for i, m := range wr.Messages {
		text, ok := contentText(m.Content)
		if !ok {
			return req, fmt.Sprintf("Invalid type for 'messages[%d].content': expected a string, an array of parts or null.", i),
				fmt.Sprintf("messages[%d].content", i)
		}
		msg := llm.Message{Role: llm.Role(m.Role), Content: text, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		req.Messages = append(req.Messages, msg)
	}
	switch {
	case req.Model == "":
		return req, "You must provide a model parameter.", "model"
	case wr.Messages == nil:
		return req, "Missing required parameter: 'messages'.", "messages"
	case !req.Stream:
		return req, "This fake server only supports streaming: set \"stream\": true.", "stream"
	}
	return req, "", ""
}

// contentText reads a message content: a string, null, or text parts.
func contentText(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var parts []contentPart
	if json.Unmarshal(raw, &parts) != nil {
		return "", false
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String(), true
}

// errorKind is the OpenAI error type and code for a status.
func errorKind(status int) (typ, code string) {
	switch {
	case status == http.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key"
	case status == http.StatusForbidden:
		return "invalid_request_error", "unsupported_country_region_territory"
	case status == http.StatusNotFound:
		return "invalid_request_error", "model_not_found"
	case status == http.StatusTooManyRequests:
		return "requests", "rate_limit_exceeded"
	case status >= 500:
		return "server_error", ""
	}
	return "invalid_request_error", ""
}

// writeError writes an OpenAI-shaped error response.
func writeError(w http.ResponseWriter, status int, typ, param, code, message string, retryAfter time.Duration) {
	body := struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}{}
	body.Error.Message, body.Error.Type = message, typ
	if param != "" {
		body.Error.Param = &param
	}
	if code != "" {
		body.Error.Code = &code
	}
	b, _ := json.Marshal(&body) // cannot fail: strings only
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((retryAfter+time.Second-1)/time.Second), 10))
		h.Set("Retry-After-Ms", strconv.FormatInt(retryAfter.Milliseconds(), 10))
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // the client may be gone; nothing to do
}

// errCut tells ServeHTTP to drop the connection.
var errCut = errors.New("openaifake: connection cut as scripted")

// Wire shapes of a stream chunk.
type (
	chunkOut struct {
		ID      string          `json:"id"`
		Object  string          `json:"object"`
		Created int64           `json:"created"`
		Model   string          `json:"model"`
		Choices []choiceOut     `json:"choices"`
		Usage   json.RawMessage `json:"usage,omitempty"`
	}
	choiceOut struct {
		Index        int      `json:"index"`
		Delta        deltaOut `json:"delta"`
		FinishReason *string  `json:"finish_reason"`
	}
	deltaOut struct {
		Role      string        `json:"role,omitempty"`
		Content   *string       `json:"content,omitempty"`
		ToolCalls []toolCallOut `json:"tool_calls,omitempty"`
	}
	toolCallOut struct {
		Index    int         `json:"index"`
		ID       string      `json:"id,omitempty"`
		Type     string      `json:"type,omitempty"`
		Function functionOut `json:"function"`
	}
	functionOut struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	}
	usageOut struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
)

// sse writes one response's chunks.
type sse struct {
	ctx     context.Context
	w       http.ResponseWriter
	rc      *http.ResponseController
	buf     bytes.Buffer
	enc     *json.Encoder
	reply   *Reply
	base    chunkOut // id, object, created, model
	sent    int
	onFirst func(time.Time)
}

// stream writes reply as a server-sent event stream.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, req *Request, reply *Reply) error {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	e := &sse{ctx: ctx, w: w, rc: http.NewResponseController(w), reply: reply, onFirst: s.cfg.OnFirstToken}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	e.base = chunkOut{ID: fmt.Sprintf("chatcmpl-fake%d", time.Now().UnixNano()), Object: "chat.completion.chunk",
		Created: time.Now().Unix(), Model: req.Model}
	if req.IncludeUsage {
		e.base.Usage = json.RawMessage("null")
	}
	if err := e.flush(); err != nil {
		return err
	}
	if err := sleep(ctx, reply.FirstTokenDelay); err != nil {
		return err
	}

	role := "assistant"
	size := reply.ChunkSize
	if size <= 0 {
		size = 8
	}
	for text := reply.Text; text != ""; {
		piece, rest := cut(text, size)
		d := deltaOut{Content: &piece}
		d.Role, role = role, ""
		if err := e.delta(d, nil); err != nil {
			return err
		}
		text = rest
	}
	for _, d := range s.toolDeltas(reply) {
		d.Role, role = role, ""
		if err := e.delta(d, nil); err != nil {
			return err
		}
	}
	if role != "" { // nothing was said: a role-only chunk, as OpenAI sends
		empty := ""
		if err := e.delta(deltaOut{Role: role, Content: &empty}, nil); err != nil {
			return err
		}
	}
	finish := reply.FinishReason
	if finish == "" {
		finish = "stop"
		if len(reply.ToolCalls) > 0 {
			finish = "tool_calls"
		}
	}
	if err := e.delta(deltaOut{}, &finish); err != nil {
		return err
	}
	if req.IncludeUsage {
		u := usageOut{PromptTokens: promptWords(req.Messages), CompletionTokens: replyWords(reply)}
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
		b, _ := json.Marshal(u) // cannot fail: ints only
		c := e.base
		c.Choices, c.Usage = []choiceOut{}, b
		if err := e.write(&c); err != nil {
			return err
		}
	}
	if reply.CutAfter > 0 {
		return errCut
	}
	if _, err := io.WriteString(w, "data: [DONE]\n\n"); err != nil {
		return fmt.Errorf("write [DONE]: %w", err)
	}
	return e.flush()
}

// toolDeltas are the deltas that carry reply's tool calls.
func (s *Server) toolDeltas(reply *Reply) []deltaOut {
	perCall := make([][]deltaOut, len(reply.ToolCalls))
	for i, tc := range reply.ToolCalls {
		id := tc.ID
		if id == "" {
			id = s.newID(reply.Mistral)
		}
		head := toolCallOut{Index: i, ID: id, Type: "function", Function: functionOut{Name: tc.Name}}
		if reply.Mistral {
			head.Function.Arguments = tc.Arguments
			perCall[i] = []deltaOut{{ToolCalls: []toolCallOut{head}}}
			continue
		}
		perCall[i] = []deltaOut{{ToolCalls: []toolCallOut{head}}}
		for args := tc.Arguments; args != ""; {
			piece, rest := cut(args, 5)
			perCall[i] = append(perCall[i], deltaOut{ToolCalls: []toolCallOut{{Index: i, Function: functionOut{Arguments: piece}}}})
			args = rest
		}
	}
	var out []deltaOut
	if !reply.Interleave {
		for _, ds := range perCall {
			out = append(out, ds...)
		}
		return out
	}
	for step := 0; ; step++ {
		added := false
		for _, ds := range perCall {
			if step < len(ds) {
				out = append(out, ds[step])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// delta writes a chunk with one choice.
func (e *sse) delta(d deltaOut, finish *string) error {
	c := e.base
	c.Choices = []choiceOut{{Delta: d, FinishReason: finish}}
	return e.write(&c)
}

// write sends one chunk, after ChunkDelay unless it is the first, and
// reports errCut when the scripted number of chunks has been sent.
func (e *sse) write(c *chunkOut) error {
	if e.sent > 0 {
		if err := sleep(e.ctx, e.reply.ChunkDelay); err != nil {
			return err
		}
	}
	e.buf.Reset()
	e.buf.WriteString("data: ")
	if err := e.enc.Encode(c); err != nil { // Encode ends the line
		return fmt.Errorf("encode chunk: %w", err)
	}
	e.buf.WriteByte('\n')
	if _, err := e.w.Write(e.buf.Bytes()); err != nil {
		return fmt.Errorf("write chunk: %w", err)
	}
	if err := e.flush(); err != nil {
		return err
	}
	e.sent++
	if e.sent == 1 && e.onFirst != nil {
		e.onFirst(time.Now())
	}
	if e.reply.CutAfter > 0 && e.sent >= e.reply.CutAfter {
		return errCut
	}
	return nil
}

// flush pushes what was written to the client.
func (e *sse) flush() error {
	if err := e.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// cut splits s after n characters.
func cut(s string, n int) (head, tail string) {
	i := 0
	for k := 0; k < n && i < len(s); k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i], s[i:]
}

// promptWords counts the prompt's "tokens" as words.
func promptWords(msgs []llm.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(strings.Fields(m.Content))
		for _, tc := range m.ToolCalls {
			n += 1 + len(strings.Fields(tc.Arguments))
		}
	}
	return n
}

// replyWords counts the reply's "tokens" as words.
func replyWords(r *Reply) int {
	n := len(strings.Fields(r.Text))
	for _, tc := range r.ToolCalls {
		n += 1 + len(strings.Fields(tc.Arguments))
	}
	return n
}
