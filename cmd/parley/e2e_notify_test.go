package main

// End-to-end test of the notification e-mail: baresip calls `parley serve`
// configured with an SMTP server (STARTTLS, AUTH, DKIM), the assistant has
// notification addresses, and after the call each address receives one
// DKIM-signed mail with a text and an HTML part carrying the summary, the
// analysis, the transcript and a recording link that downloads the call.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/parley-voice/parley/internal/mail/mailtest"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

func TestE2ENotificationEmail(t *testing.T) {
	if inNetns(t) {
		return
	}
	smtp := mailtest.Start(t, mailtest.Config{Username: "parley", Password: "smtp-pw"})
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startE2EWith(t, openaifake.Config{Respond: reportModel("Sure, I can book tomorrow morning for you.")},
		"PARLEY_SMTP_HOST="+smtp.Host, "PARLEY_SMTP_PORT="+strconv.Itoa(smtp.Port), "PARLEY_SMTP_CA="+smtp.CAFile,
		"PARLEY_SMTP_USERNAME=parley", "PARLEY_SMTP_PASSWORD=smtp-pw", "PARLEY_SMTP_FROM=Parley <calls@parley.example.com>",
		"PARLEY_SMTP_DKIM_SELECTOR=p1", "PARLEY_SMTP_DKIM_KEY_FILE="+keyFile)
	schema := `{"type":"object","properties":{"intent":{"type":"string"},"appointment_booked":{"type":"boolean"},"day":{"type":"string"}},"required":["intent","appointment_booked"]}`
	s.setupNumber(t, `,"recording_enabled":true,"notification_email":"ops@example.org","notification_emails":["boss@example.org","ops@example.org"],
		"analysis_plan":{"structured_data_plan":{"enabled":true,"schema":`+schema+`,
			"messages":[{"role":"system","content":"Extract {{schema}} from this call."},{"role":"user","content":"{{transcript}}"}]},
			"min_messages_threshold":2}`)
	script := []segment{{silence: 4 * time.Second}, {say: "book an appointment for tomorrow morning"}, {silence: 6 * time.Second}}
	dial(t, s, callerWAV(t, t.TempDir(), script))

	got := smtp.Wait(2, 30*time.Second)
	time.Sleep(time.Second) // no third mail follows
	if got = smtp.Messages(); len(got) != 2 {
		t.Fatalf("%d mails, want one per address", len(got))
	}
	to := map[string]bool{}
	for _, m := range got {
		to[m.To[0]] = true
		if !m.TLS || m.AuthUser != "parley" || m.From != "calls@parley.example.com" || len(m.To) != 1 {
			t.Fatalf("envelope %+v", m)
		}
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
			if name != "p1._domainkey.parley.example.com" {
				return nil, errors.New("no record " + name)
			}
			return []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
		}})
		if err != nil || len(vs) != 1 || vs[0].Err != nil {
			t.Fatalf("DKIM: %v %+v", err, vs)
		}
		_, text, html := mailtest.Parts(t, m.Data)
		for _, want := range []string{reportSummary, "Intent: book_appointment", "Appointment booked: yes", "End reason:  user_hangup",
			"Caller: book an appointment for tomorrow morning", "Assistant: Hello, this is the dental office.", s.base + "/api/v1/calls/"} {
			if !strings.Contains(text, want) {
				t.Errorf("text part lacks %q:\n%s", want, text)
			}
		}
		if !strings.Contains(html, reportSummary) || !strings.Contains(html, "<h2") {
			t.Errorf("html part:\n%s", html)
		}
		link := regexp.MustCompile(`Recording:\s+(\S+)`).FindStringSubmatch(text)
		if link == nil {
			t.Fatalf("no recording link:\n%s", text)
		}
		if rec := httpGet(t, link[1], ""); rec.status != 200 || rec.header.Get("Content-Type") != "audio/wav" {
			t.Fatalf("GET the mail's recording link = %d", rec.status)
		}
	}
	if !to["ops@example.org"] || !to["boss@example.org"] {
		t.Fatalf("recipients %v", to)
	}
}
