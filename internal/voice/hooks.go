package voice

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/webhook"
)

// Webhook event types (spec §9).
const (
	evAssistantRequest = webhook.EventAssistantRequest
	evToolCalls        = webhook.EventToolCalls
	evStatusUpdate     = webhook.EventStatusUpdate
)

// hookTarget is where a call's webhooks go (spec §9.1): the assistant's
// webhook_url with its secret and subscription, else the organization's.
type hookTarget struct {
	url    string
	secret string   // plain; sealed per event for the outbox
	events []string // nil: every event
}

func (t *hookTarget) wants(event string) bool {
	return t != nil && t.target().Wants(event)
}

// target is t in the webhook package's terms, without its secret.
func (t *hookTarget) target() *webhook.Target { return &webhook.Target{URL: t.url, Events: t.events} }

// stored is the target as the call row keeps it (webhook.Target, secret
// sealed), for the work done after the call; nil when there is none.
func (t *hookTarget) stored(keys *secret.Keyring, orgID string) json.RawMessage {
	if t == nil || t.url == "" {
		return nil
	}
	w := t.target()
	if t.secret != "" {
		w.Secret = keys.Seal([]byte(t.secret), webhook.SecretBinding(orgID))
	}
	b, _ := json.Marshal(w)
	return b
}

// orgHook is the organization's own webhook, if it has one.
func (e *Engine) orgHook(ctx context.Context, orgID string) (*hookTarget, error) {
	url, sealed, err := e.db.OrgWebhook(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("load organization: %w", err)
	}
	if url == nil || *url == "" {
		return nil, nil
	}
	t := &hookTarget{url: *url}
	if sealed != nil {
		pt, err := e.keys.Open(*sealed, secret.Binding{OrgID: orgID, Table: "organizations", Field: "webhook_secret"})
		if err != nil {
			return nil, fmt.Errorf("open the organization's webhook secret: %w", err)
		}
		t.secret = string(pt)
	}
	return t, nil
}

// assistantHook reads webhook_url, webhook_secret and webhook_events from an
// assistant document; nil when it has no webhook_url.
func assistantHook(doc json.RawMessage) *hookTarget {
	var a struct {
		URL    *string   `json:"webhook_url"`
		Secret *string   `json:"webhook_secret"`
		Events *[]string `json:"webhook_events"`
	}
	if json.Unmarshal(doc, &a) != nil || a.URL == nil || *a.URL == "" {
		return nil
	}
	t := &hookTarget{url: *a.URL}
	if a.Secret != nil {
		t.secret = *a.Secret
	}
	if a.Events != nil {
		t.events = *a.Events
	}
	return t
}

// callHooks builds a call's webhook payloads and numbers its events.
type callHooks struct {
	e      *Engine
	target *hookTarget
	orgID  string
	callID string
	env    webhook.Envelope

	mu  sync.Mutex
	seq int
}

// newCallHooks builds the webhooks of a call on num (whose number and
// name every payload carries).
func (e *Engine) newCallHooks(t *hookTarget, row *store.Call, num *store.Number, assistant json.RawMessage) *callHooks {
	h := &callHooks{e: e, target: t, orgID: row.OrgID, callID: row.ID}
	h.env = webhook.Envelope{
		Call:        webhook.CallInfo{ID: row.ID, Type: webhook.CallType(row.Direction), Pipeline: "standard"},
		PhoneNumber: webhook.NumberInfo{ID: &num.ID, Number: &num.PhoneNumber, Name: num.Name},
		// caller_phone is the other party either way: the caller, or the callee.
		Customer:  row.CallerPhone,
		Assistant: redactAssistant(assistant),
	}
	return h
}

// redactAssistant drops the webhook secret from the assistant echoed in payloads.
func redactAssistant(doc json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(doc, &m) != nil {
		return doc
	}
	delete(m, "webhook_secret")
	// Tools' own signing secrets (server.secret) stay private too.
	var llmCfg map[string]json.RawMessage
	if json.Unmarshal(m["llm_config"], &llmCfg) == nil {
		var tools []map[string]json.RawMessage
		if json.Unmarshal(llmCfg["tools"], &tools) == nil {
			for _, t := range tools {
				var srv map[string]json.RawMessage
				if json.Unmarshal(t["server"], &srv) == nil && srv != nil {
					delete(srv, "secret")
					t["server"], _ = json.Marshal(srv)
				}
			}
			llmCfg["tools"], _ = json.Marshal(tools)
			m["llm_config"], _ = json.Marshal(llmCfg)
		}
	}
	out, _ := json.Marshal(m)
	return out
}

// payload is the common envelope (spec §9.3) plus extra members.
func (h *callHooks) payload(event string, status call.Status, extra map[string]any) []byte {
	env := h.env
	env.Call.Status = status.String()
	return env.Body(event, h.e.now(), extra)
}

// status returns the status-update event for a change, or nil when nobody
// subscribed. It is written in the same transaction as the change.
func (h *callHooks) status(st call.Status, reason call.EndReason, errMsg string) []store.OutboxEvent {
	if h == nil || !h.target.wants(evStatusUpdate) {
		return nil
	}
	extra := map[string]any{}
	if reason != "" {
		extra["end_reason"] = string(reason)
	}
	if errMsg != "" {
		extra["error"] = errMsg
	}
	h.mu.Lock()
	h.seq++
	seq := h.seq
	h.mu.Unlock()
	ev := store.OutboxEvent{OrgID: h.orgID, CallID: &h.callID, Seq: seq, EventType: evStatusUpdate, URL: h.target.url, Payload: h.payload(evStatusUpdate, st, extra)}
	if h.target.secret != "" {
		sealed := h.e.keys.Seal([]byte(h.target.secret), webhook.SecretBinding(h.orgID))
		ev.Secret = &sealed
	}
	return []store.OutboxEvent{ev}
}

// committed wakes the outbox dispatcher after events were written.
func (e *Engine) committed(evs []store.OutboxEvent) {
	if len(evs) > 0 && e.cfg.Outbox != nil {
		e.cfg.Outbox.Notify()
	}
}

// post sends a synchronous webhook (assistant-request, tool-calls) and logs
// the attempt in the delivery log.
func (e *Engine) post(ctx context.Context, orgID string, callID *string, t *hookTarget, event string, body []byte) (webhook.Response, error) {
	if e.cfg.Webhooks == nil {
		return webhook.Response{}, fmt.Errorf("webhooks are not configured on this server")
	}
	id := store.NewID()
	start := time.Now()
	res, err := e.cfg.Webhooks.Send(ctx, webhook.Request{ID: id, Event: event, URL: t.url, Secret: t.secret, Body: body, Attempt: 1})
	d := &store.Delivery{OrgID: orgID, EventID: id, EventType: event, CallID: callID, URL: t.url, Attempt: 1, Duration: time.Since(start)}
	if res.Status != 0 {
		d.StatusCode = &res.Status
	}
	if err != nil {
		msg := err.Error()
		d.Error = &msg
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if lerr := e.db.LogDelivery(lctx, d); lerr != nil {
		e.log.Warn("log webhook delivery", "error", lerr)
	}
	return res, err
}
