package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/provider/resend/resendfake"
)

func TestResendSetting(t *testing.T) {
	dir := t.TempDir()
	c, _, err := loadConfig("serve", nil, []string{"PARLEY_DATA_DIR=" + dir}, io.Discard, nil)
	if err != nil || c.ResendBaseURL != "https://api.resend.com" {
		t.Fatalf("default: %v, %q", err, c.ResendBaseURL)
	}
	c, _, err = loadConfig("serve", []string{"--resend-base-url", "http://127.0.0.1:9/"}, []string{"PARLEY_DATA_DIR=" + dir}, io.Discard, nil)
	if err != nil || c.ResendBaseURL != "http://127.0.0.1:9/" {
		t.Fatalf("flag: %v, %q", err, c.ResendBaseURL)
	}
	for _, bad := range []string{"ftp://x", "wss://api.resend.com", "api.resend.com"} {
		if _, _, err := loadConfig("serve", nil, []string{"PARLEY_DATA_DIR=" + dir, "PARLEY_RESEND_BASE_URL=" + bad}, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "PARLEY_RESEND_BASE_URL") {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

// TestServeDomains: `parley serve` reaches the Resend endpoint it is
// configured with, with the organization's own key.
func TestServeDomains(t *testing.T) {
	fake := resendfake.New(resendfake.Config{Keys: []string{"re_customer_key"}})
	rs := httptest.NewServer(fake)
	defer rs.Close()
	addr := freeAddr(t)
	key := "test-bootstrap-key-0123456789"
	env := []string{"PARLEY_DATA_DIR=" + t.TempDir(), "PARLEY_HTTP_ADDR=" + addr, "PARLEY_SIP_ADDR=off", "PARLEY_BOOTSTRAP_API_KEY=" + key, "PARLEY_RESEND_BASE_URL=" + rs.URL}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, env, &bytes.Buffer{}, &stderr) }()
	base := "http://" + addr
	waitFor(t, 10*time.Second, "the server to become healthy", func() bool {
		resp, err := http.Get(base + "/api/v1/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	apiRequest(t, base, key, "POST", "/byok", `{"provider":"resend","api_key":"re_customer_key"}`, nil)
	var d map[string]any
	apiRequest(t, base, key, "POST", "/domains", `{"domain_name":"mail.example.com"}`, &d)
	if d["status"] != "not_started" || d["resend_domain_id"] == nil {
		t.Fatalf("created %v", d)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Key != "re_customer_key" || reqs[0].UserAgent != "parley/"+version {
		t.Fatalf("Resend saw %+v", reqs)
	}
	if strings.Contains(stderr.String(), "re_customer_key") {
		t.Fatal("the Resend key was logged")
	}
	stopServe(t, cancel, done)
}

// stopServe cancels a `serve` run and waits for it to return cleanly.
func stopServe(t *testing.T, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	http.DefaultClient.CloseIdleConnections()
}
