package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/netguard"
)

// MaxResponseBody is how much of a receiver's answer Send reads.
const MaxResponseBody = 1 << 20

// maxErrorBody is how much of a non-2xx answer a StatusError keeps.
const maxErrorBody = 256

// Request is one attempt to deliver a webhook.
type Request struct {
	ID     string // stable event id (X-Webhook-Id); omitted when empty
	Event  string // event type (X-Webhook-Event)
	URL    string
	Secret string // plaintext signing secret; empty sends the webhook unsigned
	Body   []byte // the exact bytes to send and sign
	// Attempt is the attempt number (X-Webhook-Attempt), 1 for the first; values below 1 count as 1.
	Attempt int
}

// Response is the receiver's answer.
type Response struct {
	Status   int           // 0 when no HTTP response arrived
	Body     []byte        // at most MaxResponseBody bytes
	Duration time.Duration // from sending the request to reading the answer
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Status int
	Body   string // the start of the answer's body, for diagnosis
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("webhook: receiver answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// ErrRefused is matched (errors.Is) by a Send the SSRF guard (netguard)
// refused: the URL, or a redirect from it, points where Parley may not
// connect. Retrying cannot help, so the dispatcher fails the event for good.
var ErrRefused = errors.New("refused by the URL guard")

// Sender posts one webhook.
type Sender struct {
	// HTTP is the client to use. Parley passes its SSRF-guarded client; Send
	// refuses to run without one rather than fall back to an unguarded default.
	HTTP *http.Client
	// Now is the clock for X-Webhook-Timestamp; nil means time.Now.
	Now func() time.Time
}

// Send posts r with the headers of spec §9.2 and returns the answer. A
// non-2xx answer returns the Response and a *StatusError; a failure to get an
// answer (refused, timed out, ctx ended) returns an error whose text names the
// URL's host but not its path or query, which may hold credentials; when the
// SSRF guard refused the destination, that error matches ErrRefused. A 2xx
// answer whose body could not be read returns the Response (Status set) and an
// error: the status alone acknowledges the event.
func (s *Sender) Send(ctx context.Context, r Request) (Response, error) {
	if s.HTTP == nil {
		return Response{}, errors.New("webhook: Sender has no HTTP client")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return Response{}, fmt.Errorf("webhook: build request: %w", redact(err))
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", UserAgent)
	h.Set(HeaderUserAssistant, UserAgent)
	h.Set(HeaderEvent, r.Event)
	h.Set(HeaderTimestamp, ts)
	if r.Secret != "" {
		h.Set(HeaderSignature, Sign(r.Secret, ts, r.Body))
	}
	if r.ID != "" {
		h.Set(HeaderID, r.ID)
	}
	h.Set(HeaderAttempt, strconv.Itoa(max(r.Attempt, 1)))

	start := time.Now()
	resp, err := s.HTTP.Do(req)
	if errors.Is(err, netguard.ErrBlocked) {
		return Response{Duration: time.Since(start)}, fmt.Errorf("webhook: post to %s: %w: %w", req.URL.Host, ErrRefused, redact(err))
	}
	if err != nil {
		return Response{Duration: time.Since(start)}, fmt.Errorf("webhook: post to %s: %w", req.URL.Host, redact(err))
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	out := Response{Status: resp.StatusCode, Body: body, Duration: time.Since(start)}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return out, &StatusError{Status: resp.StatusCode, Body: snippet(body)}
	}
	if readErr != nil {
		return out, fmt.Errorf("webhook: read answer from %s: %w", req.URL.Host, redact(readErr))
	}
	return out, nil
}

// redact drops the *url.Error wrapper, whose text repeats the full URL.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// snippet returns the start of b as printable UTF-8.
func snippet(b []byte) string {
	if len(b) > maxErrorBody {
		b = b[:maxErrorBody]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD") // a rune cut in half included
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s))
}
