// Package resend is a client of Resend's REST API (https://resend.com/docs/api-reference):
// an organization's e-mail sending domains (create, get, list, verify,
// delete) and sending one e-mail. The API key is passed with each call,
// because every organization brings its own (BYOK). Resend's wire types stay
// in this package: callers see Domain, Record, Email and *Error.
//
// Every request carries Authorization: Bearer <key>, a User-Agent, and, on
// POST, an Idempotency-Key (the caller's, or a random one). Answers are read
// up to a size bound; errors in Resend's {statusCode, name, message} shape
// become an *Error with a Kind a caller can act on, and a 429's retry-after.
// The client does not retry: a caller that can (a job queue) decides.
package resend

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL is Resend's API root, used when Config.BaseURL is empty.
const DefaultBaseURL = "https://api.resend.com"

// Defaults of Config.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 4 << 20
	DefaultUserAgent        = "parley"
)

// Config configures a Client. The zero value talks to Resend.
type Config struct {
	// BaseURL is the API root, e.g. "https://api.resend.com" or a fake's
	// URL. Empty means DefaultBaseURL.
	BaseURL string
	// UserAgent is sent with every request; empty means DefaultUserAgent.
	UserAgent string
	// Timeout bounds one request, from sending to the body read; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes bounds a response body; a longer one is an error.
	// 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// HTTPClient sends the requests; nil means a client of its own.
	HTTPClient *http.Client
	// Logger receives debug records (method, path, status, duration; never
	// keys or e-mail contents). Nil discards them.
	Logger *slog.Logger
}

// Client talks to Resend. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	ua      string
	timeout time.Duration
	max     int64
	http    *http.Client
	log     *slog.Logger
}

// New returns a Client configured by cfg. It fails only on a BaseURL that
// is not an absolute http(s) URL.
func New(cfg Config) (*Client, error) {
	raw := cfg.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(raw, "/") + "/")
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("resend: base URL %q must be an absolute http or https URL", raw)
	}
	c := &Client{base: base, ua: cfg.UserAgent, timeout: cfg.Timeout, max: cfg.MaxResponseBytes, http: cfg.HTTPClient, log: cfg.Logger}
	if c.ua == "" {
		c.ua = DefaultUserAgent
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.max <= 0 {
		c.max = DefaultMaxResponseBytes
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Kind classifies an *Error by what the caller can do about it.
type Kind uint8

// The kinds.
const (
	KindUnknown     Kind = iota // an answer this client does not classify
	KindInvalid                 // 400, 422, validation errors: the request is wrong
	KindAuth                    // 401, invalid/missing/restricted key: the key is wrong
	KindNotFound                // 404: no such domain or e-mail for this key
	KindConflict                // 409: idempotency key reused or in flight
	KindRateLimited             // 429: rate limit or sending quota; see RetryAfter
	KindUnavailable             // 5xx, no answer, timeout, unreadable answer
)

var kindNames = [...]string{"unknown", "invalid", "auth", "not_found", "conflict", "rate_limited", "unavailable"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is a failed request: Resend's error answer, or no usable answer.
type Error struct {
	Kind Kind
	// Status is the HTTP status; 0 when there was no answer.
	Status int
	// Name and Message are Resend's ("validation_error", "The name field
	// is required."); Name is empty when the body was not Resend's shape.
	Name, Message string
	// RetryAfter is the wait a 429 asked for (retry-after, else
	// ratelimit-reset); 0 if it did not say.
	RetryAfter time.Duration
	// Err is the transport failure, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("resend: ")
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status))
		if e.Name != "" {
			b.WriteString(" " + e.Name)
		}
		if e.Message != "" {
			b.WriteString(": " + e.Message)
		}
	} else {
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.RetryAfter > 0 {
		b.WriteString("; retry after " + e.RetryAfter.String())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, resend.ErrNotFound) and the other sentinels match
// by Kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Status == 0 && t.Name == "" && t.Message == "" && t.Err == nil
}

// Sentinels for errors.Is.
var (
	ErrInvalid     = &Error{Kind: KindInvalid}
	ErrAuth        = &Error{Kind: KindAuth}
	ErrNotFound    = &Error{Kind: KindNotFound}
	ErrConflict    = &Error{Kind: KindConflict}
	ErrRateLimited = &Error{Kind: KindRateLimited}
	ErrUnavailable = &Error{Kind: KindUnavailable}
)

// AsError returns the *Error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// wireError is Resend's error body.
type wireError struct {
	StatusCode int    `json:"statusCode"`
	Name       string `json:"name"`
	Message    string `json:"message"`
}

// authNames are the error names Resend gives a key it will not take.
var authNames = map[string]bool{"missing_api_key": true, "invalid_api_key": true, "restricted_api_key": true}

// classify gives an error answer its Kind: the name first (a key refusal
// comes as 401 or 403), then the status.
func classify(status int, name, message string) Kind {
	switch {
	case authNames[name], name == "validation_error" && strings.Contains(strings.ToLower(message), "api key"):
		return KindAuth
	case status == http.StatusUnauthorized:
		return KindAuth
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusConflict:
		return KindConflict
	case status == http.StatusTooManyRequests:
		return KindRateLimited
	case status >= 500:
		return KindUnavailable
	case status == http.StatusForbidden && name == "":
		return KindAuth
	case status >= 400:
		return KindInvalid
	}
	return KindUnknown
}

// retryAfter reads retry-after (seconds or an HTTP date), else
// ratelimit-reset (seconds).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
			return time.Duration(n * float64(time.Second))
		}
		if t, err := http.ParseTime(v); err == nil && t.After(now) {
			return t.Sub(now)
		}
	}
	if n, err := strconv.ParseFloat(strings.TrimSpace(h.Get("Ratelimit-Reset")), 64); err == nil && n > 0 {
		return time.Duration(n * float64(time.Second))
	}
	return 0
}

// newIdempotencyKey returns a random key for a POST the caller gave none.
func newIdempotencyKey() string {
	var b [16]byte
	rand.Read(b[:])
	return "parley-" + hex.EncodeToString(b[:])
}

// maxIdempotencyKey is Resend's limit (1–256 characters).
const maxIdempotencyKey = 256

// do sends one request and decodes a 2xx JSON answer into out (nil: the
// body is read and dropped).
func (c *Client) do(ctx context.Context, key, method, path string, query url.Values, idem string, in, out any) error {
	if strings.TrimSpace(key) == "" {
		return &Error{Kind: KindAuth, Message: "no API key"}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.base.JoinPath(path)
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("resend: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("resend: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == http.MethodPost {
		if idem == "" {
			idem = newIdempotencyKey()
		}
		req.Header.Set("Idempotency-Key", idem)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.log.Debug("resend request failed", "method", method, "path", path, "duration", time.Since(start), "err", err)
		msg := "no answer from Resend"
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "Resend did not answer in time"
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return fmt.Errorf("resend: %s %s: %w", method, path, err)
		}
		return &Error{Kind: KindUnavailable, Message: msg, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.max+1))
	c.log.Debug("resend request", "method", method, "path", path, "status", resp.StatusCode, "duration", time.Since(start), "bytes", len(raw))
	if err != nil {
		return &Error{Kind: KindUnavailable, Status: resp.StatusCode, Message: "reading Resend's answer failed", Err: err}
	}
	if int64(len(raw)) > c.max {
		return &Error{Kind: KindUnavailable, Status: resp.StatusCode, Message: fmt.Sprintf("Resend's answer is larger than %d bytes", c.max)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(resp, raw)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &Error{Kind: KindUnavailable, Status: resp.StatusCode, Message: "Resend's answer is not the JSON expected", Err: err}
	}
	return nil
}

// maxErrorMessage bounds a message taken from an error answer.
const maxErrorMessage = 500

func answerError(resp *http.Response, raw []byte) *Error {
	var w wireError
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(raw, &w) == nil && (w.Name != "" || w.Message != "") {
		e.Name, e.Message = w.Name, w.Message
	} else {
		e.Message = strings.TrimSpace(string(raw))
		if e.Message == "" || !isText(e.Message) {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	if len(e.Message) > maxErrorMessage {
		e.Message = e.Message[:maxErrorMessage] + "…"
	}
	e.Kind = classify(resp.StatusCode, e.Name, e.Message)
	if e.Kind == KindRateLimited {
		e.RetryAfter = retryAfter(resp.Header, time.Now())
	}
	return e
}

func isText(s string) bool {
	for _, r := range s {
		if r < ' ' && r != '\n' && r != '\t' || r == 0xFFFD {
			return false
		}
	}
	return true
}
