package resend

import (
	"context"
	"net/http"
)

// Email is one message to send.
type Email struct {
	From    string   // "Name <sender@example.com>" or "sender@example.com"; its domain must be verified
	To      []string // up to 50 recipients
	Subject string
	HTML    string // at least one of HTML and Text
	Text    string
	ReplyTo []string
	Headers map[string]string
	// IdempotencyKey makes a retried send (a job run again) deliver once:
	// Resend answers a repeated key with the first send's id for 24 hours.
	// Empty means a random key.
	IdempotencyKey string
}

// SendEmail sends one e-mail and returns Resend's id for it.
func (c *Client) SendEmail(ctx context.Context, key string, e Email) (string, error) {
	if len(e.To) == 0 || e.From == "" || e.Subject == "" || (e.HTML == "" && e.Text == "") {
		return "", &Error{Kind: KindInvalid, Message: "an e-mail needs from, to, subject and html or text"}
	}
	body := struct {
		From    string            `json:"from"`
		To      []string          `json:"to"`
		Subject string            `json:"subject"`
		HTML    string            `json:"html,omitempty"`
		Text    string            `json:"text,omitempty"`
		ReplyTo []string          `json:"reply_to,omitempty"`
		Headers map[string]string `json:"headers,omitempty"`
	}{e.From, e.To, e.Subject, e.HTML, e.Text, e.ReplyTo, e.Headers}
	var out struct {
		ID string `json:"id"`
	}
	if err := c.do(ctx, key, http.MethodPost, "emails", nil, trimKey(e.IdempotencyKey), body, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", &Error{Kind: KindUnavailable, Status: http.StatusOK, Message: "Resend's answer has no e-mail id"}
	}
	return out.ID, nil
}
