package resend_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/provider/resend"
	"github.com/parley-voice/parley/internal/provider/resend/resendfake"
)

const key = "re_test_123"

func setup(t *testing.T, cfg resendfake.Config) (*resendfake.Server, *resend.Client) {
	t.Helper()
	cfg.Keys = append(cfg.Keys, key)
	fake := resendfake.New(cfg)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := resend.New(resend.Config{BaseURL: srv.URL, UserAgent: "parley/test"})
	if err != nil {
		t.Fatal(err)
	}
	return fake, c
}

func TestDomainLifecycle(t *testing.T) {
	for _, camel := range []bool{false, true} {
		t.Run(fmt.Sprintf("createdAtCamel=%v", camel), func(t *testing.T) {
			fake, c := setup(t, resendfake.Config{CreatedAtCamel: camel})
			ctx := context.Background()
			before := time.Now().Add(-time.Second)
			d, err := c.CreateDomain(ctx, key, resend.CreateDomain{Name: "mail.example.com", Region: "eu-west-1", IdempotencyKey: "create-1"})
			if err != nil {
				t.Fatal(err)
			}
			if d.ID == "" || d.Name != "mail.example.com" || d.Status != "not_started" || d.Region != "eu-west-1" || d.CreatedAt.Before(before) {
				t.Fatalf("created = %+v", d)
			}
			if len(d.Records) != 3 || d.Records[0].Type != "MX" || d.Records[0].Priority == nil || *d.Records[0].Priority != 10 ||
				d.Records[0].Value != "feedback-smtp.eu-west-1.amazonses.com" || d.Records[2].Record != "DKIM" || d.Records[1].TTL != "Auto" {
				t.Fatalf("records = %+v", d.Records)
			}
			if err := c.VerifyDomain(ctx, key, d.ID); err != nil {
				t.Fatal(err)
			}
			got, err := c.GetDomain(ctx, key, d.ID)
			if err != nil || got.Status != "pending" || got.Records[0].Status != "pending" || !got.CreatedAt.Equal(d.CreatedAt.Truncate(time.Microsecond)) {
				t.Fatalf("after verify = %+v, %v (created %v)", got, err, d.CreatedAt)
			}
			fake.MarkVerified(d.ID)
			if got, err = c.GetDomain(ctx, key, d.ID); err != nil || got.Status != "verified" || got.Records[2].Status != "verified" {
				t.Fatalf("after MarkVerified = %+v, %v", got, err)
			}
			if err := c.DeleteDomain(ctx, key, d.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetDomain(ctx, key, d.ID); !errors.Is(err, resend.ErrNotFound) {
				t.Fatalf("get after delete: %v", err)
			}
			if err := c.DeleteDomain(ctx, key, d.ID); !errors.Is(err, resend.ErrNotFound) {
				t.Fatalf("second delete: %v", err)
			}

			reqs := fake.Requests()
			for _, r := range reqs {
				if r.Key != key || r.UserAgent != "parley/test" {
					t.Errorf("%s %s: key %q, user agent %q", r.Method, r.Path, r.Key, r.UserAgent)
				}
				if (r.Method == "POST") != (r.IdempotencyKey != "") {
					t.Errorf("%s %s: Idempotency-Key %q", r.Method, r.Path, r.IdempotencyKey)
				}
			}
			if reqs[0].IdempotencyKey != "create-1" || reqs[0].ContentType != "application/json" || !strings.HasPrefix(reqs[1].IdempotencyKey, "parley-") {
				t.Errorf("requests = %+v", reqs[:2])
			}
		})
	}
}

func TestListDomainsPages(t *testing.T) {
	fake, c := setup(t, resendfake.Config{})
	other := "re_other"
	fake.AddKey(other)
	fake.AddDomain(other, "theirs.example.org", "")
	for i := range 230 {
		fake.AddDomain(key, fmt.Sprintf("d%03d.example.com", i), "eu-west-1")
	}
	list, err := c.ListDomains(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 230 {
		t.Fatalf("listed %d domains, want 230", len(list))
	}
	seen := map[string]bool{}
	for _, d := range list {
		if seen[d.ID] || d.Name == "theirs.example.org" || d.Status != "not_started" || d.Region != "eu-west-1" || d.CreatedAt.IsZero() || d.Records != nil {
			t.Fatalf("listed %+v", d)
		}
		seen[d.ID] = true
	}
	var pages []string
	for _, r := range fake.Requests() {
		pages = append(pages, r.Query)
	}
	if len(pages) != 3 || pages[0] != "limit=100" || !strings.Contains(pages[1], "after=") {
		t.Errorf("page queries = %q", pages)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	fake, c := setup(t, resendfake.Config{})

	_, err := c.GetDomain(ctx, "re_unknown", "x")
	e, ok := resend.AsError(err)
	if !errors.Is(err, resend.ErrAuth) || !ok || e.Status != 403 || e.Name != "invalid_api_key" {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := c.GetDomain(ctx, "", "x"); !errors.Is(err, resend.ErrAuth) {
		t.Fatalf("no key: %v", err)
	}

	_, err = c.CreateDomain(ctx, key, resend.CreateDomain{Name: "mail.example.com", Region: "mars-1"})
	if e, _ := resend.AsError(err); !errors.Is(err, resend.ErrInvalid) || e.Status != 422 || e.Name != "invalid_region" || !strings.Contains(e.Message, "eu-west-1") {
		t.Fatalf("bad region: %v", err)
	}

	fake.Fail(resendfake.Failure{Status: 429, Name: "rate_limit_exceeded", Message: "Too many requests. You can only make 2 requests per second.", RetryAfter: 7})
	_, err = c.ListDomains(ctx, key)
	if e, _ := resend.AsError(err); !errors.Is(err, resend.ErrRateLimited) || e.RetryAfter != 7*time.Second || !strings.Contains(err.Error(), "2 requests per second") {
		t.Fatalf("429: %v", err)
	}

	fake.Fail(resendfake.Failure{Status: 500, Name: "internal_server_error", Message: "An unexpected error occurred."})
	if err := c.VerifyDomain(ctx, key, "x"); !errors.Is(err, resend.ErrUnavailable) {
		t.Fatalf("500: %v", err)
	}
	fake.Fail(resendfake.Failure{Status: 409, Name: "concurrent_idempotent_requests", Message: "Same idempotency key used while original request is still in progress."})
	if _, err := c.CreateDomain(ctx, key, resend.CreateDomain{Name: "a.example.com"}); !errors.Is(err, resend.ErrConflict) {
		t.Fatalf("409: %v", err)
	}
	if errors.Is(err, resend.ErrNotFound) {
		t.Fatal("a 409 matches ErrNotFound")
	}
}

// TestTransport covers answers that are not Resend's: an HTML error page, an
// oversized body, no answer in time, and a caller that gives up.
func TestTransport(t *testing.T) {
	ctx := context.Background()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/domains/html":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			fmt.Fprint(w, "<html>Bad Gateway</html>")
		case "/domains/big":
			fmt.Fprintf(w, `{"id":"big","name":"%s"}`, strings.Repeat("x", 2000))
		case "/domains/garbage":
			fmt.Fprint(w, `{"id":`)
		case "/domains/slow":
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	defer close(block)
	c, err := resend.New(resend.Config{BaseURL: srv.URL + "/", MaxResponseBytes: 1000, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetDomain(ctx, key, "html")
	if e, _ := resend.AsError(err); !errors.Is(err, resend.ErrUnavailable) || e.Status != 502 || e.Message != "<html>Bad Gateway</html>" {
		t.Errorf("HTML 502: %v", err)
	}
	if _, err := c.GetDomain(ctx, key, "big"); !errors.Is(err, resend.ErrUnavailable) || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Errorf("big: %v", err)
	}
	if _, err := c.GetDomain(ctx, key, "garbage"); !errors.Is(err, resend.ErrUnavailable) {
		t.Errorf("garbage: %v", err)
	}
	start := time.Now()
	if _, err := c.GetDomain(ctx, key, "slow"); !errors.Is(err, resend.ErrUnavailable) || !strings.Contains(err.Error(), "in time") || time.Since(start) > 5*time.Second {
		t.Errorf("slow: %v after %v", err, time.Since(start))
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := c.GetDomain(cctx, key, "slow"); !errors.Is(err, context.Canceled) || errors.Is(err, resend.ErrUnavailable) {
		t.Errorf("cancelled by the caller: %v", err)
	}
	if _, err := resend.New(resend.Config{BaseURL: "ftp://x"}); err == nil {
		t.Error("ftp base URL accepted")
	}
}

func TestSendEmail(t *testing.T) {
	ctx := context.Background()
	fake, c := setup(t, resendfake.Config{})
	id := fake.AddDomain(key, "mail.example.com", "eu-west-1")
	msg := resend.Email{From: "Parley <calls@mail.example.com>", To: []string{"a@example.net", "b@example.net"}, Subject: "Call report",
		HTML: "<p>Hi</p>", Text: "Hi", ReplyTo: []string{"support@example.com"}, Headers: map[string]string{"X-Parley-Call": "call-1"}, IdempotencyKey: "report-call-1"}

	_, err := c.SendEmail(ctx, key, msg)
	if e, _ := resend.AsError(err); !errors.Is(err, resend.ErrInvalid) || e.Status != 403 || !strings.Contains(e.Message, "mail.example.com domain is not verified") {
		t.Fatalf("unverified domain: %v", err)
	}
	fake.MarkVerified(id)
	first, err := c.SendEmail(ctx, key, msg)
	if err != nil || first == "" {
		t.Fatalf("send: %q, %v", first, err)
	}
	again, err := c.SendEmail(ctx, key, msg)
	if err != nil || again != first {
		t.Fatalf("retried send = %q, %v; want the first id %q", again, err, first)
	}
	got := fake.Emails()
	if len(got) != 1 {
		t.Fatalf("%d e-mails stored, want 1", len(got))
	}
	e := got[0]
	if e.ID != first || e.From != msg.From || strings.Join(e.To, ",") != "a@example.net,b@example.net" || e.Subject != "Call report" || e.HTML != "<p>Hi</p>" ||
		e.Text != "Hi" || e.ReplyTo[0] != "support@example.com" || e.Headers["X-Parley-Call"] != "call-1" || e.IdempotencyKey != "report-call-1" {
		t.Fatalf("stored %+v", e)
	}
	if _, err := c.SendEmail(ctx, key, resend.Email{From: msg.From, Subject: "x", Text: "x"}); !errors.Is(err, resend.ErrInvalid) {
		t.Fatalf("no recipient: %v", err)
	}
	msg.IdempotencyKey = ""
	msg.To = []string{"not an address"}
	if _, err := c.SendEmail(ctx, key, msg); !errors.Is(err, resend.ErrInvalid) {
		t.Fatalf("bad recipient: %v", err)
	}
}
