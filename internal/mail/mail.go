// Package mail sends e-mail: the Message Parley sends (a plain-text and an
// HTML part), the Sender contract every transport meets, and the SMTP
// transport (wneessen/go-mail) with STARTTLS or implicit TLS, SMTP AUTH and
// DKIM signing. Transports tell a failure that will never succeed (a refused
// recipient, 5xx) from one worth retrying (4xx, a connection that failed):
// IsPermanent.
package mail

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// Message is one e-mail.
type Message struct {
	// From is the sender: "name@example.com" or "Name <name@example.com>".
	From string
	To   []string
	// Subject is one line (line breaks are folded to spaces).
	Subject string
	// Text and HTML are the two alternative bodies; at least Text is set.
	Text, HTML string
	// MessageID is the Message-ID without angle brackets (stable across
	// retries of one notification, so receivers can tell a repeat).
	MessageID string
	// Date is the Date header (default: when sent).
	Date time.Time
	// Headers are further header fields (X-Parley-Call-Id, say).
	Headers map[string]string
}

// Sender delivers messages.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Check reports what is wrong with m before any transport sees it.
func (m *Message) Check() error {
	if _, err := mail.ParseAddress(m.From); err != nil {
		return Permanent(fmt.Errorf("from address %q: %w", m.From, err))
	}
	if len(m.To) == 0 {
		return Permanent(errors.New("no recipient"))
	}
	for _, to := range m.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return Permanent(fmt.Errorf("recipient %q: %w", to, err))
		}
	}
	if m.Text == "" {
		return Permanent(errors.New("no text body"))
	}
	for k, v := range m.Headers {
		if strings.ContainsAny(k, ": \r\n") || strings.ContainsAny(v, "\r\n") {
			return Permanent(fmt.Errorf("header %q: invalid name or value", k))
		}
	}
	return nil
}

// Domain is the domain of an address ("" when it has none).
func Domain(addr string) string {
	a, err := mail.ParseAddress(addr)
	if err != nil {
		return ""
	}
	_, d, ok := strings.Cut(a.Address, "@")
	if !ok {
		return ""
	}
	return strings.ToLower(d)
}

// oneLine folds line breaks so a value stays one header line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}

// permanent marks a failure that will fail the same way again.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as a failure not worth retrying (a refused recipient,
// an invalid address, a rejected message). Other transports (an e-mail API
// answering 422, say) wrap their errors with it too.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err will fail the same way again.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}
