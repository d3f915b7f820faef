package voice

// End-to-end tests of the voice engine: a real telephony.Server on loopback
// routing to an Engine that runs conversations against the in-repo fake
// providers (Deepgram, OpenAI, ElevenLabs over real websockets and HTTP), a
// real webhook outbox Dispatcher and Sender through the SSRF guard, and real
// SIP peers: SIPp (testdata/sipp/*.xml) and a raw Go caller that writes SIP
// as text and sends and reads RTP on its own sockets.
//
// Tests that need SIPp skip when it is not installed, unless
// PARLEY_REQUIRE_E2E is set, when they fail.
//
//	go test -count=1 -run E2E -v ./internal/voice

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/parley-voice/parley/internal/assistant"
	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/docsecret"
	"github.com/parley-voice/parley/internal/inbound"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/media"
	"github.com/parley-voice/parley/internal/netguard"
	"github.com/parley-voice/parley/internal/pike"
	"github.com/parley-voice/parley/internal/provider/deepgram"
	"github.com/parley-voice/parley/internal/provider/deepgram/deepgramfake"
	"github.com/parley-voice/parley/internal/provider/elevenlabs"
	"github.com/parley-voice/parley/internal/provider/elevenlabs/elevenlabsfake"
	"github.com/parley-voice/parley/internal/provider/openai"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/realtime"
	"github.com/parley-voice/parley/internal/recording"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/sipauth"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
	"github.com/parley-voice/parley/internal/stt"
	"github.com/parley-voice/parley/internal/telephony"
	"github.com/parley-voice/parley/internal/tts"
	"github.com/parley-voice/parley/internal/webhook"
)

// numberName is the name of every number the tests store.
const numberName = "E2E line"

// hookSecret signs the assistants' webhooks in these tests.
const hookSecret = "whsec_e2e_7f3a9c"

// ---------------------------------------------------------------------------
// Test 1: outbound calls through a SIP trunk with digest authentication.

// TestE2EOutboundDigestTrunk dials out through a SIPp trunk that demands
// digest credentials, rings, answers and hangs up after 3 s. The call row goes
// dialing → ringing → in-progress → ended (no_audio_received: the trunk sends
// no RTP) with the first message
// in its transcript, and the receiver gets one signed status-update per
// change (outbox seq 1…4 in that order, bodies signed and delivered as
// stored).
func TestE2EOutboundDigestTrunk(t *testing.T) {
	trunkPeer := startSIPp(t, "uas_digest_bye.xml")
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	trunk := e.trunk(t, "Digest trunk", trunkPeer.addr, "parley", "s3cret")
	num := e.number(t, "+31201230001", nil, &trunk)
	const first = "Hi, this is Parley."
	aid, doc := e.assistant(t, map[string]any{
		"name": "Outbound caller", "first_message": first,
		"webhook_events": []string{"status-update"},
	})

	id, err := e.engine.Dial(ctx, call.Dial{OrgID: e.org.ID, Destination: "+31612345678", NumberID: num.ID, AssistantID: aid, Assistant: doc})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if !strings.HasPrefix(id, "call-outbound-") {
		t.Fatalf("outbound call id %q, want call-outbound-…", id)
	}
	row := e.waitFinal(t, id, 20*time.Second)
	// The SIPp trunk hangs up without having sent one RTP packet.
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndNoAudio) {
		t.Fatalf("call ended as %s / %s (error %q), want ended / no_audio_received", row.Status, deref(row.EndReason), deref(row.Error))
	}
	if row.Direction != call.Outbound || deref(row.CallerPhone) != "+31612345678" || deref(row.PhoneNumber) != num.PhoneNumber || deref(row.AgentID) != aid {
		t.Fatalf("call row %+v", row)
	}
	if row.StartedAt == nil || row.DurationSeconds == nil || *row.DurationSeconds < 2 {
		t.Fatalf("answered call without start or a plausible duration: started %v, duration %v", row.StartedAt, row.DurationSeconds)
	}
	if msgs := transcript(t, row); !hasEntry(msgs, "assistant", first) {
		t.Fatalf("first message %q not in the transcript %+v", first, msgs)
	}
	if err := trunkPeer.wait(10 * time.Second); err != nil {
		t.Fatalf("trunk side: %v", err)
	}

	// Status webhooks: one per change, delivered from the outbox in order.
	want := []string{"dialing", "ringing", "in-progress", "ended"}
	got := e.waitStatuses(t, id, len(want), 10*time.Second)
	e.checkStatusHistory(t, id, want, got)
	last := got[len(got)-1].msg
	if last["end_reason"] != string(call.EndNoAudio) {
		t.Fatalf("ended webhook end_reason = %v", last["end_reason"])
	}
	if c, _ := last["call"].(map[string]any); c["type"] != "outbound_phone_call" {
		t.Fatalf("ended webhook call = %v", last["call"])
	}
	if a, _ := last["assistant"].(map[string]any); a == nil || a["webhook_secret"] != nil || a["first_message"] != first {
		t.Fatalf("assistant echoed in the webhook: %v (the secret must be redacted)", last["assistant"])
	}
	if pn, _ := last["phone_number"].(map[string]any); pn["id"] != num.ID || pn["number"] != num.PhoneNumber || pn["name"] != numberName {
		t.Fatalf("ended webhook phone_number = %v", last["phone_number"])
	}
}

// TestE2EOutboundTrunkAuthFailure dials with a wrong trunk password: the
// trunk answers the credentials with 403 and the call is recorded as failed
// with a reason and an error a user can act on.
func TestE2EOutboundTrunkAuthFailure(t *testing.T) {
	trunkPeer := startSIPp(t, "uas_digest_bye.xml")
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	trunk := e.trunk(t, "Bad password trunk", trunkPeer.addr, "parley", "not-the-password")
	num := e.number(t, "+31201230011", nil, &trunk)
	aid, doc := e.assistant(t, map[string]any{"name": "Outbound caller", "first_message": "Hello.", "webhook_events": []string{"status-update"}})

	id, err := e.engine.Dial(ctx, call.Dial{OrgID: e.org.ID, Destination: "+31612345678", NumberID: num.ID, AssistantID: aid, Assistant: doc})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	row := e.waitFinal(t, id, 15*time.Second)
	reason := deref(row.EndReason)
	if row.Status != call.StatusFailed || (reason != string(call.EndTrunkAuth) && reason != string(call.EndDeclined)) {
		t.Fatalf("call ended as %s / %s, want failed / trunk_auth_failed or declined", row.Status, reason)
	}
	msg := deref(row.Error)
	if !strings.Contains(msg, "403") || !strings.Contains(msg, "credentials") {
		t.Fatalf("error %q does not say what the trunk answered and what to check", msg)
	}
	if row.StartedAt != nil || row.Messages != nil {
		t.Fatalf("unanswered call has a start or a transcript: %+v", row)
	}
	if err := trunkPeer.wait(10 * time.Second); err != nil {
		t.Fatalf("trunk side: %v", err)
	}
	got := e.waitStatuses(t, id, 2, 10*time.Second)
	e.checkStatusHistory(t, id, []string{"dialing", "failed"}, got)
	if last := got[1].msg; last["end_reason"] != reason || last["error"] != msg {
		t.Fatalf("failed webhook = %v, want end_reason %q and error %q", last, reason, msg)
	}
}

// TestE2EOutboundSilentTrunk dials a trunk that never answers at all (a
// bound UDP socket that reads nothing): the ring timeout must still bound
// the attempt, and the call be recorded as failed soon after it.
func TestE2EOutboundSilentTrunk(t *testing.T) {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	e := newE2E(t, e2eOptions{ringTimeout: time.Second})
	ctx := context.Background()
	trunk := e.trunk(t, "Silent trunk", sink.LocalAddr().String(), "", "")
	num := e.number(t, "+31201230031", nil, &trunk)
	aid, doc := e.assistant(t, map[string]any{"name": "Dialer"})
	start := time.Now()
	id, err := e.engine.Dial(ctx, call.Dial{OrgID: e.org.ID, Destination: "+31612345678", NumberID: num.ID, AssistantID: aid, Assistant: doc})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	// Ring timeout 1 s; allow 4 s more. (Stopping the server in cleanup
	// ends the stuck dial.)
	var row *store.Call
	for time.Since(start) < 5*time.Second {
		if r, err := e.db.GetCall(ctx, e.org.ID, id); err == nil && r.Status.Final() {
			row = r
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if row == nil {
		t.Fatalf("call still dialing %s after it started with a 1 s ring timeout and a trunk that never answers", time.Since(start).Round(time.Millisecond))
	}
	if reason := deref(row.EndReason); row.Status != call.StatusFailed || (reason != string(call.EndUnreachable) && reason != string(call.EndNoAnswer)) {
		t.Fatalf("call ended as %s / %s (%q), want failed / unreachable or no_answer", row.Status, reason, deref(row.Error))
	}
}

// TestE2EOutboundFirstMessageOutbound: speech_config.first_message_outbound
// is documented as the opening line of outbound calls ("falls back to
// first_message"); an outbound call must open with it.
func TestE2EOutboundFirstMessageOutbound(t *testing.T) {
	dest := startSIPp(t, "uas_answer.xml")
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	trunk := e.trunk(t, "Open trunk", dest.addr, "", "")
	num := e.number(t, "+31201230021", nil, &trunk)
	const inbound, outbound = "Thanks for calling the clinic.", "Hello, this is the clinic calling about your appointment."
	aid, doc := e.assistant(t, map[string]any{
		"name": "Reminder", "first_message": inbound,
		"speech_config": map[string]any{"turn_taking": map[string]any{"endpointing_min_delay": 0.1}, "first_message_outbound": outbound},
	})
	id, err := e.engine.Dial(ctx, call.Dial{OrgID: e.org.ID, Destination: "+31201234568", NumberID: num.ID, AssistantID: aid, Assistant: doc})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	e.waitLive(t, 10*time.Second)
	var opening string
	waitFor(t, 10*time.Second, "the opening line in the transcript", func() bool {
		row, err := e.db.GetCall(ctx, e.org.ID, id)
		if msgs := transcriptOf(row); err == nil && len(msgs) > 0 {
			opening = msgs[0].Content
			return true
		}
		return false
	})
	if err := e.engine.Control(ctx, e.org.ID, id, call.Command{Type: call.CmdEndCall}); err != nil {
		t.Fatalf("end-call: %v", err)
	}
	e.waitFinal(t, id, 10*time.Second)
	if err := dest.wait(10 * time.Second); err != nil {
		t.Fatalf("callee side: %v", err)
	}
	if opening != outbound {
		t.Fatalf("outbound call opened with %q, want speech_config.first_message_outbound %q", opening, outbound)
	}
}

// TestE2EWebhookPayloadsCarryNoSecrets: webhooks echo the call's assistant;
// its secrets must not travel with it. webhook_secret is redacted; a
// function tool's own signing secret (server.secret) must be too.
func TestE2EWebhookPayloadsCarryNoSecrets(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	const toolSecret = "tool_signing_secret_5d1e"
	tool := map[string]any{
		"type":     "function",
		"function": map[string]any{"name": "book_slot", "description": "Book an appointment slot."},
		"server":   map[string]any{"url": "https://tools.example.com/book", "secret": toolSecret},
	}
	aid, _ := e.assistant(t, map[string]any{"name": "Secretive", "llm_config": llmConfig(tool)})
	num := e.number(t, "+31201230022", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	id := e.waitLive(t, 10*time.Second)
	c.hangup(t)
	e.waitFinal(t, id, 10*time.Second)
	got := e.waitStatuses(t, id, 3, 10*time.Second)
	e.checkStatusHistory(t, id, []string{"ringing", "in-progress", "ended"}, got)
	for _, ev := range got {
		for _, s := range []string{hookSecret, toolSecret} {
			if bytes.Contains(ev.body, []byte(s)) {
				t.Fatalf("%s webhook (%s) carries a secret in its body: %s", ev.event, statusOf(ev.body), ev.body)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Test 2: live call control.

// TestE2ELiveControl calls a Parley number from SIPp and steers the call
// through Engine.Control: context injected without a reply, a verbatim say,
// and end-call with a goodbye, which hangs up with Parley's BYE.
func TestE2ELiveControl(t *testing.T) {
	requireSIPp(t)
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	aid, _ := e.assistant(t, map[string]any{"name": "Controlled"})
	num := e.number(t, "+31201230002", &aid, nil)
	caller := startSIPp(t, "uac_wait_bye.xml", "-s", num.PhoneNumber, e.srv.UDPAddr().String())

	id := e.waitLive(t, 10*time.Second)
	const note = "Account note: the caller passed identity verification."
	if err := e.engine.Control(ctx, e.org.ID, id, call.Command{Type: call.CmdInjectContext, Content: note}); err != nil {
		t.Fatalf("inject-context: %v", err)
	}
	const said = "Your verification code is 4 2 7."
	if err := e.engine.Control(ctx, e.org.ID, id, call.Command{Type: call.CmdSay, Content: said}); err != nil {
		t.Fatalf("say: %v", err)
	}
	waitFor(t, 5*time.Second, "ElevenLabs to be asked to say "+strconv.Quote(said), func() bool { return e.ttsSaid(said) })
	// The transcript is written turn by turn: the say is in it once played.
	e.waitSaid(t, id, said, 10*time.Second)
	if n := len(e.oa.Requests()); n != 0 {
		t.Fatalf("the model was asked %d times; inject-context without trigger_response and say must not call it", n)
	}
	const bye = "Goodbye now."
	if err := e.engine.Control(ctx, e.org.ID, id, call.Command{Type: call.CmdEndCall, Message: bye}); err != nil {
		t.Fatalf("end-call: %v", err)
	}
	row := e.waitFinal(t, id, 10*time.Second)
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndAPIRequest) {
		t.Fatalf("call ended as %s / %s, want ended / api_request", row.Status, deref(row.EndReason))
	}
	msgs := transcript(t, row)
	want := []transcriptEntry{{Role: "system", Content: note}, {Role: "assistant", Content: said}, {Role: "assistant", Content: bye}}
	if !slices.Equal(msgs, want) {
		t.Fatalf("transcript %+v, want %+v", msgs, want)
	}
	if !e.ttsSaid(bye) {
		t.Fatalf("goodbye never sent to TTS: %v", e.el.Texts())
	}
	if err := caller.wait(10 * time.Second); err != nil {
		t.Fatalf("caller side: %v", err)
	}
	// A call that has ended takes no more commands.
	if err := e.engine.Control(ctx, e.org.ID, id, call.Command{Type: call.CmdSay, Content: "Too late."}); err == nil {
		t.Fatal("Control on an ended call succeeded")
	}
}

// TestE2ESayLatency measures, on one call, the time from each say command
// to the first RTP packet carrying audio at the caller's socket.
func TestE2ESayLatency(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	aid, _ := e.assistant(t, map[string]any{"name": "Latency"})
	num := e.number(t, "+31201230012", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	id := e.waitLive(t, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // let the conversation settle
	c.drain()

	const n = 20
	var lat []time.Duration
	for i := range n {
		text := fmt.Sprintf("Code %d.", i)
		start := time.Now()
		if err := e.engine.Control(ctx, e.org.ID, id, call.Command{Type: call.CmdSay, Content: text}); err != nil {
			t.Fatalf("say %d: %v", i, err)
		}
		select {
		case at := <-c.audioOn:
			lat = append(lat, at.Sub(start))
		case <-time.After(3 * time.Second):
			t.Fatalf("say %d: no audio within 3 s", i)
		}
		select {
		case <-c.audioOff:
		case <-time.After(5 * time.Second):
			t.Fatalf("say %d: audio did not stop", i)
		}
		time.Sleep(40 * time.Millisecond)
		c.drain()
	}
	c.hangup(t)
	row := e.waitFinal(t, id, 10*time.Second)
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndUserHangup) {
		t.Fatalf("call ended as %s / %s", row.Status, deref(row.EndReason))
	}
	if got := countEntries(transcript(t, row), "assistant"); got != n {
		t.Fatalf("%d assistant entries in the transcript, want %d", got, n)
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	p50, p95 := percentile(sorted, 50), percentile(sorted, 95)
	t.Logf("say→first audio p50=%v p95=%v n=%d", p50, p95, len(lat))
	if p95 > time.Second {
		t.Fatalf("say→first audio p95 %v is over a second: %v", p95, lat)
	}
}

// ---------------------------------------------------------------------------
// Test 3: a webhook tool round trip.

// TestE2EToolCallRoundTrip: the caller speaks, the model calls the flat
// webhook tool lookup_order, the receiver answers in the results format, and
// the model's next request carries the result, which decides what is said.
func TestE2EToolCallRoundTrip(t *testing.T) {
	respond := func(req openaifake.Request) openaifake.Reply {
		last := req.Messages[len(req.Messages)-1]
		switch {
		case last.Role == llm.Tool && strings.Contains(last.Content, `"shipped"`):
			return openaifake.Reply{Text: "Your order has shipped."}
		case last.Role == llm.Tool:
			return openaifake.Reply{Text: "I could not find that order."}
		case last.Role == llm.User:
			return openaifake.Reply{ToolCalls: []llm.ToolCall{{Name: "lookup_order", Arguments: `{"order_id":"8812"}`}}}
		}
		return openaifake.Reply{Text: "Hello."}
	}
	e := newE2E(t, e2eOptions{
		transcripts: []string{"Where is my order 8812?"},
		chat:        openaifake.Config{Respond: respond},
		answer: func(ev hookEvent) any {
			if ev.path != "/tool" {
				return nil
			}
			list, _ := ev.msg["tool_call_list"].([]any)
			if len(list) != 1 {
				return map[string]any{"error": "expected one tool call"}
			}
			tc, _ := list[0].(map[string]any)
			return map[string]any{"results": []any{map[string]any{"tool_call_id": tc["id"], "result": map[string]any{"status": "shipped"}}}}
		},
	})
	ctx := context.Background()
	tool := map[string]any{
		"type": "function",
		"function": map[string]any{
			"name": "lookup_order", "description": "Look up an order's delivery status by its number.",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{"order_id": map[string]any{"type": "string"}}, "required": []string{"order_id"}},
		},
		// The tool's own signing secret, sealed at rest: the receiver
		// verifies every request with it.
		"server": map[string]any{"url": e.hooks.url("/tool"), "secret": hookSecret}, "async": false, "message": "One moment.",
	}
	aid, _ := e.assistant(t, map[string]any{"name": "Orders", "llm_config": llmConfig(tool)})
	ad, err := e.db.GetDoc(ctx, store.Assistants, e.org.ID, aid)
	if err != nil {
		t.Fatal(err)
	}
	var stored map[string]json.RawMessage
	_ = json.Unmarshal(ad.Body, &stored)
	if !bytes.Contains(stored["llm_config"], []byte(`"server":{"url":"`+e.hooks.url("/tool")+`","secret_set":true}`)) || bytes.Contains(ad.Body, []byte(hookSecret)) || ad.Secret == nil {
		t.Fatalf("stored tool is not in the canonical shape with its secret sealed: %s", ad.Body)
	}
	num := e.number(t, "+31201230003", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	id := e.waitLive(t, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	c.speak(800 * time.Millisecond)

	waitFor(t, 15*time.Second, "the reply that depends on the tool result", func() bool {
		row, err := e.db.GetCall(ctx, e.org.ID, id)
		return err == nil && hasEntryContaining(transcriptOf(row), "assistant", "Your order has shipped.")
	})
	c.hangup(t)
	row := e.waitFinal(t, id, 10*time.Second)
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndUserHangup) {
		t.Fatalf("call ended as %s / %s", row.Status, deref(row.EndReason))
	}
	msgs := transcript(t, row)
	if !hasEntry(msgs, "user", "Where is my order 8812?") || !hasEntryContaining(msgs, "assistant", "One moment.") {
		t.Fatalf("transcript %+v", msgs)
	}

	// The webhook: signed (the receiver verified it), the call's id, the
	// arguments as a JSON object.
	calls := e.hooks.find(func(ev hookEvent) bool { return ev.event == "tool-calls" })
	if len(calls) != 1 {
		t.Fatalf("%d tool-calls webhooks, want 1", len(calls))
	}
	tc := calls[0]
	if tc.path != "/tool" || tc.msg["type"] != "tool-calls" || callOf(tc.msg) != id || tc.header.Get(webhook.HeaderSignature) == "" {
		t.Fatalf("tool-calls webhook %s %v (headers %v)", tc.path, tc.msg, tc.header)
	}
	var body struct {
		Message struct {
			List []struct {
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string          `json:"name"`
					Arguments json.RawMessage `json:"arguments"`
				} `json:"function"`
			} `json:"tool_call_list"`
		} `json:"message"`
	}
	if err := json.Unmarshal(tc.body, &body); err != nil || len(body.Message.List) != 1 {
		t.Fatalf("tool-calls body %s: %v", tc.body, err)
	}
	item := body.Message.List[0]
	var args map[string]any
	if item.ID == "" || item.Function.Name != "lookup_order" || json.Unmarshal(item.Function.Arguments, &args) != nil || args["order_id"] != "8812" {
		t.Fatalf("tool call %+v (arguments %s), want lookup_order with {\"order_id\":\"8812\"} as an object", item, item.Function.Arguments)
	}

	// The model saw its call and the webhook's result.
	reqs := e.oa.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model requests, want 2", len(reqs))
	}
	if !slices.Contains(reqs[0].Tools, "lookup_order") {
		t.Fatalf("lookup_order not offered: %v", reqs[0].Tools)
	}
	second := reqs[1].Messages
	var sawCall, sawResult bool
	for _, m := range second {
		if m.Role == llm.Assistant && len(m.ToolCalls) == 1 && m.ToolCalls[0].ID == item.ID && m.ToolCalls[0].Name == "lookup_order" {
			sawCall = true
		}
		if m.Role == llm.Tool && m.ToolCallID == item.ID && jsonEqual(m.Content, `{"status":"shipped"}`) {
			sawResult = true
		}
	}
	if !sawCall || !sawResult {
		t.Fatalf("second model request lacks the tool call or its result: %+v", second)
	}
	if !e.ttsSaid("Your order has shipped.") {
		t.Fatalf("the answer was not spoken: %v", e.el.Texts())
	}
	// The synchronous webhook is in the delivery log.
	ds, _, err := e.db.ListDeliveries(ctx, e.org.ID, store.DeliveryFilter{CallID: id, Page: store.Page{Limit: 50}})
	if err != nil {
		t.Fatal(err)
	}
	var logged bool
	for _, d := range ds {
		if d.EventType == "tool-calls" && d.StatusCode != nil && *d.StatusCode == 200 && d.EventID == tc.header.Get(webhook.HeaderID) {
			logged = true
		}
	}
	if !logged {
		t.Fatalf("tool-calls delivery not logged: %+v", ds)
	}
}

// TestE2ESlowToolDoesNotHoldTheHangUp: the model texts the caller (an
// async webhook tool whose backend takes 5 s) and hangs up in the same
// reply. Parley's BYE follows the goodbye at once, the call's end and
// duration are not stretched by the tool, and the tool call still reaches
// its webhook.
func TestE2ESlowToolDoesNotHoldTheHangUp(t *testing.T) {
	const goodbye = "I have texted you the address. Goodbye."
	e := newE2E(t, e2eOptions{
		transcripts: []string{"Can you text me the address?"},
		chat: openaifake.Config{Replies: []openaifake.Reply{{Text: goodbye, ToolCalls: []llm.ToolCall{
			{Name: "send_sms", Arguments: `{"text":"Main street 1"}`}, {Name: "end_call", Arguments: `{}`},
		}}}},
		answer: func(ev hookEvent) any {
			if ev.path == "/sms" {
				select { // a slow SMS gateway
				case <-time.After(5 * time.Second):
				case <-ev.ctx.Done():
				}
				return map[string]any{"result": "sent"}
			}
			return nil
		},
	})
	sms := map[string]any{"type": "function", "async": true,
		"function": map[string]any{"name": "send_sms", "description": "Text the caller.", "parameters": map[string]any{"type": "object", "properties": map[string]any{"text": map[string]any{"type": "string"}}}},
		"server":   map[string]any{"url": e.hooks.url("/sms")}}
	aid, _ := e.assistant(t, map[string]any{"name": "Texter", "llm_config": llmConfig(sms, map[string]any{"type": "end_call"})})
	num := e.number(t, "+31201230011", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	id := e.waitLive(t, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	c.speak(800 * time.Millisecond)
	waitFor(t, 10*time.Second, "the send_sms webhook", func() bool {
		return len(e.hooks.find(func(ev hookEvent) bool { return ev.path == "/sms" })) == 1
	})
	toolAt := time.Now()
	select {
	case <-c.bye:
	case <-time.After(10 * time.Second):
		t.Fatal("Parley did not hang up")
	}
	byeAfter := time.Since(toolAt)
	row := e.waitFinal(t, id, 5*time.Second)
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndAssistantHangup) {
		t.Fatalf("call ended as %s / %s", row.Status, deref(row.EndReason))
	}
	if row.EndedAt == nil || row.EndedAt.Sub(toolAt) > 4500*time.Millisecond || byeAfter > 4500*time.Millisecond {
		t.Fatalf("BYE %s and end %v after the tool started: the slow tool held the hang-up", byeAfter, row.EndedAt)
	}
	if !hasEntry(transcript(t, row), "assistant", goodbye) {
		t.Fatalf("transcript %s", row.Messages)
	}
	t.Logf("BYE %s after the tool call started (the tool takes 5 s)", byeAfter.Round(time.Millisecond))
}

// ---------------------------------------------------------------------------
// Test 4: assistant-request answered with an error.

// TestE2EAssistantRequestError: the number's assistant subscribes to
// assistant-request and the receiver refuses the call with an error. The
// caller is answered, hears the error spoken, and Parley hangs up; the call
// is recorded as rejected with that error.
func TestE2EAssistantRequestError(t *testing.T) {
	const refusal = "This line is closed today."
	e := newE2E(t, e2eOptions{answer: func(ev hookEvent) any {
		if ev.event == "assistant-request" {
			return map[string]any{"error": refusal}
		}
		return nil
	}})
	aid, _ := e.assistant(t, map[string]any{
		"name": "Front desk", "first_message": "Welcome to the clinic!",
		"webhook_events": []string{"assistant-request", "status-update"},
	})
	num := e.number(t, "+31201230004", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	select {
	case <-c.audioOn:
	case <-time.After(5 * time.Second):
		t.Fatal("the caller heard no audio")
	}
	select {
	case <-c.bye:
	case <-time.After(10 * time.Second):
		t.Fatal("Parley did not hang up after saying the refusal")
	}
	id := e.onlyCall(t)
	row := e.waitFinal(t, id, 10*time.Second)
	if row.Status != call.StatusRejected || deref(row.Error) != refusal || deref(row.EndReason) != string(call.EndWebhookRejected) {
		t.Fatalf("call ended as %s / %s / %q, want rejected with the webhook's error", row.Status, deref(row.EndReason), deref(row.Error))
	}
	if !e.ttsSaid(refusal) {
		t.Fatalf("refusal not sent to TTS: %v", e.el.Texts())
	}
	if e.ttsSaid("Welcome to the clinic!") {
		t.Fatal("the first message was spoken although the webhook refused the call")
	}
	if hasEntry(transcriptOf(row), "assistant", "Welcome to the clinic!") || !hasEntry(transcriptOf(row), "assistant", refusal) {
		t.Fatalf("transcript %s", row.Messages)
	}
	reqs := e.hooks.find(func(ev hookEvent) bool { return ev.event == "assistant-request" })
	if len(reqs) != 1 || reqs[0].msg["type"] != "assistant-request" || callOf(reqs[0].msg) != id {
		t.Fatalf("assistant-request webhooks: %+v", reqs)
	}
	if pn, _ := reqs[0].msg["phone_number"].(map[string]any); pn["number"] != num.PhoneNumber || pn["name"] != numberName {
		t.Fatalf("assistant-request phone_number = %v", reqs[0].msg["phone_number"])
	}
	got := e.waitStatuses(t, id, 3, 10*time.Second)
	e.checkStatusHistory(t, id, []string{"ringing", "in-progress", "rejected"}, got)
	if last := got[2].msg; last["error"] != refusal || last["end_reason"] != string(call.EndWebhookRejected) {
		t.Fatalf("rejected webhook %v", last)
	}
}

// ---------------------------------------------------------------------------
// Tests 5 and 6: transfers.

// TestE2EReferTransfer: the model calls transfer_call; Parley announces the
// transfer, sends REFER to the caller (SIPp checks Refer-To), follows the
// NOTIFY that reports success and hangs up. The call ends transferred.
func TestE2EReferTransfer(t *testing.T) {
	requireSIPp(t)
	e := newE2E(t, e2eOptions{chat: openaifake.Config{Replies: []openaifake.Reply{
		{ToolCalls: []llm.ToolCall{{Name: "transfer_call", Arguments: `{"destination":"+31201234568"}`}}},
	}}})
	ctx := context.Background()
	transfer := map[string]any{"type": "transfer_call", "destinations": []any{map[string]any{
		"type": "number", "number": "+31201234568", "description": "sales", "message": "Transferring you to sales.",
	}}}
	aid, _ := e.assistant(t, map[string]any{"name": "Router", "llm_config": llmConfig(transfer)})
	num := e.number(t, "+31201230005", &aid, nil)
	caller := startSIPp(t, "uac_refer.xml", "-s", num.PhoneNumber, e.srv.UDPAddr().String())

	id := e.waitLive(t, 10*time.Second)
	// The model is asked to answer now (no speech needed): it picks the transfer.
	if err := e.engine.Control(ctx, e.org.ID, id, call.Command{Type: call.CmdInjectContext, Content: "The caller asked for sales.", TriggerResponse: true}); err != nil {
		t.Fatalf("inject-context: %v", err)
	}
	row := e.waitFinal(t, id, 20*time.Second)
	if row.Status != call.StatusTransferred || deref(row.EndReason) != string(call.EndTransferred) {
		t.Fatalf("call ended as %s / %s (error %q), want transferred / transferred", row.Status, deref(row.EndReason), deref(row.Error))
	}
	if msgs := transcript(t, row); !hasEntryContaining(msgs, "assistant", "Transferring you to sales.") {
		t.Fatalf("announcement not in the transcript %+v", msgs)
	}
	if reqs := e.oa.Requests(); len(reqs) != 1 || !slices.Contains(reqs[0].Tools, "transfer_call") {
		t.Fatalf("model requests %+v", reqs)
	}
	if err := caller.wait(10 * time.Second); err != nil {
		t.Fatalf("caller side (REFER, NOTIFY, BYE): %v", err)
	}
}

// TestE2EBridgedTransfer: the caller refuses REFER, so Parley dials the
// destination through the number's transfer trunk (a second SIPp) and
// bridges the calls until the caller hangs up.
func TestE2EBridgedTransfer(t *testing.T) {
	requireSIPp(t)
	dest := startSIPp(t, "uas_answer.xml")
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	trunk := e.trunk(t, "Transfer trunk", dest.addr, "", "")
	aid, _ := e.assistant(t, map[string]any{"name": "Bridger"})
	num := e.number(t, "+31201230006", &aid, &trunk)
	caller := startSIPp(t, "uac_refer_refused.xml", "-s", num.PhoneNumber, e.srv.UDPAddr().String())

	id := e.waitLive(t, 10*time.Second)
	const announce = "Connecting you now."
	if err := e.engine.Control(ctx, e.org.ID, id, call.Command{Type: call.CmdTransfer, Destination: "+31201234568", Message: announce}); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	row := e.waitFinal(t, id, 25*time.Second)
	if row.Status != call.StatusTransferred || deref(row.EndReason) != string(call.EndTransferred) {
		t.Fatalf("call ended as %s / %s (error %q), want transferred / transferred", row.Status, deref(row.EndReason), deref(row.Error))
	}
	if msgs := transcript(t, row); !hasEntry(msgs, "assistant", announce) {
		t.Fatalf("announcement not in the transcript %+v", msgs)
	}
	if err := caller.wait(10 * time.Second); err != nil {
		t.Fatalf("caller side (REFER refused, BYE): %v", err)
	}
	if err := dest.wait(10 * time.Second); err != nil {
		t.Fatalf("destination side (INVITE for +31201234568, BYE from Parley): %v", err)
	}
	// The bridged leg lived until the caller hung up: the call lasted at
	// least the caller's 3 s on the line after refusing REFER.
	if row.DurationSeconds == nil || *row.DurationSeconds < 3 {
		t.Fatalf("duration %v: the call did not stay bridged", row.DurationSeconds)
	}
}

// ---------------------------------------------------------------------------
// Test 7: DTMF.

// TestE2EDTMFIn: the caller presses 1, 2, # as RFC 4733 events; the model
// gets "[keypad] 12#" as the caller's turn. It answers by pressing 9 with
// send_dtmf, which reaches the caller as a telephone-event.
func TestE2EDTMFIn(t *testing.T) {
	e := newE2E(t, e2eOptions{chat: openaifake.Config{Respond: keypadModel("9", "Pressed nine.")}})
	aid, _ := e.assistant(t, map[string]any{"name": "Keypad"})
	num := e.number(t, "+31201230007", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	id := e.waitLive(t, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	c.pressKeys("12#")

	waitFor(t, 10*time.Second, "a model request with the keypad entry", func() bool {
		for _, r := range e.oa.Requests() {
			for _, m := range r.Messages {
				if m.Role == llm.User && m.Content == "[keypad] 12#" {
					return true
				}
			}
		}
		return false
	})
	waitFor(t, 10*time.Second, "digit 9 from send_dtmf at the caller", func() bool { return slices.Contains(c.digitsReceived(), '9') })
	e.waitSaid(t, id, "Pressed nine.", 10*time.Second)
	c.hangup(t)
	row := e.waitFinal(t, id, 10*time.Second)
	msgs := transcript(t, row)
	if !hasEntry(msgs, "user", "[keypad] 12#") {
		t.Fatalf("keypad entry not in the transcript %+v", msgs)
	}
	e.onlyKeypadTurn(t, "[keypad] 12#")
	if got := c.digitsReceived(); !slices.Equal(got, []rune{'9'}) {
		t.Fatalf("digits at the caller %q, want just 9", string(got))
	}
}

// TestE2EDTMFSIPInfo: a caller whose offer has no telephone-event sends
// its keys as SIP INFO, in both documented bodies; other bodies are
// refused with a status that says why. The model's send_dtmf reaches the
// caller as SIP INFO too, since RTP events were not negotiated.
func TestE2EDTMFSIPInfo(t *testing.T) {
	e := newE2E(t, e2eOptions{chat: openaifake.Config{Respond: keypadModel("9*", "Pressed nine and star.")}})
	aid, _ := e.assistant(t, map[string]any{"name": "Keypad by INFO"})
	num := e.number(t, "+31201230008", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber, rawOptions{noTelephoneEvent: true})
	id := e.waitLive(t, 10*time.Second)

	// Bodies Parley cannot read: the wrong type is 415 with an Accept
	// header naming the types it takes; a relay body without a signal, or
	// with a key that does not exist, is 400. None of them is a key press.
	res := c.inDialog(t, sip.INFO, "text/plain", "1")
	if res.StatusCode != 415 {
		t.Fatalf("INFO text/plain answered %d %s, want 415", res.StatusCode, res.Reason)
	}
	if acc := res.GetHeader("Accept"); acc == nil || !strings.Contains(acc.Value(), "application/dtmf-relay") || !strings.Contains(acc.Value(), "application/dtmf") {
		t.Fatalf("415 without an Accept header naming the DTMF types: %v", res.GetHeader("Accept"))
	}
	for _, bad := range []struct{ ct, body string }{
		{"application/dtmf-relay", "Duration=160\r\n"},
		{"application/dtmf-relay", "Signal=X\r\nDuration=160\r\n"},
		{"application/dtmf", "17"},
	} {
		if res := c.inDialog(t, sip.INFO, bad.ct, bad.body); res.StatusCode != 400 {
			t.Fatalf("INFO %s %q answered %d %s, want 400", bad.ct, bad.body, res.StatusCode, res.Reason)
		}
	}
	// 1 and # as dtmf-relay (# by its event code 11), 2 as application/dtmf.
	for _, key := range []struct{ ct, body string }{
		{"application/dtmf-relay", "Signal=1\r\nDuration=160\r\n"},
		{"application/dtmf", "2"},
		{"application/dtmf-relay; charset=utf-8", "signal= 11\r\nDuration=100\r\n"},
	} {
		if res := c.inDialog(t, sip.INFO, key.ct, key.body); res.StatusCode != 200 {
			t.Fatalf("INFO %s %q answered %d %s, want 200", key.ct, key.body, res.StatusCode, res.Reason)
		}
	}
	e.waitSaid(t, id, "Pressed nine and star.", 10*time.Second)
	// send_dtmf went out as one INFO per key, in order, in the dialog.
	infos := c.received(sip.INFO)
	var sent []string
	for _, r := range infos {
		ct := ""
		if h := r.ContentType(); h != nil {
			ct = h.Value()
		}
		if ct != "application/dtmf-relay" || r.CallID() == nil || r.CallID().Value() != c.callID {
			t.Fatalf("INFO from Parley: content type %q, Call-ID %v\n%s", ct, r.CallID(), r)
		}
		sig, _, _ := strings.Cut(string(r.Body()), "\r\n")
		sent = append(sent, sig)
	}
	if !slices.Equal(sent, []string{"Signal=9", "Signal=*"}) {
		t.Fatalf("Parley's INFO bodies %q, want Signal=9 then Signal=*", sent)
	}
	if got := c.digitsReceived(); len(got) != 0 {
		t.Fatalf("telephone-events %q sent although none were negotiated", string(got))
	}
	c.hangup(t)
	row := e.waitFinal(t, id, 10*time.Second)
	msgs := transcript(t, row)
	if !hasEntry(msgs, "user", "[keypad] 12#") {
		t.Fatalf("keypad entry not in the transcript %+v", msgs)
	}
	e.onlyKeypadTurn(t, "[keypad] 12#")
}

// keypadModel is a model that answers the keypad entry 12# by pressing
// digits with send_dtmf, then says reply.
func keypadModel(digits, reply string) func(openaifake.Request) openaifake.Reply {
	return func(req openaifake.Request) openaifake.Reply {
		last := req.Messages[len(req.Messages)-1]
		switch {
		case last.Role == llm.User && last.Content == "[keypad] 12#":
			return openaifake.Reply{ToolCalls: []llm.ToolCall{{Name: "send_dtmf", Arguments: `{"digits":"` + digits + `"}`}}}
		case last.Role == llm.Tool && strings.Contains(last.Content, `"sent"`):
			return openaifake.Reply{Text: reply}
		}
		return openaifake.Reply{Text: "Sorry?"}
	}
}

// onlyKeypadTurn fails unless every keypad turn the model saw is want
// (keys lost, duplicated or made up show as other turns).
func (e *e2e) onlyKeypadTurn(t *testing.T, want string) {
	t.Helper()
	for _, r := range e.oa.Requests() {
		for _, m := range r.Messages {
			if m.Role == llm.User && strings.Contains(m.Content, "[keypad]") && m.Content != want {
				t.Fatalf("unexpected keypad turn %q, want only %q", m.Content, want)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// The rig.

type e2eOptions struct {
	// transcripts are what the fake Deepgram "hears", one per utterance.
	transcripts []string
	// chat scripts the fake model.
	chat openaifake.Config
	// answer, when set, gives the receiver's JSON answer to a webhook (nil:
	// an empty object).
	answer func(hookEvent) any
	// ringTimeout is the engine's (default 10 s).
	ringTimeout time.Duration
	// consentWait is how long the consent prompt waits for a key (default 10 s).
	consentWait time.Duration
	// sipTLS, when set, adds a TLS listener with this certificate; trunks
	// are verified against the system roots only.
	sipTLS *tls.Certificate
	// inbound, when set, puts an admission gate (package inbound) in front
	// of the engine; its Auth defaults to a digest authenticator with a
	// random key. nil: every call is admitted, as before the gate.
	inbound *inbound.Config
	// limiter, when set, limits requests per source address.
	limiter *pike.Config
	// mediaTimeout ends calls without RTP for this long (default 20 s).
	mediaTimeout time.Duration
	// newVAD is Config.NewVAD (nil: the energy VAD).
	newVAD func() (VAD, error)
	// realtime serves llm_config provider xai_realtime (nil: not served).
	realtime realtime.Provider
}

type e2e struct {
	db     *store.DB
	keys   *secret.Keyring
	org    *store.Org
	valid  *assistant.Validator
	engine *Engine
	srv    *telephony.Server
	oa     *openaifake.Server
	el     *elevenlabsfake.Server
	dg     *deepgramfake.Server
	hooks  *receiver
	// spool is the recordings spool: finished recordings are in spool/done.
	spool string
	// logs is the server's log (text handler, level info).
	logs *lockedBuf
	// gate is the admission gate (nil without e2eOptions.inbound).
	gate Gate
}

func newE2E(t *testing.T, o e2eOptions) *e2e {
	t.Helper()
	ctx := context.Background()
	logs := &lockedBuf{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})

	db := storetest.OpenSQLite(t)
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	keys, err := secret.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	org := &store.Org{Name: "E2E Clinic", MinutesBalance: 1000}
	if err := db.CreateOrg(ctx, org, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.SetMinutesBalance(ctx, org.ID, 1000); err != nil {
		t.Fatal(err)
	}

	// The three providers, faked behind one HTTP server.
	dg := deepgramfake.New(deepgramfake.Config{Transcripts: o.transcripts, Interim: true})
	oa := openaifake.New(o.chat)
	el := elevenlabsfake.New(elevenlabsfake.Config{})
	mux := http.NewServeMux()
	mux.Handle(deepgramfake.ListenPath, dg)
	mux.Handle("/v1/chat/completions", oa)
	mux.Handle(elevenlabsfake.Path, el)
	fakes := httptest.NewServer(mux)
	t.Cleanup(func() { el.Close(); fakes.Close() })

	hooks := newReceiver(t, o.answer)
	spool := t.TempDir()

	guard := netguard.New(netguard.Config{AllowLoopback: true})
	client := guard.Client(15 * time.Second)
	t.Cleanup(client.CloseIdleConnections)
	sender := &webhook.Sender{HTTP: client}
	disp := webhook.NewDispatcher(db, keys, sender, webhook.DispatcherConfig{Poll: 50 * time.Millisecond, Timeout: 5 * time.Second, Logger: log.With("component", "webhooks")})
	dctx, stopDisp := context.WithCancel(ctx)
	dispDone := make(chan error, 1)
	go func() { dispDone <- disp.Run(dctx) }()
	t.Cleanup(func() {
		stopDisp()
		if err := <-dispDone; err != nil {
			t.Errorf("dispatcher: %v", err)
		}
	})

	var gate Gate
	if o.inbound != nil {
		cfg := *o.inbound
		if cfg.Auth == nil {
			auth, err := sipauth.New(sipauth.Config{Key: master})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Auth = auth
		}
		cfg.Logger = log.With("component", "sip-admission")
		gate = inbound.New(db, keys, cfg)
	}
	var limiter telephony.SourceLimiter
	if o.limiter != nil {
		limiter = pike.New(*o.limiter)
	}
	trusted, _ := gate.(telephony.TrustedSources)
	engine := New(db, keys, Config{
		Catalog: cat,
		Providers: Providers{
			STT:        map[string]stt.Provider{"deepgram": deepgram.New(deepgram.Config{BaseURL: fakes.URL})},
			LLM:        map[string]llm.Provider{"openai": openai.NewChat(openai.Config{BaseURL: fakes.URL + "/v1"})},
			TTS:        map[string]tts.Provider{"elevenlabs": elevenlabs.NewTTS(elevenlabs.Config{BaseURL: fakes.URL})},
			ServerKeys: map[string]string{"deepgram": "dg-test-key", "openai": "oa-test-key", "elevenlabs": "el-test-key", "xai": "xai-test-key"},
			Realtime:   map[string]realtime.Provider{},
			Fallback: FallbackVoice{TTS: elevenlabs.NewTTS(elevenlabs.Config{BaseURL: fakes.URL}),
				Voice: tts.Config{Voice: "fallback-voice", APIKey: "el-test-key"}},
		},
		Validator:   assistant.NewValidator(cat),
		Webhooks:    sender,
		Outbox:      disp,
		HTTP:        client,
		RingTimeout: cmp.Or(o.ringTimeout, 10*time.Second),
		NewVAD:      o.newVAD,
		Recordings:  &recording.Config{Dir: spool, Logger: log},
		ConsentWait: o.consentWait,
		Gate:        gate,
		Logger:      log,
	})
	if o.realtime != nil {
		engine.cfg.Providers.Realtime["xai_realtime"] = o.realtime
	}
	sipCfg := telephony.Config{
		ListenAddr: "127.0.0.1:0",
		Media:      media.Config{Ports: media.PortRange{Min: 46000, Max: 46999}, Timeout: cmp.Or(o.mediaTimeout, 20*time.Second)},
		T1:         50 * time.Millisecond,
		// SIPp and the raw callers offer loopback media.
		LoopbackMedia: true,
		Limiter:       limiter,
		Trusted:       trusted,
		Registrar:     engine,
		Logger:        log.With("component", "sip"),
	}
	if o.sipTLS != nil {
		sipCfg.TLSListenAddr, sipCfg.TLSServer = "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*o.sipTLS}}
	}
	srv, err := telephony.New(sipCfg, engine)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	sctx, stopSIP := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	engine.Attach(sctx, srv)
	t.Cleanup(func() {
		stopSIP()
		if err := <-served; err != nil {
			t.Errorf("sip serve: %v", err)
		}
		engine.Wait()
	})
	return &e2e{db: db, keys: keys, org: org, valid: assistant.NewValidator(cat), engine: engine, srv: srv, oa: oa, el: el, dg: dg, hooks: hooks, spool: spool, logs: logs, gate: gate}
}

// assistant stores an assistant built from a base document (deepgram,
// openai, elevenlabs; no first message; webhooks to the receiver) with
// over's members laid over it, normalised like the API does.
func (e *e2e) assistant(t *testing.T, over map[string]any) (string, json.RawMessage) {
	t.Helper()
	doc := e.assistantDoc(over)
	raw := map[string]json.RawMessage{}
	for k, v := range doc {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		raw[k] = b
	}
	canon, err := e.valid.Normalize(raw, assistant.Options{})
	if err != nil {
		t.Fatalf("assistant does not validate: %v", err)
	}
	encode := func() []byte {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(canon); err != nil {
			t.Fatal(err)
		}
		return bytes.TrimSpace(buf.Bytes())
	}
	body := encode()
	// Stored the way the API stores it: secrets sealed to the row, markers
	// in the body. The engine opens them again (docsecret.Reveal).
	secrets, _ := docsecret.Extract(store.Assistants, canon)
	d := &store.Doc{Kind: store.Assistants, ID: store.NewID(), OrgID: e.org.ID, Name: doc["name"].(string), Active: true, Body: encode()}
	if d.Secret, err = docsecret.Seal(e.keys, store.Assistants, e.org.ID, d.ID, secrets); err != nil {
		t.Fatal(err)
	}
	if err := e.db.CreateDoc(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d.ID, body
}

// assistantDoc is the base assistant document with over's members laid
// over it.
func (e *e2e) assistantDoc(over map[string]any) map[string]any {
	doc := map[string]any{
		"name":          "E2E assistant",
		"llm_config":    llmConfig(),
		"stt_config":    map[string]any{"provider": "deepgram", "model": "nova-3", "language": "en"},
		"tts_config":    map[string]any{"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice_id": "21m00Tcm4TlvDq8ikWAM"},
		"speech_config": map[string]any{"turn_taking": map[string]any{"endpointing_min_delay": 0.1}},
		"webhook_url":   e.hooks.url("/hook"), "webhook_secret": hookSecret,
	}
	for k, v := range over {
		doc[k] = v
	}
	return doc
}

func llmConfig(tools ...any) map[string]any {
	c := map[string]any{"provider": "openai", "model": "gpt-5.4", "messages": []any{map[string]any{"role": "system", "content": "You are a test assistant."}}}
	if len(tools) > 0 {
		c["tools"] = tools
	}
	return c
}

// trunk stores a SIP trunk the way POST /sip-trunks does (password sealed
// to the row); extra members are laid over the body.
func (e *e2e) trunk(t *testing.T, name, addr, user, password string, extra ...map[string]any) string {
	t.Helper()
	return e.trunkOver(t, "udp", name, addr, user, password, extra...)
}

// trunkOver stores a trunk with the given transport; extra members are
// laid over the body.
func (e *e2e) trunkOver(t *testing.T, transport, name, addr, user, password string, extra ...map[string]any) string {
	t.Helper()
	body := map[string]any{"name": name, "provider": nil, "address": addr, "transport": transport, "media_encryption": "none", "auth_username": nil,
		"inbound_addresses": []string{}, "outbound_number": nil, "is_active": true}
	for _, x := range extra {
		maps.Copy(body, x)
	}
	if user != "" {
		body["auth_username"] = user
	}
	b, _ := json.Marshal(body)
	d := &store.Doc{Kind: store.SIPTrunks, ID: store.NewID(), OrgID: e.org.ID, Name: name, Active: true, Body: b}
	if password != "" {
		sealed := e.keys.Seal([]byte(password), secret.Binding{OrgID: e.org.ID, Table: "sip_trunks", Field: "auth_password", RowID: d.ID})
		d.Secret = &sealed
	}
	if err := e.db.CreateDoc(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func (e *e2e) number(t *testing.T, phone string, assistantID, trunkID *string) *store.Number {
	t.Helper()
	name := numberName
	n := &store.Number{OrgID: e.org.ID, PhoneNumber: phone, Name: &name, AssistantID: assistantID, TransferTrunkID: trunkID, IsActive: true}
	if err := e.db.CreateNumber(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFinal polls the call row until its status is final.
func (e *e2e) waitFinal(t *testing.T, id string, timeout time.Duration) *store.Call {
	t.Helper()
	var row *store.Call
	waitFor(t, timeout, "call "+id+" to end", func() bool {
		r, err := e.db.GetCall(context.Background(), e.org.ID, id)
		if err != nil {
			return false
		}
		row = r
		return r.Status.Final()
	})
	return row
}

// waitSaid polls the call's transcript until the assistant has said text
// (one whole entry).
func (e *e2e) waitSaid(t *testing.T, id, text string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("the assistant to say %q", text), func() bool {
		row, err := e.db.GetCall(context.Background(), e.org.ID, id)
		return err == nil && hasEntry(transcriptOf(row), "assistant", text)
	})
}

// onlyCall waits for the organization's one call and returns its id.
func (e *e2e) onlyCall(t *testing.T) string {
	t.Helper()
	var id string
	waitFor(t, 10*time.Second, "a call row", func() bool {
		calls, _, err := e.db.ListCalls(context.Background(), e.org.ID, store.CallFilter{Page: store.Page{Limit: 10}})
		if err != nil || len(calls) == 0 {
			return false
		}
		if len(calls) > 1 {
			t.Fatalf("%d calls, want 1", len(calls))
		}
		id = calls[0].ID
		return true
	})
	return id
}

// waitLive waits for the organization's one call to be in progress on the
// engine (Control takes commands).
func (e *e2e) waitLive(t *testing.T, timeout time.Duration) string {
	t.Helper()
	id := e.onlyCall(t)
	waitFor(t, timeout, "call "+id+" to be in progress", func() bool {
		r, err := e.db.GetCall(context.Background(), e.org.ID, id)
		if err != nil || r.Status != call.StatusInProgress {
			return false
		}
		e.engine.mu.Lock()
		defer e.engine.mu.Unlock()
		return e.engine.live[id] != nil
	})
	return id
}

// ttsSaid reports whether the fake ElevenLabs was given exactly text in one piece.
func (e *e2e) ttsSaid(text string) bool {
	for _, texts := range e.el.Texts() {
		if slices.Contains(texts, text) {
			return true
		}
	}
	return false
}

// waitStatuses waits for n status-update webhooks of the call and returns
// them in arrival order.
func (e *e2e) waitStatuses(t *testing.T, id string, n int, timeout time.Duration) []hookEvent {
	t.Helper()
	var got []hookEvent
	deadline := time.Now().Add(timeout)
	for {
		got = e.hooks.find(func(ev hookEvent) bool { return ev.event == "status-update" && callOf(ev.msg) == id })
		if len(distinctIDs(got)) >= n {
			return got
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Say what the outbox holds, to tell an event never written from one
	// never delivered.
	evs, _, err := e.db.ListEvents(context.Background(), e.org.ID, store.EventFilter{CallID: id, Page: store.Page{Limit: 50}})
	var rows []string
	for _, ev := range evs {
		rows = append(rows, fmt.Sprintf("seq %d %s %s attempts=%d created=%s next=%s delivered=%v failed=%v last_error=%q",
			ev.Seq, ev.EventType, statusOf(ev.Payload), ev.Attempts, ev.CreatedAt.Format("15:04:05.000"), ev.NextAttemptAt.Format("15:04:05.000"), ev.DeliveredAt, ev.FailedAt, deref(ev.LastError)))
	}
	t.Fatalf("timed out after %s waiting for %d status-update webhooks for %s: received %d; outbox (%v):\n%s", timeout, n, id, len(distinctIDs(got)), err, strings.Join(rows, "\n"))
	return nil
}

// checkStatusHistory checks a call's status-update events: the outbox rows
// have seq 1…n with the wanted statuses and are all delivered; the receiver
// got each event exactly as stored (one X-Webhook-Id per event, never
// reused for another), in seq order.
func (e *e2e) checkStatusHistory(t *testing.T, id string, want []string, got []hookEvent) {
	t.Helper()
	ctx := context.Background()
	var rows []store.OutboxEvent
	waitFor(t, 5*time.Second, "the outbox events to be marked delivered", func() bool {
		evs, _, err := e.db.ListEvents(ctx, e.org.ID, store.EventFilter{CallID: id, EventType: "status-update", Page: store.Page{Limit: 50}})
		if err != nil || len(evs) != len(want) {
			return false
		}
		for _, ev := range evs {
			if ev.DeliveredAt == nil {
				return false
			}
		}
		rows = evs
		return true
	})
	sort.Slice(rows, func(i, j int) bool { return rows[i].Seq < rows[j].Seq })
	byID := map[string]store.OutboxEvent{}
	var prevTS string
	for i, r := range rows {
		st := statusOf(r.Payload)
		if r.Seq != i+1 || st != want[i] || r.Secret == nil || r.URL != e.hooks.url("/hook") {
			t.Fatalf("outbox event %d: seq %d status %q (url %s, signed %v); want seq %d status %q", i, r.Seq, st, r.URL, r.Secret != nil, i+1, want[i])
		}
		var m struct {
			Message struct {
				Timestamp string `json:"timestamp"`
			} `json:"message"`
		}
		_ = json.Unmarshal(r.Payload, &m)
		if m.Message.Timestamp < prevTS {
			t.Fatalf("outbox event seq %d has timestamp %s before the previous event's %s", r.Seq, m.Message.Timestamp, prevTS)
		}
		prevTS = m.Message.Timestamp
		byID[r.ID] = r
	}
	// What the receiver saw, by X-Webhook-Id.
	seen := map[string][]byte{}
	var order []int
	for _, ev := range got {
		wid := ev.header.Get(webhook.HeaderID)
		r, ok := byID[wid]
		if !ok {
			t.Fatalf("status-update with X-Webhook-Id %q matches no outbox event of the call", wid)
		}
		if prev, dup := seen[wid]; dup {
			if !bytes.Equal(prev, ev.body) {
				t.Fatalf("X-Webhook-Id %s reused for a different event:\n%s\n%s", wid, prev, ev.body)
			}
			continue // a redelivery of the same event
		}
		seen[wid] = ev.body
		if !bytes.Equal(ev.body, r.Payload) {
			t.Fatalf("delivered body differs from the outbox payload:\n%s\n%s", ev.body, r.Payload)
		}
		order = append(order, r.Seq)
	}
	if len(seen) != len(want) {
		t.Fatalf("receiver got %d distinct status events, want %d", len(seen), len(want))
	}
	// One call's events to one URL are delivered in seq order (the outbox
	// claims a call's next event only once the one before it is done).
	if !slices.IsSorted(order) {
		var names []string
		for _, ev := range got {
			names = append(names, statusOf(ev.body))
		}
		t.Fatalf("status-update webhooks arrived out of order: seq %v (%s); committed as %s", order, strings.Join(names, " → "), strings.Join(want, " → "))
	}
}

func distinctIDs(evs []hookEvent) map[string]bool {
	out := map[string]bool{}
	for _, ev := range evs {
		out[ev.header.Get(webhook.HeaderID)] = true
	}
	return out
}

func statusOf(payload []byte) string {
	var m struct {
		Message struct {
			Call struct {
				Status string `json:"status"`
			} `json:"call"`
		} `json:"message"`
	}
	_ = json.Unmarshal(payload, &m)
	return m.Message.Call.Status
}

func callOf(msg map[string]any) string {
	c, _ := msg["call"].(map[string]any)
	id, _ := c["id"].(string)
	return id
}

// ---------------------------------------------------------------------------
// The webhook receiver.

type hookEvent struct {
	path   string
	event  string
	header http.Header
	body   []byte
	msg    map[string]any // body's "message"
	at     time.Time
	// ctx is the request's: it ends when the sender gives up.
	ctx context.Context
}

// receiver records every webhook and verifies every signature.
type receiver struct {
	srv    *httptest.Server
	answer func(hookEvent) any
	mu     sync.Mutex
	events []hookEvent
	bad    []string
}

func newReceiver(t *testing.T, answer func(hookEvent) any) *receiver {
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.srv.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, b := range r.bad {
			t.Errorf("webhook receiver: %s", b)
		}
	})
	return r
}

func (r *receiver) url(path string) string { return r.srv.URL + path }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	ev := hookEvent{path: req.URL.Path, event: req.Header.Get(webhook.HeaderEvent), header: req.Header.Clone(), body: body, at: time.Now(), ctx: req.Context()}
	var problems []string
	if err != nil {
		problems = append(problems, "read body: "+err.Error())
	}
	if err := webhook.Verify(hookSecret, req.Header, body, time.Now(), 0); err != nil {
		problems = append(problems, fmt.Sprintf("%s %s (%s): %v", req.Method, req.URL.Path, ev.event, err))
	}
	var env struct {
		Message map[string]any `json:"message"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Message == nil {
		problems = append(problems, fmt.Sprintf("%s: body is not {\"message\": …}: %s", req.URL.Path, body))
	}
	ev.msg = env.Message
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" || req.Header.Get(webhook.HeaderID) == "" {
		problems = append(problems, fmt.Sprintf("%s %s: content type %q, id %q", req.Method, req.URL.Path, req.Header.Get("Content-Type"), req.Header.Get(webhook.HeaderID)))
	}
	if t, _ := env.Message["type"].(string); t != ev.event {
		problems = append(problems, fmt.Sprintf("%s: X-Webhook-Event %q but message.type %q", req.URL.Path, ev.event, t))
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.bad = append(r.bad, problems...)
	r.mu.Unlock()
	var ans any = map[string]any{}
	if r.answer != nil {
		if a := r.answer(ev); a != nil {
			ans = a
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

func (r *receiver) find(match func(hookEvent) bool) []hookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hookEvent
	for _, ev := range r.events {
		if match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// SIPp.

type sippProc struct {
	addr   string // where it listens
	done   chan error
	exited chan struct{}
	dir    string
	out    *lockedBuf
}

func requireSIPp(t *testing.T) string {
	t.Helper()
	bin, err := osexec.LookPath("sipp")
	if err != nil {
		if os.Getenv("PARLEY_REQUIRE_E2E") != "" {
			t.Fatal("PARLEY_REQUIRE_E2E is set but sipp is not installed (apt-get install sip-tester)")
		}
		t.Skip("sipp is not installed (apt-get install sip-tester); set PARLEY_REQUIRE_E2E=1 to make this a failure")
	}
	return bin
}

// startSIPp runs a scenario from testdata/sipp for one call. Extra
// arguments follow the standard ones (a UAC passes -s <number> and Parley's
// address). SIPp picks its own media ports: given -mp it makes one attempt
// at that port and the one two above it (video), and a port found free a
// moment earlier may be taken by then; left to itself it tries ten pairs
// from 6000 up, outside the ephemeral range.
func startSIPp(t *testing.T, scenario string, extra ...string) *sippProc {
	t.Helper()
	return startSIPpAt(t, "127.0.0.1", scenario, extra...)
}

// startSIPpAt runs a scenario from the local address ip (any 127.x
// address works on lo).
func startSIPpAt(t *testing.T, ip, scenario string, extra ...string) *sippProc {
	t.Helper()
	return startSIPpIn(t, t.TempDir(), ip, scenario, extra...)
}

// startSIPpIn runs a scenario in dir, where it finds the files it plays.
func startSIPpIn(t *testing.T, dir, ip, scenario string, extra ...string) *sippProc {
	t.Helper()
	bin := requireSIPp(t)
	port := freeUDPPort(t)
	sf, err := filepath.Abs(filepath.Join("testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-sf", sf, "-i", ip, "-p", strconv.Itoa(port), "-mi", ip,
		"-m", "1", "-timeout", "30s", "-nostdin", "-trace_err", "-error_file", filepath.Join(dir, "err.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "msg.log")}, extra...)
	cmd := osexec.Command(bin, args...)
	cmd.Dir = dir
	p := &sippProc{addr: fmt.Sprintf("%s:%d", ip, port), done: make(chan error, 1), exited: make(chan struct{}), dir: dir, out: &lockedBuf{}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		if err != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "err.log"))
			err = fmt.Errorf("sipp %s: %w\n%s", scenario, err, b)
		}
		p.done <- err
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "msg.log"))
			t.Logf("sipp %s output:\n%s\nmessages:\n%s", scenario, p.out.String(), b)
		}
	})
	time.Sleep(300 * time.Millisecond) // let it bind
	return p
}

// wait returns SIPp's exit: nil when its call passed the scenario.
func (p *sippProc) wait(timeout time.Duration) error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(timeout):
		return fmt.Errorf("sipp still running after %s", timeout)
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// ---------------------------------------------------------------------------
// A raw SIP/RTP caller.

// rawCaller is a phone written from scratch: SIP as text over UDP, RTP
// (PCMU and RFC 4733 telephone-events, PT 101) on its own socket, 20 ms
// packets all the time (silence unless it speaks or presses keys).
type rawCaller struct {
	t       *testing.T
	sipConn *net.UDPConn
	rtpConn *net.UDPConn
	server  *net.UDPAddr
	user    string
	callID  string
	fromTag string
	toTag   string
	target  string // Parley's Contact
	media   *net.UDPAddr
	cseq    int

	responses chan *sip.Response
	bye       chan struct{}
	byeOnce   sync.Once
	// audioOn and audioOff report silence→audio and audio→silence
	// transitions of the RTP Parley sends (arrival times).
	audioOn  chan time.Time
	audioOff chan time.Time

	mu     sync.Mutex
	speech []int16
	heard  []byte // the PCMU payloads Parley sent, in arrival order
	keys   []byte
	digits []rune // telephone-events received
	// requests are the in-dialog requests Parley sent (BYE, INFO, …).
	requests []*sip.Request
	stop     chan struct{}
	wg       sync.WaitGroup
	stopped  sync.Once
}

const callerNumber = "+15550001111"

// rawOptions shape the raw caller's offer.
type rawOptions struct {
	// noTelephoneEvent leaves RFC 4733 out of the offer, so DTMF travels
	// by SIP INFO both ways.
	noTelephoneEvent bool
	// rtpFrom, when set, is the IP the caller's RTP is sent from (its
	// offer still says 127.0.0.1): a carrier whose media servers are not
	// its signalling address.
	rtpFrom string
}

// dialRaw calls the Parley number and returns once the call is answered
// and acknowledged.
func dialRaw(t *testing.T, srv *telephony.Server, dialled string, opts ...rawOptions) *rawCaller {
	t.Helper()
	c, res := inviteRaw(t, srv, dialled, opts...)
	if res.StatusCode >= 300 {
		t.Fatalf("INVITE answered %d %s", res.StatusCode, res.Reason)
	}
	return c
}

// inviteRaw sends the INVITE and waits for its final response, which it
// acknowledges; on a 2xx the caller is then in the call.
func inviteRaw(t *testing.T, srv *telephony.Server, dialled string, opts ...rawOptions) (*rawCaller, *sip.Response) {
	t.Helper()
	var o rawOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	sc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(cmp.Or(o.rtpFrom, "127.0.0.1"))})
	if err != nil {
		t.Fatal(err)
	}
	c := &rawCaller{
		t: t, sipConn: sc, rtpConn: rc, server: net.UDPAddrFromAddrPort(srv.UDPAddr()), user: dialled,
		callID: fmt.Sprintf("e2e-%d@127.0.0.1", time.Now().UnixNano()), fromTag: "ft" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36), cseq: 1,
		responses: make(chan *sip.Response, 16), bye: make(chan struct{}),
		audioOn: make(chan time.Time, 64), audioOff: make(chan time.Time, 64), stop: make(chan struct{}),
	}
	t.Cleanup(c.close)

	rtpPort := rc.LocalAddr().(*net.UDPAddr).Port
	formats, events := "0 101", "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
	if o.noTelephoneEvent {
		formats, events = "0", ""
	}
	sdp := fmt.Sprintf("v=0\r\no=e2e 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP %s\r\na=rtpmap:0 PCMU/8000\r\n%sa=ptime:20\r\na=sendrecv\r\n", rtpPort, formats, events)
	branch := "z9hG4bK" + strconv.FormatInt(time.Now().UnixNano(), 36)
	invite := fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\nFrom: \"E2E caller\" <sip:%s@127.0.0.1>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@%s>\r\nUser-Agent: parley-e2e\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		dialled, c.server, sc.LocalAddr(), branch, callerNumber, c.fromTag, dialled, c.server, c.callID, sc.LocalAddr(), len(sdp), sdp)
	c.send(invite)

	parser := sip.NewParser()
	buf := make([]byte, 65535)
	deadline := time.Now().Add(10 * time.Second)
	var final *sip.Response
	for final == nil {
		_ = sc.SetReadDeadline(deadline)
		n, _, err := sc.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no answer to INVITE: %v", err)
		}
		m, err := parser.ParseSIP(buf[:n])
		if err != nil {
			t.Fatalf("unparseable message from Parley: %v\n%s", err, buf[:n])
		}
		res, isRes := m.(*sip.Response)
		if !isRes || res.CSeq() == nil || res.CSeq().MethodName != sip.INVITE || res.StatusCode < 200 {
			continue
		}
		final = res
	}
	_ = sc.SetReadDeadline(time.Time{})
	c.toTag, _ = final.To().Params.Get("tag")
	if final.StatusCode >= 300 {
		// The ACK of a failure belongs to the INVITE transaction (RFC
		// 3261 §17.1.1.3): same branch, sent to the server.
		c.send(fmt.Sprintf("ACK sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\nFrom: \"E2E caller\" <sip:%s@127.0.0.1>;tag=%s\r\nTo: <sip:%s@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
			dialled, c.server, sc.LocalAddr(), branch, callerNumber, c.fromTag, dialled, c.server, c.toTag, c.callID))
		return c, final
	}
	if ct := final.Contact(); ct != nil {
		c.target = ct.Address.String()
	} else {
		t.Fatal("200 OK without Contact")
	}
	c.media = sdpAddr(t, final.Body())
	c.send(fmt.Sprintf("ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%sack;rport\r\nMax-Forwards: 70\r\nFrom: \"E2E caller\" <sip:%s@127.0.0.1>;tag=%s\r\nTo: <sip:%s@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
		c.target, sc.LocalAddr(), strconv.FormatInt(time.Now().UnixNano(), 36), callerNumber, c.fromTag, dialled, c.server, c.toTag, c.callID))

	c.wg.Add(3)
	go c.sipLoop()
	go c.sendLoop()
	go c.recvLoop()
	return c, final
}

func (c *rawCaller) send(msg string) {
	if _, err := c.sipConn.WriteToUDP([]byte(msg), c.server); err != nil {
		c.t.Errorf("send sip: %v", err)
	}
}

// sdpAddr reads the audio address of an SDP body.
func sdpAddr(t *testing.T, body []byte) *net.UDPAddr {
	t.Helper()
	var ip, port string
	for _, l := range strings.Split(string(body), "\n") {
		l = strings.TrimSpace(l)
		if s, ok := strings.CutPrefix(l, "c=IN IP4 "); ok {
			ip = s
		}
		if s, ok := strings.CutPrefix(l, "m=audio "); ok {
			port = strings.Fields(s)[0]
		}
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(ip, port))
	if err != nil {
		t.Fatalf("answer SDP without an audio address: %v\n%s", err, body)
	}
	return net.UDPAddrFromAddrPort(ap)
}

// sipLoop answers Parley's requests (BYE) and hands responses over.
func (c *rawCaller) sipLoop() {
	defer c.wg.Done()
	parser := sip.NewParser()
	buf := make([]byte, 65535)
	for {
		_ = c.sipConn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, from, err := c.sipConn.ReadFromUDP(buf)
		select {
		case <-c.stop:
			return
		default:
		}
		if err != nil {
			continue
		}
		m, err := parser.ParseSIP(buf[:n])
		if err != nil {
			continue
		}
		switch m := m.(type) {
		case *sip.Response:
			select {
			case c.responses <- m:
			default:
			}
		case *sip.Request:
			c.mu.Lock()
			c.requests = append(c.requests, m)
			c.mu.Unlock()
			res := sip.NewResponseFromRequest(m, 200, "OK", nil)
			_, _ = c.sipConn.WriteToUDP([]byte(res.String()), from)
			if m.Method == sip.BYE {
				c.byeOnce.Do(func() { close(c.bye) })
			}
		}
	}
}

// sendLoop sends a packet every 20 ms: a telephone-event while keys are
// queued, else speech, else silence.
func (c *rawCaller) sendLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	hdr := rtp.Header{Version: 2, SSRC: 0x5eed1234, SequenceNumber: 1000, Timestamp: 160000}
	frame := make([]int16, 160)
	var key *struct {
		code byte
		ts   uint32
		n    int
	}
	gap := 0
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		c.mu.Lock()
		if key == nil && gap == 0 && len(c.keys) > 0 {
			key = &struct {
				code byte
				ts   uint32
				n    int
			}{code: c.keys[0], ts: hdr.Timestamp}
			c.keys = c.keys[1:]
		}
		var payload []byte
		h := hdr
		if key != nil {
			// Five packets of a held key (duration growing), then the end
			// packet three times (RFC 4733 §2.5.1.4).
			dur := uint16(min(key.n+1, 5) * 160)
			flags := byte(10) // volume
			if key.n >= 5 {
				flags |= 0x80
			}
			payload = []byte{key.code, flags, byte(dur >> 8), byte(dur)}
			h.PayloadType, h.Timestamp, h.Marker = 101, key.ts, key.n == 0
			key.n++
			if key.n == 8 {
				key, gap = nil, 3
			}
		} else {
			if gap > 0 {
				gap--
			}
			clear(frame)
			n := copy(frame, c.speech)
			c.speech = c.speech[n:]
			h.PayloadType = 0
			payload = audio.EncodeUlaw(nil, frame)
		}
		c.mu.Unlock()
		pkt, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
		if err == nil {
			_, _ = c.rtpConn.WriteToUDP(pkt, c.media)
		}
		hdr.SequenceNumber++
		hdr.Timestamp += 160
	}
}

// recvLoop reads Parley's RTP: audio/silence transitions and telephone-events.
func (c *rawCaller) recvLoop() {
	defer c.wg.Done()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	inAudio := false
	seenTS := map[uint32]bool{}
	for {
		_ = c.rtpConn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := c.rtpConn.ReadFromUDP(buf)
		at := time.Now()
		select {
		case <-c.stop:
			return
		default:
		}
		if err != nil || pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		switch pkt.PayloadType {
		case 0:
			c.mu.Lock()
			c.heard = append(c.heard, pkt.Payload...)
			c.mu.Unlock()
			a := !silent(pkt.Payload)
			if a != inAudio {
				inAudio = a
				ch := c.audioOff
				if a {
					ch = c.audioOn
				}
				select {
				case ch <- at:
				default:
				}
			}
		case 101:
			if len(pkt.Payload) >= 4 && !seenTS[pkt.Timestamp] && int(pkt.Payload[0]) < 16 {
				seenTS[pkt.Timestamp] = true
				c.mu.Lock()
				c.digits = append(c.digits, rune("0123456789*#ABCD"[pkt.Payload[0]]))
				c.mu.Unlock()
			}
		}
	}
}

// silent reports whether a PCMU payload is all zero samples (0xFF, or 0x7F
// for negative zero).
func silent(p []byte) bool {
	for _, b := range p {
		if b != 0xFF && b != 0x7F {
			return false
		}
	}
	return true
}

// speak queues a 300 Hz tone of d, the caller talking.
func (c *rawCaller) speak(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.speech = append(c.speech, audio.Tone(300, 8000, int(d.Seconds()*8000), 8000)...)
}

// pressKeys queues keys as telephone-events.
func (c *rawCaller) pressKeys(keys string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		c.keys = append(c.keys, byte(strings.IndexRune("0123456789*#ABCD", k)))
	}
}

func (c *rawCaller) digitsReceived() []rune {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.digits)
}

// drain forgets audio transitions seen so far.
func (c *rawCaller) drain() {
	for {
		select {
		case <-c.audioOn:
		case <-c.audioOff:
		default:
			return
		}
	}
}

// hangup sends BYE and waits for its 200.
func (c *rawCaller) hangup(t *testing.T) {
	t.Helper()
	if res := c.inDialog(t, sip.BYE, "", ""); res.StatusCode != 200 {
		t.Fatalf("BYE answered %d %s", res.StatusCode, res.Reason)
	}
}

// inDialog sends a request inside the call (body of contentType, when
// set) and returns Parley's final response to it.
func (c *rawCaller) inDialog(t *testing.T, method sip.RequestMethod, contentType, body string) *sip.Response {
	t.Helper()
	c.cseq++
	var hdr string
	if contentType != "" {
		hdr = "Content-Type: " + contentType + "\r\n"
	}
	c.send(fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s%s;rport\r\nMax-Forwards: 70\r\nFrom: \"E2E caller\" <sip:%s@127.0.0.1>;tag=%s\r\nTo: <sip:%s@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n%sContent-Length: %d\r\n\r\n%s",
		method, c.target, c.sipConn.LocalAddr(), strconv.FormatInt(time.Now().UnixNano(), 36), strings.ToLower(string(method)), callerNumber, c.fromTag, c.user, c.server, c.toTag, c.callID, c.cseq, method, hdr, len(body), body))
	deadline := time.After(5 * time.Second)
	for {
		select {
		case res := <-c.responses:
			if res.CSeq() != nil && res.CSeq().MethodName == method && int(res.CSeq().SeqNo) == c.cseq && res.StatusCode >= 200 {
				return res
			}
		case <-deadline:
			t.Fatalf("no final answer to %s", method)
		}
	}
}

// received returns the in-dialog requests of method Parley sent.
func (c *rawCaller) received(method sip.RequestMethod) []*sip.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*sip.Request
	for _, r := range c.requests {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

func (c *rawCaller) close() {
	c.stopped.Do(func() {
		close(c.stop)
		c.wg.Wait()
		c.sipConn.Close()
		c.rtpConn.Close()
	})
}

// ---------------------------------------------------------------------------
// Small helpers.

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func transcriptOf(row *store.Call) []transcriptEntry {
	var out []transcriptEntry
	if row != nil && row.Messages != nil {
		_ = json.Unmarshal(row.Messages, &out)
	}
	return out
}

func transcript(t *testing.T, row *store.Call) []transcriptEntry {
	t.Helper()
	var out []transcriptEntry
	if row.Messages == nil {
		t.Fatalf("call %s has no transcript", row.ID)
	}
	if err := json.Unmarshal(row.Messages, &out); err != nil {
		t.Fatalf("transcript %s: %v", row.Messages, err)
	}
	return out
}

func hasEntry(msgs []transcriptEntry, role, content string) bool {
	return slices.ContainsFunc(msgs, func(m transcriptEntry) bool { return m.Role == role && m.Content == content })
}

func hasEntryContaining(msgs []transcriptEntry, role, content string) bool {
	return slices.ContainsFunc(msgs, func(m transcriptEntry) bool { return m.Role == role && strings.Contains(m.Content, content) })
}

func countEntries(msgs []transcriptEntry, role string) int {
	n := 0
	for _, m := range msgs {
		if m.Role == role {
			n++
		}
	}
	return n
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(i, len(sorted))-1)]
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
