package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

func TestOrganizationWebhook(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		r := e.must(200, "GET", "/api/v1/organizations", nil)
		if v, ok := r.Body["webhook_url"]; !ok || v != nil || r.Body["webhook_secret_set"] != false {
			t.Fatalf("fresh org = %s", r.Raw)
		}
		r = e.must(200, "PATCH", "/api/v1/organizations", map[string]any{"webhook_url": "HTTPS://Hooks.Example.com:443/parley", "webhook_secret": "whsec-org-secret-123"})
		if r.Body["webhook_url"] != "https://hooks.example.com/parley" || r.Body["webhook_secret_set"] != true || r.Body["content_retention_days"] != nil {
			t.Fatalf("after set = %s", r.Raw)
		}
		for _, raw := range [][]byte{r.Raw, e.must(200, "GET", "/api/v1/organizations", nil).Raw, e.must(200, "GET", "/api/v1/organizations?include_children=true", nil).Raw} {
			if strings.Contains(string(raw), "whsec") || strings.Contains(string(raw), `"webhook_secret"`) {
				t.Fatalf("secret returned: %s", raw)
			}
		}
		o, err := e.db.GetOrg(ctx, e.orgA)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := e.keys.Open(*o.WebhookSecret, secret.Binding{OrgID: e.orgA, Table: "organizations", Field: "webhook_secret"})
		if err != nil || string(plain) != "whsec-org-secret-123" {
			t.Fatalf("stored secret = %q, %v", plain, err)
		}
		if g := e.do("GET", "/api/v1/organizations", e.keyB, nil); g.Body["webhook_url"] != nil || g.Body["webhook_secret_set"] != false {
			t.Fatalf("org B sees A's webhook: %s", g.Raw)
		}

		// Each member changes only when sent.
		r = e.must(200, "PATCH", "/api/v1/organizations", map[string]any{"webhook_url": "https://other.example.com/h"})
		if r.Body["webhook_url"] != "https://other.example.com/h" || r.Body["webhook_secret_set"] != true {
			t.Fatalf("url only = %s", r.Raw)
		}
		r = e.must(200, "PATCH", "/api/v1/organizations", map[string]any{"content_retention_days": 30, "metadata_retention_days": 90})
		if r.Body["webhook_url"] != "https://other.example.com/h" || r.Body["webhook_secret_set"] != true || r.Body["content_retention_days"] != float64(30) {
			t.Fatalf("retention only = %s", r.Raw)
		}
		r = e.must(200, "PATCH", "/api/v1/organizations", map[string]any{"webhook_secret": nil})
		if r.Body["webhook_url"] != "https://other.example.com/h" || r.Body["webhook_secret_set"] != false {
			t.Fatalf("secret cleared = %s", r.Raw)
		}
		r = e.must(200, "PATCH", "/api/v1/organizations", map[string]any{"webhook_url": nil, "webhook_secret": "s2", "metadata_retention_days": 365, "content_retention_days": 90})
		if r.Body["webhook_url"] != nil || r.Body["webhook_secret_set"] != true || r.Body["metadata_retention_days"] != float64(365) {
			t.Fatalf("url cleared = %s", r.Raw)
		}

		for _, bad := range []any{"http://hooks.example.com/h", "https://10.0.0.1/h", "https://localhost/h", "hooks.example.com", "https://u:p@hooks.example.com", 5, ""} {
			e.do("PATCH", "/api/v1/organizations", e.keyA, map[string]any{"webhook_url": bad}).wantError(t, 400, "", "webhook_url")
		}
		e.do("PATCH", "/api/v1/organizations", e.keyA, map[string]any{"webhook_secret": ""}).wantError(t, 400, "", "webhook_secret")
		e.do("PATCH", "/api/v1/organizations", e.keyA, map[string]any{"webhook_secret": true}).wantError(t, 400, "", "webhook_secret")
		e.do("PATCH", "/api/v1/organizations", e.keyA, map[string]any{}).wantError(t, 400, "missing_field", "webhook_url")
		e.do("PATCH", "/api/v1/organizations", e.keyA, map[string]any{"webhook_url": "https://ok.example.com", "webhook_events": []any{}}).wantError(t, 400, "unknown_field", "webhook_events")
		// A refused request changes nothing.
		e.do("PATCH", "/api/v1/organizations", e.keyA, map[string]any{"webhook_url": "https://ok.example.com", "content_retention_days": 45, "metadata_retention_days": 90}).wantError(t, 400, "", "content_retention_days")
		if g := e.must(200, "GET", "/api/v1/organizations", nil); g.Body["webhook_url"] != nil {
			t.Fatalf("refused PATCH stored the url: %s", g.Raw)
		}
	})
	// http:// and private addresses are accepted in development.
	forEachEngine(t, httpapi.Config{AllowPrivateURLs: true}, func(t *testing.T, e *env) {
		if r := e.must(200, "PATCH", "/api/v1/organizations", map[string]any{"webhook_url": "http://127.0.0.1:9000/hook"}); r.Body["webhook_url"] != "http://127.0.0.1:9000/hook" {
			t.Fatalf("dev url = %s", r.Raw)
		}
	})
}

func TestWebhookLog(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
		callA := "call-_+31623731537_Webhooks0001"
		sealed := "v1:sealed-signing-secret"
		evs := []store.OutboxEvent{
			{OrgID: e.orgA, CallID: &callA, Seq: 1, EventType: "status-update", URL: "https://a.example.com/hook", Secret: &sealed, Payload: []byte(`{"message":{"type":"status-update","secret-payload":1}}`), CreatedAt: base},
			{OrgID: e.orgA, CallID: &callA, Seq: 2, EventType: "end-of-call-report", URL: "https://a.example.com/hook", Payload: []byte(`{}`), CreatedAt: base.Add(time.Second)},
			{OrgID: e.orgA, EventType: "status-update", URL: "https://a.example.com/hook", Payload: []byte(`{}`), CreatedAt: base.Add(2 * time.Second)},
			{OrgID: e.orgB, EventType: "status-update", URL: "https://b.example.com/hook", Payload: []byte(`{}`), CreatedAt: base},
		}
		if err := e.db.EnqueueEvents(ctx, evs...); err != nil {
			t.Fatal(err)
		}
		if err := e.db.MarkDelivered(ctx, evs[0].ID, base.Add(3*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := e.db.FailEvent(ctx, evs[1].ID, base.Add(4*time.Second), "receiver answered 410"); err != nil {
			t.Fatal(err)
		}
		for _, d := range []*store.Delivery{
			{OrgID: e.orgA, EventID: evs[0].ID, EventType: "status-update", CallID: &callA, URL: "https://a.example.com/hook", Attempt: 1, StatusCode: ptr(500), Error: ptr("receiver answered 500"), Duration: 1234 * time.Millisecond, CreatedAt: base.Add(time.Second)},
			{OrgID: e.orgA, EventID: evs[0].ID, EventType: "status-update", CallID: &callA, URL: "https://a.example.com/hook", Attempt: 2, StatusCode: ptr(200), Duration: 87 * time.Millisecond, CreatedAt: base.Add(3 * time.Second)},
			{OrgID: e.orgA, EventID: evs[2].ID, EventType: "status-update", URL: "https://a.example.com/hook", Attempt: 1, Error: ptr("dial tcp: connection refused"), CreatedAt: base.Add(4 * time.Second)},
			{OrgID: e.orgB, EventID: evs[3].ID, EventType: "status-update", URL: "https://b.example.com/hook", Attempt: 1, StatusCode: ptr(204), CreatedAt: base},
		} {
			if err := e.db.LogDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
		}

		r := e.must(200, "GET", "/api/v1/webhook-deliveries", nil)
		ds := r.list(t, "deliveries")
		if len(ds) != 3 || r.obj(t, "pagination")["total"] != float64(3) || r.obj(t, "pagination")["limit"] != float64(100) {
			t.Fatalf("deliveries = %s", r.Raw)
		}
		newest := ds[0].(map[string]any)
		if newest["event_id"] != evs[2].ID || newest["status_code"] != nil || newest["error"] != "dial tcp: connection refused" || newest["call_id"] != nil ||
			newest["duration_ms"] != float64(0) || newest["created_at"] != "2026-11-22T10:00:04.000Z" || newest["attempt"] != float64(1) {
			t.Fatalf("newest delivery = %v", newest)
		}
		if oldest := ds[2].(map[string]any); oldest["status_code"] != float64(500) || oldest["duration_ms"] != float64(1234) || oldest["call_id"] != callA ||
			oldest["event_type"] != "status-update" || oldest["url"] != "https://a.example.com/hook" || oldest["id"] == "" {
			t.Fatalf("oldest delivery = %v", oldest)
		}
		if len(newest) != 10 {
			t.Fatalf("delivery has %d members: %v", len(newest), newest)
		}
		if l := e.must(200, "GET", "/api/v1/webhook-deliveries?event_id="+evs[0].ID, nil).list(t, "deliveries"); len(l) != 2 {
			t.Fatalf("by event = %v", l)
		}
		if l := e.must(200, "GET", "/api/v1/webhook-deliveries?call_id="+strings.ReplaceAll(callA, "+", "%2B"), nil).list(t, "deliveries"); len(l) != 2 {
			t.Fatalf("by call = %v", l)
		}
		r = e.must(200, "GET", "/api/v1/webhook-deliveries?limit=1&offset=1", nil)
		if l := r.list(t, "deliveries"); len(l) != 1 || l[0].(map[string]any)["attempt"] != float64(2) || r.obj(t, "pagination")["offset"] != float64(1) {
			t.Fatalf("paged deliveries = %s", r.Raw)
		}
		if r := e.do("GET", "/api/v1/webhook-deliveries", e.keyB, nil); len(r.list(t, "deliveries")) != 1 || strings.Contains(string(r.Raw), "a.example.com") {
			t.Fatalf("org B deliveries = %s", r.Raw)
		}
		if l := e.do("GET", "/api/v1/webhook-deliveries?event_id="+evs[0].ID, e.keyB, nil).list(t, "deliveries"); len(l) != 0 {
			t.Fatalf("org B reads A's deliveries by event id: %v", l)
		}
		e.do("GET", "/api/v1/webhook-deliveries?limit=0", e.keyA, nil).wantError(t, 400, "", "limit")

		r = e.must(200, "GET", "/api/v1/webhook-events", nil)
		events := r.list(t, "events")
		if len(events) != 3 || r.obj(t, "pagination")["total"] != float64(3) {
			t.Fatalf("events = %s", r.Raw)
		}
		if strings.Contains(string(r.Raw), "secret-payload") || strings.Contains(string(r.Raw), "sealed-signing-secret") || strings.Contains(string(r.Raw), "payload") {
			t.Fatalf("events leak payload or secret: %s", r.Raw)
		}
		byID := map[string]map[string]any{}
		for _, ev := range events {
			m := ev.(map[string]any)
			byID[m["id"].(string)] = m
			if len(m) != 11 {
				t.Fatalf("event has %d members: %v", len(m), m)
			}
		}
		if d := byID[evs[0].ID]; d["status"] != "delivered" || d["delivered_at"] != "2026-11-22T10:00:03.000Z" || d["next_attempt_at"] != nil || d["seq"] != float64(1) || d["call_id"] != callA {
			t.Fatalf("delivered event = %v", d)
		}
		if f := byID[evs[1].ID]; f["status"] != "failed" || f["last_error"] != "receiver answered 410" || f["next_attempt_at"] != nil || f["event_type"] != "end-of-call-report" {
			t.Fatalf("failed event = %v", f)
		}
		if p := byID[evs[2].ID]; p["status"] != "pending" || p["next_attempt_at"] != "2026-11-22T10:00:02.000Z" || p["delivered_at"] != nil || p["attempts"] != float64(0) || p["call_id"] != nil {
			t.Fatalf("pending event = %v", p)
		}
		if l := e.must(200, "GET", "/api/v1/webhook-events?event_type=end-of-call-report", nil).list(t, "events"); len(l) != 1 {
			t.Fatalf("by type = %v", l)
		}
		if l := e.must(200, "GET", "/api/v1/webhook-events?call_id="+strings.ReplaceAll(callA, "+", "%2B"), nil).list(t, "events"); len(l) != 2 {
			t.Fatalf("by call = %v", l)
		}
		e.do("GET", "/api/v1/webhook-events?event_type=call.started", e.keyA, nil).wantError(t, 400, "", "event_type")
		if r := e.do("GET", "/api/v1/webhook-events", e.keyB, nil); len(r.list(t, "events")) != 1 || strings.Contains(string(r.Raw), evs[0].ID) {
			t.Fatalf("org B events = %s", r.Raw)
		}
	})
}
