package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// Event types (spec §9).
const (
	EventAssistantRequest = "assistant-request"
	EventToolCalls        = "tool-calls"
	EventStatusUpdate     = "status-update"
	EventEndOfCallReport  = "end-of-call-report"
)

// Events lists the event types in the order of spec §9.
func Events() []string {
	return []string{EventAssistantRequest, EventToolCalls, EventStatusUpdate, EventEndOfCallReport}
}

// Target is where a call's webhooks go, as recorded with the call when it
// starts (spec §9.1): the assistant's webhook_url with its secret and
// subscription, or the organization's webhook.
type Target struct {
	URL string `json:"url"`
	// Secret is the signing secret sealed with SecretBinding; "" sends
	// unsigned.
	Secret string `json:"secret,omitempty"`
	// Events is the subscription: nil means every event, an empty list none.
	Events []string `json:"events"`
}

// Wants reports whether the target takes event.
func (t *Target) Wants(event string) bool {
	return t != nil && t.URL != "" && (t.Events == nil || slices.Contains(t.Events, event))
}

// ParseTarget reads a stored target; nil for none.
func ParseTarget(raw json.RawMessage) (*Target, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var t Target
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// CallType is message.call.type for a call's direction.
func CallType(d call.Direction) string {
	switch d {
	case call.Outbound:
		return "outbound_phone_call"
	case call.Web:
		return "web_call"
	}
	return "inbound_phone_call"
}

// CallInfo is message.call in a payload.
type CallInfo struct {
	ID       string `json:"id"`
	Type     string `json:"type"` // inbound_phone_call, outbound_phone_call, web_call
	Status   string `json:"status"`
	Pipeline string `json:"pipeline"`
}

// NumberInfo is message.phone_number: the Parley number of the call.
type NumberInfo struct {
	ID     *string `json:"id"`
	Number *string `json:"number"`
	Name   *string `json:"name"`
}

// Envelope is what every call webhook body carries (spec §9.3).
type Envelope struct {
	Call        CallInfo
	PhoneNumber NumberInfo
	// Customer is the other party's number (caller, or callee).
	Customer *string
	// Assistant is the resolved assistant, secrets removed; left out of
	// assistant-request payloads.
	Assistant json.RawMessage
}

// Numbers looks a number up (for its name, in a stored call's envelope).
type Numbers interface {
	GetNumber(ctx context.Context, orgID, id string) (*store.Number, error)
}

// StoredEnvelope is the envelope of webhooks about a stored call, sent by
// work done away from the live call (the end-of-call report, crash
// recovery), with its number's name looked up. A number deleted since is no
// error; a failed lookup returns the envelope without the name and the
// error.
func StoredEnvelope(ctx context.Context, numbers Numbers, c *store.Call) (Envelope, error) {
	env := Envelope{
		Call:        CallInfo{ID: c.ID, Type: CallType(c.Direction), Status: c.Status.String(), Pipeline: "standard"},
		PhoneNumber: NumberInfo{ID: c.NumberID, Number: c.PhoneNumber},
		Customer:    c.CallerPhone,
		Assistant:   c.Assistant,
	}
	if c.NumberID == nil {
		return env, nil
	}
	n, err := numbers.GetNumber(ctx, c.OrgID, *c.NumberID)
	switch {
	case err == nil:
		env.PhoneNumber.Name = n.Name
	case fault.KindOf(err) != fault.NotFound:
		return env, fmt.Errorf("load the call's number: %w", err)
	}
	return env, nil
}

// Body returns the JSON body {"message": {...}} of event at the given time,
// with extra members added to message.
func (e Envelope) Body(event string, at time.Time, extra map[string]any) []byte {
	msg := map[string]any{
		"type":         event,
		"timestamp":    at.UTC().Format("2006-01-02T15:04:05.000Z"),
		"call":         e.Call,
		"phone_number": e.PhoneNumber,
		"customer":     map[string]any{"number": e.Customer},
	}
	if event != EventAssistantRequest && len(e.Assistant) > 0 {
		msg["assistant"] = e.Assistant
	}
	for k, v := range extra {
		msg[k] = v
	}
	b, _ := json.Marshal(map[string]any{"message": msg})
	return b
}

// EventID derives a stable event id (UUID-shaped) from its parts, for
// events that must be queued once however often the work that queues them
// runs (the end-of-call report of a call, say).
func EventID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8: custom
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
