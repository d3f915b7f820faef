// Package mcp is a client for remote MCP (Model Context Protocol) servers,
// the source of tools that customers attach to their assistants.
//
// It is a thin layer over the official Go SDK
// (github.com/modelcontextprotocol/go-sdk), which speaks the protocol and
// both transports: Streamable HTTP (protocol 2025-03-26 and later) and the
// legacy HTTP+SSE transport (2024-11-05). This package adds what Parley
// needs around it: the caller's (guarded) http.Client, the server's
// configured headers, a per-request timeout, a size cap on responses,
// requests kept to the configured server's origin, errors that name the
// request and leave out the URL, and a small API: Connect runs the
// initialize handshake, then ListTools and CallTool use the server's tools.
package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
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
	// protocolVersion is the version the client asks for: the newest
	// released one. The SDK's default is a draft (2026-07-28) that first
	// tries server/discover, a round trip more on every server that
	// predates it.
	protocolVersion = "2025-11-25"
	// defaultTimeout bounds a request when Config.Timeout is zero.
	defaultTimeout = 20 * time.Second
	// maxMessageSize caps a JSON response body and an event of a stream.
	maxMessageSize = 4 << 20
	// maxListPages caps the pages ListTools follows.
	maxListPages = 50
	// codeRejected is the code of the SDK's own "rejected by transport"
	// error (internal jsonrpc2.ErrRejected), which wraps failures of the
	// HTTP request rather than a JSON-RPC error from the server.
	codeRejected = -32005
)

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
	// HTTPClient sends the requests; required. Its Transport (e.g. a
	// netguard one), CheckRedirect and Jar are used. It should have no
	// client-wide timeout: the SSE stream lives as long as the Session,
	// and requests are bounded by contexts.
	HTTPClient *http.Client
	// ClientVersion is sent as clientInfo.version.
	ClientVersion string
	// Logger receives the SDK's warnings (e.g. a server breaking the
	// protocol in a way it tolerates); nil discards them.
	Logger *slog.Logger
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

// Session is an initialized connection to an MCP server. Its methods are
// safe for concurrent use.
type Session struct {
	cs         *sdk.ClientSession
	transport  Transport
	timeout    time.Duration
	serverName string
	// end ends the session's life context, which the SSE transport's
	// event stream is bound to.
	end       context.CancelFunc
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
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
	client := wireClient(cfg.HTTPClient, u, maps.Clone(cfg.Headers))
	var t sdk.Transport
	switch cfg.Transport {
	case "", StreamableHTTP:
		cfg.Transport = StreamableHTTP
		t = &sdk.StreamableClientTransport{
			Endpoint: u.String(), HTTPClient: client, MaxEventSize: maxMessageSize,
			// Parley reads no server-initiated messages outside the
			// responses to its requests: no GET stream held per session.
			DisableStandaloneSSE: true,
		}
	case SSE:
		t = &sdk.SSEClientTransport{Endpoint: u.String(), HTTPClient: client, MaxEventSize: maxMessageSize}
	default:
		return nil, fmt.Errorf("mcp connect: unknown transport %q", cfg.Transport)
	}
	c := sdk.NewClient(&sdk.Implementation{Name: "parley", Version: cfg.ClientVersion}, &sdk.ClientOptions{
		Logger:       cfg.Logger,
		Capabilities: &sdk.ClientCapabilities{}, // no roots, sampling or elicitation
	})

	// The SSE transport binds its event stream to the context it connects
	// with, so that is one living as long as the session; ctx and the
	// timeout bound the connecting by cancelling it meanwhile.
	life, end := context.WithCancel(context.WithoutCancel(ctx))
	openCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(openCtx, end)
	w := &wireProbe{}
	cs, err := c.Connect(withProbe(life, w), t, &sdk.ClientSessionOptions{ProtocolVersion: protocolVersion})
	if !stop() && err == nil { // openCtx ended and cancelled the session meanwhile
		_ = cs.Close()
		err = errors.New("connecting interrupted")
	}
	if err != nil {
		end()
		err = explain(contextError(openCtx, err), w, cfg.Transport)
		if openCtx.Err() != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no response within %v: %w", timeout, err)
		}
		return nil, fmt.Errorf("mcp initialize: %w", err)
	}
	s := &Session{cs: cs, transport: cfg.Transport, timeout: timeout, end: end}
	if info := cs.InitializeResult().ServerInfo; info != nil {
		s.serverName = info.Name
	}
	return s, nil
}

// ServerName is the name the server gave in its serverInfo.
func (s *Session) ServerName() string { return s.serverName }

// ListTools returns the server's tools, following nextCursor for at most
// 50 pages. Tools without a name are left out.
func (s *Session) ListTools(ctx context.Context) ([]Tool, error) {
	var tools []Tool
	params := &sdk.ListToolsParams{}
	for range maxListPages {
		var page *sdk.ListToolsResult
		err := s.call(ctx, "tools/list", func(ctx context.Context) (err error) {
			page, err = s.cs.ListTools(ctx, params)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, t := range page.Tools {
			if t == nil || t.Name == "" {
				continue
			}
			tool, err := toolOf(t)
			if err != nil {
				return nil, fmt.Errorf("mcp tools/list: tool %s: %w", t.Name, err)
			}
			tools = append(tools, tool)
		}
		if page.NextCursor == "" {
			return tools, nil
		}
		params = &sdk.ListToolsParams{Cursor: page.NextCursor}
	}
	return nil, fmt.Errorf("mcp tools/list: more than %d pages", maxListPages)
}

// toolOf converts an SDK tool.
func toolOf(t *sdk.Tool) (Tool, error) {
	out := Tool{Name: t.Name, InputSchema: json.RawMessage(`{"type":"object"}`)}
	if t.Description != "" {
		out.Description = &t.Description
	}
	if t.InputSchema != nil {
		schema, err := json.Marshal(t.InputSchema)
		if err != nil {
			return Tool{}, fmt.Errorf("encode input schema: %w", err)
		}
		out.InputSchema = schema
	}
	return out, nil
}

// CallTool calls the tool name with args, a JSON object (nil means {}).
// A failure the tool reports itself is a Result with IsError set, not an
// error.
func (s *Session) CallTool(ctx context.Context, name string, args json.RawMessage) (Result, error) {
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage(`{}`)
	}
	var res *sdk.CallToolResult
	err := s.call(ctx, "tools/call "+name, func(ctx context.Context) (err error) {
		res, err = s.cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
		return err
	})
	if err != nil {
		return Result{}, err
	}
	parts := make([]string, len(res.Content))
	for i, c := range res.Content {
		parts[i] = describe(c)
	}
	out := Result{Text: strings.Join(parts, "\n"), IsError: res.IsError}
	if res.StructuredContent != nil {
		if out.Structured, err = json.Marshal(res.StructuredContent); err != nil {
			return Result{}, fmt.Errorf("mcp tools/call %s: encode structured content: %w", name, err)
		}
	}
	return out, nil
}

// describe renders c as text: text and embedded text resources as they
// are, anything else as a bracketed note such as "[image image/png]".
func describe(c sdk.Content) string {
	var note []string
	switch c := c.(type) {
	case *sdk.TextContent:
		return c.Text
	case *sdk.EmbeddedResource:
		if c.Resource == nil {
			note = []string{"resource"}
			break
		}
		if c.Resource.Blob == nil {
			return c.Resource.Text
		}
		note = []string{"resource", c.Resource.URI, c.Resource.MIMEType}
	case *sdk.ImageContent:
		note = []string{"image", c.MIMEType}
	case *sdk.AudioContent:
		note = []string{"audio", c.MIMEType}
	case *sdk.ResourceLink:
		note = []string{"resource_link", c.URI, c.MIMEType}
	case *sdk.ToolUseContent: // sampling contents, not meant for tool results
		note = []string{"tool_use", c.Name}
	case *sdk.ToolResultContent:
		note = []string{"tool_result"}
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
// HTTP server to end the session, and stops the SDK's goroutines for the
// session. Later calls fail. It is idempotent.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		err := s.cs.Close()
		s.end()
		if err != nil {
			s.closeErr = fmt.Errorf("mcp close: %w", scrub(err))
		}
	})
	return s.closeErr
}

// call runs one SDK request within the session's per-request timeout and
// turns its error into one naming what ("tools/call lookup_order").
func (s *Session) call(ctx context.Context, what string, do func(ctx context.Context) error) error {
	if s.closed.Load() {
		return fmt.Errorf("mcp %s: session closed", what)
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	w := &wireProbe{}
	err := do(withProbe(rctx, w))
	if err == nil {
		return nil
	}
	if s.closed.Load() && errors.Is(err, sdk.ErrConnectionClosed) {
		return fmt.Errorf("mcp %s: session closed", what)
	}
	err = explain(contextError(rctx, err), w, s.transport)
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no response within %v: %w", s.timeout, err)
	}
	return fmt.Errorf("mcp %s: %w", what, err)
}

// explain turns an SDK error into the most telling one: the server's
// JSON-RPC error, the HTTP status or size violation the wire saw, or the
// SDK's own error with URLs taken out.
func explain(err error, w *wireProbe, t Transport) error {
	var wire *jsonrpc.Error
	if errors.As(err, &wire) && wire.Code != codeRejected && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return &RPCError{Code: int(wire.Code), Message: wire.Message, Data: wire.Data}
	}
	if seen := w.seen(); seen != nil {
		if errors.Is(err, sdk.ErrSessionMissing) {
			return fmt.Errorf("session expired: %w", seen)
		}
		return seen
	}
	if t == SSE && (errors.Is(err, io.EOF) || errors.Is(err, sdk.ErrConnectionClosed)) {
		return fmt.Errorf("server closed the event stream: %w", scrub(err))
	}
	return scrub(err)
}

// contextError makes sure err, which happened under ctx, wraps ctx's
// error once ctx is done, so callers can tell a timeout by errors.Is.
func contextError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
