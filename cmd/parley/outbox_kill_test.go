package main

// Crash test of the webhook outbox: `parley serve` is killed with SIGKILL while
// webhooks are claimed, in flight and pending; after a restart every event is
// delivered. Duplicates are allowed (at least once), gaps are not.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/webhook"
)

// TestWebhookSettings checks the settings that bound webhook attempts and
// leases, which the crash test below relies on.
func TestWebhookSettings(t *testing.T) {
	dir := t.TempDir()
	c, _, err := loadConfig("serve", nil, []string{"PARLEY_DATA_DIR=" + dir}, io.Discard, nil)
	if err != nil || c.WebhookTimeout != 10*time.Second || c.WebhookLease != 30*time.Second {
		t.Fatalf("defaults: %v, timeout %v, lease %v", err, c.WebhookTimeout, c.WebhookLease)
	}
	c, _, err = loadConfig("serve", []string{"--webhook-lease", "2s"}, []string{"PARLEY_DATA_DIR=" + dir, "PARLEY_WEBHOOK_TIMEOUT=1s"}, io.Discard, nil)
	if err != nil || c.WebhookTimeout != time.Second || c.WebhookLease != 2*time.Second {
		t.Fatalf("set: %v, timeout %v, lease %v", err, c.WebhookTimeout, c.WebhookLease)
	}
	for _, env := range [][]string{
		{"PARLEY_WEBHOOK_TIMEOUT=0s"},
		{"PARLEY_WEBHOOK_LEASE=soon"},
		{"PARLEY_WEBHOOK_LEASE=10s"}, // not above the 10 s default timeout
		{"PARLEY_WEBHOOK_TIMEOUT=40s"},
	} {
		_, _, err := loadConfig("serve", nil, append([]string{"PARLEY_DATA_DIR=" + dir}, env...), io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), "PARLEY_WEBHOOK_") {
			t.Errorf("%v: err = %v", env, err)
		}
	}
}

// killReceiver is the customer's webhook endpoint. It records every request,
// checks its headers, signature and body, and in the slow phase answers late
// and fails some first attempts so that, when the server is killed, events
// are in every state: delivered, in flight, due for a retry, never tried.
type killReceiver struct {
	// Written before the server starts, read-only afterwards.
	secrets map[int]string // event index → signing secret; absent: unsigned
	ids     map[int]string // event index → event id

	mu        sync.Mutex
	slow      bool          // phase 1
	killAfter int           // close kill once this many events are acknowledged in phase 1
	kill      chan struct{} // closed when the server should die
	received  map[string][][]byte
	acked     map[string]int // 200s written per event id
	inFlight  int
	// inFlightAtKill: other requests being answered when kill was closed.
	inFlightAtKill int
	requests       int
	dupes          int // requests for an event already acknowledged
	dupesLate      int // of them, after the restart
	problems       []string
}

func (rc *killReceiver) problem(format string, args ...any) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.problems) < 20 {
		rc.problems = append(rc.problems, fmt.Sprintf(format, args...))
	}
}

func (rc *killReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the server died mid-request
	}
	id, attempt := r.Header.Get(webhook.HeaderID), r.Header.Get(webhook.HeaderAttempt)
	var p struct {
		Message struct {
			Type    string `json:"type"`
			Index   int    `json:"index"`
			EventID string `json:"event_id"`
		} `json:"message"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		rc.problem("event %s: body is not JSON: %v", id, err)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	i := p.Message.Index
	switch {
	case rc.ids[i] != id || p.Message.EventID != id:
		rc.problem("%s %q carries index %d and event_id %q", webhook.HeaderID, id, i, p.Message.EventID)
	case r.Header.Get(webhook.HeaderEvent) != "status-update" || p.Message.Type != "status-update":
		rc.problem("event %s: event type %q / %q", id, r.Header.Get(webhook.HeaderEvent), p.Message.Type)
	}
	if sec, ok := rc.secrets[i]; ok {
		if err := webhook.Verify(sec, r.Header, body, time.Now(), 0); err != nil {
			rc.problem("event %s (index %d): %v", id, i, err)
		}
	} else if r.Header.Get(webhook.HeaderSignature) != "" {
		rc.problem("event %s (index %d) is unsigned but came with a signature", id, i)
	}

	rc.mu.Lock()
	rc.requests++
	rc.received[id] = append(rc.received[id], body)
	if rc.acked[id] > 0 {
		rc.dupes++
		if !rc.slow {
			rc.dupesLate++
		}
	}
	slow := rc.slow
	rc.inFlight++
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.inFlight--
		rc.mu.Unlock()
	}()

	if slow {
		if i%5 == 0 && attempt == "1" {
			http.Error(w, "try again later", http.StatusInternalServerError)
			return
		}
		select {
		case <-time.After(time.Duration(300+i%4*50) * time.Millisecond):
		case <-r.Context().Done():
			return // the server was killed while we were "working"
		}
	}
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, `{"ok":true}`)
	w.(http.Flusher).Flush()
	rc.mu.Lock()
	rc.acked[id]++
	if rc.slow && len(rc.acked) == rc.killAfter {
		// Kill right after an acknowledgement, before the server has had time
		// to record it: the likeliest moment for a duplicate.
		rc.inFlightAtKill = rc.inFlight - 1
		close(rc.kill)
	}
	rc.mu.Unlock()
}

// parleyProc is one `parley serve` subprocess.
type parleyProc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan error
}

func startParley(t *testing.T, bin string, env []string, base string) *parleyProc {
	t.Helper()
	p := &parleyProc{cmd: exec.Command(bin, "serve"), stderr: &lockedBuffer{}, done: make(chan error, 1)}
	// Only our settings: the caller's PARLEY_ variables must not leak in.
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		// Only the process this test started, by its pid.
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := http.Get(base + "/api/v1/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("parley serve exited at start: %v\n%s", err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("parley serve did not become healthy\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outboxState reads every event of the organization.
func outboxState(t *testing.T, db *store.DB, orgID string) []store.OutboxEvent {
	t.Helper()
	evs, total, err := db.ListEvents(context.Background(), orgID, store.EventFilter{Page: store.Page{Limit: 10000}})
	if err != nil {
		t.Fatal(err)
	}
	if total != len(evs) {
		t.Fatalf("listed %d of %d events", len(evs), total)
	}
	return evs
}

func TestOutboxSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the parley binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command to build parley")
	}
	const (
		n         = 200
		killAfter = 30
	)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "parley")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	dataDir := filepath.Join(tmp, "data")
	addr := freeAddr(t)
	base := "http://" + addr
	env := []string{
		"PARLEY_DATA_DIR=" + dataDir, "PARLEY_HTTP_ADDR=" + addr, "PARLEY_SIP_ADDR=off",
		"PARLEY_ALLOW_PRIVATE_URLS=true", // the receiver is on 127.0.0.1
		"PARLEY_WEBHOOK_TIMEOUT=1s", "PARLEY_WEBHOOK_LEASE=2s",
		"PARLEY_LOG_LEVEL=debug",
	}

	rc := &killReceiver{secrets: map[int]string{}, ids: map[int]string{}, slow: true, killAfter: killAfter,
		kill: make(chan struct{}), received: map[string][][]byte{}, acked: map[string]int{}}
	recv := httptest.NewUnstartedServer(rc) // on 127.0.0.1; started once rc is filled in
	t.Cleanup(recv.Close)
	recvURL := "http://" + recv.Listener.Addr().String()

	// Open the data directory exactly as serve will (same settings, so the
	// same database file and the same generated master key), then enqueue.
	ctx := context.Background()
	cfg, _, err := loadConfig("serve", nil, env, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	keys, db, err := openBackend(ctx, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	org := &store.Org{Name: "Webhook crash test"}
	if err := db.CreateOrg(ctx, org, nil); err != nil {
		t.Fatal(err)
	}
	evs := make([]store.OutboxEvent, n)
	payloads := map[string][]byte{}
	for i := range evs {
		id := store.NewID()
		rc.ids[i] = id
		body := fmt.Sprintf(`{"message":{"type":"status-update","status":"in-progress","index":%d,"event_id":%q}}`, i, id)
		evs[i] = store.OutboxEvent{ID: id, OrgID: org.ID, EventType: "status-update", URL: recvURL + "/hooks?i=" + strconv.Itoa(i), Payload: []byte(body)}
		payloads[id] = []byte(body)
		if i%2 == 0 {
			sec := fmt.Sprintf("whsec-%d-%s", i, id)
			rc.secrets[i] = sec
			sealed := keys.Seal([]byte(sec), webhook.SecretBinding(org.ID))
			evs[i].Secret = &sealed
		}
	}
	if err := db.EnqueueEvents(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	recv.Start()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "master.key")); err != nil {
		t.Fatalf("master key file: %v", err)
	}

	// Phase 1: slow receiver; SIGKILL once killAfter events are acknowledged.
	p1 := startParley(t, bin, env, base)
	select {
	case <-rc.kill:
	case err := <-p1.done:
		t.Fatalf("parley exited before the kill: %v\n%s", err, p1.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("receiver saw only %d acknowledgements\n%s", func() int { rc.mu.Lock(); defer rc.mu.Unlock(); return len(rc.acked) }(), p1.stderr.String())
	}
	if err := p1.cmd.Process.Kill(); err != nil { // SIGKILL, this pid only
		t.Fatal(err)
	}
	werr := <-p1.done
	var exit *exec.ExitError
	if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first server did not die of SIGKILL: %v", werr)
	}
	killedAt := time.Now()
	rc.mu.Lock()
	rc.slow = false
	ackedBefore, requestsBefore, inFlightAtKill := len(rc.acked), rc.requests, rc.inFlightAtKill
	rc.mu.Unlock()
	if ackedBefore >= n {
		t.Fatalf("all %d events were delivered before the kill: the test proves nothing", n)
	}

	// What the killed server left behind, read from the database file.
	db, err = openStore(ctx, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var delivered, leasedOrRetrying, untouched int
	for _, e := range outboxState(t, db, org.ID) {
		switch {
		case e.DeliveredAt != nil:
			delivered++
		case e.Attempts > 0:
			leasedOrRetrying++
		default:
			untouched++
		}
	}
	t.Logf("at the kill: %d requests received, %d events acknowledged by the receiver, %d requests in flight; outbox: %d delivered, %d claimed or awaiting a retry, %d never tried",
		requestsBefore, ackedBefore, inFlightAtKill, delivered, leasedOrRetrying, untouched)
	if delivered+leasedOrRetrying+untouched != n || delivered == n || untouched == 0 {
		t.Fatalf("the kill did not leave pending events (delivered %d, claimed %d, untouched %d of %d)", delivered, leasedOrRetrying, untouched, n)
	}
	if delivered > ackedBefore {
		t.Fatalf("%d events marked delivered but only %d acknowledged by the receiver", delivered, ackedBefore)
	}

	// Phase 2: restart with a fast receiver and wait for the outbox to drain.
	// With the default 30 s lease the events claimed at the kill would not be
	// due again before the deadline.
	p2 := startParley(t, bin, env, base)
	restarted := time.Now()
	var final []store.OutboxEvent
	deadline := restarted.Add(20 * time.Second)
	for {
		final = outboxState(t, db, org.ID)
		left := 0
		for _, e := range final {
			if e.DeliveredAt == nil {
				left++
			}
			if e.FailedAt != nil {
				t.Fatalf("event %s failed for good: %v\n%s", e.ID, *e.LastError, p2.stderr.String())
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events still undelivered %v after the restart\n%s", left, n, time.Since(restarted), p2.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	drain := time.Since(restarted)

	// Stop the second server gracefully before the final checks, so every
	// attempt it made is logged.
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p2.done:
		if err != nil {
			t.Fatalf("second server did not exit cleanly on SIGTERM: %v\n%s", err, p2.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("second server did not stop on SIGTERM\n%s", p2.stderr.String())
	}
	if log := p2.stderr.String(); strings.Contains(log, "panic") || strings.Contains(log, "level=ERROR") {
		t.Errorf("second server logged errors:\n%s", log)
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, pr := range rc.problems {
		t.Error("receiver:", pr)
	}
	// No gaps: the ids received and acknowledged are exactly the outbox ids,
	// and every body is the stored payload byte for byte.
	if len(final) != n {
		t.Fatalf("%d events in the outbox, want %d", len(final), n)
	}
	var missing, unacked []string
	for _, e := range final {
		bodies := rc.received[e.ID]
		if len(bodies) == 0 {
			missing = append(missing, e.ID)
			continue
		}
		if rc.acked[e.ID] == 0 {
			unacked = append(unacked, e.ID)
		}
		for _, b := range bodies {
			if !bytes.Equal(b, payloads[e.ID]) || !bytes.Equal(b, e.Payload) {
				t.Errorf("event %s: received %s, stored %s", e.ID, b, e.Payload)
			}
		}
	}
	if len(missing) > 0 || len(unacked) > 0 {
		t.Fatalf("gaps: %d events never received %v, %d never acknowledged %v", len(missing), missing, len(unacked), unacked)
	}
	for id := range rc.received {
		if _, ok := payloads[id]; !ok {
			t.Errorf("received an event id that is not in the outbox: %s", id)
		}
	}
	if len(rc.received) != n {
		t.Fatalf("%d distinct %s values received, want %d", len(rc.received), webhook.HeaderID, n)
	}

	// Every event has at least one logged attempt, one of them a 200.
	ds, total, err := db.ListDeliveries(ctx, org.ID, store.DeliveryFilter{Page: store.Page{Limit: 100000}})
	if err != nil || total != len(ds) {
		t.Fatalf("list deliveries: %v (%d of %d)", err, len(ds), total)
	}
	attempts, oks := map[string]int{}, map[string]int{}
	for _, d := range ds {
		attempts[d.EventID]++
		if d.StatusCode != nil && *d.StatusCode == http.StatusOK {
			oks[d.EventID]++
		}
	}
	for _, e := range final {
		if attempts[e.ID] < 1 || oks[e.ID] < 1 {
			t.Errorf("event %s: %d attempts logged, %d of them 200", e.ID, attempts[e.ID], oks[e.ID])
		}
	}

	var dupIDs []string
	for id, k := range rc.acked {
		if k > 1 {
			dupIDs = append(dupIDs, id)
		}
	}
	sort.Strings(dupIDs)
	t.Logf("N=%d events (%d signed); delivered before the kill: %d (receiver acks; %d recorded in the outbox); requests in flight at the kill: %d",
		n, len(rc.secrets), ackedBefore, delivered, inFlightAtKill)
	t.Logf("after the restart: drained in %v (server healthy again %v after the kill); %d requests in all, %d logged attempts; duplicates (an acknowledged event sent again): %d, %d of them after the restart; events acknowledged more than once: %v",
		drain.Round(time.Millisecond), restarted.Sub(killedAt).Round(time.Millisecond), rc.requests, len(ds), rc.dupes, rc.dupesLate, dupIDs)
}
