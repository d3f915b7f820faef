package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// inProcess is `parley serve` run in this process with its own stdout and
// stderr (the log).
type inProcess struct {
	base           string
	stdout, stderr *lockedBuffer
	stop           func()
}

func serveInProcess(t *testing.T, env []string) *inProcess {
	t.Helper()
	addr := freeAddr(t)
	s := &inProcess{base: "http://" + addr, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, append([]string{"PARLEY_HTTP_ADDR=" + addr, "PARLEY_SIP_ADDR=off"}, env...), s.stdout, s.stderr)
	}()
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, s.stderr.String())
		}
	}
	t.Cleanup(s.stop)
	waitFor(t, 10*time.Second, "the server to start", func() bool {
		resp, err := http.Get(s.base + "/api/v1/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return s
}

// TestFirstRun: `parley serve` on an empty data directory without
// PARLEY_BOOTSTRAP_API_KEY creates an organization with the trial minutes
// and prints its API key once, on stdout only, with a curl to try; the
// next start prints no key but how to make another one.
func TestFirstRun(t *testing.T) {
	dir := t.TempDir()
	env := []string{"PARLEY_DATA_DIR=" + dir, "PARLEY_TRIAL_MINUTES=42"}
	s := serveInProcess(t, env)
	// The welcome is printed right after the listener is up.
	waitFor(t, 2*time.Second, "the welcome on stdout", func() bool { return strings.Contains(s.stdout.String(), "--add 60") })
	out := s.stdout.String()
	m := regexp.MustCompile(`export PARLEY_API_KEY=(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no API key on stdout:\n%s", out)
	}
	key := m[1]
	if !strings.Contains(out, `curl -s `+s.base+`/api/v1/organizations -H "Authorization: Bearer $PARLEY_API_KEY"`) {
		t.Fatalf("no curl to try:\n%s", out)
	}
	if strings.Contains(s.stderr.String(), key) {
		t.Fatal("the first API key was logged")
	}
	req, _ := http.NewRequest("GET", s.base+"/api/v1/organizations", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var org struct {
		ID             string  `json:"id"`
		MinutesBalance float64 `json:"minutes_balance"`
	}
	json.NewDecoder(resp.Body).Decode(&org)
	resp.Body.Close()
	if resp.StatusCode != 200 || org.MinutesBalance != 42 {
		t.Fatalf("GET /organizations with the printed key = %d %+v, want 200 with the 42 trial minutes", resp.StatusCode, org)
	}
	if !strings.Contains(out, "parley key create --org "+org.ID) || !strings.Contains(out, "parley org balance --org "+org.ID+" --add 60") {
		t.Fatalf("the welcome does not say how to make a key or add minutes:\n%s", out)
	}
	s.stop()

	again := serveInProcess(t, env)
	waitFor(t, 2*time.Second, "the hint on stdout", func() bool { return strings.Contains(again.stdout.String(), "\n") })
	out2 := again.stdout.String()
	if strings.Contains(out2, "PARLEY_API_KEY=") || !strings.Contains(out2, "parley key create --org "+org.ID) {
		t.Fatalf("second start printed:\n%s", out2)
	}
	again.stop()

	// With PARLEY_BOOTSTRAP_API_KEY, as before: that key's organization
	// and no first-run organization or key on stdout.
	boot := serveInProcess(t, []string{"PARLEY_DATA_DIR=" + t.TempDir(), "PARLEY_BOOTSTRAP_API_KEY=first-run-bootstrap-key-0001"})
	if strings.Contains(boot.stdout.String(), "PARLEY_API_KEY=") {
		t.Fatalf("bootstrap start printed a key:\n%s", boot.stdout.String())
	}
}
