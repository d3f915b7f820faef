package domain

import (
	"context"
	"errors"
	"fmt"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/mail"
	"github.com/parley-voice/parley/internal/provider/resend"
)

// ResendSenderFor gives the mail sender that sends through the
// organization's own Resend account (POST /emails with its Resend BYOK key);
// false when the organization has no Resend key.
func (s *Service) ResendSenderFor(ctx context.Context, orgID string) (mail.Sender, bool, error) {
	key, err := s.key(ctx, orgID)
	if fe, ok := fault.As(err); ok && fe.Code == "resend_key_missing" {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return resendSender{client: s.resend, key: key}, true, nil
}

// resendSender is a mail.Sender over one organization's Resend account.
type resendSender struct {
	client *resend.Client
	key    string
}

// Send sends m. The Message-ID, stable across the retries of one
// notification, is the Idempotency-Key, so a retry after Resend accepted the
// mail (a lost answer, a node that died before the job was marked done) does
// not send it twice. A refusal that will not change (a bad address, a domain
// not verified, a refused key) is permanent; a rate limit, a conflict of
// concurrent retries, or Resend being unreachable is retried.
func (r resendSender) Send(ctx context.Context, m mail.Message) error {
	if err := m.Check(); err != nil {
		return err
	}
	_, err := r.client.SendEmail(ctx, r.key, resend.Email{From: m.From, To: m.To, Subject: m.Subject, HTML: m.HTML, Text: m.Text,
		Headers: m.Headers, IdempotencyKey: m.MessageID})
	if err == nil {
		return nil
	}
	err = fmt.Errorf("send through resend: %w", err)
	var re *resend.Error
	if errors.As(err, &re) {
		switch re.Kind {
		case resend.KindInvalid, resend.KindAuth, resend.KindNotFound:
			return mail.Permanent(err)
		}
	}
	return err
}
