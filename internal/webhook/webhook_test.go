package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/netguard"
	"github.com/parley-voice/parley/internal/webhook"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// vector is a signature computed independently of this package, with OpenSSL:
//
//	printf '%s' "$timestamp.$body" | openssl dgst -sha256 -hmac "$secret"
//
// Each entry in testdata/signatures.json records the exact command used.
type vector struct {
	Name      string `json:"name"`
	Secret    string `json:"secret"`
	Timestamp string `json:"timestamp"`
	Body      string `json:"body"`
	Signature string `json:"signature"`
	Command   string `json:"command"`
}

func vectors(t *testing.T) []vector {
	t.Helper()
	raw, err := os.ReadFile("testdata/signatures.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 3 {
		t.Fatalf("only %d vectors", len(vs))
	}
	return vs
}

func TestSignVectors(t *testing.T) {
	for _, v := range vectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			if got := webhook.Sign(v.Secret, v.Timestamp, []byte(v.Body)); got != v.Signature {
				t.Fatalf("Sign = %s, want %s (from: %s)", got, v.Signature, v.Command)
			}
			sec, _ := strconv.ParseInt(v.Timestamp, 10, 64)
			h := http.Header{}
			h.Set(webhook.HeaderTimestamp, v.Timestamp)
			h.Set(webhook.HeaderSignature, v.Signature)
			if err := webhook.Verify(v.Secret, h, []byte(v.Body), time.Unix(sec, 0), 0); err != nil {
				t.Fatalf("Verify of the vector: %v", err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	v := vectors(t)[0]
	ts, _ := strconv.ParseInt(v.Timestamp, 10, 64)
	now := time.Unix(ts, 0).Add(400 * time.Millisecond)
	body := []byte(v.Body)
	changed := []byte(v.Body)
	changed[len(changed)/2] ^= 0x01
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	signedAt := func(d time.Duration) (string, string) {
		return at(d), webhook.Sign(v.Secret, at(d), body)
	}
	stale, staleSig := signedAt(-301 * time.Second)
	future, futureSig := signedAt(301 * time.Second)
	edge, edgeSig := signedAt(-300 * time.Second)
	bare := strings.TrimPrefix(v.Signature, "sha256=")
	tests := []struct {
		name   string
		secret string
		ts     string // "-" leaves the header out
		sig    string // "-" leaves the header out
		body   []byte
		tol    time.Duration
		want   error
	}{
		{"valid with prefix", v.Secret, v.Timestamp, v.Signature, body, 0, nil},
		{"valid without prefix", v.Secret, v.Timestamp, bare, body, 0, nil},
		{"valid upper-case hex", v.Secret, v.Timestamp, strings.ToUpper(bare), body, 0, nil},
		{"valid at the edge of the tolerance", v.Secret, edge, edgeSig, body, 0, nil},
		{"one of several signatures valid (rotation)", v.Secret, v.Timestamp, "sha256=" + strings.Repeat("0", 64) + ", " + v.Signature, body, 0, nil},
		{"one changed body byte", v.Secret, v.Timestamp, v.Signature, changed, 0, webhook.ErrBadSignature},
		{"wrong secret", v.Secret + "x", v.Timestamp, v.Signature, body, 0, webhook.ErrBadSignature},
		{"timestamp header changed", v.Secret, at(-time.Second), v.Signature, body, 0, webhook.ErrBadSignature},
		{"not hex", v.Secret, v.Timestamp, "sha256=zz" + bare[2:], body, 0, webhook.ErrBadSignature},
		{"truncated signature", v.Secret, v.Timestamp, v.Signature[:len(v.Signature)-2], body, 0, webhook.ErrBadSignature},
		{"ts = now-301s", v.Secret, stale, staleSig, body, 0, webhook.ErrStale},
		{"ts = now+301s", v.Secret, future, futureSig, body, 0, webhook.ErrStale},
		{"outside a custom tolerance", v.Secret, edge, edgeSig, body, time.Minute, webhook.ErrStale},
		{"missing signature header", v.Secret, v.Timestamp, "-", body, 0, webhook.ErrMissingHeaders},
		{"empty signature header", v.Secret, v.Timestamp, "", body, 0, webhook.ErrMissingHeaders},
		{"missing timestamp header", v.Secret, "-", v.Signature, body, 0, webhook.ErrMissingHeaders},
		{"malformed timestamp", v.Secret, "yesterday", v.Signature, body, 0, webhook.ErrMissingHeaders},
		{"no secret", "", v.Timestamp, v.Signature, body, 0, webhook.ErrMissingHeaders},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.ts != "-" {
				h.Set(webhook.HeaderTimestamp, tc.ts)
			}
			if tc.sig != "-" {
				h.Set(webhook.HeaderSignature, tc.sig)
			}
			err := webhook.Verify(tc.secret, h, tc.body, now, tc.tol)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			for _, other := range []error{webhook.ErrMissingHeaders, webhook.ErrStale, webhook.ErrBadSignature} {
				if other != tc.want && errors.Is(err, other) {
					t.Fatalf("Verify = %v is also %v", err, other)
				}
			}
		})
	}
}

func TestSenderHeaders(t *testing.T) {
	v := vectors(t)[0]
	ts, _ := strconv.ParseInt(v.Timestamp, 10, 64)
	clock := time.Unix(ts, 0)
	type got struct {
		method, path string
		h            http.Header
		body         []byte
	}
	reqs := make(chan got, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs <- got{r.Method, r.URL.Path, r.Header.Clone(), b}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	s := &webhook.Sender{HTTP: srv.Client(), Now: func() time.Time { return clock }}
	resp, err := s.Send(context.Background(), webhook.Request{ID: "evt-1", Event: "status-update", URL: srv.URL + "/hook", Secret: v.Secret, Body: []byte(v.Body), Attempt: 3})
	if err != nil || resp.Status != 200 || string(resp.Body) != "ok" || resp.Duration <= 0 {
		t.Fatalf("Send = %+v, %v", resp, err)
	}
	r := <-reqs
	want := map[string]string{
		"Content-Type":        "application/json",
		"User-Agent":          "HMS-Sovereign/1.0",
		"User-Assistant":      "HMS-Sovereign/1.0",
		"X-Webhook-Event":     "status-update",
		"X-Webhook-Timestamp": v.Timestamp,
		"X-Webhook-Signature": v.Signature, // the OpenSSL vector: same secret, timestamp and body
		"X-Webhook-Id":        "evt-1",
		"X-Webhook-Attempt":   "3",
	}
	for k, val := range want {
		if r.h.Get(k) != val {
			t.Errorf("%s = %q, want %q", k, r.h.Get(k), val)
		}
	}
	if r.method != http.MethodPost || r.path != "/hook" || string(r.body) != v.Body {
		t.Fatalf("request = %s %s %q", r.method, r.path, r.body)
	}
	if err := webhook.Verify(v.Secret, r.h, r.body, clock.Add(time.Minute), 0); err != nil {
		t.Fatalf("Verify of the sent request: %v", err)
	}

	// Without a secret the webhook goes unsigned.
	if _, err := s.Send(context.Background(), webhook.Request{ID: "evt-2", Event: "end-of-call-report", URL: srv.URL, Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	r = <-reqs
	if _, ok := r.h[webhook.HeaderSignature]; ok {
		t.Fatalf("unsigned webhook has %s: %q", webhook.HeaderSignature, r.h.Get(webhook.HeaderSignature))
	}
	if r.h.Get("X-Webhook-Attempt") != "1" || r.h.Get("X-Webhook-Timestamp") != v.Timestamp || r.h.Get("X-Webhook-Event") != "end-of-call-report" {
		t.Fatalf("unsigned webhook headers = %v", r.h)
	}
}

func TestSenderAnswers(t *testing.T) {
	quit := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so the server notices the client leaving
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("overloaded\n" + strings.Repeat("x", 5000)))
		case "/gone":
			w.WriteHeader(http.StatusGone)
		case "/big":
			w.Write([]byte(strings.Repeat("y", 2<<20)))
		case "/hang":
			select {
			case <-r.Context().Done():
			case <-quit:
			}
		}
	}))
	defer srv.Close()
	defer close(quit)
	s := &webhook.Sender{HTTP: srv.Client()}
	ctx := context.Background()

	resp, err := s.Send(ctx, webhook.Request{Event: "status-update", URL: srv.URL + "/fail", Body: []byte(`{}`)})
	var se *webhook.StatusError
	if !errors.As(err, &se) || se.Status != 503 || resp.Status != 503 {
		t.Fatalf("Send(503) = %+v, %v", resp, err)
	}
	if !strings.HasPrefix(se.Body, "overloaded") || len(se.Body) > 256 || strings.Contains(se.Body, "\n") {
		t.Fatalf("StatusError.Body = %q (%d bytes)", se.Body, len(se.Body))
	}
	if !strings.Contains(err.Error(), "503") {
		t.Fatalf("error text %q does not name the status", err)
	}
	_, err = s.Send(ctx, webhook.Request{Event: "status-update", URL: srv.URL + "/gone", Body: []byte(`{}`)})
	if !errors.As(err, &se) || se.Status != http.StatusGone {
		t.Fatalf("Send(410) = %v", err)
	}

	resp, err = s.Send(ctx, webhook.Request{Event: "status-update", URL: srv.URL + "/big", Body: []byte(`{}`)})
	if err != nil || resp.Status != 200 || len(resp.Body) != webhook.MaxResponseBody {
		t.Fatalf("Send(2 MiB answer) = %d bytes, %v", len(resp.Body), err)
	}

	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	resp, err = s.Send(tctx, webhook.Request{Event: "status-update", URL: srv.URL + "/hang", Body: []byte(`{}`)})
	if !errors.Is(err, context.DeadlineExceeded) || resp.Status != 0 || errors.As(err, &se) {
		t.Fatalf("Send(hang) = %+v, %v", resp, err)
	}

	// No answer at all; the error must not repeat the URL's path or query.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	_, err = s.Send(ctx, webhook.Request{Event: "status-update", URL: deadURL + "/hook?token=s3cret", Body: []byte(`{}`)})
	if err == nil || errors.As(err, &se) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Send(refused) = %v", err)
	}

	if _, err := (&webhook.Sender{}).Send(ctx, webhook.Request{URL: srv.URL}); err == nil {
		t.Fatal("a Sender without an HTTP client sent a request")
	}
}

func TestDefaultBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		base    time.Duration
	}{{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {10, 512 * time.Second}, {11, 10 * time.Minute}, {12, 10 * time.Minute}, {1000, 10 * time.Minute}}
	for _, tc := range tests {
		lo, hi := tc.base*8/10, tc.base*12/10
		seen := map[time.Duration]bool{}
		for range 50 {
			d := webhook.DefaultBackoff(tc.attempt)
			if d < lo || d > hi {
				t.Fatalf("DefaultBackoff(%d) = %v, want within [%v, %v]", tc.attempt, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Fatalf("DefaultBackoff(%d) has no jitter", tc.attempt)
		}
	}
}

// TestSenderGuardRefusal: a destination the SSRF guard refuses, directly or
// by a redirect, is an error matching ErrRefused whose text says so (what
// the synchronous tool-calls and assistant-request log shows); an ordinary
// failure to connect is not.
func TestSenderGuardRefusal(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	strict := netguard.New(netguard.Config{}).Client(2 * time.Second)
	defer strict.CloseIdleConnections()
	loose := netguard.New(netguard.Config{AllowLoopback: true}).Client(2 * time.Second)
	defer loose.CloseIdleConnections()
	for _, tc := range []struct {
		name    string
		client  *http.Client
		url     string
		refused bool
		text    string
	}{
		{"loopback", strict, srv.URL + "/hook?token=abc", true, "refused by the URL guard: netguard: 127.0.0.1 is loopback"},
		{"redirect to metadata", loose, srv.URL + "/redirect", true, "refused by the URL guard: netguard: 169.254.169.254 is metadata"},
		{"closed port", loose, "http://127.0.0.1:1/hook", false, "connection refused"},
	} {
		_, err := (&webhook.Sender{HTTP: tc.client}).Send(context.Background(), webhook.Request{Event: "tool-calls", URL: tc.url, Body: []byte(`{}`)})
		if err == nil || errors.Is(err, webhook.ErrRefused) != tc.refused || !strings.Contains(err.Error(), tc.text) || strings.Contains(err.Error(), "token=abc") {
			t.Errorf("%s: err = %v (ErrRefused %v), want refused=%v containing %q", tc.name, err, errors.Is(err, webhook.ErrRefused), tc.refused, tc.text)
		}
	}
	if n := hits.Load(); n != 1 { // only the redirect reached the receiver
		t.Errorf("receiver hit %d times, want 1", n)
	}
}
