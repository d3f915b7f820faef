package mail_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"mime"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/parley-voice/parley/internal/mail"
	"github.com/parley-voice/parley/internal/mail/mailtest"
)

func message() mail.Message {
	return mail.Message{
		From: "Parley <notifications@example.com>", To: []string{"ops@example.org"},
		Subject: "Call ended\r\nBcc: evil@example.net", Text: "plain body\nsecond line", HTML: "<p>html body</p>",
		MessageID: "call-1.notify@example.com", Date: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
		Headers: map[string]string{"X-Parley-Call-Id": "call-1"},
	}
}

// TestSMTPStartTLSAuth: STARTTLS, AUTH PLAIN, a multipart/alternative
// message with both parts, the headers as given, no header injection.
func TestSMTPStartTLSAuth(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		srv := mailtest.Start(t, mailtest.Config{Implicit: implicit, Username: "parley", Password: "s3cret"})
		mode := mail.TLSStartTLS
		if implicit {
			mode = mail.TLSImplicit
		}
		s, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, TLS: mode, RootCAs: srv.CA,
			Username: "parley", Password: "s3cret", Auth: mail.AuthPlain, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), message()); err != nil {
			t.Fatalf("tls %s: %v", mode, err)
		}
		got := srv.Messages()
		if len(got) != 1 {
			t.Fatalf("tls %s: %d messages", mode, len(got))
		}
		m := got[0]
		if !m.TLS || m.AuthUser != "parley" || m.From != "notifications@example.com" || len(m.To) != 1 || m.To[0] != "ops@example.org" {
			t.Fatalf("tls %s: envelope %+v", mode, m)
		}
		h, text, html := mailtest.Parts(t, m.Data)
		if text != "plain body\r\nsecond line" && text != "plain body\nsecond line" {
			t.Errorf("text part %q", text)
		}
		if html != "<p>html body</p>" {
			t.Errorf("html part %q", html)
		}
		if h.Get("Message-Id") != "<call-1.notify@example.com>" || h.Get("X-Parley-Call-Id") != "call-1" || h.Get("Bcc") != "" {
			t.Errorf("headers %v", h)
		}
		if subj, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); subj != "Call ended Bcc: evil@example.net" {
			t.Errorf("subject %q", subj)
		}
		if d, err := h.Date(); err != nil || !d.Equal(message().Date) {
			t.Errorf("date %v %v", d, err)
		}
	}
}

// TestSMTPFailures: what is worth retrying and what is not.
func TestSMTPFailures(t *testing.T) {
	refusing := mailtest.Start(t, mailtest.Config{Rcpt: func(to string) error {
		switch {
		case strings.HasPrefix(to, "busy@"):
			return mailtest.Refuse(451, "try again later")
		case strings.HasPrefix(to, "gone@"):
			return mailtest.Refuse(550, "no such mailbox")
		}
		return nil
	}})
	authed := mailtest.Start(t, mailtest.Config{Username: "parley", Password: "right"})
	plain := mailtest.Start(t, mailtest.Config{NoTLS: true})
	cases := []struct {
		name      string
		srv       *mailtest.Server
		tls       mail.TLSMode
		user, pw  string
		to        string
		permanent bool
		sent      bool
	}{
		{"accepted", refusing, mail.TLSStartTLS, "", "", "ok@example.org", false, true},
		{"4xx recipient", refusing, mail.TLSStartTLS, "", "", "busy@example.org", false, false},
		{"5xx recipient", refusing, mail.TLSStartTLS, "", "", "gone@example.org", true, false},
		{"wrong password", authed, mail.TLSStartTLS, "parley", "wrong", "ok@example.org", true, false},
		{"no STARTTLS offered", plain, mail.TLSStartTLS, "", "", "ok@example.org", false, false},
		{"opportunistic without STARTTLS", plain, mail.TLSOpportunistic, "", "", "ok@example.org", false, true},
		{"invalid recipient", plain, mail.TLSNone, "", "", "not an address", true, false},
	}
	for _, c := range cases {
		s, err := mail.NewSMTP(mail.SMTPConfig{Host: c.srv.Host, Port: c.srv.Port, TLS: c.tls, RootCAs: c.srv.CA,
			Username: c.user, Password: c.pw, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		m := message()
		m.To = []string{c.to}
		before := len(c.srv.Messages())
		err = s.Send(context.Background(), m)
		if sent := len(c.srv.Messages()) > before; sent != c.sent || (err == nil) != c.sent {
			t.Errorf("%s: sent %v, error %v", c.name, sent, err)
		}
		if err != nil && mail.IsPermanent(err) != c.permanent {
			t.Errorf("%s: permanent %v, want %v (%v)", c.name, mail.IsPermanent(err), c.permanent, err)
		}
	}
	// Nothing listening: worth retrying.
	s, _ := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: 1, TLS: mail.TLSNone, Timeout: time.Second})
	if err := s.Send(context.Background(), message()); err == nil || mail.IsPermanent(err) {
		t.Errorf("no server: %v", err)
	}
}

func TestSMTPConfig(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		name string
		cfg  mail.SMTPConfig
		ok   bool
	}{
		{"defaults", mail.SMTPConfig{Host: "smtp.example.com"}, true},
		{"no host", mail.SMTPConfig{}, false},
		{"bad mode", mail.SMTPConfig{Host: "h", TLS: "ssl"}, false},
		{"bad port", mail.SMTPConfig{Host: "h", Port: 70000}, false},
		{"password in clear", mail.SMTPConfig{Host: "h", TLS: mail.TLSNone, Username: "u", Password: "p"}, false},
		{"password maybe in clear", mail.SMTPConfig{Host: "h", TLS: mail.TLSOpportunistic, Username: "u", Password: "p"}, false},
		{"dkim without selector", mail.SMTPConfig{Host: "h", DKIM: &mail.DKIM{Key: key}}, false},
		{"dkim", mail.SMTPConfig{Host: "h", DKIM: &mail.DKIM{Selector: "s1", Key: key}}, true},
	}
	for _, c := range cases {
		if _, err := mail.NewSMTP(c.cfg); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	for _, s := range []string{"starttls", "opportunistic", "tls", "none"} {
		if _, err := mail.ParseTLSMode(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := mail.ParseTLSMode("STARTTLS"); err == nil {
		t.Error("upper case mode accepted")
	}
	for _, s := range []string{"", "auto", "plain", "login", "cram-md5"} {
		if _, err := mail.ParseAuthMechanism(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := mail.ParseAuthMechanism("xoauth2"); err == nil {
		t.Error("unknown mechanism accepted")
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name   string
		change func(*mail.Message)
	}{
		{"bad from", func(m *mail.Message) { m.From = "nobody" }},
		{"no recipient", func(m *mail.Message) { m.To = nil }},
		{"bad recipient", func(m *mail.Message) { m.To = []string{"a@b", "x y"} }},
		{"no text", func(m *mail.Message) { m.Text = "" }},
		{"header injection", func(m *mail.Message) { m.Headers = map[string]string{"X-A": "1\r\nBcc: x@y"} }},
		{"bad header name", func(m *mail.Message) { m.Headers = map[string]string{"X A": "1"} }},
	}
	good := message()
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		m := message()
		c.change(&m)
		if err := m.Check(); err == nil || !mail.IsPermanent(err) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if d := mail.Domain("Parley <Notify@Example.COM>"); d != "example.com" {
		t.Errorf("domain %q", d)
	}
}

// TestDKIM: signed messages verify with an independent verifier (go-msgauth)
// against the public key published for the selector, RSA and Ed25519, with
// the signing domain configured or taken from From; a changed body fails.
func TestDKIM(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaPub, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
	cases := []struct {
		name, domain, want, algo string
		key                      crypto.Signer
		record                   string
	}{
		{"rsa, configured domain", "mail.example.net", "mail.example.net", "rsa-sha256", rsaKey,
			"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(rsaPub)},
		{"ed25519, From's domain", "", "example.com", "ed25519-sha256", edKey,
			"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edKey.Public().(ed25519.PublicKey))},
	}
	for _, c := range cases {
		srv := mailtest.Start(t, mailtest.Config{})
		s, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, RootCAs: srv.CA, Timeout: 5 * time.Second,
			DKIM: &mail.DKIM{Domain: c.domain, Selector: "parley1", Key: c.key}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), message()); err != nil {
			t.Fatal(err)
		}
		data := srv.Messages()[0].Data
		lookups := 0
		opts := &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
			lookups++
			if name != "parley1._domainkey."+c.want {
				return nil, errors.New("no such record " + name)
			}
			return []string{c.record}, nil
		}}
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), opts)
		if err != nil || len(vs) != 1 {
			t.Fatalf("%s: verify: %v %d", c.name, err, len(vs))
		}
		if vs[0].Err != nil || vs[0].Domain != c.want || lookups != 1 {
			t.Fatalf("%s: verification %+v\n%s", c.name, vs[0], data)
		}
		sig, _ := netmail.ReadMessage(bytes.NewReader(data))
		h := sig.Header.Get("Dkim-Signature")
		if !strings.Contains(h, "a="+c.algo) || !strings.Contains(h, "c=relaxed/relaxed") {
			t.Errorf("%s: signature %s", c.name, h)
		}
		tampered := bytes.Replace(data, []byte("html body"), []byte("HTML body"), 1)
		vs, err = dkim.VerifyWithOptions(bytes.NewReader(tampered), opts)
		if err != nil || len(vs) != 1 || vs[0].Err == nil {
			t.Errorf("%s: a changed body verified (%v)", c.name, err)
		}
	}
	// The key file formats the configuration accepts.
	der, _ := x509.MarshalPKCS8PrivateKey(edKey)
	for _, p := range [][]byte{
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
	} {
		if _, err := mail.ParseDKIMKey(p); err != nil {
			t.Errorf("parse key: %v", err)
		}
	}
	if _, err := mail.ParseDKIMKey([]byte("not pem")); err == nil {
		t.Error("garbage parsed as a key")
	}
}
