// Package mcp is a client for remote MCP (Model Context Protocol) servers,
// the source of tools that customers attach to their assistants.
//
// It speaks the Streamable HTTP transport (protocol 2025-03-26 and
// 2025-06-18) and the legacy HTTP+SSE transport (2024-11-05), and only the
// client side of the tools feature: Connect runs the initialize handshake,
// then ListTools and CallTool use the server's tools. Requests and
// notifications the server sends to the client are ignored.
package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Transport names an MCP transport.
type Transport string

// The supported transports.
const (
	// StreamableHTTP is one endpoint taking a POST per message, answered
	// with JSON or an event stream (protocol 2025-03-26 and later).
	StreamableHTTP Transport = "streamable_http"
	// SSE is the legacy HTTP+SSE transport: a long-lived event stream that
	// names the endpoint to POST messages to (protocol 2024-11-05).
	SSE Transport = "sse"
)

const (
	// protocolVersion is the version the client asks for.
	protocolVersion = "2025-06-18"
	// defaultTimeout bounds a request when Config.Timeout is zero.
	defaultTimeout = 20 * time.Second
	// maxMessageSize caps a JSON response body and an event stream line
	// or event.
	maxMessageSize = 4 << 20
	// maxListPages caps the pages ListTools follows.
	maxListPages = 50
)

// supportedVersion reports whether the client speaks protocol version v.
func supportedVersion(v string) bool {
	switch v {
	case "2025-06-18", "2025-03-26", "2024-11-05":
		return true
	}
	return false
}

// Config says how to reach an MCP server.
type Config struct {
	// URL is the Streamable HTTP endpoint or the SSE stream URL.
	URL string
	// Transport is the server's transport; "" means StreamableHTTP.
	Transport Transport
	// Headers are sent on every HTTP request (e.g. Authorization).
	Headers map[string]string
	// Timeout bounds each JSON-RPC round trip, tools/call included, and
	// the opening of the SSE stream; 0 means 20s.
	Timeout time.Duration
	// HTTPClient sends the requests; required. It should have no
	// client-wide timeout: the SSE stream lives as long as the Session,
	// and requests are bounded by contexts.
	HTTPClient *http.Client
	// ClientVersion is sent as clientInfo.version.
	ClientVersion string
}

// Tool is a tool the server offers.
type Tool struct {
	Name        string          `json:"name"`
	Description *string         `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"inputSchema"` // {"type":"object"} when the server sent none
}

// Result is the outcome of a tool call.
type Result struct {
	// Text is the text contents joined with "\n"; other contents are
	// described briefly, e.g. "[image image/png]".
	Text string
	// Structured is the structuredContent, when sent.
	Structured json.RawMessage
	// IsError reports that the tool itself failed (isError).
	IsError bool
}

// RPCError is a JSON-RPC error answered by the server.
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("mcp error %d: %s", e.Code, e.Message)
}

// HTTPError is an unexpected HTTP status from the server.
type HTTPError struct {
	Status int
	Body   string // the start of the body, at most 512 bytes
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	if body := strings.TrimSpace(e.Body); body != "" {
		msg += ": " + body
	}
	return msg
}

// transport carries JSON-RPC messages to the server and back.
type transport interface {
	// roundTrip sends msg. For a request (msg.ID set) it returns the
	// response with that id; for a notification it returns nil.
	roundTrip(ctx context.Context, msg *message) (*message, error)
	// close ends the transport's connection or session.
	close() error
}

// Session is an initialized connection to an MCP server. Its methods are
// safe for concurrent use.
type Session struct {
	t          transport
	timeout    time.Duration
	serverName string
	nextID     atomic.Int64
	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error
}

// Connect opens a session with the server at cfg.URL: it opens the
// transport, sends initialize and then notifications/initialized. ctx
// bounds the connecting only, not the session; Close the session when
// done with it.
func Connect(ctx context.Context, cfg Config) (*Session, error) {
	if cfg.HTTPClient == nil {
		return nil, errors.New("mcp connect: no HTTPClient configured")
	}
	// The URL is left out of errors: it may carry a token.
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("mcp connect: URL is not an absolute http(s) URL")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	conn := httpConn{client: cfg.HTTPClient, headers: maps.Clone(cfg.Headers)}
	var t transport
	switch cfg.Transport {
	case "", StreamableHTTP:
		t = &streamable{httpConn: conn, url: u.String(), timeout: timeout}
	case SSE:
		if t, err = openSSE(ctx, conn, u, timeout); err != nil {
			return nil, fmt.Errorf("mcp open event stream: %w", err)
		}
	default:
		return nil, fmt.Errorf("mcp connect: unknown transport %q", cfg.Transport)
	}
	s := &Session{t: t, timeout: timeout}
	if err := s.initialize(ctx, cfg.ClientVersion); err != nil {
		_ = t.close()
		return nil, err
	}
	return s, nil
}

// initialize runs the lifecycle handshake.
func (s *Session) initialize(ctx context.Context, clientVersion string) error {
	params := map[string]any{
		"protocolVersion": protocolVersion,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]string{"name": "parley", "version": clientVersion},
	}
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
		ServerInfo      struct {
			Name string `json:"name"`
		} `json:"serverInfo"`
	}
	if err := s.call(ctx, "initialize", "initialize", params, &res); err != nil {
		return err
	}
	if !supportedVersion(res.ProtocolVersion) {
		return fmt.Errorf("mcp initialize: server speaks unsupported protocol version %q", res.ProtocolVersion)
	}
	s.serverName = res.ServerInfo.Name
	return s.notify(ctx, "notifications/initialized")
}

// ServerName is the name the server gave in its serverInfo.
func (s *Session) ServerName() string { return s.serverName }

// ListTools returns the server's tools, following nextCursor for at most
// 50 pages. Tools without a name are left out.
func (s *Session) ListTools(ctx context.Context) ([]Tool, error) {
	var tools []Tool
	params := map[string]string{}
	for range maxListPages {
		var page struct {
			Tools      []Tool `json:"tools"`
			NextCursor string `json:"nextCursor"`
		}
		if err := s.call(ctx, "tools/list", "tools/list", params, &page); err != nil {
			return nil, err
		}
		for _, t := range page.Tools {
			if t.Name == "" {
				continue
			}
			if len(t.InputSchema) == 0 || string(t.InputSchema) == "null" {
				t.InputSchema = json.RawMessage(`{"type":"object"}`)
			}
			tools = append(tools, t)
		}
		if page.NextCursor == "" {
			return tools, nil
		}
		params = map[string]string{"cursor": page.NextCursor}
	}
	return nil, fmt.Errorf("mcp tools/list: more than %d pages", maxListPages)
}

// CallTool calls the tool name with args, a JSON object (nil means {}).
// A failure the tool reports itself is a Result with IsError set, not an
// error.
func (s *Session) CallTool(ctx context.Context, name string, args json.RawMessage) (Result, error) {
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage(`{}`)
	}
	params := struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}{name, args}
	var res struct {
		Content           []content       `json:"content"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		IsError           bool            `json:"isError"`
	}
	if err := s.call(ctx, "tools/call "+name, "tools/call", params, &res); err != nil {
		return Result{}, err
	}
	parts := make([]string, len(res.Content))
	for i, c := range res.Content {
		parts[i] = c.describe()
	}
	out := Result{Text: strings.Join(parts, "\n"), IsError: res.IsError}
	if len(res.StructuredContent) > 0 && string(res.StructuredContent) != "null" {
		out.Structured = res.StructuredContent
	}
	return out, nil
}

// content is one item of a tool result.
type content struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	MimeType string `json:"mimeType"`
	URI      string `json:"uri"` // resource_link
	Resource *struct {
		URI      string  `json:"uri"`
		MimeType string  `json:"mimeType"`
		Text     *string `json:"text"`
	} `json:"resource"` // embedded resource
}

// describe renders c as text: text and embedded text resources as they
// are, anything else as a bracketed note such as "[image image/png]".
func (c content) describe() string {
	note := []string{c.Type, c.URI, c.MimeType}
	switch {
	case c.Type == "text":
		return c.Text
	case c.Type == "resource" && c.Resource != nil:
		if c.Resource.Text != nil {
			return *c.Resource.Text
		}
		note = []string{c.Type, c.Resource.URI, c.Resource.MimeType}
	}
	var kept []string
	for _, s := range note {
		if s != "" {
			kept = append(kept, s)
		}
	}
	return "[" + strings.Join(kept, " ") + "]"
}

// Close ends the session: it stops the SSE stream or asks a Streamable
// HTTP server to end the session. Later calls fail. It is idempotent.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if err := s.t.close(); err != nil {
			s.closeErr = fmt.Errorf("mcp close: %w", err)
		}
	})
	return s.closeErr
}

// call sends the request method with params and decodes its result into
// result. what names the request in errors ("tools/call lookup_order").
func (s *Session) call(ctx context.Context, what, method string, params, result any) error {
	if s.closed.Load() {
		return fmt.Errorf("mcp %s: session closed", what)
	}
	p, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("mcp %s: encode params: %w", what, err)
	}
	id := json.RawMessage(strconv.FormatInt(s.nextID.Add(1), 10))
	reply, err := s.roundTrip(ctx, &message{JSONRPC: "2.0", ID: id, Method: method, Params: p})
	if err != nil {
		return fmt.Errorf("mcp %s: %w", what, err)
	}
	if reply.Error != nil {
		return fmt.Errorf("mcp %s: %w", what, reply.Error)
	}
	if len(reply.Result) == 0 {
		return fmt.Errorf("mcp %s: response has neither result nor error", what)
	}
	if err := json.Unmarshal(reply.Result, result); err != nil {
		return fmt.Errorf("mcp %s: decode result: %w", what, err)
	}
	return nil
}

// notify sends the notification method without params.
func (s *Session) notify(ctx context.Context, method string) error {
	if _, err := s.roundTrip(ctx, &message{JSONRPC: "2.0", Method: method}); err != nil {
		return fmt.Errorf("mcp %s: %w", method, err)
	}
	return nil
}

// roundTrip sends msg within the session's per-request timeout.
func (s *Session) roundTrip(ctx context.Context, msg *message) (*message, error) {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	reply, err := s.t.roundTrip(rctx, msg)
	if err != nil {
		err = contextError(rctx, err)
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no response within %v: %w", s.timeout, err)
		}
	}
	return reply, err
}

// contextError makes sure err, which happened under ctx, wraps ctx's
// error once ctx is done, so callers can tell a timeout by errors.Is.
func contextError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
