package voice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/telephony"
	"github.com/parley-voice/parley/internal/webhook"
)

// TestRejectedCallsAnnounced: an inbound call Parley cannot answer (unknown
// number aside) is recorded with its end reason and announced with a
// status-update: to the assistant's webhook when the routing got as far as
// an assistant, else to the organization's.
func TestRejectedCallsAnnounced(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	orgHook := "https://org.example.com/hooks"
	if err := f.db.SetWebhook(ctx, f.org.ID, &orgHook, nil); err != nil {
		t.Fatal(err)
	}
	withHook := strings.Replace(localBody, `{"first_message":"Hi",`, `{"first_message":"Hi","webhook_url":"https://assistant.example.com/h","webhook_secret":"s3cret",`, 1)
	idle := f.assistant(t, withHook, false)
	keyless := f.assistant(t, strings.Replace(localBody, `"provider":"local","model":"pocketsphinx"`, `"provider":"deepgram","model":"nova-3"`, 1), true)
	unsubscribed := f.assistant(t, strings.Replace(withHook, `"webhook_secret":"s3cret",`, `"webhook_secret":"s3cret","webhook_events":["end-of-call-report"],`, 1), false)
	f.number(t, "+31200000011", &idle, false)
	f.number(t, "+31200000012", nil, true)
	f.number(t, "+31200000013", &keyless, true)
	f.number(t, "+31200000014", &idle, true)
	f.number(t, "+31200000015", &unsubscribed, true)
	want := map[string]struct {
		reason call.EndReason
		url    string // "" : no status-update
	}{
		"+31200000011": {call.EndNumberInactive, orgHook},
		// The organization webhook is asked (assistant-request) and cannot be reached here.
		"+31200000012": {call.EndAssistantRequestFailed, orgHook},
		"+31200000013": {call.EndAssistantUnavailable, orgHook},
		"+31200000014": {call.EndAssistantInactive, "https://assistant.example.com/h"},
		"+31200000015": {call.EndAssistantInactive, ""},
	}
	for dialled := range want {
		if _, err := f.engine.Route(ctx, telephony.Inbound{Dialled: dialled, Caller: "+15550001111", SIPCallID: dialled}); err == nil {
			t.Fatalf("Route(%s) answered", dialled)
		}
	}
	calls, _, err := f.db.ListCalls(ctx, f.org.ID, store.CallFilter{Page: store.Page{Limit: 20}})
	if err != nil || len(calls) != len(want) {
		t.Fatalf("%d calls, %v", len(calls), err)
	}
	for _, c := range calls {
		w := want[*c.AssistantPhone]
		if c.Status != call.StatusRejected || deref(c.EndReason) != string(w.reason) || c.Error == nil || c.EndedAt == nil {
			t.Errorf("%s: %s/%s (%v), want rejected/%s", *c.AssistantPhone, c.Status, deref(c.EndReason), c.Error, w.reason)
		}
		full, err := f.db.GetCall(ctx, f.org.ID, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(full.Assistant), "s3cret") || strings.Contains(string(full.Webhook), "s3cret") {
			t.Errorf("%s: the webhook secret is stored in clear on the call: %s %s", *c.AssistantPhone, full.Assistant, full.Webhook)
		}
		evs, _, err := f.db.ListEvents(ctx, f.org.ID, store.EventFilter{CallID: c.ID, Page: store.Page{Limit: 10}})
		if err != nil {
			t.Fatal(err)
		}
		if w.url == "" {
			if len(evs) != 0 {
				t.Errorf("%s: %d events to a webhook that did not subscribe to status-update", *c.AssistantPhone, len(evs))
			}
			continue
		}
		if len(evs) != 1 || evs[0].URL != w.url || evs[0].EventType != webhook.EventStatusUpdate {
			t.Fatalf("%s: events %+v, want one status-update to %s", *c.AssistantPhone, evs, w.url)
		}
		var p struct{ Message map[string]any }
		json.Unmarshal(evs[0].Payload, &p)
		if st, _ := p.Message["call"].(map[string]any); st["status"] != "rejected" || p.Message["end_reason"] != string(w.reason) || p.Message["error"] != *c.Error {
			t.Errorf("%s: payload %v", *c.AssistantPhone, p.Message)
		}
		if a, _ := p.Message["assistant"].(map[string]any); a != nil && a["webhook_secret"] != nil {
			t.Errorf("%s: the webhook secret is echoed", *c.AssistantPhone)
		}
	}
}

// TestGDPRMasksTheCaller: a call to a GDPR-mode assistant keeps the caller's
// number out of its id and out of the logs; the row keeps it.
func TestGDPRMasksTheCaller(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.engine.log = slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()
	gdpr := f.assistant(t, strings.Replace(localBody, `{"first_message":"Hi",`, `{"first_message":"Hi","gdpr_mode":true,`, 1), true)
	plain := f.assistant(t, localBody, true)
	f.number(t, "+31200000021", &gdpr, true)
	f.number(t, "+31200000022", &plain, true)
	h, err := f.engine.Route(ctx, telephony.Inbound{Dialled: "+31200000021", Caller: "+31612345678", SIPCallID: "g"})
	if err != nil {
		t.Fatal(err)
	}
	id := h.(*handler).row.ID
	h.(*handler).plan.close()
	if strings.Contains(id, "12345") || !strings.HasPrefix(id, "call-_+316xxxxxx78_") {
		t.Fatalf("GDPR call id %q shows the caller", id)
	}
	if strings.Contains(logs.String(), "+31612345678") || !strings.Contains(logs.String(), "+316xxxxxx78") {
		t.Fatalf("logs of a GDPR call:\n%s", logs.String())
	}
	row, err := f.db.GetCall(ctx, f.org.ID, id)
	if err != nil || deref(row.CallerPhone) != "+31612345678" {
		t.Fatalf("row caller %v, %v", row.CallerPhone, err)
	}
	logs.Reset()
	h, err = f.engine.Route(ctx, telephony.Inbound{Dialled: "+31200000022", Caller: "+31612345678", SIPCallID: "p"})
	if err != nil {
		t.Fatal(err)
	}
	h.(*handler).plan.close()
	if !strings.Contains(h.(*handler).row.ID, "+31612345678") || !strings.Contains(logs.String(), "+31612345678") {
		t.Fatalf("a call without GDPR mode lost its documented id shape: %s", h.(*handler).row.ID)
	}
}

func TestMaskNumber(t *testing.T) {
	for in, want := range map[string]string{"+31612345678": "+316xxxxxx78", "12345": "xxxxx", "+1555": "xxxxx", "anonymous": "anonxxxus"} {
		if got := maskNumber(in); got != want {
			t.Errorf("maskNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPostcallModel: the catalog's post-call model of the assistant's
// provider, on that provider's client, with the organization's key before
// the server's; realtime assistants use their vendor's text model; the
// server can override the model.
func TestPostcallModel(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	xai := nopLLMNamed("xai")
	f.engine.cfg.Providers.LLM["xai"] = xai
	f.engine.cfg.Providers.ServerKeys["xai"] = "server-xai"
	doc := func(provider, model string) json.RawMessage {
		return json.RawMessage(`{"llm_config":{"provider":"` + provider + `","model":"` + model + `"}}`)
	}
	m, err := f.engine.PostcallModel(ctx, f.org.ID, doc("openai", "gpt-4.1"))
	if err != nil || m.Name != "gpt-5.4-mini" || m.APIKey != "server-openai-key" || m.Provider != f.engine.cfg.Providers.LLM["openai"] {
		t.Fatalf("openai: %+v, %v", m, err)
	}
	m, err = f.engine.PostcallModel(ctx, f.org.ID, doc("xai_realtime", "grok-voice-think-fast-2.0"))
	if err != nil || m.Name != "grok-4.3" || m.APIKey != "server-xai" || m.Provider != xai {
		t.Fatalf("xai_realtime: %+v, %v", m, err)
	}
	sealed := f.keys.Seal([]byte("org-openai-key"), secret.Binding{OrgID: f.org.ID, Table: "byok_keys", Field: "openai"})
	if err := f.db.PutBYOKKey(ctx, &store.BYOKKey{OrgID: f.org.ID, Provider: "openai", SecretID: "s1", Sealed: sealed}); err != nil {
		t.Fatal(err)
	}
	f.engine.cfg.PostcallModels = map[string]string{"openai": "llama-3.3-70b"}
	m, err = f.engine.PostcallModel(ctx, f.org.ID, doc("openai_live", "gpt-live-1"))
	if err != nil || m.Name != "llama-3.3-70b" || m.APIKey != "org-openai-key" {
		t.Fatalf("openai_live with BYOK and an override: %+v, %v", m, err)
	}
	f.engine.cfg.Providers.LLM["google"] = nopLLMNamed("google")
	f.engine.cfg.Providers.ServerKeys["google"] = "server-google"
	live := json.RawMessage(`{"llm_config":{"provider":"google_realtime","model":"gemini-3.1-flash-live-preview","analysis_model":"gemini-2.5-flash"}}`)
	if m, err := f.engine.PostcallModel(ctx, f.org.ID, live); err != nil || m.Name != "gemini-2.5-flash" || m.APIKey != "server-google" {
		t.Fatalf("google_realtime with its analysis_model: %+v, %v", m, err)
	}
	if _, err := f.engine.PostcallModel(ctx, f.org.ID, doc("mistral", "mistral-small-latest")); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("a provider the server lacks: %v", err)
	}
	if _, err := f.engine.PostcallModel(ctx, f.org.ID, doc("nope", "x")); err == nil {
		t.Fatal("an unknown provider gave a model")
	}
}

type namedLLM struct{ name string }

func (n *namedLLM) Stream(context.Context, llm.Request) (llm.Stream, error) {
	return nil, errors.New(n.name + " unused")
}

func nopLLMNamed(name string) llm.Provider { return &namedLLM{name} }

// TestToolCallsFollowTheSubscription: a webhook tool without a URL of its
// own is sent to the assistant's webhook only when the assistant subscribes
// to tool-calls; otherwise the model reads why it cannot run.
func TestToolCallsFollowTheSubscription(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tool := `"tools":[{"type":"function","function":{"name":"lookup","description":"Look up","parameters":{"type":"object"}}},` +
		`{"type":"function","function":{"name":"own_url","description":"Own","parameters":{"type":"object"}},"server":{"url":"https://tools.example.com/own"}}]`
	body := func(events string) json.RawMessage {
		return json.RawMessage(`{"llm_config":{"provider":"openai","model":"gpt-4.1",` + tool + `},
			"stt_config":{"provider":"local","model":"pocketsphinx","language":"en"},"tts_config":{"provider":"local","model":"espeak-ng","voice_id":"en-us"},
			"webhook_url":"https://assistant.example.com/h","webhook_events":` + events + `}`)
	}
	p, err := f.engine.plan(ctx, f.org.ID, body(`["status-update"]`))
	if err != nil {
		t.Fatal(err)
	}
	r := &toolRunner{e: f.engine, routes: p.routes}
	out := r.Run(ctx, llm.ToolCall{ID: "1", Name: "lookup", Arguments: "{}"})
	if !strings.Contains(out, "webhook_events do not include tool-calls") {
		t.Fatalf("tool without a subscription answered %s", out)
	}
	if p.routes["own_url"].hook == nil || p.routes["own_url"].hook.url != "https://tools.example.com/own" {
		t.Fatalf("a tool's own URL must not depend on the assistant's subscription: %+v", p.routes["own_url"])
	}
	for _, events := range []string{`["tool-calls"]`, `null`} {
		p, err := f.engine.plan(ctx, f.org.ID, body(events))
		if err != nil {
			t.Fatal(err)
		}
		if h := p.routes["lookup"].hook; h == nil || h.url != "https://assistant.example.com/h" {
			t.Fatalf("webhook_events %s: lookup routed to %+v", events, h)
		}
	}
}
