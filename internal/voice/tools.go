package voice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/mcp"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// toolRoute says how one function tool runs: a tool-calls webhook to hook,
// or a tools/call on an MCP session under the server's own tool name.
type toolRoute struct {
	hook   *hookTarget
	mcp    *mcp.Session
	remote string
	// why the tool cannot be sent anywhere, when hook is nil on purpose.
	why string
}

// planTools turns llm_config.tools into the pipeline's tools and routes:
// built-ins, webhook functions (URL: the tool's, else the assistant's
// webhook_url, else the organization's) and MCP tool sets.
func (e *Engine) planTools(ctx context.Context, orgID string, p *plan, tools []docTool, org *hookTarget) error {
	c := &p.cfg
	var a struct {
		Silence bool `json:"autonomous_silence_handling"`
	}
	_ = json.Unmarshal(p.doc, &a)
	c.EndCallTool = a.Silence // spec §12.1: silence handling adds end_call
	for _, t := range tools {
		switch t.Type {
		case "end_call":
			c.EndCallTool = true
		case "transfer_call":
			for _, d := range t.Destinations {
				td := pipeline.TransferDestination{Number: d.Number, Description: d.Description}
				if d.Message != nil {
					td.Message = *d.Message
				}
				c.Transfers = append(c.Transfers, td)
			}
		case "function":
			if t.Function == nil {
				continue
			}
			route := toolRoute{hook: p.hook}
			if p.hook != org && !p.hook.wants(evToolCalls) {
				// The assistant's webhook does not subscribe to tool-calls
				// (webhook_events): it is not sent them.
				route.hook = nil
				route.why = "tool " + t.Function.Name + " has no URL of its own and the assistant's webhook_events do not include tool-calls"
			}
			if t.Server != nil && t.Server.URL != "" {
				route.hook = &hookTarget{url: t.Server.URL}
				if t.Server.Secret != nil {
					route.hook.secret = *t.Server.Secret
				} else if p.hook != nil {
					route.hook.secret = p.hook.secret
				}
			}
			if route.hook == nil && route.why == "" {
				route.hook = org
			}
			pt := pipeline.Tool{Spec: llm.ToolSpec{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters}, Async: t.Async}
			if t.Message != nil {
				pt.Message = *t.Message
			}
			c.Tools = append(c.Tools, pt)
			p.routes[t.Function.Name] = route
		case "mcp":
			if err := e.planMCP(ctx, orgID, p, t); err != nil {
				if t.Required == nil || *t.Required {
					return err
				}
				e.log.Warn("optional MCP server unavailable; its tools are left out", "mcp_server_id", t.MCPServerID, "error", err)
			}
		}
	}
	return nil
}

// mcpDoc is the stored MCP server (see httpapi/mcp.go).
type mcpDoc struct {
	URL            string `json:"url"`
	Transport      string `json:"transport"`
	TimeoutSeconds int    `json:"timeout_seconds"`
}

// planMCP connects to an MCP server and adds its (allowed) tools.
func (e *Engine) planMCP(ctx context.Context, orgID string, p *plan, t docTool) error {
	doc, err := e.db.GetDoc(ctx, store.MCPServers, orgID, t.MCPServerID)
	if err != nil && fault.KindOf(err) != fault.NotFound {
		return storeError{fmt.Errorf("load MCP server %s: %w", t.MCPServerID, err)}
	}
	if err != nil {
		return fmt.Errorf("MCP server %s: %w", t.MCPServerID, err)
	}
	var m mcpDoc
	if err := json.Unmarshal(doc.Body, &m); err != nil {
		return fmt.Errorf("MCP server %s is unreadable: %w", doc.Name, err)
	}
	headers := map[string]string{}
	if doc.Secret != nil {
		pt, err := e.keys.Open(*doc.Secret, secret.Binding{OrgID: orgID, Table: "mcp_servers", Field: "headers", RowID: doc.ID})
		if err != nil {
			return fmt.Errorf("MCP server %s: its headers cannot be decrypted", doc.Name)
		}
		if err := json.Unmarshal(pt, &headers); err != nil {
			return fmt.Errorf("MCP server %s: stored headers unreadable", doc.Name)
		}
	}
	if e.cfg.HTTP == nil {
		return errors.New("MCP is not configured on this server")
	}
	timeout := time.Duration(max(m.TimeoutSeconds, 1)) * time.Second
	sess, err := mcp.Connect(ctx, mcp.Config{URL: m.URL, Transport: mcp.Transport(m.Transport), Headers: headers, Timeout: timeout, HTTPClient: e.cfg.HTTP, ClientVersion: "parley", Logger: e.log.With("mcp_server", doc.Name)})
	if err != nil {
		return fmt.Errorf("MCP server %s (%s) is unreachable: %w", doc.Name, m.URL, err)
	}
	tools, err := sess.ListTools(ctx)
	if err != nil {
		sess.Close()
		return fmt.Errorf("MCP server %s: list tools: %w", doc.Name, err)
	}
	p.sessions = append(p.sessions, sess)
	for _, tool := range tools {
		if t.AllowedTools != nil && !slices.Contains(t.AllowedTools, tool.Name) {
			continue
		}
		if _, taken := p.routes[tool.Name]; taken {
			e.log.Warn("MCP tool name already used; skipped", "tool", tool.Name, "mcp_server", doc.Name)
			continue
		}
		desc := ""
		if tool.Description != nil {
			desc = *tool.Description
		}
		params := tool.InputSchema
		if len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		p.cfg.Tools = append(p.cfg.Tools, pipeline.Tool{Spec: llm.ToolSpec{Name: tool.Name, Description: desc, Parameters: params}})
		p.routes[tool.Name] = toolRoute{mcp: sess, remote: tool.Name}
	}
	return nil
}

// toolRunner runs a call's tool calls (pipeline.ToolRunner).
type toolRunner struct {
	e      *Engine
	hooks  *callHooks
	routes map[string]toolRoute
}

// Run answers one tool call with what the model should read.
func (r *toolRunner) Run(ctx context.Context, tc llm.ToolCall) string {
	route, ok := r.routes[tc.Name]
	if !ok {
		return toolError("tool " + tc.Name + " is not available")
	}
	if route.mcp != nil {
		res, err := route.mcp.CallTool(ctx, route.remote, json.RawMessage(tc.Arguments))
		if err != nil {
			return toolError("tool " + tc.Name + " failed: " + err.Error())
		}
		if res.IsError {
			return toolError(res.Text)
		}
		if len(res.Structured) > 0 {
			return string(res.Structured)
		}
		return res.Text
	}
	if route.why != "" && (route.hook == nil || route.hook.url == "") {
		return toolError(route.why)
	}
	if route.hook == nil || route.hook.url == "" {
		return toolError("tool " + tc.Name + " has no URL: set the tool's url, the assistant's webhook_url or the organization's webhook")
	}
	args := json.RawMessage(tc.Arguments)
	if !json.Valid(args) || len(strings.TrimSpace(tc.Arguments)) == 0 {
		args = json.RawMessage(`{}`)
	}
	id := tc.ID
	body := r.hooks.payload(evToolCalls, call.StatusInProgress, map[string]any{
		"tool_call_list": []any{map[string]any{"id": id, "type": "function", "function": map[string]any{"name": tc.Name, "arguments": args}}},
	})
	res, err := r.e.post(ctx, r.hooks.orgID, &r.hooks.callID, route.hook, evToolCalls, body)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return toolError("tool " + tc.Name + " timed out")
		}
		return toolError("tool " + tc.Name + " failed: " + err.Error())
	}
	return toolResult(res.Body, id)
}

// toolResult reads a tool-calls response in any documented shape (spec
// §9.5): {"results":[{"tool_call_id","result"}]}, {"result": …},
// {"error": "…"} or any other JSON value used as it is.
func toolResult(body []byte, id string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		if json.Valid(body) {
			return string(body)
		}
		return toolError("the tool's webhook answered with something that is not JSON")
	}
	if raw, ok := m["results"]; ok {
		var results []struct {
			ID     string          `json:"tool_call_id"`
			Result json.RawMessage `json:"result"`
			Error  *string         `json:"error"`
		}
		if json.Unmarshal(raw, &results) == nil {
			for _, r := range results {
				if r.ID == id || len(results) == 1 {
					if r.Error != nil {
						return toolError(*r.Error)
					}
					return string(r.Result)
				}
			}
		}
	}
	if raw, ok := m["result"]; ok {
		return string(raw)
	}
	if raw, ok := m["error"]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return toolError(s)
		}
		return `{"error":` + string(raw) + `}`
	}
	return string(body)
}

func toolError(msg string) string {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return string(b)
}
