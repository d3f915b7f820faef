package mcp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// wire is the http.RoundTripper the SDK sends a session's requests
// through, over the caller's transport (for Parley, netguard's, which
// refuses unsafe addresses). It keeps every request to the origin of the
// configured URL: a legacy server's endpoint event, or a redirect, must not
// send the client's messages, and headers, elsewhere. It adds the
// configured headers, caps JSON response bodies at maxMessageSize (the SDK
// caps stream events itself), and notes on the request's wireProbe what an
// error from the SDK would not tell: the HTTP status and the start of the
// body, or a body over the cap.
type wire struct {
	base    http.RoundTripper
	origin  string            // origin(the configured URL)
	headers map[string]string // Config.Headers
}

// wireClient returns the http.Client the SDK is given: c's transport,
// redirect policy, cookie jar and timeout, through a wire.
func wireClient(c *http.Client, u *url.URL, headers map[string]string) *http.Client {
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{
		Transport:     &wire{base: base, origin: origin(u), headers: headers},
		CheckRedirect: c.CheckRedirect,
		Jar:           c.Jar,
		Timeout:       c.Timeout,
	}
}

func (w *wire) RoundTrip(req *http.Request) (*http.Response, error) {
	if o := origin(req.URL); o != w.origin {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("refusing to send to origin %s: the server's origin is %s", o, w.origin)
	}
	if len(w.headers) > 0 {
		req = req.Clone(req.Context())
		for k, v := range w.headers {
			if req.Header.Get(k) == "" { // the protocol's own headers win
				req.Header.Set(k, v)
			}
		}
	}
	resp, err := w.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	p := probeOf(req.Context())
	if p != nil && resp.StatusCode >= 400 && req.Method != http.MethodDelete { // redirects are followed
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		p.note(&HTTPError{Status: resp.StatusCode, Body: string(head)})
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	}
	if mediaType(resp) == "application/json" {
		resp.Body = &capped{body: resp.Body, left: maxMessageSize, probe: p}
	}
	return resp, nil
}

// capped is a response body that fails past its cap.
type capped struct {
	body  io.ReadCloser
	left  int64
	probe *wireProbe // may be nil
}

func (c *capped) Read(b []byte) (int, error) {
	if c.left < 0 {
		return 0, c.tooLarge()
	}
	// One byte past the cap tells a body at the cap from one over it.
	n, err := c.body.Read(b[:min(int64(len(b)), c.left+1)])
	c.left -= int64(n)
	if c.left < 0 {
		return n, c.tooLarge()
	}
	return n, err
}

func (c *capped) tooLarge() error {
	err := fmt.Errorf("response larger than %d bytes", maxMessageSize)
	if c.probe != nil {
		c.probe.note(err)
	}
	return err
}

func (c *capped) Close() error { return c.body.Close() }

// wireProbe collects what the wire saw of one request: the first HTTP
// error status or oversized body.
type wireProbe struct {
	mu  sync.Mutex
	err error
}

func (p *wireProbe) note(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// seen returns the noted error, nil for none.
func (p *wireProbe) seen() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

type probeKey struct{}

// withProbe returns ctx carrying p, for the HTTP requests the SDK makes
// with ctx.
func withProbe(ctx context.Context, p *wireProbe) context.Context {
	return context.WithValue(ctx, probeKey{}, p)
}

func probeOf(ctx context.Context) *wireProbe {
	p, _ := ctx.Value(probeKey{}).(*wireProbe)
	return p
}

// mediaType is resp's Content-Type without parameters.
func mediaType(resp *http.Response) string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt
}

// origin is u's scheme, host and port, normalized.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// quotedURL is a URL as http.Client errors quote it (`Post "https://…": `).
var quotedURL = regexp.MustCompile(`([A-Za-z]+) "[A-Za-z][A-Za-z0-9+.-]*://[^"]*": `)

// scrubbed is an error whose text has its URLs taken out.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub takes the URLs out of err's text, keeping err to unwrap: a URL may
// carry a token.
func scrub(err error) error {
	msg := quotedURL.ReplaceAllString(err.Error(), "$1: ")
	if msg == err.Error() {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}
