// Package mcpfake is an in-process MCP server speaking both the Streamable
// HTTP transport and the legacy HTTP+SSE transport, for tests. It offers
// scripted tools and records what it receives.
package mcpfake

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
)

// Tool is a tool the fake offers.
type Tool struct {
	Name, Description string
	// InputSchema defaults to {"type":"object"}.
	InputSchema json.RawMessage
	// Handler answers a call; nil answers "". Its ctx ends when the client
	// goes away or the Server is closed.
	Handler func(ctx context.Context, args map[string]any) (text string, isError bool)
}

// Options configures a Server.
type Options struct {
	Tools []Tool
	// StreamResponses makes the Streamable HTTP transport answer requests
	// with an event stream (a notification, then the response) instead of
	// application/json.
	StreamResponses bool
	// RequireHeader, when its name is not empty, is a header name and
	// value that every request must carry; others get 401.
	RequireHeader [2]string
	// PageSize is the tools/list page size; 0 lists all tools at once.
	PageSize int
	// Sessions makes the Streamable HTTP transport issue an Mcp-Session-Id
	// with the initialize response and require it afterwards (404 for an
	// unknown one).
	Sessions bool
}

// Call is a tools/call request the fake received.
type Call struct {
	Tool    string
	Args    map[string]any
	Headers http.Header
}

// Server is the fake, an http.Handler serving:
//
//	POST, DELETE /mcp   the Streamable HTTP transport
//	GET /sse            the legacy transport's event stream
//	POST /messages      the legacy transport's endpoint (?sessionId=)
//
// It is safe for concurrent use.
type Server struct {
	opts   Options
	mux    *http.ServeMux
	ctx    context.Context // ends with Close; bounds streams and handlers
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines answering legacy requests

	mu       sync.Mutex
	closed   bool
	calls    []Call
	methods  []string
	sessions map[string]bool    // Streamable HTTP session ids
	streams  map[string]*stream // legacy event streams by session id
}

// stream is an open legacy event stream.
type stream struct {
	ctx context.Context // ends when the stream does
	out chan []byte     // JSON-RPC messages to send on it
}

// New returns a Server offering opts.Tools. Close it when done.
func New(opts Options) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:     opts,
		mux:      http.NewServeMux(),
		ctx:      ctx,
		cancel:   cancel,
		sessions: map[string]bool{},
		streams:  map[string]*stream{},
	}
	s.mux.HandleFunc("POST /mcp", s.postStreamable)
	s.mux.HandleFunc("DELETE /mcp", s.deleteSession)
	s.mux.HandleFunc("GET /sse", s.openStream)
	s.mux.HandleFunc("POST /messages", s.postLegacy)
	return s
}

// ServeHTTP checks RequireHeader and routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if name := s.opts.RequireHeader[0]; name != "" && r.Header.Get(name) != s.opts.RequireHeader[1] {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Calls returns the tools/call requests received, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Methods returns the method of every JSON-RPC message received, in
// order, notifications included.
func (s *Server) Methods() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.methods)
}

// Close ends the open event streams and tool handlers, and waits for the
// fake's goroutines, so that httptest.Server.Close does not hang. It is
// idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// request is a JSON-RPC message from the client.
type request struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// expectsReply reports whether r is a request rather than a notification
// or a response.
func (r *request) expectsReply() bool {
	return r.Method != "" && len(r.ID) > 0 && string(r.ID) != "null"
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// readRequest decodes the body of r, answering 400 when it is no JSON-RPC
// message. Reading the body to its end also lets the server notice when
// the client goes away.
func readRequest(w http.ResponseWriter, r *http.Request) (request, bool) {
	var req request
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err == nil {
		err = json.Unmarshal(data, &req)
	}
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": nil,
			"error": rpcError{-32700, "parse error: " + err.Error()}})
		return req, false
	}
	return req, true
}

// postStreamable serves a Streamable HTTP message.
func (s *Server) postStreamable(w http.ResponseWriter, r *http.Request) {
	req, ok := readRequest(w, r)
	if !ok {
		return
	}
	if s.opts.Sessions {
		if req.Method == "initialize" {
			id := rand.Text()
			s.mu.Lock()
			s.sessions[id] = true
			s.mu.Unlock()
			w.Header().Set("Mcp-Session-Id", id)
		} else if status := s.checkSession(r.Header.Get("Mcp-Session-Id")); status != http.StatusOK {
			http.Error(w, http.StatusText(status), status)
			return
		}
	}
	s.record(req.Method)
	if !req.expectsReply() {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	ctx, cancel := s.scope(r.Context())
	defer cancel()
	if !s.opts.StreamResponses {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.respond(ctx, req, r.Header.Clone(), false))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	writeEvent(w, "", []byte(`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"working on it"}}`))
	writeEvent(w, "", s.respond(ctx, req, r.Header.Clone(), false))
}

// checkSession says whether id is a live session: 200, 400 when missing
// or 404 when unknown.
func (s *Server) checkSession(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case id == "":
		return http.StatusBadRequest
	case !s.sessions[id]:
		return http.StatusNotFound
	}
	return http.StatusOK
}

// deleteSession ends a Streamable HTTP session; 405 without Sessions.
func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	if !s.opts.Sessions {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "sessions are not supported", http.StatusMethodNotAllowed)
		return
	}
	id := r.Header.Get("Mcp-Session-Id")
	if status := s.checkSession(id); status != http.StatusOK {
		http.Error(w, http.StatusText(status), status)
		return
	}
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// openStream serves a legacy event stream: the endpoint event, then the
// responses to the messages POSTed to that endpoint.
func (s *Server) openStream(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.scope(r.Context())
	defer cancel()
	st := &stream{ctx: ctx, out: make(chan []byte)}
	id := rand.Text()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	s.streams[id] = st
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, id)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	writeEvent(w, "endpoint", []byte("/messages?sessionId="+id))
	for {
		select {
		case <-ctx.Done():
			return
		case msg := <-st.out:
			writeEvent(w, "message", msg)
		}
	}
}

// postLegacy accepts a message for a legacy stream and answers it on the
// stream from a goroutine, as servers of that transport do.
func (s *Server) postLegacy(w http.ResponseWriter, r *http.Request) {
	req, ok := readRequest(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	st := s.streams[r.URL.Query().Get("sessionId")]
	if st == nil || s.closed {
		s.mu.Unlock()
		http.Error(w, "unknown session", http.StatusNotFound)
		return
	}
	s.methods = append(s.methods, req.Method)
	if req.expectsReply() {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "Accepted")
	if !req.expectsReply() {
		return
	}
	header := r.Header.Clone()
	go func() {
		defer s.wg.Done()
		resp := s.respond(st.ctx, req, header, true)
		select {
		case st.out <- resp:
		case <-st.ctx.Done():
		}
	}()
}

// scope returns a context that ends with parent or with the Server.
func (s *Server) scope(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// record remembers a received method.
func (s *Server) record(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.methods = append(s.methods, method)
}

// writeEvent writes and flushes one server-sent event.
func writeEvent(w http.ResponseWriter, typ string, data []byte) {
	if typ != "" {
		_, _ = fmt.Fprintf(w, "event: %s\n", typ)
	}
	_, _ = fmt.Fprintf(w, "data: %s\n\n", data)
	_ = http.NewResponseController(w).Flush()
}

// respond answers a request with the JSON of a JSON-RPC response.
func (s *Server) respond(ctx context.Context, req request, header http.Header, legacy bool) []byte {
	resp := map[string]any{"jsonrpc": "2.0", "id": req.ID}
	if result, rerr := s.handle(ctx, req, header, legacy); rerr != nil {
		resp["error"] = rerr
	} else {
		resp["result"] = result
	}
	data, _ := json.Marshal(resp)
	return data
}

// handle runs a request.
func (s *Server) handle(ctx context.Context, req request, header http.Header, legacy bool) (any, *rpcError) {
	switch req.Method {
	case "initialize":
		var p struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		_ = json.Unmarshal(req.Params, &p)
		version := "2025-06-18"
		if legacy {
			version = "2024-11-05"
		} else if p.ProtocolVersion == "2025-03-26" {
			version = p.ProtocolVersion
		}
		return map[string]any{
			"protocolVersion": version,
			"capabilities":    map[string]any{"tools": map[string]any{}},
			"serverInfo":      map[string]string{"name": "mcpfake", "version": "1.0.0"},
		}, nil
	case "ping":
		return map[string]any{}, nil
	case "tools/list":
		return s.listTools(req.Params)
	case "tools/call":
		return s.callTool(ctx, req.Params, header)
	}
	return nil, &rpcError{-32601, "method not found: " + req.Method}
}

// listTools answers tools/list; the cursor is the index of the page's
// first tool.
func (s *Server) listTools(params json.RawMessage) (any, *rpcError) {
	var p struct {
		Cursor string `json:"cursor"`
	}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, &rpcError{-32602, "invalid params: " + err.Error()}
		}
	}
	tools := s.opts.Tools
	start := 0
	if p.Cursor != "" {
		n, err := strconv.Atoi(p.Cursor)
		if err != nil || n < 0 || n > len(tools) {
			return nil, &rpcError{-32602, "invalid cursor: " + p.Cursor}
		}
		start = n
	}
	end := len(tools)
	if s.opts.PageSize > 0 {
		end = min(end, start+s.opts.PageSize)
	}
	list := []map[string]any{}
	for _, t := range tools[start:end] {
		schema := t.InputSchema
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		entry := map[string]any{"name": t.Name, "inputSchema": schema}
		if t.Description != "" {
			entry["description"] = t.Description
		}
		list = append(list, entry)
	}
	result := map[string]any{"tools": list}
	if end < len(tools) {
		result["nextCursor"] = strconv.Itoa(end)
	}
	return result, nil
}

// callTool answers tools/call, recording it.
func (s *Server) callTool(ctx context.Context, params json.RawMessage, header http.Header) (any, *rpcError) {
	var p struct {
		Name      string         `json:"name"`
		Arguments map[string]any `json:"arguments"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, &rpcError{-32602, "invalid params: " + err.Error()}
	}
	s.mu.Lock()
	s.calls = append(s.calls, Call{Tool: p.Name, Args: p.Arguments, Headers: header})
	s.mu.Unlock()
	i := slices.IndexFunc(s.opts.Tools, func(t Tool) bool { return t.Name == p.Name })
	if i < 0 {
		return nil, &rpcError{-32602, "unknown tool: " + p.Name}
	}
	var text string
	var isError bool
	if h := s.opts.Tools[i].Handler; h != nil {
		text, isError = h(ctx, p.Arguments)
	}
	return map[string]any{
		"content": []map[string]string{{"type": "text", "text": text}},
		"isError": isError,
	}, nil
}
