package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/mcp/mcpfake"
)

// variant is a transport, as the fake serves it.
type variant struct {
	name      string
	transport Transport
	stream    bool // the fake answers Streamable HTTP requests with event streams
}

func variants() []variant {
	return []variant{
		{"streamable", StreamableHTTP, false},
		{"streamable-sse-responses", StreamableHTTP, true},
		{"sse", SSE, false},
	}
}

// forEach runs test for every variant.
func forEach(t *testing.T, test func(t *testing.T, v variant)) {
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) { test(t, v) })
	}
}

// start serves a fake for v, behind wrap if not nil, and returns it with a
// Config pointing at it.
func start(t *testing.T, v variant, opts mcpfake.Options, wrap func(http.Handler) http.Handler) (*mcpfake.Server, Config) {
	t.Helper()
	opts.StreamResponses = v.stream
	fake := mcpfake.New(opts)
	var h http.Handler = fake
	if wrap != nil {
		h = wrap(fake)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		fake.Close()
		srv.Close()
	})
	path := "/mcp"
	if v.transport == SSE {
		path = "/sse"
	}
	return fake, Config{URL: srv.URL + path, Transport: v.transport, HTTPClient: srv.Client(), ClientVersion: "test"}
}

// connect connects with cfg and closes the session at the end of the test.
func connect(t *testing.T, cfg Config) *Session {
	t.Helper()
	s, err := Connect(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// text is a tool handler answering a fixed text.
func text(s string) func(context.Context, map[string]any) (string, bool) {
	return func(context.Context, map[string]any) (string, bool) { return s, false }
}

func TestListTools(t *testing.T) {
	forEach(t, func(t *testing.T, v variant) {
		schema := `{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`
		fake, cfg := start(t, v, mcpfake.Options{PageSize: 1, Tools: []mcpfake.Tool{
			{Name: "lookup_order", Description: "Finds an order.", InputSchema: json.RawMessage(schema)},
			{Name: "cancel_order"},
			{Name: "refund"},
		}}, nil)
		s := connect(t, cfg)
		if got := s.ServerName(); got != "mcpfake" {
			t.Errorf("ServerName = %q, want mcpfake", got)
		}
		tools, names := listTools(t, s)
		if want := []string{"lookup_order", "cancel_order", "refund"}; !slices.Equal(names, want) {
			t.Fatalf("tools = %q, want %q", names, want)
		}
		if d := tools[0].Description; d == nil || *d != "Finds an order." {
			t.Errorf("description = %v, want Finds an order.", d)
		}
		if d := tools[1].Description; d != nil {
			t.Errorf("description = %q, want none", *d)
		}
		assertJSON(t, "schema", tools[0].InputSchema, schema)
		assertJSON(t, "default schema", tools[1].InputSchema, `{"type":"object"}`)
		want := []string{"initialize", "notifications/initialized", "tools/list", "tools/list", "tools/list"}
		if got := fake.Methods(); !slices.Equal(got, want) {
			t.Errorf("methods = %q, want %q", got, want)
		}
	})
}

// listTools lists s's tools and their names, in order.
func listTools(t *testing.T, s *Session) ([]Tool, []string) {
	t.Helper()
	tools, err := s.ListTools(t.Context())
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	names := make([]string, len(tools))
	for i, tool := range tools {
		names[i] = tool.Name
	}
	return tools, names
}

func TestCallTool(t *testing.T) {
	forEach(t, func(t *testing.T, v variant) {
		fake, cfg := start(t, v, mcpfake.Options{Tools: []mcpfake.Tool{{
			Name: "lookup_order",
			Handler: func(_ context.Context, args map[string]any) (string, bool) {
				return fmt.Sprintf("order %v has shipped", args["id"]), false
			},
		}}}, nil)
		s := connect(t, cfg)
		res, err := s.CallTool(t.Context(), "lookup_order", json.RawMessage(`{"id":"A42"}`))
		if err != nil {
			t.Fatalf("CallTool: %v", err)
		}
		if want := (Result{Text: "order A42 has shipped"}); !reflect.DeepEqual(res, want) {
			t.Errorf("result = %+v, want %+v", res, want)
		}
		if _, err := s.CallTool(t.Context(), "lookup_order", nil); err != nil {
			t.Fatalf("CallTool without args: %v", err)
		}
		calls := fake.Calls()
		if len(calls) != 2 {
			t.Fatalf("fake saw %d calls, want 2", len(calls))
		}
		if calls[0].Tool != "lookup_order" || !reflect.DeepEqual(calls[0].Args, map[string]any{"id": "A42"}) {
			t.Errorf("first call = %s %v", calls[0].Tool, calls[0].Args)
		}
		if calls[1].Args == nil || len(calls[1].Args) != 0 {
			t.Errorf("call without args sent arguments %#v, want {}", calls[1].Args)
		}
	})
}

func TestCallToolIsError(t *testing.T) {
	forEach(t, func(t *testing.T, v variant) {
		_, cfg := start(t, v, mcpfake.Options{Tools: []mcpfake.Tool{{
			Name:    "charge",
			Handler: func(context.Context, map[string]any) (string, bool) { return "card declined", true },
		}}}, nil)
		res, err := connect(t, cfg).CallTool(t.Context(), "charge", json.RawMessage(`{}`))
		if err != nil {
			t.Fatalf("CallTool: %v", err)
		}
		if !res.IsError || res.Text != "card declined" {
			t.Errorf("result = %+v, want IsError with card declined", res)
		}
	})
}

func TestUnknownTool(t *testing.T) {
	forEach(t, func(t *testing.T, v variant) {
		_, cfg := start(t, v, mcpfake.Options{}, nil)
		_, err := connect(t, cfg).CallTool(t.Context(), "nope", nil)
		var rpcErr *RPCError
		if !errors.As(err, &rpcErr) || rpcErr.Code != -32602 || rpcErr.Message != "unknown tool: nope" {
			t.Fatalf("CallTool = %v, want RPCError -32602 unknown tool: nope", err)
		}
		if want := "mcp tools/call nope: mcp error -32602: unknown tool: nope"; err.Error() != want {
			t.Errorf("error = %q, want %q", err, want)
		}
	})
}

func TestRequireHeader(t *testing.T) {
	forEach(t, func(t *testing.T, v variant) {
		fake, cfg := start(t, v, mcpfake.Options{
			RequireHeader: [2]string{"Authorization", "Bearer s3cret"},
			Tools:         []mcpfake.Tool{{Name: "ping", Handler: text("pong")}},
		}, nil)
		_, err := Connect(t.Context(), cfg)
		var httpErr *HTTPError
		if !errors.As(err, &httpErr) || httpErr.Status != http.StatusUnauthorized {
			t.Fatalf("Connect without the header = %v, want HTTP 401", err)
		}
		cfg.Headers = map[string]string{"Authorization": "Bearer s3cret"}
		res, err := connect(t, cfg).CallTool(t.Context(), "ping", nil)
		if err != nil || res.Text != "pong" {
			t.Fatalf("CallTool = %+v, %v", res, err)
		}
		if got := fake.Calls()[0].Headers.Get("Authorization"); got != "Bearer s3cret" {
			t.Errorf("tools/call carried Authorization %q", got)
		}
	})
}

// hit is an HTTP request as a recorder saw it.
type hit struct {
	method, path, session, version string
}

// recorder wraps a handler to note the requests it serves.
type recorder struct {
	mu   sync.Mutex
	hits []hit
}

func (rec *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.hits = append(rec.hits, hit{r.Method, r.URL.RequestURI(), r.Header.Get("Mcp-Session-Id"), r.Header.Get("MCP-Protocol-Version")})
		rec.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (rec *recorder) seen() []hit {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.hits)
}

func TestSessions(t *testing.T) {
	forEach(t, func(t *testing.T, v variant) {
		var rec recorder
		fake, cfg := start(t, v, mcpfake.Options{Sessions: true, Tools: []mcpfake.Tool{{Name: "ping", Handler: text("pong")}}}, rec.wrap)
		s, err := Connect(t.Context(), cfg)
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		for range 2 {
			if _, err := s.CallTool(t.Context(), "ping", nil); err != nil {
				t.Fatalf("CallTool: %v", err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		hits := rec.seen()
		if v.transport == SSE {
			// The session is the stream the endpoint belongs to.
			if hits[0].method != http.MethodGet || hits[0].path != "/sse" {
				t.Fatalf("first request %+v, want GET /sse", hits[0])
			}
			endpoint := hits[1].path
			if !strings.HasPrefix(endpoint, "/messages?sessionId=") {
				t.Fatalf("message POSTed to %s", endpoint)
			}
			for _, h := range hits[1:] {
				if h.method != http.MethodPost || h.path != endpoint {
					t.Errorf("request %+v, want POST %s", h, endpoint)
				}
			}
			return
		}
		calls := fake.Calls()
		session := calls[0].Headers.Get("Mcp-Session-Id")
		if session == "" || calls[1].Headers.Get("Mcp-Session-Id") != session {
			t.Fatalf("tools/call sessions %q, %q; want the same, not empty",
				session, calls[1].Headers.Get("Mcp-Session-Id"))
		}
		want := []hit{
			{http.MethodPost, "/mcp", "", ""}, // initialize
			{http.MethodPost, "/mcp", session, "2025-06-18"},
			{http.MethodPost, "/mcp", session, "2025-06-18"},
			{http.MethodPost, "/mcp", session, "2025-06-18"},
			{http.MethodDelete, "/mcp", session, "2025-06-18"},
		}
		if !reflect.DeepEqual(hits, want) {
			t.Errorf("requests\n got %+v\nwant %+v", hits, want)
		}
	})
}

func TestSessionExpired(t *testing.T) {
	var expired atomic.Bool
	forget := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if expired.Load() && r.Header.Get("Mcp-Session-Id") != "" {
				r.Header.Set("Mcp-Session-Id", "forgotten")
			}
			next.ServeHTTP(w, r)
		})
	}
	_, cfg := start(t, variants()[0], mcpfake.Options{Sessions: true, Tools: []mcpfake.Tool{{Name: "ping"}}}, forget)
	s := connect(t, cfg)
	expired.Store(true)
	_, err := s.CallTool(t.Context(), "ping", nil)
	var httpErr *HTTPError
	if !errors.As(err, &httpErr) || httpErr.Status != http.StatusNotFound || !strings.Contains(err.Error(), "session expired") {
		t.Fatalf("CallTool = %v, want session expired with HTTP 404", err)
	}
}

func TestTimeout(t *testing.T) {
	forEach(t, func(t *testing.T, v variant) {
		_, cfg := start(t, v, mcpfake.Options{Tools: []mcpfake.Tool{
			{Name: "slow", Handler: func(ctx context.Context, _ map[string]any) (string, bool) {
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Second):
				}
				return "late", false
			}},
			{Name: "fast", Handler: text("quick")},
		}}, nil)
		cfg.Timeout = 200 * time.Millisecond
		s := connect(t, cfg)
		began := time.Now()
		_, err := s.CallTool(t.Context(), "slow", nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CallTool = %v, want a deadline error", err)
		}
		if took := time.Since(began); took > time.Second {
			t.Errorf("CallTool took %v with a 200ms timeout", took)
		}
		if !strings.HasPrefix(err.Error(), "mcp tools/call slow: no response within 200ms: ") {
			t.Errorf("error %q does not say what timed out", err)
		}
		if res, err := s.CallTool(t.Context(), "fast", nil); err != nil || res.Text != "quick" {
			t.Errorf("CallTool after a timeout = %+v, %v", res, err)
		}
	})
}

func TestConcurrentCalls(t *testing.T) {
	forEach(t, func(t *testing.T, v variant) {
		_, cfg := start(t, v, mcpfake.Options{Tools: []mcpfake.Tool{{
			Name: "echo",
			Handler: func(_ context.Context, args map[string]any) (string, bool) {
				n := args["n"].(float64)
				time.Sleep(time.Duration(8-n) * 5 * time.Millisecond) // answer out of order
				return fmt.Sprint("n=", n), false
			},
		}}}, nil)
		s := connect(t, cfg)
		var wg sync.WaitGroup
		results := make([]string, 8)
		errs := make([]error, 8)
		for i := range 8 {
			wg.Go(func() {
				var res Result
				res, errs[i] = s.CallTool(t.Context(), "echo", json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)))
				results[i] = res.Text
			})
		}
		wg.Wait()
		for i := range 8 {
			if want := fmt.Sprint("n=", i); errs[i] != nil || results[i] != want {
				t.Errorf("call %d = %q, %v; want %q", i, results[i], errs[i], want)
			}
		}
	})
}

func TestClose(t *testing.T) {
	forEach(t, func(t *testing.T, v variant) {
		_, cfg := start(t, v, mcpfake.Options{Tools: []mcpfake.Tool{{Name: "ping"}}}, nil)
		s, err := Connect(t.Context(), cfg)
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		for range 2 {
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		if _, err := s.CallTool(t.Context(), "ping", nil); err == nil || !strings.Contains(err.Error(), "session closed") {
			t.Errorf("CallTool after Close = %v, want session closed", err)
		}
	})
}

func TestStreamEnds(t *testing.T) {
	block := func(ctx context.Context, _ map[string]any) (string, bool) {
		<-ctx.Done()
		return "", false
	}
	fake, cfg := start(t, variant{"sse", SSE, false}, mcpfake.Options{Tools: []mcpfake.Tool{{Name: "block", Handler: block}}}, nil)
	s := connect(t, cfg)
	pending := make(chan error, 1)
	go func() {
		_, err := s.CallTool(t.Context(), "block", nil)
		pending <- err
	}()
	for len(fake.Calls()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	fake.Close() // ends the event stream
	select {
	case err := <-pending:
		if err == nil || !strings.Contains(err.Error(), "server closed the event stream") {
			t.Errorf("pending CallTool = %v, want the stream's end", err)
		}
	case <-time.After(time.Second):
		t.Fatal("pending CallTool still waiting a second after the stream ended")
	}
	began := time.Now()
	if _, err := s.CallTool(t.Context(), "block", nil); err == nil {
		t.Error("CallTool after the stream ended succeeded")
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("CallTool after the stream ended took %v", took)
	}
}

func TestEndpointOrigin(t *testing.T) {
	tests := map[string]func(r *http.Request) string{
		"other host":        func(*http.Request) string { return "http://evil.example/messages" },
		"scheme-relative":   func(*http.Request) string { return "//evil.example/messages" },
		"other scheme":      func(r *http.Request) string { return "https://" + r.Host + "/messages" },
		"other port":        func(r *http.Request) string { return "http://" + strings.Split(r.Host, ":")[0] + ":1/messages" },
		"other host, alias": func(r *http.Request) string { return "http://localhost:" + strings.Split(r.Host, ":")[1] + "/m" },
	}
	for name, endpoint := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprintf(w, "event: endpoint\ndata: %s\n\n", endpoint(r))
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}))
			defer srv.Close()
			_, err := Connect(t.Context(), Config{URL: srv.URL + "/sse", Transport: SSE, HTTPClient: srv.Client()})
			if err == nil || !strings.Contains(err.Error(), "origin") {
				t.Fatalf("Connect = %v, want an origin error", err)
			}
		})
	}
}

func TestOrigin(t *testing.T) {
	for _, pair := range [][2]string{
		{"http://a.example/x", "HTTP://A.example:80/y?z"},
		{"https://a.example:443/", "https://a.example/"},
		{"http://[::1]:8080/", "http://[::1]:8080/m"},
	} {
		a, _ := url.Parse(pair[0])
		b, _ := url.Parse(pair[1])
		if origin(a) != origin(b) {
			t.Errorf("origins of %s and %s differ: %s, %s", a, b, origin(a), origin(b))
		}
	}
}

// scripted serves Streamable HTTP: initialize gets initResult, tools/call
// the response write makes, notifications 202.
func scripted(t *testing.T, initResult string, write func(w http.ResponseWriter, id json.RawMessage)) Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch req.Method {
		case "initialize":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`, req.ID, initResult)
		case "tools/call":
			write(w, req.ID)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	t.Cleanup(srv.Close)
	return Config{URL: srv.URL, HTTPClient: srv.Client()}
}

const initOK = `{"protocolVersion":"2025-03-26","capabilities":{},"serverInfo":{"name":"scripted","version":"1"}}`

func TestResultContents(t *testing.T) {
	cfg := scripted(t, initOK, func(w http.ResponseWriter, id json.RawMessage) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[
			{"type":"text","text":"hello"},
			{"type":"image","data":"AAAA","mimeType":"image/png"},
			{"type":"audio","data":"AAAA","mimeType":"audio/wav"},
			{"type":"resource","resource":{"uri":"file:///a.txt","mimeType":"text/plain","text":"inline"}},
			{"type":"resource","resource":{"uri":"file:///b.bin","blob":"AAAA"}},
			{"type":"resource_link","uri":"file:///c.txt","name":"c"}],
			"structuredContent":{"total":3}}}`, id)
	})
	res, err := connect(t, cfg).CallTool(t.Context(), "report", nil)
	if err != nil {
		t.Fatalf("CallTool: %v", err)
	}
	if want := "hello\n[image image/png]\n[audio audio/wav]\ninline\n[resource file:///b.bin]\n[resource_link file:///c.txt]"; res.Text != want {
		t.Errorf("text = %q, want %q", res.Text, want)
	}
	assertJSON(t, "structured", res.Structured, `{"total":3}`)
}

func TestStreamedReplySkipsServerMessages(t *testing.T) {
	cfg := scripted(t, initOK, func(w http.ResponseWriter, id json.RawMessage) {
		w.Header().Set("Content-Type", "text/event-stream")
		// A server request reusing the id, a notification, a comment,
		// a priming event without data, then the response.
		fmt.Fprintf(w, "data: {\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"ping\"}\r\n\r\n", id)
		fmt.Fprint(w, "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\r\ndata: \"params\":{\"progress\":1}}\r\n\r\n")
		fmt.Fprint(w, ": keep-alive\r\n\r\nid: prime\r\ndata:\r\n\r\n")
		fmt.Fprintf(w, "data: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}}\r\n\r\n", id)
	})
	res, err := connect(t, cfg).CallTool(t.Context(), "work", nil)
	if err != nil || res.Text != "done" {
		t.Fatalf("CallTool = %+v, %v; want done", res, err)
	}
}

func TestBadReplies(t *testing.T) {
	tests := []struct {
		name, init string
		write      func(w http.ResponseWriter, id json.RawMessage)
		connectErr string // "" when Connect should succeed
		callErr    string
	}{
		{name: "unsupported version", init: `{"protocolVersion":"1999-01-01","serverInfo":{"name":"x"}}`,
			connectErr: `mcp initialize: unsupported protocol version: "1999-01-01"`},
		{name: "body too large", init: initOK, callErr: "larger than",
			write: func(w http.ResponseWriter, id json.RawMessage) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"%s"}]}}`,
					id, strings.Repeat("x", maxMessageSize))
			}},
		{name: "event too large", init: initOK, callErr: "SSE event exceeded 4194304 bytes",
			write: func(w http.ResponseWriter, id json.RawMessage) {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprintf(w, "data: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"%s\"}]}}\n\n",
					id, strings.Repeat("x", maxMessageSize))
			}},
		{name: "stream without response", init: initOK, callErr: "request terminated without response",
			write: func(w http.ResponseWriter, _ json.RawMessage) {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n")
			}},
		// A response to no request is dropped; the request times out.
		{name: "wrong id", init: initOK, callErr: "no response within 300ms: context deadline exceeded",
			write: func(w http.ResponseWriter, _ json.RawMessage) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"jsonrpc":"2.0","id":999,"result":{}}`)
			}},
		{name: "server error", init: initOK, callErr: "HTTP 500 Internal Server Error: boom",
			write: func(w http.ResponseWriter, _ json.RawMessage) { http.Error(w, "boom", http.StatusInternalServerError) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := scripted(t, tt.init, tt.write)
			cfg.Timeout = 300 * time.Millisecond
			s, err := Connect(t.Context(), cfg)
			if tt.connectErr != "" {
				if err == nil || err.Error() != tt.connectErr {
					t.Fatalf("Connect = %v, want %s", err, tt.connectErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			defer s.Close()
			_, err = s.CallTool(t.Context(), "x", nil)
			if err == nil || !strings.HasPrefix(err.Error(), "mcp tools/call x: ") || !strings.Contains(err.Error(), tt.callErr) {
				t.Fatalf("CallTool = %v, want an error containing %q", err, tt.callErr)
			}
		})
	}
}

func TestConnectConfig(t *testing.T) {
	client := &http.Client{}
	for name, cfg := range map[string]Config{
		"no client":         {URL: "http://localhost/mcp"},
		"relative URL":      {URL: "/mcp", HTTPClient: client},
		"other scheme":      {URL: "ftp://localhost/mcp", HTTPClient: client},
		"unknown transport": {URL: "http://localhost/mcp", Transport: "websocket", HTTPClient: client},
	} {
		if _, err := Connect(t.Context(), cfg); err == nil || !strings.HasPrefix(err.Error(), "mcp connect: ") {
			t.Errorf("%s: Connect = %v, want a config error", name, err)
		}
	}
}

// assertJSON compares JSON texts semantically.
func assertJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: %v in %s", what, err, got)
		return
	}
	_ = json.Unmarshal([]byte(want), &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func TestErrorsLeaveOutURL(t *testing.T) {
	for _, tr := range []Transport{StreamableHTTP, SSE} {
		_, err := Connect(t.Context(), Config{URL: "http://127.0.0.1:1/mcp?token=s3cret", Transport: tr, HTTPClient: &http.Client{}})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: Connect = %v, want an error without the URL", tr, err)
		}
	}
}
