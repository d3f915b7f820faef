// Package webhook delivers Parley's webhooks (spec §9): the POSTs that tell a
// customer's backend about its calls.
//
// # Request
//
// Every webhook is a POST with a JSON body and these headers (spec §9.2):
//
//	Content-Type:        application/json
//	User-Agent:          HMS-Sovereign/1.0
//	User-Assistant:      HMS-Sovereign/1.0   (the documented, misspelt header; sent as well)
//	X-Webhook-Event:     assistant-request | tool-calls | status-update | end-of-call-report
//	X-Webhook-Timestamp: Unix time in seconds
//	X-Webhook-Signature: sha256=<hex>        (only when the webhook has a secret)
//	X-Webhook-Id:        the event's stable id, the same on every attempt (Parley's addition)
//	X-Webhook-Attempt:   1, 2, … (Parley's addition)
//
// # Signature
//
// The signature is the lowercase hex HMAC-SHA256, keyed with the webhook
// secret, of the timestamp header, a ".", and the exact body bytes sent (Sign).
// Receivers check it like the official SDK does (Verify): reject when the
// secret, signature or timestamp is missing, when the timestamp is more than
// five minutes from their clock, or when the signature does not match in a
// constant-time comparison; a "sha256=" prefix is optional. They should then
// drop events whose X-Webhook-Id they have already processed.
//
// # Delivery
//
// Events the platform announces after the fact (status-update,
// end-of-call-report) go through a durable outbox: the store writes the event
// in the same transaction as the state change, and a Dispatcher claims due
// events under a lease, posts them, and records every attempt in the delivery
// log. Delivery is at least once: a worker that dies mid-attempt leaves its
// events to be claimed again when the lease ends, and a receiver may see an
// event more than once (same X-Webhook-Id). Any 2xx acknowledges. 410 Gone
// means the receiver unsubscribed: the event fails at once. Other failures
// (no answer, timeout, any other status) are retried with exponential backoff,
// by default 1 s, 2 s, 4 s, … capped at 10 minutes with ±20% jitter, for 12
// attempts in all (about 40 minutes); then the event fails for good. Each
// attempt has its own timeout (10 s by default).
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names and values (spec §9.2).
const (
	HeaderEvent     = "X-Webhook-Event"
	HeaderTimestamp = "X-Webhook-Timestamp"
	HeaderSignature = "X-Webhook-Signature"
	HeaderID        = "X-Webhook-Id"
	HeaderAttempt   = "X-Webhook-Attempt"
	// HeaderUserAssistant is the header name the API documents (sic).
	HeaderUserAssistant = "User-Assistant"
	// UserAgent is sent as both User-Agent and User-Assistant.
	UserAgent = "HMS-Sovereign/1.0"
	// SignaturePrefix starts every signature Parley sends.
	SignaturePrefix = "sha256="
	// DefaultTolerance is how far a timestamp may be from the receiver's clock.
	DefaultTolerance = 5 * time.Minute
)

// Sign returns the X-Webhook-Signature value for body sent with the given
// X-Webhook-Timestamp value: "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
func Sign(secret, timestamp string, body []byte) string {
	return SignaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors from Verify; the returned error wraps one of them.
var (
	// ErrMissingHeaders: the secret, the signature or the timestamp is missing
	// (or the timestamp is not a number of seconds).
	ErrMissingHeaders = errors.New("webhook: missing secret, signature or timestamp")
	// ErrStale: the timestamp is further from now than the tolerance.
	ErrStale = errors.New("webhook: timestamp outside the tolerance")
	// ErrBadSignature: no signature matches the body.
	ErrBadSignature = errors.New("webhook: signature does not match")
)

// Verify checks a received webhook the way the official SDK does. h holds the
// request headers and body the raw body bytes, before any JSON parsing.
//
//   - secret, X-Webhook-Signature or X-Webhook-Timestamp empty → ErrMissingHeaders;
//   - |now − timestamp| > tolerance (DefaultTolerance when tolerance <= 0) → ErrStale;
//   - the signature, with or without its "sha256=" prefix, is compared in
//     constant time with the expected one → ErrBadSignature when it differs.
//
// During a secret rotation the header may carry several signatures separated
// by commas (or be repeated); one match suffices.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts := strings.TrimSpace(h.Get(HeaderTimestamp))
	var sigs []string
	for _, v := range h.Values(HeaderSignature) {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				sigs = append(sigs, s)
			}
		}
	}
	switch {
	case secret == "":
		return fmt.Errorf("%w: no secret configured", ErrMissingHeaders)
	case len(sigs) == 0:
		return fmt.Errorf("%w: no %s header", ErrMissingHeaders, HeaderSignature)
	case ts == "":
		return fmt.Errorf("%w: no %s header", ErrMissingHeaders, HeaderTimestamp)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not Unix seconds", ErrMissingHeaders, HeaderTimestamp)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	tol, cur := int64(tolerance/time.Second), now.Unix()
	if sec < cur-tol || sec > cur+tol {
		return fmt.Errorf("%w: timestamp %d is %d s from now", ErrStale, sec, cur-sec)
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		s, _ = strings.CutPrefix(s, SignaturePrefix)
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
