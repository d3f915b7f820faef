package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

var errNoMCPTester = &fault.Error{Kind: fault.Unavailable, Code: "mcp_test_unavailable",
	Message: "this server cannot test MCP servers (no MCP client configured)"}

// testMCPServer connects to a stored MCP server and lists its tools (spec
// §7.16). Headers in the body are laid over the stored ones for this test
// only (names compared case-insensitively) and never stored. A server that
// cannot be reached, refuses the credentials or speaks no MCP is a 200 with
// ok false and the reason: the test worked, the server did not.
func (s *Server) testMCPServer(w http.ResponseWriter, r *http.Request) error {
	id, err := docID(r, store.MCPServers.Noun())
	if err != nil {
		return err
	}
	ctx, org := r.Context(), orgID(r)
	d, err := s.db.GetDoc(ctx, store.MCPServers, org, id)
	if err != nil {
		return err
	}
	if s.testMCP == nil {
		return errNoMCPTester
	}
	obj, err := s.readObject(w, r, true)
	if err != nil {
		return err
	}
	fs := newFields(obj)
	var extra map[string]string
	if raw, ok := fs.raw("headers"); ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &extra); err != nil {
			fs.f.Invalidf("headers", "must be an object of header names to string values")
		}
		checkHeaders(&fs.f, extra)
	}
	fs.unknown()
	if err := fs.err(); err != nil {
		return err
	}
	var b mcpBody
	if err := json.Unmarshal(d.Body, &b); err != nil {
		return fmt.Errorf("decode stored MCP server %s: %w", d.ID, err)
	}
	headers := map[string]string{}
	if d.Secret != nil {
		plain, err := s.keys.Open(*d.Secret, secret.Binding{OrgID: org, Table: "mcp_servers", Field: "headers", RowID: d.ID})
		if err != nil {
			return fmt.Errorf("open headers of MCP server %s: %w", d.ID, err)
		}
		if err := json.Unmarshal(plain, &headers); err != nil {
			return fmt.Errorf("decode headers of MCP server %s: %w", d.ID, err)
		}
	}
	for k, v := range extra {
		for old := range headers {
			if strings.EqualFold(old, k) {
				delete(headers, old)
			}
		}
		headers[k] = v
	}
	start := time.Now()
	tools, err := s.testMCP(ctx, b.URL, b.Transport, headers, time.Duration(b.TimeoutSeconds)*time.Second)
	ms := time.Since(start).Milliseconds()
	if err != nil {
		return reply(w, http.StatusOK, map[string]any{"ok": false, "duration_ms": ms, "error": err.Error()})
	}
	if tools == nil {
		tools = []MCPTool{}
	}
	for i := range tools {
		if tools[i].InputSchema == nil {
			tools[i].InputSchema = json.RawMessage(`{"type":"object"}`)
		}
	}
	return reply(w, http.StatusOK, map[string]any{"ok": true, "duration_ms": ms, "tools": tools})
}
