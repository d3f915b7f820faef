package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/mcp/mcpfake"
	"github.com/parley-voice/parley/internal/netguard"
)

// TestCloseReapsGoroutines checks that a session leaves no goroutine
// behind, the SDK's included: after calls, one of them timed out, and
// after a Close that interrupts a call in flight.
func TestCloseReapsGoroutines(t *testing.T) {
	forEach(t, func(t *testing.T, v variant) {
		release := make(chan struct{})
		block := func(ctx context.Context, _ map[string]any) (string, bool) {
			select {
			case <-ctx.Done():
			case <-release:
			}
			return "late", false
		}
		fake := mcpfake.New(mcpfake.Options{StreamResponses: v.stream, Sessions: v.transport == StreamableHTTP,
			Tools: []mcpfake.Tool{{Name: "ping", Handler: text("pong")}, {Name: "block", Handler: block}}})
		srv := httptest.NewServer(fake)
		defer srv.Close()
		defer fake.Close()
		defer close(release)
		ignore := goleak.IgnoreCurrent()
		path := "/mcp"
		if v.transport == SSE {
			path = "/sse"
		}
		cfg := Config{URL: srv.URL + path, Transport: v.transport, HTTPClient: srv.Client(), Timeout: 100 * time.Millisecond}
		s, err := Connect(t.Context(), cfg)
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		if res, err := s.CallTool(t.Context(), "ping", nil); err != nil || res.Text != "pong" {
			t.Fatalf("CallTool = %+v, %v", res, err)
		}
		if _, err := s.CallTool(t.Context(), "block", nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CallTool block = %v, want a timeout", err)
		}
		pending := make(chan error, 1)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		go func() {
			_, err := s.CallTool(ctx, "block", nil)
			pending <- err
		}()
		for len(fake.Calls()) < 2 {
			time.Sleep(5 * time.Millisecond)
		}
		began := time.Now()
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if took := time.Since(began); took > time.Second {
			t.Errorf("Close with a call in flight took %v", took)
		}
		select {
		case err := <-pending:
			if err == nil {
				t.Error("call in flight at Close succeeded")
			}
		case <-time.After(2 * time.Second):
			t.Fatal("call in flight at Close still waiting 2s later")
		}
		srv.Client().CloseIdleConnections()
		if err := goleak.Find(ignore); err != nil {
			t.Error(err)
		}
	})
}

// TestGuardedClient checks that the caller's transport, netguard's in
// Parley, still decides where the SDK may connect.
func TestGuardedClient(t *testing.T) {
	forEach(t, func(t *testing.T, v variant) {
		fake, cfg := start(t, v, mcpfake.Options{}, nil)
		g := netguard.New(netguard.Config{}) // loopback is refused
		cfg.HTTPClient = g.Client(0)
		defer cfg.HTTPClient.CloseIdleConnections()
		_, err := Connect(t.Context(), cfg)
		if !errors.Is(err, netguard.ErrBlocked) {
			t.Fatalf("Connect to loopback through the guard = %v, want netguard.ErrBlocked", err)
		}
		if strings.Contains(err.Error(), cfg.URL) {
			t.Errorf("error %q names the URL", err)
		}
		if got := fake.Methods(); len(got) != 0 {
			t.Errorf("the server received %q", got)
		}
	})
}

// TestRedirectToOtherOrigin checks that a redirect cannot send the
// client's messages and headers to another origin.
func TestRedirectToOtherOrigin(t *testing.T) {
	var hits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/mcp", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	for _, tr := range []Transport{StreamableHTTP, SSE} {
		_, err := Connect(t.Context(), Config{URL: redirect.URL + "/mcp", Transport: tr, HTTPClient: redirect.Client(),
			Headers: map[string]string{"Authorization": "Bearer s3cret"}})
		if err == nil || !strings.Contains(err.Error(), "refusing to send to origin") {
			t.Errorf("%s: Connect = %v, want an origin refusal", tr, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the other origin was sent %d requests", n)
	}
}

// TestConfiguredHeadersDoNotOverrideProtocol checks that a configured
// header does not replace one the protocol sets.
func TestConfiguredHeadersDoNotOverrideProtocol(t *testing.T) {
	var rec recorder
	fake, cfg := start(t, variants()[0], mcpfake.Options{Sessions: true, Tools: []mcpfake.Tool{{Name: "ping", Handler: text("pong")}}}, rec.wrap)
	cfg.Headers = map[string]string{"Mcp-Protocol-Version": "1999-01-01", "X-Tenant": "acme"}
	if _, err := connect(t, cfg).CallTool(t.Context(), "ping", nil); err != nil {
		t.Fatalf("CallTool: %v", err)
	}
	h := fake.Calls()[0].Headers
	if got := h.Get("Mcp-Protocol-Version"); got != "2025-06-18" {
		t.Errorf("Mcp-Protocol-Version = %q, want the negotiated 2025-06-18", got)
	}
	if got := h.Get("X-Tenant"); got != "acme" {
		t.Errorf("X-Tenant = %q, want acme", got)
	}
}

func TestCapped(t *testing.T) {
	for _, tt := range []struct {
		size    int
		wantErr bool
	}{{maxMessageSize, false}, {maxMessageSize + 1, true}} {
		p := &wireProbe{}
		c := &capped{body: io.NopCloser(strings.NewReader(strings.Repeat("x", tt.size))), left: maxMessageSize, probe: p}
		data, err := io.ReadAll(c)
		if tt.wantErr != (err != nil) || tt.wantErr != (p.seen() != nil) || (!tt.wantErr && len(data) != tt.size) {
			t.Errorf("%d bytes: read %d, %v (probe %v)", tt.size, len(data), err, p.seen())
		}
	}
}

func TestScrub(t *testing.T) {
	err := errors.New(`calling "initialize": sending "initialize": Post "http://127.0.0.1:1/mcp?token=s3cret": dial tcp 127.0.0.1:1: connect: connection refused`)
	got := scrub(err)
	if want := `calling "initialize": sending "initialize": Post: dial tcp 127.0.0.1:1: connect: connection refused`; got.Error() != want {
		t.Errorf("scrub = %q, want %q", got, want)
	}
	if !errors.Is(got, err) {
		t.Error("scrubbed error does not unwrap to the original")
	}
}

// TestOversizedReplyEndsSession checks what ARCHITECTURE.md says of a JSON
// body over the cap: the request fails with the size, and the session is
// over, so the next request fails at once without reaching the server.
func TestOversizedReplyEndsSession(t *testing.T) {
	var calls atomic.Int32
	cfg := scripted(t, initOK, func(w http.ResponseWriter, id json.RawMessage) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"%s"}]}}`, id, strings.Repeat("x", maxMessageSize))
	})
	s := connect(t, cfg)
	if _, err := s.CallTool(t.Context(), "x", nil); err == nil || !strings.HasSuffix(err.Error(), fmt.Sprintf("response larger than %d bytes", maxMessageSize)) {
		t.Fatalf("CallTool = %v, want the size error", err)
	}
	if _, err := s.CallTool(t.Context(), "x", nil); err == nil || !strings.Contains(err.Error(), "connection closed") {
		t.Fatalf("CallTool after the oversized reply = %v, want the session closed", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the server got %d tools/call requests, want 1", n)
	}
}
