package main

import (
	"errors"
	"fmt"
	netmail "net/mail"
	"os"
	"strconv"
	"time"

	"github.com/parley-voice/parley/internal/mail"
)

// smtpSetting is the server's own mail transport (PARLEY_SMTP_*), used for
// assistants' notification e-mails of organizations without their own
// Resend account and verified domain.
type smtpSetting struct {
	Host               string
	Port               int
	TLS                mail.TLSMode
	Username, Password string
	Auth               mail.AuthMechanism
	From               string
	CAFile             string
	Timeout            time.Duration
	DKIMDomain         string
	DKIMSelector       string
	DKIMKeyFile        string
}

func smtpSettings() []setting {
	get := func(c *config) *smtpSetting { return &c.SMTP }
	return []setting{
		{env: "PARLEY_SMTP_HOST", flag: "smtp-host", def: "", help: "SMTP server for notification e-mails (unset: only organizations with their own Resend key and verified domain get them)",
			set: func(c *config, v string) error { get(c).Host = v; return nil }},
		{env: "PARLEY_SMTP_PORT", flag: "smtp-port", def: "0", help: "SMTP port (0: 587 for starttls/opportunistic, 465 for tls, 25 for none)",
			set: func(c *config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 || n > 65535 {
					return errors.New("must be a port number (0: the mode's default)")
				}
				get(c).Port = n
				return nil
			}},
		{env: "PARLEY_SMTP_TLS", flag: "smtp-tls", def: "starttls", help: "starttls (required), opportunistic (STARTTLS when offered), tls (implicit, port 465) or none",
			set: func(c *config, v string) error {
				m, err := mail.ParseTLSMode(v)
				get(c).TLS = m
				return err
			}},
		{env: "PARLEY_SMTP_USERNAME", flag: "smtp-username", def: "", help: "SMTP AUTH user name (unset: no AUTH)",
			set: func(c *config, v string) error { get(c).Username = v; return nil }},
		{env: "PARLEY_SMTP_PASSWORD", flag: "smtp-password", def: "", secret: true, help: "SMTP AUTH password",
			set: func(c *config, v string) error { get(c).Password = v; return nil }},
		{env: "PARLEY_SMTP_AUTH", flag: "smtp-auth", def: "auto", help: "SMTP AUTH mechanism: auto (the strongest offered), plain, login or cram-md5",
			set: func(c *config, v string) error {
				m, err := mail.ParseAuthMechanism(v)
				get(c).Auth = m
				return err
			}},
		{env: "PARLEY_SMTP_FROM", flag: "smtp-from", def: "", help: "sender of notification e-mails, such as \"Parley <calls@example.com>\" (organizations with a verified domain send from notifications@<domain>)",
			set: func(c *config, v string) error {
				get(c).From = v
				if v == "" {
					return nil
				}
				_, err := netmail.ParseAddress(v)
				return err
			}},
		{env: "PARLEY_SMTP_CA", flag: "smtp-ca", def: "", help: "PEM CA bundle trusted for the SMTP server's certificate, besides the system roots",
			set: func(c *config, v string) error { get(c).CAFile = v; return readable(v) }},
		{env: "PARLEY_SMTP_TIMEOUT", flag: "smtp-timeout", def: "30s", help: "timeout of connecting to the SMTP server and of each command",
			set: func(c *config, v string) error { return duration(v, &get(c).Timeout, time.Second) }},
		{env: "PARLEY_SMTP_DKIM_SELECTOR", flag: "smtp-dkim-selector", def: "", help: "DKIM selector of PARLEY_SMTP_DKIM_KEY_FILE (its public key is published at <selector>._domainkey.<domain>)",
			set: func(c *config, v string) error { get(c).DKIMSelector = v; return nil }},
		{env: "PARLEY_SMTP_DKIM_KEY_FILE", flag: "smtp-dkim-key-file", def: "", help: "PEM private key (RSA or Ed25519) that DKIM-signs mail sent through SMTP",
			set: func(c *config, v string) error { get(c).DKIMKeyFile = v; return readable(v) }},
		{env: "PARLEY_SMTP_DKIM_DOMAIN", flag: "smtp-dkim-domain", def: "", help: "DKIM signing domain (d=) (unset: each message's From domain, which publishes or CNAMEs the selector's key)",
			set: func(c *config, v string) error { get(c).DKIMDomain = v; return nil }},
	}
}

// readable accepts "" or a file that can be read.
func readable(v string) error {
	if v == "" {
		return nil
	}
	if _, err := os.Stat(v); err != nil {
		return errors.New("must be a readable file")
	}
	return nil
}

// check reports settings that only make sense together.
func (s *smtpSetting) check() error {
	switch {
	case s.Host == "":
		return nil
	case s.From == "":
		return errors.New("PARLEY_SMTP_HOST is set but PARLEY_SMTP_FROM is not: name the sender of notification e-mails")
	case (s.DKIMSelector == "") != (s.DKIMKeyFile == ""):
		return errors.New("PARLEY_SMTP_DKIM_SELECTOR and PARLEY_SMTP_DKIM_KEY_FILE go together: set both or neither")
	case s.Username != "" && (s.TLS == mail.TLSNone || s.TLS == mail.TLSOpportunistic):
		return fmt.Errorf("PARLEY_SMTP_USERNAME is set with PARLEY_SMTP_TLS=%s: the password would travel unencrypted (use starttls or tls)", s.TLS)
	}
	return nil
}
