package mcpfake

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// start serves a fake built from opts.
func start(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	fake := New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(func() {
		fake.Close()
		srv.Close()
	})
	return fake, srv
}

// send sends body with method to srv's path, with the header pairs in hdr.
func send(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// reply is a decoded JSON-RPC response.
type reply struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

func decode(t *testing.T, r io.Reader) reply {
	t.Helper()
	var rep reply
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		t.Fatalf("decode reply: %v", err)
	}
	return rep
}

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}`

func TestStreamableSessions(t *testing.T) {
	fake, srv := start(t, Options{Sessions: true, Tools: []Tool{{Name: "ping"}}})
	resp := send(t, srv, http.MethodPost, "/mcp", initialize)
	id := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("initialize: %s, session %q", resp.Status, id)
	}
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ping"}}`
	for session, status := range map[string]int{"": 400, "bogus": 404, id: 200} {
		if got := send(t, srv, http.MethodPost, "/mcp", call, "Mcp-Session-Id", session).StatusCode; got != status {
			t.Errorf("tools/call with session %q: status %d, want %d", session, got, status)
		}
	}
	if got := send(t, srv, http.MethodPost, "/mcp", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "Mcp-Session-Id", id).StatusCode; got != http.StatusAccepted {
		t.Errorf("notification: status %d, want 202", got)
	}
	for _, status := range []int{200, 404} {
		if got := send(t, srv, http.MethodDelete, "/mcp", "", "Mcp-Session-Id", id).StatusCode; got != status {
			t.Errorf("DELETE: status %d, want %d", got, status)
		}
	}
	if got, want := fake.Methods(), []string{"initialize", "tools/call", "notifications/initialized"}; !slices.Equal(got, want) {
		t.Errorf("methods = %q, want %q", got, want)
	}
}

func TestStreamableErrors(t *testing.T) {
	_, srv := start(t, Options{RequireHeader: [2]string{"X-Key", "k"}})
	if got := send(t, srv, http.MethodPost, "/mcp", initialize).StatusCode; got != http.StatusUnauthorized {
		t.Errorf("without X-Key: status %d, want 401", got)
	}
	for body, code := range map[string]int{
		`{"jsonrpc":"2.0","id":3,"method":"resources/list"}`:                            -32601,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x"}}`:          -32602,
		`{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"cursor":"nonsense"}}`: -32602,
	} {
		rep := decode(t, send(t, srv, http.MethodPost, "/mcp", body, "X-Key", "k").Body)
		if rep.Error == nil || rep.Error.Code != code || rep.ID != 3 {
			t.Errorf("%s: reply %+v, want error %d", body, rep, code)
		}
	}
	if got := send(t, srv, http.MethodPost, "/mcp", "{", "X-Key", "k").StatusCode; got != http.StatusBadRequest {
		t.Errorf("bad JSON: status %d, want 400", got)
	}
	if got := send(t, srv, http.MethodDelete, "/mcp", "", "X-Key", "k").StatusCode; got != http.StatusMethodNotAllowed {
		t.Errorf("DELETE without Sessions: status %d, want 405", got)
	}
}

func TestStreamResponses(t *testing.T) {
	_, srv := start(t, Options{StreamResponses: true})
	resp := send(t, srv, http.MethodPost, "/mcp", initialize)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	body, _ := io.ReadAll(resp.Body)
	events := strings.Split(strings.TrimSpace(string(body)), "\n\n")
	if len(events) != 2 || !strings.Contains(events[0], `"method":"notifications/message"`) || !strings.Contains(events[1], `"id":1`) {
		t.Errorf("stream = %q, want a notification then the response", body)
	}
}

// sseLines reads an event stream's lines into a channel until it ends or
// the test does.
func sseLines(t *testing.T, body io.Reader) <-chan string {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-t.Context().Done():
				return
			}
		}
	}()
	return lines
}

// dataOf returns the data of the next event of type typ.
func dataOf(t *testing.T, lines <-chan string, typ string) string {
	t.Helper()
	var gotType string
	for line := range lines {
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			gotType = v
		} else if v, ok := strings.CutPrefix(line, "data: "); ok && gotType == typ {
			return v
		}
	}
	t.Fatalf("stream ended before a %s event", typ)
	return ""
}

func TestLegacy(t *testing.T) {
	tools := []Tool{{Name: "add", Handler: func(_ context.Context, args map[string]any) (string, bool) {
		return "sum", args["a"] == nil
	}}}
	fake, srv := start(t, Options{Tools: tools, PageSize: 1})
	stream := send(t, srv, http.MethodGet, "/sse", "")
	lines := sseLines(t, stream.Body)
	endpoint := dataOf(t, lines, "endpoint")
	if !strings.HasPrefix(endpoint, "/messages?sessionId=") {
		t.Fatalf("endpoint %q", endpoint)
	}
	if got := send(t, srv, http.MethodPost, "/messages?sessionId=bogus", initialize).StatusCode; got != http.StatusNotFound {
		t.Errorf("POST for an unknown session: status %d, want 404", got)
	}
	resp := send(t, srv, http.MethodPost, endpoint, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":1}}}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s", resp.Status)
	}
	rep := decode(t, strings.NewReader(dataOf(t, lines, "message")))
	if rep.ID != 7 || string(rep.Result) != `{"content":[{"text":"sum","type":"text"}],"isError":false}` {
		t.Errorf("reply %d %s", rep.ID, rep.Result)
	}
	if calls := fake.Calls(); len(calls) != 1 || calls[0].Tool != "add" || calls[0].Args["a"] != 1.0 {
		t.Errorf("calls = %+v", calls)
	}
	fake.Close()
	timeout := time.After(time.Second)
	for {
		select {
		case _, open := <-lines:
			if !open {
				return
			}
		case <-timeout:
			t.Fatal("Close did not end the event stream")
		}
	}
}
