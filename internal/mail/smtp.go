package mail

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/textproto"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// TLSMode is how the SMTP connection is protected.
type TLSMode string

// TLS modes.
const (
	// TLSStartTLS upgrades the connection with STARTTLS and refuses a server
	// that does not offer it (port 587 by default).
	TLSStartTLS TLSMode = "starttls"
	// TLSOpportunistic upgrades with STARTTLS when the server offers it and
	// goes on in the clear otherwise (a relay on a private network).
	TLSOpportunistic TLSMode = "opportunistic"
	// TLSImplicit speaks TLS from the first byte (port 465 by default).
	TLSImplicit TLSMode = "tls"
	// TLSNone never encrypts (a relay on the same host; port 25 by default).
	TLSNone TLSMode = "none"
)

// ParseTLSMode reads a TLS mode.
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(s); m {
	case TLSStartTLS, TLSOpportunistic, TLSImplicit, TLSNone:
		return m, nil
	}
	return "", fmt.Errorf("must be starttls, opportunistic, tls or none")
}

// AuthMechanism is the SMTP AUTH mechanism used when credentials are set.
type AuthMechanism string

// Mechanisms ("" picks the strongest the server offers).
const (
	AuthAuto    AuthMechanism = ""
	AuthPlain   AuthMechanism = "plain"
	AuthLogin   AuthMechanism = "login"
	AuthCRAMMD5 AuthMechanism = "cram-md5"
)

// ParseAuthMechanism reads a mechanism ("" or "auto": the strongest offered).
func ParseAuthMechanism(s string) (AuthMechanism, error) {
	switch s {
	case "", "auto":
		return AuthAuto, nil
	case string(AuthPlain), string(AuthLogin), string(AuthCRAMMD5):
		return AuthMechanism(s), nil
	}
	return "", fmt.Errorf("must be auto, plain, login or cram-md5")
}

// DKIM signs outgoing messages (RFC 6376; relaxed/relaxed, rsa-sha256 or
// ed25519-sha256 after the key).
type DKIM struct {
	// Domain is the signing domain (d=); empty signs with the domain of each
	// message's From address, whose DNS then publishes (or CNAMEs to) the
	// selector's key.
	Domain   string
	Selector string
	Key      crypto.Signer
}

// ParseDKIMKey reads a PEM private key (RSA PKCS#1 or PKCS#8, Ed25519 PKCS#8).
func ParseDKIMKey(pemBytes []byte) (crypto.Signer, error) {
	return gomail.PrivKeyFromPEM(pemBytes)
}

// SMTPConfig configures the SMTP transport.
type SMTPConfig struct {
	Host string
	// Port defaults to 587 (starttls, opportunistic), 465 (tls) or 25 (none).
	Port int
	TLS  TLSMode // default starttls
	// RootCAs verifies the server's certificate (nil: the system roots).
	RootCAs *x509.CertPool
	// Username and Password authenticate when Username is set; never over
	// an unencrypted connection.
	Username, Password string
	Auth               AuthMechanism
	// HELO is the name given in EHLO (default: the local host name).
	HELO string
	// Timeout bounds connecting and each command (default 30 s).
	Timeout time.Duration
	DKIM    *DKIM
	Now     func() time.Time
}

// SMTP sends messages through one SMTP server, a connection per message.
type SMTP struct{ cfg SMTPConfig }

// NewSMTP checks the configuration and builds the transport.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: no host")
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if _, err := ParseTLSMode(string(cfg.TLS)); err != nil {
		return nil, fmt.Errorf("smtp tls mode: %w", err)
	}
	if cfg.Port == 0 {
		cfg.Port = map[TLSMode]int{TLSStartTLS: 587, TLSOpportunistic: 587, TLSImplicit: 465, TLSNone: 25}[cfg.TLS]
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("smtp port %d out of range", cfg.Port)
	}
	if cfg.Username != "" && (cfg.TLS == TLSNone || cfg.TLS == TLSOpportunistic) {
		return nil, fmt.Errorf("smtp: credentials would travel unencrypted with tls mode %q: use starttls or tls", cfg.TLS)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if d := cfg.DKIM; d != nil {
		if d.Selector == "" || d.Key == nil {
			return nil, errors.New("smtp dkim: a selector and a key are needed")
		}
		probe := gomail.NewDKIMSigner("example.com", d.Selector, d.Key)
		if err := probe.ValidateConfig(); err != nil {
			return nil, fmt.Errorf("smtp dkim: %w", err)
		}
	}
	return &SMTP{cfg: cfg}, nil
}

// Send delivers m. A refusal with a 5xx reply (recipient unknown, message
// rejected) and an invalid message are permanent (IsPermanent); a 4xx
// reply or a connection that failed is worth retrying.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if err := m.Check(); err != nil {
		return err
	}
	msg, err := s.build(m)
	if err != nil {
		return err
	}
	client, err := s.client()
	if err != nil {
		return err
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		err = fmt.Errorf("send mail through %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
		if permanentSMTP(err) {
			return Permanent(err)
		}
		return err
	}
	return nil
}

// permanentSMTP reports whether the server refused for good: a 5xx reply.
func permanentSMTP(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) {
		return !se.IsTemp()
	}
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500
}

func (s *SMTP) client() (*gomail.Client, error) {
	c := s.cfg
	tlsConf := &tls.Config{ServerName: c.Host, RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12}
	opts := []gomail.Option{gomail.WithPort(c.Port), gomail.WithTimeout(c.Timeout), gomail.WithTLSConfig(tlsConf)}
	switch c.TLS {
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if c.HELO != "" {
		opts = append(opts, gomail.WithHELO(c.HELO))
	}
	if c.Username != "" {
		mech := map[AuthMechanism]gomail.SMTPAuthType{AuthAuto: gomail.SMTPAuthAutoDiscover, AuthPlain: gomail.SMTPAuthPlain,
			AuthLogin: gomail.SMTPAuthLogin, AuthCRAMMD5: gomail.SMTPAuthCramMD5}[c.Auth]
		opts = append(opts, gomail.WithSMTPAuth(mech), gomail.WithUsername(c.Username), gomail.WithPassword(c.Password))
	}
	client, err := gomail.NewClient(c.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return client, nil
}

// build turns m into go-mail's message, DKIM-signed when configured.
func (s *SMTP) build(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(m.From); err != nil {
		return nil, Permanent(fmt.Errorf("from address: %w", err))
	}
	if err := msg.To(m.To...); err != nil {
		return nil, Permanent(fmt.Errorf("recipients: %w", err))
	}
	msg.Subject(oneLine(m.Subject))
	if m.MessageID != "" {
		msg.SetMessageIDWithValue(m.MessageID)
	} else {
		msg.SetMessageID()
	}
	date := m.Date
	if date.IsZero() {
		date = s.cfg.Now()
	}
	msg.SetDateWithValue(date)
	for k, v := range m.Headers {
		msg.SetGenHeader(gomail.Header(k), v)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	if d := s.cfg.DKIM; d != nil {
		domain := d.Domain
		if domain == "" {
			domain = Domain(m.From)
		}
		signer := gomail.NewDKIMSigner(domain, d.Selector, d.Key)
		signer.NowFunc = s.cfg.Now
		msg.SetDKIM(signer)
	}
	return msg, nil
}
