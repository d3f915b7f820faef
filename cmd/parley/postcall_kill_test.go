package main

// Crash test of the post-call work: `parley serve` is killed with SIGKILL
// while calls that have ended wait for their summaries, uploads and
// end-of-call reports (some jobs running, with model requests in flight,
// some not started). After a restart every call gets its report: exactly
// one report event per call, with the id derived from the call, delivered
// at least once; nothing is lost and nothing is sent under a second id.

import (
	"bytes"
	"context"
	"database/sql"
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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/jobs"
	"github.com/parley-voice/parley/internal/postcall"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
	"github.com/parley-voice/parley/internal/webhook"
)

// buildParley builds the parley binary once per test run.
var buildParley = sync.OnceValues(func() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "parley-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "parley")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", errors.New(string(out))
	}
	return bin, nil
})

func parleyBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the parley binary")
	}
	bin, err := buildParley()
	if err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// reportReceiver is the customer's webhook endpoint for end-of-call reports.
type reportReceiver struct {
	secret string
	mu     sync.Mutex
	ids    map[string][]string // call id → X-Webhook-Id of each report received
	acks   int
	kill   chan struct{}
	killAt int
	bad    []string
}

func (rc *reportReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if r.Header.Get(webhook.HeaderEvent) != webhook.EventStatusUpdate {
		if err := webhook.Verify(rc.secret, r.Header, body, time.Now(), 0); err != nil {
			rc.mu.Lock()
			rc.bad = append(rc.bad, err.Error())
			rc.mu.Unlock()
		}
	}
	var p struct {
		Message struct {
			Type    string `json:"type"`
			Summary string `json:"summary"`
			Call    struct {
				ID string `json:"id"`
			} `json:"call"`
		} `json:"message"`
	}
	json.Unmarshal(body, &p)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if p.Message.Type == webhook.EventEndOfCallReport {
		if p.Message.Summary == "" {
			rc.bad = append(rc.bad, "report of "+p.Message.Call.ID+" without a summary")
		}
		rc.ids[p.Message.Call.ID] = append(rc.ids[p.Message.Call.ID], r.Header.Get(webhook.HeaderID))
		rc.acks++
		if rc.acks == rc.killAt {
			close(rc.kill)
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *reportReceiver) reported() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.ids)
}

func TestPostcallSurvivesSIGKILL(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testPostcallKill(t, engine)
		})
	}
}

func testPostcallKill(t *testing.T, engine string) {
	bin := parleyBinary(t)
	const (
		n        = 24
		recorded = 4 // of them with a recording to upload
		killAt   = 6
	)
	tmp := t.TempDir()
	// The post-call model answers each summary after 1.5 s, so the kill
	// finds requests in flight.
	model := openaifake.New(openaifake.Config{Respond: func(req openaifake.Request) openaifake.Reply {
		return openaifake.Reply{Text: "The caller asked about opening hours.", FirstTokenDelay: 1500 * time.Millisecond}
	}})
	modelSrv := httptest.NewServer(model)
	t.Cleanup(modelSrv.Close)
	rc := &reportReceiver{secret: "whsec_kill", ids: map[string][]string{}, kill: make(chan struct{}), killAt: killAt}
	recv := httptest.NewServer(rc)
	t.Cleanup(recv.Close)

	addr := freeAddr(t)
	base := "http://" + addr
	env := []string{
		"PARLEY_DATA_DIR=" + filepath.Join(tmp, "data"), "PARLEY_HTTP_ADDR=" + addr, "PARLEY_SIP_ADDR=off",
		"PARLEY_ALLOW_PRIVATE_URLS=true", "PARLEY_NODE_ID=kill-node",
		"PARLEY_OPENAI_BASE_URL=" + modelSrv.URL + "/v1", "PARLEY_OPENAI_API_KEY=fake",
		"PARLEY_POSTCALL_CONCURRENCY=4", "PARLEY_LOG_LEVEL=debug",
		// Reports claimed by the outbox at the kill are due again after the lease.
		"PARLEY_WEBHOOK_TIMEOUT=1s", "PARLEY_WEBHOOK_LEASE=2s",
	}
	if engine == "postgres" {
		env = append(env, "PARLEY_DATABASE_URL="+storetest.PostgresSchema(t))
	}

	// Calls that have just ended, recorded as the voice engine records them:
	// the end and its post-call jobs in one transaction.
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
	defer db.Close()
	inserter, err := jobs.Open(ctx, jobs.Config{Engine: db.Driver(), DB: db.Writer(), NodeID: cfg.NodeID})
	if err != nil {
		t.Fatal(err)
	}
	sched := postcall.New(postcall.Config{NodeID: cfg.NodeID})
	sched.Attach(inserter, nil)
	org := &store.Org{Name: "Crash test"}
	if err := db.CreateOrg(ctx, org, nil); err != nil {
		t.Fatal(err)
	}
	target, _ := json.Marshal(webhook.Target{URL: recv.URL + "/hooks", Secret: keys.Seal([]byte(rc.secret), webhook.SecretBinding(org.ID)),
		Events: []string{webhook.EventEndOfCallReport}})
	doneDir := filepath.Join(cfg.SpoolDir, "recordings", "done")
	if err := os.MkdirAll(doneDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var wav bytes.Buffer
	audio.WriteWAV(&wav, audio.Tone(440, 8000, 16000, 4000), 8000)
	calls := make([]string, n)
	for i := range calls {
		started := time.Now().Add(-time.Minute)
		c := &store.Call{OrgID: org.ID, Direction: call.Inbound, Status: call.StatusInProgress, StartedAt: &started,
			Assistant: json.RawMessage(`{"name":"Desk","llm_config":{"provider":"openai","model":"gpt-4.1"}}`), Webhook: target}
		c.ID = fmt.Sprintf("call-_+31612340000_killtest%04d", i)
		if err := db.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		calls[i] = c.ID
		file := ""
		if i < recorded {
			file = filepath.Join(doneDir, c.ID+".wav")
			os.WriteFile(file, wav.Bytes(), 0o600)
		}
		dur := 60
		end := store.CallEnd{OrgID: org.ID, ID: c.ID, Status: call.StatusEnded, EndReason: call.EndUserHangup, EndedAt: time.Now(), Duration: &dur,
			Messages: json.RawMessage(`[{"role":"user","content":"When are you open?"},{"role":"assistant","content":"Nine to five."}]`),
			InTx:     func(ctx context.Context, tx *sql.Tx) error { return sched.Schedule(ctx, tx, org.ID, c.ID, file) }}
		if file != "" {
			end.Recording = store.RecordingPending
		}
		if err := db.EndCall(ctx, end); err != nil {
			t.Fatal(err)
		}
	}

	// Phase 1: killed once a few reports are through.
	p1 := startParley(t, bin, env, base)
	select {
	case <-rc.kill:
	case err := <-p1.done:
		t.Fatalf("parley exited before the kill: %v\n%s", err, p1.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d reports before the deadline\n%s", rc.reported(), p1.stderr.String())
	}
	if err := p1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	werr := <-p1.done
	var exit *exec.ExitError
	if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first server did not die of SIGKILL: %v", werr)
	}
	running, err := inserter.Count(ctx, []rivertype.JobState{rivertype.JobStateRunning})
	if err != nil {
		t.Fatal(err)
	}
	pending, err := inserter.Count(ctx, jobs.Pending)
	if err != nil {
		t.Fatal(err)
	}
	reportedAtKill := rc.reported()
	t.Logf("%s: at the kill %d of %d calls reported; jobs left: %d unfinished, %d of them running (model requests or uploads in flight)",
		engine, reportedAtKill, n, pending, running)
	if running == 0 || reportedAtKill >= n {
		t.Fatalf("the kill left no job running (%d running, %d reported): the test proves nothing", running, reportedAtKill)
	}

	// Phase 2: restart; every call gets its report.
	p2 := startParley(t, bin, env, base)
	restarted := time.Now()
	deadline := restarted.Add(60 * time.Second)
	for rc.reported() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d calls reported %v after the restart\n%s", rc.reported(), n, time.Since(restarted), p2.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	drained := time.Since(restarted)
	waitFor(t, 20*time.Second, "the jobs to finish and the reports to be recorded as delivered", func() bool {
		left, err := inserter.Count(ctx, jobs.Pending)
		if err != nil || left > 0 {
			return false
		}
		evs, _, err := db.ListEvents(ctx, org.ID, store.EventFilter{EventType: webhook.EventEndOfCallReport, Page: store.Page{Limit: 1000}})
		if err != nil {
			return false
		}
		for _, e := range evs {
			if e.DeliveredAt == nil {
				return false
			}
		}
		return true
	})
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p2.done:
		if err != nil {
			t.Fatalf("second server did not exit cleanly: %v\n%s", err, p2.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("second server did not stop on SIGTERM\n%s", p2.stderr.String())
	}
	log := p2.stderr.String()
	if !strings.Contains(log, "jobs interrupted by the last stop run again") {
		t.Errorf("the restarted node did not take back its interrupted jobs:\n%s", log)
	}
	if strings.Contains(log, "panic") || strings.Contains(log, "level=ERROR") {
		t.Errorf("second server logged errors:\n%s", log)
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, b := range rc.bad {
		t.Error("receiver:", b)
	}
	dupes := 0
	for _, id := range calls {
		want := webhook.EventID(id, webhook.EventEndOfCallReport)
		got := rc.ids[id]
		if len(got) == 0 {
			t.Errorf("call %s: no report", id)
			continue
		}
		for _, g := range got {
			if g != want {
				t.Errorf("call %s: report under id %s, want %s", id, g, want)
			}
		}
		dupes += len(got) - 1
		evs, total, err := db.ListEvents(ctx, org.ID, store.EventFilter{CallID: id, EventType: webhook.EventEndOfCallReport, Page: store.Page{Limit: 10}})
		if err != nil || total != 1 || evs[0].DeliveredAt == nil {
			t.Errorf("call %s: %d report events in the outbox (%v)", id, total, err)
		}
		row, err := db.GetCall(ctx, org.ID, id)
		if err != nil || row.Summary == nil {
			t.Errorf("call %s: summary %v (%v)", id, row.Summary, err)
		}
	}
	for i := range recorded {
		row, _ := db.GetCall(ctx, org.ID, calls[i])
		if row.RecordingState != store.RecordingReady {
			t.Errorf("call %s: recording %q after the restart", calls[i], row.RecordingState)
		}
	}
	if len(rc.ids) != n {
		t.Errorf("reports for %d calls, want %d", len(rc.ids), n)
	}
	t.Logf("%s: after the restart all %d calls reported in %v; %d model requests in all; reports received twice under the same id (at least once): %d",
		engine, n, drained.Round(time.Millisecond), len(model.Requests()), dupes)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
