package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/domain"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/provider/resend/resendfake"
)

// wantError checks an error answer's status, code and (when given) param.
func wantError(t *testing.T, r resp, status int, code, param string) {
	t.Helper()
	if r.Status != status || r.Body["code"] != code || (param != "" && r.Body["param"] != param) {
		t.Fatalf("got %d code %v param %v, want %d %s %s: %s", r.Status, r.Body["code"], r.Body["param"], status, code, param, r.Raw)
	}
	if msg, _ := r.Body["error"].(string); msg == "" {
		t.Fatalf("error answer without a message: %s", r.Raw)
	}
}

// resendKey stores key as org A's Resend BYOK key and opens an account for
// it at the fake Resend.
func (e *env) resendKey(key string) {
	e.t.Helper()
	e.resend.AddKey(key)
	e.must(200, "POST", "/api/v1/byok", map[string]any{"provider": "resend", "api_key": key})
}

// TestDomainsLifecycle: create → records → verify → refresh → delete against
// the fake Resend, SDK-NEW spellings, and other organizations kept out.
func TestDomainsLifecycle(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		r := e.do("GET", "/api/v1/domains", e.keyA, nil)
		wantError(t, r, 404, "not_found", "")
		if !strings.Contains(r.Body["error"].(string), "POST /domains") {
			t.Errorf("404 without a hint: %s", r.Raw)
		}
		wantError(t, e.do("POST", "/api/v1/domains", e.keyA, map[string]any{"domain_name": "mail.example.com"}), 400, "resend_key_missing", "")
		e.resendKey("re_org_a")
		for _, bad := range []any{"bad domain", "localhost", "10.0.0.1", "", 42, nil} {
			r := e.do("POST", "/api/v1/domains", e.keyA, map[string]any{"domain_name": bad})
			if r.Status != 400 || r.Body["param"] != "domain_name" {
				t.Errorf("domain_name %v = %d %s", bad, r.Status, r.Raw)
			}
		}
		wantError(t, e.do("POST", "/api/v1/domains", e.keyA, map[string]any{}), 400, "missing_field", "domain_name")
		wantError(t, e.do("POST", "/api/v1/domains", e.keyA, map[string]any{"domain_name": "a.example.com", "region": "moon-1"}), 400, "invalid_field", "region")
		wantError(t, e.do("POST", "/api/v1/domains", e.keyA, map[string]any{"domain_name": "a.example.com", "color": "red"}), 400, "unknown_field", "color")
		if n := len(e.resend.Requests()); n != 0 {
			t.Fatalf("refused requests reached Resend %d times", n)
		}

		d := e.must(201, "POST", "/api/v1/domains", map[string]any{"domain_name": "Mail.Example.com."}).Body
		rid, _ := d["resend_domain_id"].(string)
		if d["domain_name"] != "mail.example.com" || d["domain"] != "mail.example.com" || d["verified"] != false || d["status"] != "not_started" ||
			d["region"] != "eu-west-1" || d["org_id"] != e.orgA || rid == "" || d["verified_at"] != nil || d["created_at"] == nil || d["updated_at"] == nil {
			t.Fatalf("created %v", d)
		}
		recs, _ := d["records"].([]any)
		if len(recs) != 3 {
			t.Fatalf("records = %v", d["records"])
		}
		mx := recs[0].(map[string]any)
		if mx["type"] != "MX" || mx["priority"] != float64(10) || mx["value"] != "feedback-smtp.eu-west-1.amazonses.com" || mx["status"] != "not_started" {
			t.Fatalf("MX record = %v", mx)
		}
		if got := e.resend.Requests()[0]; got.Key != "re_org_a" || got.IdempotencyKey != "parley-domain-"+d["id"].(string) {
			t.Errorf("create request = %+v", got)
		}
		wantError(t, e.do("POST", "/api/v1/domains", e.keyA, map[string]any{"domain_name": "other.example.com"}), 409, "domain_exists", "")
		if got := e.must(200, "GET", "/api/v1/domains", nil).Body; got["id"] != d["id"] || got["resend_domain_id"] != rid {
			t.Fatalf("GET = %v", got)
		}

		// Organization B sees none of it.
		for _, rt := range []struct{ method, path string }{{"GET", "/api/v1/domains"}, {"DELETE", "/api/v1/domains"}, {"POST", "/api/v1/domains/verify"}, {"POST", "/api/v1/domains/refresh"}} {
			wantError(t, e.do(rt.method, rt.path, e.keyB, nil), 404, "not_found", "")
		}
		wantError(t, e.do("GET", "/api/v1/domains/sync", e.keyB, nil), 400, "resend_key_missing", "")
		svc := e.deps.Domains.(*domain.Service)
		if name, ok, err := svc.VerifiedDomain(context.Background(), e.orgA); ok || err != nil || name != "" {
			t.Fatalf("VerifiedDomain before verification = %q, %v, %v", name, ok, err)
		}

		v := e.must(200, "POST", "/api/v1/domains/verify", nil).Body
		if v["verified"] != false || v["status"] != "pending" || e.resend.DomainStatus(rid) != "pending" {
			t.Fatalf("after verify %v (at Resend %s)", v, e.resend.DomainStatus(rid))
		}
		e.resend.MarkVerified(rid)
		f := e.must(200, "POST", "/api/v1/domains/refresh", "{}").Body
		if f["verified"] != true || f["status"] != "verified" || f["verified_at"] == nil || f["id"] != d["id"] {
			t.Fatalf("after refresh %v", f)
		}
		for _, rec := range f["records"].([]any) {
			if rec.(map[string]any)["status"] != "verified" {
				t.Fatalf("record after refresh %v", rec)
			}
		}
		if name, ok, err := svc.VerifiedDomain(context.Background(), e.orgA); !ok || err != nil || name != "mail.example.com" {
			t.Fatalf("VerifiedDomain = %q, %v, %v", name, ok, err)
		}
		if _, ok, err := svc.VerifiedDomain(context.Background(), e.orgB); ok || err != nil {
			t.Fatalf("VerifiedDomain of B = %v, %v", ok, err)
		}
		// Verifying a verified domain asks Resend nothing more than a read.
		before := len(e.resend.Requests())
		if v := e.must(200, "POST", "/api/v1/domains/verify", nil).Body; v["verified"] != true || v["verified_at"] != f["verified_at"] {
			t.Fatalf("verify again = %v", v)
		}
		if reqs := e.resend.Requests()[before:]; len(reqs) != 1 || reqs[0].Method != "GET" {
			t.Fatalf("verify of a verified domain sent %+v", reqs)
		}

		s := e.must(200, "GET", "/api/v1/domains/sync", nil).Body
		list, _ := s["domains"].([]any)
		if len(list) != 1 || s["selected_domain_id"] != rid || list[0].(map[string]any)["name"] != "mail.example.com" || list[0].(map[string]any)["status"] != "verified" {
			t.Fatalf("sync list = %s", e.do("GET", "/api/v1/domains/sync", e.keyA, nil).Raw)
		}

		if r := e.must(200, "DELETE", "/api/v1/domains", nil); r.Body["success"] != true {
			t.Fatalf("delete = %s", r.Raw)
		}
		if left := e.resend.Domains("re_org_a"); len(left) != 0 {
			t.Fatalf("left at Resend: %v", left)
		}
		wantError(t, e.do("GET", "/api/v1/domains", e.keyA, nil), 404, "not_found", "")
		wantError(t, e.do("DELETE", "/api/v1/domains", e.keyA, nil), 404, "not_found", "")
		if _, ok, err := svc.VerifiedDomain(context.Background(), e.orgA); ok || err != nil {
			t.Fatalf("VerifiedDomain after delete = %v, %v", ok, err)
		}
	})
}

// TestDomainsSDKOld: the older SDK's spellings ({"domain"}, {"domain_id"})
// and the members it reads (domain, verified); selecting a domain of the
// Resend account.
func TestDomainsSDKOld(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		e.resendKey("re_org_a")
		wantError(t, e.do("POST", "/api/v1/domains", e.keyA, map[string]any{"domain": "a.example.com", "domain_name": "b.example.com"}), 400, "invalid_field", "domain")
		wantError(t, e.do("POST", "/api/v1/domains", e.keyA, map[string]any{"domain": "not a domain"}), 400, "invalid_field", "domain_name")
		d := e.must(201, "POST", "/api/v1/domains", map[string]any{"domain": "old.example.com"}).Body
		if d["domain"] != "old.example.com" || d["verified"] != false || d["id"] == nil || d["created_at"] == nil {
			t.Fatalf("created %v", d)
		}
		wantError(t, e.do("POST", "/api/v1/domains/verify", e.keyA, map[string]any{"verified": true}), 400, "unknown_field", "verified")

		other := e.resend.AddDomain("re_org_a", "news.example.org", "us-east-1")
		e.resend.MarkVerified(other)
		s := e.must(200, "GET", "/api/v1/domains/sync", nil).Body
		if list, _ := s["domains"].([]any); len(list) != 2 || s["selected_domain_id"] != d["resend_domain_id"] {
			t.Fatalf("sync = %v", s)
		}
		wantError(t, e.do("POST", "/api/v1/domains/sync", e.keyA, map[string]any{}), 400, "missing_field", "resendDomainId")
		wantError(t, e.do("POST", "/api/v1/domains/sync", e.keyA, map[string]any{"domain_id": "no-such-domain"}), 400, "invalid_field", "resendDomainId")
		sel := e.must(200, "POST", "/api/v1/domains/sync", map[string]any{"domain_id": other}).Body
		if sel["success"] != true || sel["domain"] != "news.example.org" || sel["domain_name"] != "news.example.org" || sel["resend_domain_id"] != other ||
			sel["region"] != "us-east-1" || sel["verified"] != true || sel["verified_at"] == nil || sel["id"] == d["id"] {
			t.Fatalf("selected %v", sel)
		}
		// SDK-NEW's spelling selects the same one again: same row.
		again := e.must(200, "POST", "/api/v1/domains/sync", map[string]any{"resendDomainId": other}).Body
		if again["id"] != sel["id"] || again["created_at"] != sel["created_at"] || again["verified_at"] != sel["verified_at"] {
			t.Fatalf("selected again %v, first %v", again, sel)
		}
		if got := e.must(200, "GET", "/api/v1/domains", nil).Body; got["domain"] != "news.example.org" {
			t.Fatalf("GET after select = %v", got)
		}
		// The replaced domain stays in the Resend account.
		if names := e.resend.Domains("re_org_a"); len(names) != 2 {
			t.Fatalf("Resend account = %v", names)
		}
		// Organization B, with its own account, cannot select A's domain.
		e.resend.AddKey("re_org_b")
		if r := e.do("POST", "/api/v1/byok", e.keyB, map[string]any{"provider": "resend", "api_key": "re_org_b"}); r.Status != 200 {
			t.Fatal(r.Status)
		}
		wantError(t, e.do("POST", "/api/v1/domains/sync", e.keyB, map[string]any{"resendDomainId": other}), 400, "invalid_field", "resendDomainId")
		if s := e.do("GET", "/api/v1/domains/sync", e.keyB, nil).Body; len(s["domains"].([]any)) != 0 || s["selected_domain_id"] != nil {
			t.Fatalf("B's sync = %v", s)
		}
	})
}

// TestDomainsResendFailures: Resend's refusals, rate limit and outages
// become 400/429/503 with messages, and leave nothing half done.
func TestDomainsResendFailures(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		e.resendKey("re_org_a")
		create := map[string]any{"domain_name": "mail.example.com"}

		e.resend.Fail(resendfake.Failure{Status: 422, Name: "validation_error", Message: "Invalid domain name."})
		r := e.do("POST", "/api/v1/domains", e.keyA, create)
		wantError(t, r, 400, "resend_refused", "domain_name")
		if !strings.Contains(r.Body["error"].(string), "Invalid domain name.") {
			t.Errorf("422 message: %s", r.Raw)
		}
		wantError(t, e.do("GET", "/api/v1/domains", e.keyA, nil), 404, "not_found", "")

		e.resend.Fail(resendfake.Failure{Status: 429, Name: "rate_limit_exceeded", Message: "Too many requests. You can only make 2 requests per second.", RetryAfter: 7})
		r = e.do("POST", "/api/v1/domains", e.keyA, create)
		wantError(t, r, 429, "resend_rate_limited", "")
		if r.Header.Get("Retry-After") != "7" || !strings.Contains(r.Body["error"].(string), "2 requests per second") {
			t.Errorf("429: Retry-After %q, %s", r.Header.Get("Retry-After"), r.Raw)
		}
		e.resend.Fail(resendfake.Failure{Status: 500, Name: "application_error", Message: "Something went wrong."})
		r = e.do("POST", "/api/v1/domains", e.keyA, create)
		wantError(t, r, 503, "resend_unavailable", "")
		if !strings.Contains(r.Body["error"].(string), "Something went wrong.") {
			t.Errorf("500 message: %s", r.Raw)
		}
		wantError(t, e.do("GET", "/api/v1/domains", e.keyA, nil), 404, "not_found", "")

		d := e.must(201, "POST", "/api/v1/domains", create).Body
		e.resend.Fail(resendfake.Failure{Status: 500, Name: "internal_server_error", Message: "An unexpected error occurred."})
		wantError(t, e.do("POST", "/api/v1/domains/refresh", e.keyA, nil), 503, "resend_unavailable", "")
		e.resend.Fail(resendfake.Failure{Status: 500, Name: "internal_server_error", Message: "An unexpected error occurred."})
		wantError(t, e.do("DELETE", "/api/v1/domains", e.keyA, nil), 503, "resend_unavailable", "")
		e.resend.Fail(resendfake.Failure{Status: 404, Name: "not_found", Message: "Domain not found"})
		wantError(t, e.do("POST", "/api/v1/domains/verify", e.keyA, nil), 409, "resend_domain_gone", "")
		if got := e.must(200, "GET", "/api/v1/domains", nil).Body; got["id"] != d["id"] {
			t.Fatalf("domain after failures = %v", got)
		}

		// A key Resend does not take (deleted, or sending-only).
		e.must(200, "POST", "/api/v1/byok", map[string]any{"provider": "resend", "api_key": "re_revoked"})
		r = e.do("POST", "/api/v1/domains/refresh", e.keyA, nil)
		wantError(t, r, 400, "resend_key_refused", "")
		if !strings.Contains(r.Body["error"].(string), "POST /byok") {
			t.Errorf("key refusal without a hint: %s", r.Raw)
		}
		e.must(200, "POST", "/api/v1/byok", map[string]any{"provider": "resend", "api_key": "re_org_a"})

		// Resend no longer has it: deleted here all the same.
		e.resend.Fail(resendfake.Failure{Status: 404, Name: "not_found", Message: "Domain not found"})
		e.must(200, "DELETE", "/api/v1/domains", nil)
		if left := e.resend.Domains("re_org_a"); len(left) != 1 {
			t.Fatalf("Resend account = %v", left)
		}
		// Without a Resend key any more: deleted here, left in the account.
		e.must(201, "POST", "/api/v1/domains", map[string]any{"domain_name": "two.example.com"})
		e.must(200, "DELETE", "/api/v1/byok", map[string]any{"provider": "resend"})
		wantError(t, e.do("POST", "/api/v1/domains/refresh", e.keyA, nil), 400, "resend_key_missing", "")
		e.must(200, "DELETE", "/api/v1/domains", nil)
		if left := e.resend.Domains("re_org_a"); len(left) != 2 {
			t.Fatalf("Resend account = %v", left)
		}

		// Deleted while Resend was creating it: not left behind at Resend.
		e.resendKey("re_org_a")
		e.resend.BeforeServing(func(r resendfake.Request) {
			if r.Method == "POST" && r.Path == "/domains" {
				if d, err := e.db.GetDomain(context.Background(), e.orgA); err == nil {
					e.db.DeleteDomain(context.Background(), e.orgA, d.ID)
				}
			}
		})
		wantError(t, e.do("POST", "/api/v1/domains", e.keyA, map[string]any{"domain_name": "three.example.com"}), 404, "not_found", "")
		e.resend.BeforeServing(nil)
		if left := e.resend.Domains("re_org_a"); len(left) != 2 {
			t.Fatalf("Resend account after a create raced by a delete = %v", left)
		}

		// A server without the domain service answers 503.
		e.with(func(d *httpapi.Deps) { d.Domains = nil })
		wantError(t, e.do("GET", "/api/v1/domains", e.keyA, nil), 503, "domains_unavailable", "")
	})
}
