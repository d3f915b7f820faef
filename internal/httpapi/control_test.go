package httpapi_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/store"
)

// clock is a settable time source for the rate limiters.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// liveCall stores a call of org with the given status and returns its control path.
func (e *env) liveCall(t *testing.T, org, id string, st call.Status) string {
	t.Helper()
	if err := e.db.CreateCall(context.Background(), &store.Call{ID: id, OrgID: org, Status: st, Direction: call.Outbound}); err != nil {
		t.Fatal(err)
	}
	return "/api/v1/calls/" + url.PathEscape(id) + "/control"
}

func (f *fakeCalls) commands() []sentCommand {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentCommand(nil), f.cmds...)
}

func TestCallControlCommands(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		id := "call-_+31623731537_XqaQxRRgAzYc"
		path := e.liveCall(t, e.orgA, id, call.StatusInProgress)
		ended := e.liveCall(t, e.orgA, "call-outbound-ended", call.StatusEnded)
		foreign := e.liveCall(t, e.orgB, "call-outbound-b", call.StatusInProgress)

		// Telephony off: a known call answers 503, an unknown one 404.
		e.do("POST", path, e.keyA, map[string]any{"type": "end-call"}).wantError(t, 503, "telephony_disabled", "PARLEY_SIP_ADDR=off")
		e.do("POST", "/api/v1/calls/nope/control", e.keyA, map[string]any{"type": "end-call"}).wantError(t, 404, "not_found", "")

		// Each command in a new minute, clear of the per-call rate limit.
		clk := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
		eng := &fakeCalls{}
		e.with(func(d *httpapi.Deps) { d.Calls, d.Now = eng, clk.Now })
		do := func(path, key string, body any) resp {
			clk.Add(time.Minute)
			return e.do("POST", path, key, body)
		}
		long := strings.Repeat("é", 4000)
		for _, c := range []struct {
			body any
			want call.Command
		}{
			{map[string]any{"type": "inject-context", "content": "The customer is a VIP.", "trigger_response": true},
				call.Command{Type: call.CmdInjectContext, Content: "The customer is a VIP.", TriggerResponse: true}},
			{map[string]any{"type": "inject-context", "content": long},
				call.Command{Type: call.CmdInjectContext, Content: long}},
			{map[string]any{"type": "say", "content": "One moment please.", "end_after": true},
				call.Command{Type: call.CmdSay, Content: "One moment please.", EndAfter: true}},
			{map[string]any{"type": "say", "content": "Hi", "end_after": false},
				call.Command{Type: call.CmdSay, Content: "Hi"}},
			{map[string]any{"type": "end-call"}, call.Command{Type: call.CmdEndCall}},
			{map[string]any{"type": "end-call", "message": "Goodbye!"}, call.Command{Type: call.CmdEndCall, Message: "Goodbye!"}},
			{map[string]any{"type": "end-call", "message": nil}, call.Command{Type: call.CmdEndCall}},
			{map[string]any{"type": "transfer", "destination": "+31 20 123-4567", "message": "Transferring you now."},
				call.Command{Type: call.CmdTransfer, Destination: "+31201234567", Message: "Transferring you now."}},
			{map[string]any{"type": "transfer", "destination": "sip:desk@pbx.example.com;transport=tls"},
				call.Command{Type: call.CmdTransfer, Destination: "sip:desk@pbx.example.com;transport=tls"}},
			{map[string]any{"type": "transfer", "destination": "sips:[2001:db8::1]:5061"},
				call.Command{Type: call.CmdTransfer, Destination: "sips:[2001:db8::1]:5061"}},
		} {
			r := do(path, e.keyA, c.body)
			if r.Status != 200 || r.Body["success"] != true || r.Body["message"] != "Command sent successfully" {
				t.Fatalf("%v = %d %s", c.body, r.Status, r.Raw)
			}
			got := eng.commands()
			if last := got[len(got)-1]; last.org != e.orgA || last.callID != id || last.cmd != c.want {
				t.Errorf("%v reached the engine as %+v, want %+v", c.body, last, c.want)
			}
		}
		sent := len(eng.commands())

		for _, c := range []struct {
			body        any
			code, field string
		}{
			{map[string]any{"type": "inject-context"}, "missing_field", "content"},
			{map[string]any{"type": "say", "content": "  "}, "invalid_field", "content"},
			{map[string]any{"type": "say", "content": 7}, "invalid_field", "content"},
			{map[string]any{"type": "say", "content": long + "x"}, "invalid_field", "at most 4000 characters"},
			{map[string]any{"type": "end-call", "message": long + "x"}, "invalid_field", "message"},
			{map[string]any{"type": "inject-context", "content": "x", "trigger_response": "yes"}, "invalid_field", "trigger_response"},
			{map[string]any{"content": "x"}, "missing_field", "inject-context, say, end-call, transfer"},
			{map[string]any{"type": "dance"}, "invalid_field", "inject-context, say, end-call, transfer"},
			{map[string]any{"type": 3}, "invalid_field", "type"},
			{map[string]any{"type": "transfer"}, "missing_field", "destination"},
			{map[string]any{"type": "transfer", "destination": "+12"}, "invalid_field", "destination"},
			{map[string]any{"type": "transfer", "destination": "http://x"}, "invalid_field", "destination"},
			{map[string]any{"type": "transfer", "destination": "sip:"}, "invalid_field", "destination"},
			{map[string]any{"type": "transfer", "destination": "sip:@pbx.example.com"}, "invalid_field", "destination"},
			{map[string]any{"type": "transfer", "destination": "sip:desk@bad_host!"}, "invalid_field", "destination"},
			{map[string]any{"type": "say", "content": "x", "message": "y"}, "unknown_field", "message"},
			{map[string]any{"type": "end-call", "content": "x"}, "unknown_field", "content"},
			{`[1]`, "invalid_json", ""},
		} {
			do(path, e.keyA, c.body).wantError(t, 400, c.code, c.field)
		}
		if n := len(eng.commands()); n != sent {
			t.Fatalf("invalid commands reached the engine: %d", n-sent)
		}

		// Call state and ownership.
		do(ended, e.keyA, map[string]any{"type": "end-call"}).wantError(t, 400, "call_not_in_progress", "call-outbound-ended is ended; commands need a call in progress")
		do(foreign, e.keyA, map[string]any{"type": "end-call"}).wantError(t, 404, "not_found", "")
		do(path, e.keyB, map[string]any{"type": "end-call"}).wantError(t, 404, "not_found", "")
		// The literal "+" of the id is kept.
		do("/api/v1/calls/call-_%2B31623731537_XqaQxRRgAzYc/control", e.keyA, map[string]any{"type": "end-call"})
		if got := eng.commands(); got[len(got)-1].callID != id {
			t.Fatalf("%%2B id reached the engine as %q", got[len(got)-1].callID)
		}

		// The engine's own verdicts pass through.
		eng.ctlErr = fault.NotFoundf("call %s is not live on this server", id)
		do(path, e.keyA, map[string]any{"type": "end-call"}).wantError(t, 404, "not_found", "not live")
		eng.ctlErr = fault.Invalidf("type", "say is not supported by realtime models")
		do(path, e.keyA, map[string]any{"type": "say", "content": "x"}).wantError(t, 400, "invalid_field", "realtime")
	})
}

func TestCallControlRateLimit(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		clk := &clock{t: time.Date(2026, 11, 22, 10, 0, 5, 0, time.UTC)}
		eng := &fakeCalls{}
		e.with(func(d *httpapi.Deps) { d.Calls, d.Now = eng, clk.Now })
		path := e.liveCall(t, e.orgA, "call-rate-1", call.StatusInProgress)
		other := e.liveCall(t, e.orgA, "call-rate-2", call.StatusInProgress)
		for i := 0; i < 10; i++ {
			body := map[string]any{"type": "say", "content": "hello"}
			if i == 3 {
				body = map[string]any{"type": "say"} // invalid commands count too
			}
			r := e.do("POST", path, e.keyA, body)
			if want := map[bool]int{true: 400, false: 200}[i == 3]; r.Status != want {
				t.Fatalf("command %d = %d %s", i+1, r.Status, r.Raw)
			}
			if r.Header.Get("X-RateLimit-Limit") != "10" || r.Header.Get("X-RateLimit-Remaining") != strconv.Itoa(9-i) {
				t.Fatalf("command %d headers = %v", i+1, r.Header)
			}
		}
		r := e.do("POST", path, e.keyA, map[string]any{"type": "say", "content": "hello"})
		r.wantError(t, 429, "rate_limit_exceeded", "at most 10 a minute")
		if r.Header.Get("Retry-After") != "55" || r.Header.Get("X-RateLimit-Remaining") != "0" || r.Header.Get("X-RateLimit-Limit") != "10" {
			t.Fatalf("429 headers = %v", r.Header)
		}
		if n := len(eng.commands()); n != 9 {
			t.Fatalf("%d commands reached the engine, want 9", n)
		}
		// Another call has its own budget; a new minute starts a new one.
		e.must(200, "POST", other, map[string]any{"type": "end-call"})
		clk.Add(55 * time.Second)
		e.must(200, "POST", path, map[string]any{"type": "end-call"})
	})
}
