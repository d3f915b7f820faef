package httpapi

import (
	"context"
	"net/http"
	"slices"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// The organization webhook (spec §9.1: it receives the events of assistants
// without a webhook_url and assistant-request for numbers without an
// assistant) and the delivery log. Both are Parley extensions: the spec says
// the organization webhook exists but documents no API for it (§16).

// orgWebhook is the webhook part of a PATCH /organizations body. A field
// changes only when sent; nil clears it.
type orgWebhook struct {
	urlSet, secretSet bool
	url, secret       *string
}

const maxWebhookURL, maxWebhookSecret = 2048, 1024

// readOrgWebhook reads webhook_url (checked like every URL Parley calls:
// https and a public address unless Config.AllowPrivateURLs) and webhook_secret
// (write-only).
func (s *Server) readOrgWebhook(fs *fields) orgWebhook {
	var h orgWebhook
	if v, set := fs.nullableStr("webhook_url"); set {
		h.urlSet = true
		if v != nil {
			norm, err := s.urls.Check(*v)
			switch {
			case err != nil:
				fs.f.Invalidf("webhook_url", "%v", err)
			case len(norm) > maxWebhookURL:
				fs.f.Invalidf("webhook_url", "must be at most %d characters", maxWebhookURL)
			default:
				h.url = &norm
			}
		}
	}
	if v, set := fs.nullableStr("webhook_secret"); set {
		h.secretSet = true
		switch {
		case v == nil:
		case *v == "":
			fs.f.Invalidf("webhook_secret", "must not be empty; send null to remove the secret")
		case len(*v) > maxWebhookSecret:
			fs.f.Invalidf("webhook_secret", "must be at most %d characters", maxWebhookSecret)
		default:
			h.secret = v
		}
	}
	return h
}

// setOrgWebhook stores the sent webhook fields, keeping the ones not sent.
func (s *Server) setOrgWebhook(ctx context.Context, org string, h orgWebhook) error {
	cur, err := s.db.GetOrg(ctx, org)
	if err != nil {
		return err
	}
	url, sealed := cur.WebhookURL, cur.WebhookSecret
	if h.urlSet {
		url = h.url
	}
	if h.secretSet {
		sealed = nil
		if h.secret != nil {
			v := s.keys.Seal([]byte(*h.secret), secret.Binding{OrgID: org, Table: "organizations", Field: "webhook_secret"})
			sealed = &v
		}
	}
	return s.db.SetWebhook(ctx, org, url, sealed)
}

// webhookEventTypes are the event types the outbox carries.
var webhookEventTypes = []string{"assistant-request", "tool-calls", "status-update", "end-of-call-report"}

// deliveryJSON is one delivery attempt.
type deliveryJSON struct {
	ID         string  `json:"id"`
	EventID    string  `json:"event_id"`
	EventType  string  `json:"event_type"`
	CallID     *string `json:"call_id"`
	URL        string  `json:"url"`
	Attempt    int     `json:"attempt"`
	StatusCode *int    `json:"status_code"`
	Error      *string `json:"error"`
	DurationMS int64   `json:"duration_ms"`
	CreatedAt  string  `json:"created_at"`
}

// eventJSON is one webhook event without its payload.
type eventJSON struct {
	ID            string  `json:"id"`
	EventType     string  `json:"event_type"`
	CallID        *string `json:"call_id"`
	Seq           int     `json:"seq"`
	URL           string  `json:"url"`
	Attempts      int     `json:"attempts"`
	Status        string  `json:"status"`
	NextAttemptAt any     `json:"next_attempt_at"`
	DeliveredAt   any     `json:"delivered_at"`
	LastError     *string `json:"last_error"`
	CreatedAt     string  `json:"created_at"`
}

func eventObject(e *store.OutboxEvent) eventJSON {
	out := eventJSON{
		ID: e.ID, EventType: e.EventType, CallID: e.CallID, Seq: e.Seq, URL: e.URL, Attempts: e.Attempts,
		Status: "pending", NextAttemptAt: ts(e.NextAttemptAt), DeliveredAt: tsPtr(e.DeliveredAt), LastError: e.LastError, CreatedAt: ts(e.CreatedAt),
	}
	switch {
	case e.DeliveredAt != nil:
		out.Status, out.NextAttemptAt = "delivered", nil
	case e.FailedAt != nil:
		out.Status, out.NextAttemptAt = "failed", nil
	}
	return out
}

// listWebhookDeliveries lists the organization's delivery attempts, newest first.
func (s *Server) listWebhookDeliveries(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r, defaultLimit, maxLimit)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	ds, total, err := s.db.ListDeliveries(r.Context(), orgID(r), store.DeliveryFilter{EventID: q.Get("event_id"), CallID: q.Get("call_id"), Page: p})
	if err != nil {
		return err
	}
	out := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		out[i] = deliveryJSON{
			ID: d.ID, EventID: d.EventID, EventType: d.EventType, CallID: d.CallID, URL: d.URL, Attempt: d.Attempt,
			StatusCode: d.StatusCode, Error: d.Error, DurationMS: d.Duration.Milliseconds(), CreatedAt: ts(d.CreatedAt),
		}
	}
	return reply(w, http.StatusOK, map[string]any{"deliveries": out, "pagination": pagination(p, total)})
}

// listWebhookEvents lists the organization's webhook events, newest first.
func (s *Server) listWebhookEvents(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r, defaultLimit, maxLimit)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	typ := q.Get("event_type")
	if typ != "" && !slices.Contains(webhookEventTypes, typ) {
		return fault.Invalidf("event_type", "must be one of assistant-request, tool-calls, status-update, end-of-call-report (got %q)", typ)
	}
	evs, total, err := s.db.ListEvents(r.Context(), orgID(r), store.EventFilter{CallID: q.Get("call_id"), EventType: typ, Page: p})
	if err != nil {
		return err
	}
	out := make([]eventJSON, len(evs))
	for i := range evs {
		out[i] = eventObject(&evs[i])
	}
	return reply(w, http.StatusOK, map[string]any{"events": out, "pagination": pagination(p, total)})
}
