package main

import (
	"fmt"
	"github.com/parley-voice/parley/internal/domain"
	"log/slog"
	"os"

	"github.com/parley-voice/parley/internal/certfile"
	"github.com/parley-voice/parley/internal/mail"
	"github.com/parley-voice/parley/internal/notify"
	"github.com/parley-voice/parley/internal/signedurl"
	"github.com/parley-voice/parley/internal/store"
)

// newSMTP builds the server's SMTP transport; nil when PARLEY_SMTP_HOST is
// unset.
func newSMTP(s smtpSetting) (*mail.SMTP, error) {
	if s.Host == "" {
		return nil, nil
	}
	roots, err := certfile.Roots(s.CAFile)
	if err != nil {
		return nil, fmt.Errorf("PARLEY_SMTP_CA: %w", err)
	}
	cfg := mail.SMTPConfig{Host: s.Host, Port: s.Port, TLS: s.TLS, RootCAs: roots, Username: s.Username, Password: s.Password,
		Auth: s.Auth, Timeout: s.Timeout}
	if s.DKIMKeyFile != "" {
		pemBytes, err := os.ReadFile(s.DKIMKeyFile)
		if err != nil {
			return nil, fmt.Errorf("PARLEY_SMTP_DKIM_KEY_FILE: %w", err)
		}
		key, err := mail.ParseDKIMKey(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("PARLEY_SMTP_DKIM_KEY_FILE: %w", err)
		}
		cfg.DKIM = &mail.DKIM{Domain: s.DKIMDomain, Selector: s.DKIMSelector, Key: key}
	}
	return mail.NewSMTP(cfg)
}

// newNotifier builds the notification e-mails' service: an organization with
// a verified domain and a Resend key sends through its own Resend account,
// others through the server's SMTP transport when one is configured.
func newNotifier(c *config, db *store.DB, domains *domain.Service, links signedurl.Signer, log *slog.Logger) (*notify.Service, error) {
	smtp, err := newSMTP(c.SMTP)
	if err != nil {
		return nil, err
	}
	cfg := notify.Config{Store: db, From: c.SMTP.From, PublicURL: c.PublicURL, Links: links, LinkTTL: c.RecordingURLTTL,
		Domains: domains, Resend: domains, Logger: log.With("component", "notify")}
	if smtp != nil {
		cfg.SMTP = smtp
	}
	return notify.New(cfg)
}
