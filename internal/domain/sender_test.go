package domain_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/parley-voice/parley/internal/domain"
	"github.com/parley-voice/parley/internal/mail"
	"github.com/parley-voice/parley/internal/provider/resend"
	"github.com/parley-voice/parley/internal/provider/resend/resendfake"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
)

// TestResendSender sends a notification through an organization's own
// Resend account: the sender exists only with a Resend key, a retried
// message (same Message-ID) is delivered once, and Resend's refusals are
// permanent while its outages are retried.
func TestResendSender(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	keys, err := secret.NewKeyring(bytes.Repeat([]byte{3}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	const key = "re_sender_test_key"
	fake := resendfake.New(resendfake.Config{Keys: []string{key}})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	rc, err := resend.New(resend.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	svc := domain.New(domain.Config{Store: db, Keyring: keys, Resend: rc})

	org := &store.Org{Name: "Clinic", MinutesBalance: 10}
	if err := db.CreateOrg(ctx, org, nil); err != nil {
		t.Fatal(err)
	}
	if s, ok, err := svc.ResendSenderFor(ctx, org.ID); s != nil || ok || err != nil {
		t.Fatalf("without a Resend key: sender %v, %v, %v; want none and no error", s, ok, err)
	}
	sealed := keys.Seal([]byte(key), secret.Binding{OrgID: org.ID, Table: "byok_keys", Field: "resend"})
	if err := db.PutBYOKKey(ctx, &store.BYOKKey{OrgID: org.ID, Provider: "resend", SecretID: "resend_secret_1", Sealed: sealed}); err != nil {
		t.Fatal(err)
	}
	fake.MarkVerified(fake.AddDomain(key, "mail.clinic.example", "eu-west-1"))
	sender, ok, err := svc.ResendSenderFor(ctx, org.ID)
	if err != nil || !ok {
		t.Fatalf("with a Resend key: %v, %v", ok, err)
	}

	m := mail.Message{From: "Clinic <notifications@mail.clinic.example>", To: []string{"desk@clinic.example"}, Subject: "Call ended",
		Text: "Summary: booked.", HTML: "<p>Summary: booked.</p>", MessageID: "notify-abc@voice.example.com",
		Headers: map[string]string{"X-Parley-Call-Id": "call-1"}}
	for range 2 { // the second is a job run again after a lost answer
		if err := sender.Send(ctx, m); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	sent := fake.Emails()
	if len(sent) != 1 {
		t.Fatalf("Resend got %d e-mails for one Message-ID sent twice, want 1", len(sent))
	}
	got := sent[0]
	if got.Key != key || got.From != m.From || len(got.To) != 1 || got.To[0] != m.To[0] || got.Subject != m.Subject ||
		got.Text != m.Text || got.HTML != m.HTML || got.IdempotencyKey != m.MessageID || got.Headers["X-Parley-Call-Id"] != "call-1" {
		t.Fatalf("Resend got %+v", got)
	}

	for _, tc := range []struct {
		name      string
		fail      resendfake.Failure
		permanent bool
	}{
		{"validation refused", resendfake.Failure{Status: http.StatusUnprocessableEntity, Name: "validation_error", Message: "The mail.clinic.example domain is not verified."}, true},
		{"key refused", resendfake.Failure{Status: http.StatusUnauthorized, Name: "missing_api_key", Message: "Missing API key"}, true},
		{"rate limited", resendfake.Failure{Status: http.StatusTooManyRequests, Name: "rate_limit_exceeded", Message: "Too many requests", RetryAfter: 1}, false},
		{"down", resendfake.Failure{Status: http.StatusServiceUnavailable, Name: "internal_server_error", Message: "Unavailable"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake.Fail(tc.fail)
			m := m
			m.MessageID = "notify-" + tc.name + "@voice.example.com"
			err := sender.Send(ctx, m)
			if err == nil {
				t.Fatal("send succeeded while Resend refused it")
			}
			if mail.IsPermanent(err) != tc.permanent {
				t.Fatalf("permanent = %v, want %v (%v)", mail.IsPermanent(err), tc.permanent, err)
			}
		})
	}
	// A message Parley would never send is refused before Resend sees it.
	bad := m
	bad.To = []string{"not an address"}
	if err := sender.Send(ctx, bad); !mail.IsPermanent(err) {
		t.Fatalf("bad recipient: %v, want a permanent error", err)
	}
}
