package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/parley-voice/parley/internal/mcp/mcpfake"
)

// benchServer serves the fake for v over loopback with ten tools, one of
// them echoing its argument.
func benchServer(b *testing.B, v variant) Config {
	b.Helper()
	tools := []mcpfake.Tool{{Name: "lookup_order", Handler: func(_ context.Context, args map[string]any) (string, bool) {
		return fmt.Sprintf("order %v has shipped", args["id"]), false
	}}}
	for i := range 9 {
		tools = append(tools, mcpfake.Tool{Name: fmt.Sprintf("tool_%d", i), Description: "A tool.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}}}`)})
	}
	fake := mcpfake.New(mcpfake.Options{Tools: tools, StreamResponses: v.stream, Sessions: v.transport == StreamableHTTP})
	srv := httptest.NewServer(fake)
	b.Cleanup(func() {
		fake.Close()
		srv.Close()
	})
	path := "/mcp"
	if v.transport == SSE {
		path = "/sse"
	}
	return Config{URL: srv.URL + path, Transport: v.transport, HTTPClient: srv.Client(), ClientVersion: "bench"}
}

// BenchmarkCallTool measures one tools/call round trip on an open session,
// the part of an MCP tool that lies on a voice turn's critical path.
func BenchmarkCallTool(b *testing.B) {
	for _, v := range variants() {
		b.Run(v.name, func(b *testing.B) {
			cfg := benchServer(b, v)
			s, err := Connect(b.Context(), cfg)
			if err != nil {
				b.Fatalf("Connect: %v", err)
			}
			defer s.Close()
			args := json.RawMessage(`{"id":"A42"}`)
			b.ReportAllocs()
			for b.Loop() {
				res, err := s.CallTool(b.Context(), "lookup_order", args)
				if err != nil || res.Text != "order A42 has shipped" {
					b.Fatalf("CallTool = %+v, %v", res, err)
				}
			}
		})
	}
}

// BenchmarkConnectListTools measures what a call's setup does per MCP
// server: connect, list the tools, close.
func BenchmarkConnectListTools(b *testing.B) {
	for _, v := range variants() {
		b.Run(v.name, func(b *testing.B) {
			cfg := benchServer(b, v)
			b.ReportAllocs()
			for b.Loop() {
				s, err := Connect(b.Context(), cfg)
				if err != nil {
					b.Fatalf("Connect: %v", err)
				}
				tools, err := s.ListTools(b.Context())
				if err != nil || len(tools) != 10 {
					b.Fatalf("ListTools = %d tools, %v", len(tools), err)
				}
				if err := s.Close(); err != nil {
					b.Fatalf("Close: %v", err)
				}
			}
		})
	}
}
