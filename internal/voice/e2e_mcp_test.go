package voice

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/mcp/mcpfake"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// ---------------------------------------------------------------------------
// MCP tools in a live call.

// TestE2EMCPTools: the assistant uses three MCP servers. The first
// (Streamable HTTP, sessions, a bearer header stored sealed) is filtered
// by allowed_tools; the second (the legacy SSE transport) offers all its
// tools; the third is down but optional. The model is offered exactly the
// allowed tools, calls two of them in one turn, and its next request
// carries both servers' answers.
func TestE2EMCPTools(t *testing.T) {
	records := mcpfake.New(mcpfake.Options{
		Sessions:      true,
		RequireHeader: [2]string{"Authorization", "Bearer mcp-records-token"},
		Tools: []mcpfake.Tool{
			{Name: "lookup_patient", Description: "Find a patient's next appointment by name.",
				InputSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`),
				Handler: func(_ context.Context, args map[string]any) (string, bool) {
					if args["name"] != "Ada" {
						return fmt.Sprintf("no patient called %v", args["name"]), true
					}
					return "Ada Lovelace: next appointment Tuesday 10:00 with Dr. Byron", false
				}},
			{Name: "cancel_all_appointments", Description: "Cancel every appointment.",
				Handler: func(context.Context, map[string]any) (string, bool) { return "cancelled everything", false }},
		},
	})
	insurance := mcpfake.New(mcpfake.Options{Tools: []mcpfake.Tool{
		{Name: "check_insurance", Description: "Check whether a patient's insurance covers a visit.",
			Handler: func(context.Context, map[string]any) (string, bool) { return "covered in full", false }},
	}})
	recordsURL := serveMCP(t, records) + "/mcp"
	insuranceURL := serveMCP(t, insurance) + "/sse"

	respond := func(req openaifake.Request) openaifake.Reply {
		last := req.Messages[len(req.Messages)-1]
		switch last.Role {
		case llm.User:
			return openaifake.Reply{ToolCalls: []llm.ToolCall{
				{Name: "lookup_patient", Arguments: `{"name":"Ada"}`},
				{Name: "check_insurance", Arguments: `{}`},
			}}
		case llm.Tool:
			return openaifake.Reply{Text: "Your appointment is on Tuesday at ten, and it is covered."}
		}
		return openaifake.Reply{Text: "Hello."}
	}
	e := newE2E(t, e2eOptions{transcripts: []string{"When is my appointment? My name is Ada."}, chat: openaifake.Config{Respond: respond}})
	recordsID := e.mcpServer(t, "Clinic records", recordsURL, "streamable_http", map[string]string{"Authorization": "Bearer mcp-records-token"})
	insuranceID := e.mcpServer(t, "Insurance", insuranceURL, "sse", nil)
	offlineID := e.mcpServer(t, "Offline CRM", deadURL(t), "streamable_http", nil)
	aid, _ := e.assistant(t, map[string]any{"name": "Clinic with MCP", "llm_config": llmConfig(
		map[string]any{"type": "mcp", "mcp_server_id": recordsID, "allowed_tools": []string{"lookup_patient"}},
		map[string]any{"type": "mcp", "mcp_server_id": insuranceID},
		map[string]any{"type": "mcp", "mcp_server_id": offlineID, "required": false},
	)})
	num := e.number(t, "+31201230009", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	id := e.waitLive(t, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	c.speak(800 * time.Millisecond)

	e.waitSaid(t, id, "Your appointment is on Tuesday at ten, and it is covered.", 15*time.Second)
	c.hangup(t)
	row := e.waitFinal(t, id, 10*time.Second)
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndUserHangup) {
		t.Fatalf("call ended as %s / %s (error %q)", row.Status, deref(row.EndReason), deref(row.Error))
	}

	// Offered: the allowed records tool and the insurance tool (besides
	// the phone's built-in send_dtmf); not the filtered one, nothing from
	// the server that is down.
	reqs := e.oa.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model requests, want 2", len(reqs))
	}
	if got := slices.Sorted(slices.Values(reqs[0].Tools)); !slices.Equal(got, []string{"check_insurance", "lookup_patient", "send_dtmf"}) {
		t.Fatalf("tools offered to the model %v, want check_insurance, lookup_patient and send_dtmf", got)
	}
	// Each server got its call, with the arguments and (records) the
	// stored header.
	rc := records.Calls()
	if len(rc) != 1 || rc[0].Tool != "lookup_patient" || rc[0].Args["name"] != "Ada" || rc[0].Headers.Get("Authorization") != "Bearer mcp-records-token" {
		t.Fatalf("records server calls %+v", rc)
	}
	if ic := insurance.Calls(); len(ic) != 1 || ic[0].Tool != "check_insurance" {
		t.Fatalf("insurance server calls %+v", ic)
	}
	// Both answers reached the model, each under its own tool call id.
	results := map[string]string{}
	ids := map[string]string{}
	for _, m := range reqs[1].Messages {
		if m.Role == llm.Assistant {
			for _, tc := range m.ToolCalls {
				ids[tc.ID] = tc.Name
			}
		}
		if m.Role == llm.Tool {
			results[ids[m.ToolCallID]] = m.Content
		}
	}
	if !strings.Contains(results["lookup_patient"], "Tuesday 10:00") || !strings.Contains(results["check_insurance"], "covered in full") {
		t.Fatalf("tool results in the second model request %v", results)
	}
}

// TestE2EMCPRequiredUnreachable: an MCP server an assistant requires
// (required defaults to true) is down when a call comes in. The call is
// refused with 480 rather than answered by an assistant without its
// tools, and the call row says which server failed.
func TestE2EMCPRequiredUnreachable(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	offlineID := e.mcpServer(t, "Offline CRM", deadURL(t), "streamable_http", nil)
	aid, _ := e.assistant(t, map[string]any{"name": "Needs CRM", "first_message": "Hello!", "llm_config": llmConfig(
		map[string]any{"type": "mcp", "mcp_server_id": offlineID},
	)})
	num := e.number(t, "+31201230010", &aid, nil)
	_, res := inviteRaw(t, e.srv, num.PhoneNumber)
	if res.StatusCode != 480 {
		t.Fatalf("INVITE answered %d %s, want 480", res.StatusCode, res.Reason)
	}
	id := e.onlyCall(t)
	row := e.waitFinal(t, id, 5*time.Second)
	if row.Status != call.StatusRejected || !strings.Contains(deref(row.Error), "Offline CRM") || !strings.Contains(deref(row.Error), "unreachable") {
		t.Fatalf("call recorded as %s with error %q, want rejected naming the MCP server", row.Status, deref(row.Error))
	}
	if len(e.oa.Requests()) != 0 || len(e.el.Texts()) != 0 {
		t.Fatal("the model or TTS was used for a call that was refused")
	}
}

// mcpServer stores an MCP server the way POST /mcp-servers does (headers
// sealed to the row).
func (e *e2e) mcpServer(t *testing.T, name, url, transport string, headers map[string]string) string {
	t.Helper()
	names := []string{}
	for k := range headers {
		names = append(names, k)
	}
	slices.Sort(names)
	body, _ := json.Marshal(map[string]any{"name": name, "url": url, "transport": transport, "header_names": names, "timeout_seconds": 10})
	d := &store.Doc{Kind: store.MCPServers, ID: store.NewID(), OrgID: e.org.ID, Name: name, Active: true, Body: body}
	if len(headers) > 0 {
		plain, _ := json.Marshal(headers)
		sealed := e.keys.Seal(plain, secret.Binding{OrgID: e.org.ID, Table: "mcp_servers", Field: "headers", RowID: d.ID})
		d.Secret = &sealed
	}
	if err := e.db.CreateDoc(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// serveMCP serves an MCP fake on loopback and returns its base URL.
func serveMCP(t *testing.T, f *mcpfake.Server) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(func() { f.Close(); srv.CloseClientConnections(); srv.Close() })
	return srv.URL
}

// deadURL is an MCP URL on loopback where nothing listens any more.
func deadURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL + "/mcp"
	srv.Close()
	return u
}
