package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// sdkServer is an MCP server built with the go-sdk's own server side, as
// a real implementation to check the client against.
type sdkServer struct {
	mu      sync.Mutex
	headers []string // the X-Tenant header of every request
}

// newSDKServer returns a server offering five tools (so that a page size
// of two makes three pages): lookup_order, fail, report, tool_3, tool_4.
func (s *sdkServer) newSDKServer() *sdk.Server {
	srv := sdk.NewServer(&sdk.Implementation{Name: "sdk-server", Version: "1.0.0"}, &sdk.ServerOptions{PageSize: 2})
	object := map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}}}
	srv.AddTool(&sdk.Tool{Name: "lookup_order", Description: "Finds an order.", InputSchema: object},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			var args struct{ ID string }
			if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
				return nil, err
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "order " + args.ID + " has shipped"}}}, nil
		})
	srv.AddTool(&sdk.Tool{Name: "fail", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "card declined"}}}, nil
		})
	srv.AddTool(&sdk.Tool{Name: "report", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{
				Content: []sdk.Content{
					&sdk.TextContent{Text: "three orders"},
					&sdk.ImageContent{Data: []byte{1, 2}, MIMEType: "image/png"},
					&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "file:///a.txt", MIMEType: "text/plain", Text: "inline"}},
				},
				StructuredContent: map[string]any{"total": 3},
			}, nil
		})
	for i := 3; i < 5; i++ {
		srv.AddTool(&sdk.Tool{Name: fmt.Sprint("tool_", i), InputSchema: map[string]any{"type": "object"}},
			func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				return &sdk.CallToolResult{}, nil
			})
	}
	return srv
}

// record notes the X-Tenant header of each request.
func (s *sdkServer) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.headers = append(s.headers, r.Header.Get("X-Tenant"))
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func TestSDKServer(t *testing.T) {
	for _, tt := range []struct {
		name      string
		transport Transport
		handler   func(get func(*http.Request) *sdk.Server) http.Handler
	}{
		{"streamable", StreamableHTTP, func(get func(*http.Request) *sdk.Server) http.Handler {
			return sdk.NewStreamableHTTPHandler(get, nil)
		}},
		{"streamable-json", StreamableHTTP, func(get func(*http.Request) *sdk.Server) http.Handler {
			return sdk.NewStreamableHTTPHandler(get, &sdk.StreamableHTTPOptions{JSONResponse: true})
		}},
		{"streamable-stateless", StreamableHTTP, func(get func(*http.Request) *sdk.Server) http.Handler {
			return sdk.NewStreamableHTTPHandler(get, &sdk.StreamableHTTPOptions{Stateless: true})
		}},
		{"sse", SSE, func(get func(*http.Request) *sdk.Server) http.Handler {
			return sdk.NewSSEHandler(get, nil)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &sdkServer{}
			server := s.newSDKServer()
			srv := httptest.NewServer(s.record(tt.handler(func(*http.Request) *sdk.Server { return server })))
			t.Cleanup(srv.Close) // after the session's Close, which connect registers later
			cfg := Config{URL: srv.URL + "/mcp", Transport: tt.transport, HTTPClient: srv.Client(), ClientVersion: "test",
				Headers: map[string]string{"X-Tenant": "acme"}}
			sess := connect(t, cfg)
			if got := sess.ServerName(); got != "sdk-server" {
				t.Errorf("ServerName = %q", got)
			}

			tools, names := listTools(t, sess)
			slices.Sort(names)
			if want := []string{"fail", "lookup_order", "report", "tool_3", "tool_4"}; !slices.Equal(names, want) {
				t.Fatalf("tools = %q, want %q", names, want)
			}
			for _, tool := range tools {
				if tool.Name == "lookup_order" {
					if tool.Description == nil || *tool.Description != "Finds an order." {
						t.Errorf("description = %v", tool.Description)
					}
					assertJSON(t, "schema", tool.InputSchema, `{"type":"object","properties":{"id":{"type":"string"}}}`)
				}
			}

			res, err := sess.CallTool(t.Context(), "lookup_order", json.RawMessage(`{"id":"A42"}`))
			if err != nil || res.Text != "order A42 has shipped" || res.IsError {
				t.Errorf("CallTool lookup_order = %+v, %v", res, err)
			}
			res, err = sess.CallTool(t.Context(), "fail", nil)
			if err != nil || !res.IsError || res.Text != "card declined" {
				t.Errorf("CallTool fail = %+v, %v; want IsError card declined", res, err)
			}
			res, err = sess.CallTool(t.Context(), "report", nil)
			if err != nil || res.Text != "three orders\n[image image/png]\ninline" {
				t.Errorf("CallTool report = %+v, %v", res, err)
			} else {
				assertJSON(t, "structured", res.Structured, `{"total":3}`)
			}
			_, err = sess.CallTool(t.Context(), "nope", nil)
			var rpcErr *RPCError
			if !errors.As(err, &rpcErr) || rpcErr.Code == 0 {
				t.Errorf("CallTool nope = %v, want an RPCError", err)
			}

			s.mu.Lock()
			defer s.mu.Unlock()
			for i, h := range s.headers {
				if h != "acme" {
					t.Errorf("request %d carried X-Tenant %q", i, h)
				}
			}
		})
	}
}
