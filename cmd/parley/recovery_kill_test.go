package main

// Crash test of call recovery: `parley serve` is killed with SIGKILL while
// SIPp calls are live on it. The rows stay in-progress; after a restart the
// orphaned calls are ended within 30 s (end_reason
// server_stopped_unexpectedly, duration up to the last activity, billed),
// each with its status-update and its end-of-call report. With two nodes on
// one PostgreSQL, killing one ends only that node's calls: the survivor's
// live calls are untouched.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
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

	"github.com/parley-voice/parley/internal/provider/deepgram/deepgramfake"
	"github.com/parley-voice/parley/internal/provider/elevenlabs/elevenlabsfake"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/store/storetest"
	"github.com/parley-voice/parley/internal/webhook"
)

const recoveryKey = "recovery-test-key-0123456789abcdef"

// needSIPp skips (or, in CI, fails) without SIPp.
func needSIPp(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("PARLEY_REQUIRE_E2E") != "" {
			t.Fatal("this test needs sipp (apt-get install sip-tester)")
		}
		t.Skip("this test needs sipp (apt-get install sip-tester; set PARLEY_REQUIRE_E2E to fail instead)")
	}
	return bin
}

// fakeProviders serves the fake Deepgram, OpenAI and ElevenLabs endpoints.
func fakeProviders(t *testing.T) string {
	mux := http.NewServeMux()
	mux.Handle("/v1/listen", deepgramfake.New(deepgramfake.Config{Transcripts: []string{"Hello"}}))
	mux.Handle("/v1/chat/completions", openaifake.New(openaifake.Config{Respond: func(openaifake.Request) openaifake.Reply {
		return openaifake.Reply{Text: "The caller rang and the line went dead."}
	}}))
	el := elevenlabsfake.New(elevenlabsfake.Config{})
	mux.Handle(elevenlabsfake.Path, el)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); el.Close() })
	return srv.URL
}

// callHooks records the call webhooks a customer receives.
type callHooks struct {
	mu       sync.Mutex
	statuses map[string][]map[string]any // call id → status-update messages
	reports  map[string][]map[string]any // call id → end-of-call-report messages
	bad      []string
}

func (h *callHooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := webhook.Verify(reportSecret, r.Header, body, time.Now(), 0); err != nil {
		h.bad = append(h.bad, err.Error())
	}
	var p struct {
		Message map[string]any `json:"message"`
	}
	json.Unmarshal(body, &p)
	id, _ := p.Message["call"].(map[string]any)["id"].(string)
	switch p.Message["type"] {
	case webhook.EventStatusUpdate:
		h.statuses[id] = append(h.statuses[id], p.Message)
	case webhook.EventEndOfCallReport:
		h.reports[id] = append(h.reports[id], p.Message)
	}
	w.WriteHeader(http.StatusOK)
}

// recovered reports whether the call's end by recovery has been announced:
// a status-update saying so and an end-of-call report.
func (h *callHooks) recovered(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	ok := false
	for _, m := range h.statuses[id] {
		if m["end_reason"] == "server_stopped_unexpectedly" && m["call"].(map[string]any)["status"] == "ended-with-error" {
			ok = true
		}
	}
	return ok && len(h.reports[id]) > 0
}

// node is one `parley serve` process of the test.
type node struct {
	name, base, sip string
	env             []string
	proc            *parleyProc
}

func newNode(t *testing.T, name, shared string, extra ...string) *node {
	n := &node{name: name, base: "http://" + freeAddr(t), sip: freeAddr(t)}
	n.env = append([]string{
		"PARLEY_DATA_DIR=" + filepath.Join(shared, "data-"+name), "PARLEY_MASTER_KEY_FILE=" + filepath.Join(shared, "master.key"),
		"PARLEY_HTTP_ADDR=" + strings.TrimPrefix(n.base, "http://"), "PARLEY_SIP_ADDR=" + n.sip, "PARLEY_NODE_ID=" + name,
		"PARLEY_BOOTSTRAP_API_KEY=" + recoveryKey, "PARLEY_ALLOW_PRIVATE_URLS=true", "PARLEY_MEDIA_TIMEOUT=10m",
		"PARLEY_LOG_LEVEL=debug", "PARLEY_WEBHOOK_TIMEOUT=2s", "PARLEY_WEBHOOK_LEASE=4s",
	}, extra...)
	return n
}

func (n *node) start(t *testing.T, bin string) { n.proc = startParley(t, bin, n.env, n.base) }

func (n *node) kill(t *testing.T) {
	t.Helper()
	if err := n.proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := <-n.proc.done
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("%s did not die of SIGKILL: %v", n.name, err)
	}
}

func (n *node) stop(t *testing.T) {
	t.Helper()
	n.proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.proc.done:
		if err != nil {
			t.Errorf("%s did not exit cleanly: %v", n.name, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop on SIGTERM", n.name)
	}
}

func (n *node) api(t *testing.T, method, path, body string, out any) {
	t.Helper()
	apiRequest(t, n.base, recoveryKey, method, path, body, out)
}

type listedCall struct {
	ID              string  `json:"id"`
	Status          string  `json:"status"`
	EndReason       *string `json:"end_reason"`
	DurationSeconds *int    `json:"duration_seconds"`
	AssistantPhone  *string `json:"assistant_phone"`
}

func (n *node) calls(t *testing.T) []listedCall {
	var list struct{ Calls []listedCall }
	n.api(t, "GET", "/calls?limit=100", "", &list)
	return list.Calls
}

// sippCalls places count calls to number on n's SIP address that stay up
// for ten minutes (no media: the server's media timeout is raised).
func sippCalls(t *testing.T, sipp string, n *node, number string, count int) {
	t.Helper()
	cmd := exec.Command(sipp, "-sn", "uac", "-s", number, n.sip, "-i", "127.0.0.1", "-p", strings.Split(freeAddr(t), ":")[1],
		"-m", fmt.Sprint(count), "-r", fmt.Sprint(count), "-d", "600000", "-nostdin", "-trace_err", "-error_file", filepath.Join(t.TempDir(), "sipp.err"))
	cmd.Dir = t.TempDir()
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// configure makes the assistant (webhook to hooks) and the number.
func configure(t *testing.T, n *node, hooks, number string) {
	var a struct{ Assistant struct{ ID string } }
	n.api(t, "POST", "/assistants", `{"name":"Desk","first_message":"Hello.",
		"llm_config":{"provider":"openai","model":"gpt-4.1","messages":[{"role":"system","content":"Be brief."}]},
		"stt_config":{"provider":"deepgram","model":"nova-3","language":"en"},
		"tts_config":{"provider":"elevenlabs","voice_id":"v"},
		"webhook_url":"`+hooks+`","webhook_secret":"`+reportSecret+`","webhook_events":["status-update","end-of-call-report"]}`, &a)
	n.api(t, "POST", "/numbers", `{"phone_number":"`+number+`","assistant_id":"`+a.Assistant.ID+`"}`, nil)
}

func waitLive(t *testing.T, n *node, number string, want int) []listedCall {
	t.Helper()
	var live []listedCall
	waitFor(t, 20*time.Second, fmt.Sprintf("%d live calls on %s", want, n.name), func() bool {
		live = live[:0]
		for _, c := range n.calls(t) {
			if c.Status == "in-progress" && c.AssistantPhone != nil && *c.AssistantPhone == number {
				live = append(live, c)
			}
		}
		return len(live) == want
	})
	return live
}

func TestRecoveryAfterSIGKILL(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			bin := parleyBinary(t)
			sipp := needSIPp(t)
			providers := fakeProviders(t)
			hooks := &callHooks{statuses: map[string][]map[string]any{}, reports: map[string][]map[string]any{}}
			hookSrv := httptest.NewServer(hooks)
			t.Cleanup(hookSrv.Close)
			shared := t.TempDir()
			extra := []string{"PARLEY_DEEPGRAM_BASE_URL=" + providers, "PARLEY_DEEPGRAM_API_KEY=fake",
				"PARLEY_OPENAI_BASE_URL=" + providers + "/v1", "PARLEY_OPENAI_API_KEY=fake",
				"PARLEY_ELEVENLABS_BASE_URL=" + providers, "PARLEY_ELEVENLABS_API_KEY=fake"}
			if engine == "postgres" {
				extra = append(extra, "PARLEY_DATABASE_URL="+storetest.PostgresSchema(t))
			}
			a := newNode(t, "node-a", shared, extra...)
			a.start(t, bin)
			configure(t, a, hookSrv.URL+"/hooks", "+15550101")
			var nodes = []*node{a}
			var b *node
			if engine == "postgres" {
				// A second node on the same database, with calls of its own.
				b = newNode(t, "node-b", shared, extra...)
				b.start(t, bin)
				b.api(t, "POST", "/numbers", `{"phone_number":"+15550102","assistant_id":"`+assistantID(t, a)+`"}`, nil)
				nodes = append(nodes, b)
			}
			const perNode = 3
			sippCalls(t, sipp, a, "+15550101", perNode)
			if b != nil {
				sippCalls(t, sipp, b, "+15550102", perNode)
			}
			answered := time.Now()
			orphans := waitLive(t, a, "+15550101", perNode)
			var kept []listedCall
			if b != nil {
				kept = waitLive(t, b, "+15550102", perNode)
			}
			time.Sleep(2 * time.Second) // the calls run a little
			var before struct {
				MinutesBalance float64 `json:"minutes_balance"`
			}
			a.api(t, "GET", "/organizations", "", &before)

			a.kill(t)
			killed := time.Now()
			// Billed up to the last persisted activity (a transcript save or
			// the node's heartbeat, every 5 s): never more than the call ran.
			maxDur := int(math.Ceil(killed.Sub(answered).Seconds()))
			time.Sleep(time.Second)
			a.start(t, bin)
			deadline := killed.Add(30 * time.Second)
			for _, o := range orphans {
				for !hooks.recovered(o.ID) {
					if time.Now().After(deadline) {
						t.Fatalf("call %s not ended with its status-update and report within 30 s of the kill\n%s", o.ID, a.proc.stderr.String())
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			took := time.Since(killed)
			var billed int
			for _, c := range a.calls(t) {
				for _, o := range orphans {
					if c.ID != o.ID {
						continue
					}
					if c.Status != "ended-with-error" || c.EndReason == nil || *c.EndReason != "server_stopped_unexpectedly" || c.DurationSeconds == nil || *c.DurationSeconds < 1 || *c.DurationSeconds > maxDur {
						t.Errorf("orphan %s: %s %v %v", c.ID, c.Status, c.EndReason, c.DurationSeconds)
					} else {
						billed += *c.DurationSeconds
					}
				}
			}
			var after struct {
				MinutesBalance float64 `json:"minutes_balance"`
			}
			a.api(t, "GET", "/organizations", "", &after)
			if got := (before.MinutesBalance - after.MinutesBalance) * 60; math.Abs(got-float64(billed)) > 0.01 {
				t.Errorf("balance fell by %.4f s, want the orphans' %d s", got, billed)
			}
			if b != nil {
				for _, c := range b.calls(t) {
					for _, k := range kept {
						if c.ID == k.ID && c.Status != "in-progress" {
							t.Errorf("the surviving node's call %s was ended: %s %v", c.ID, c.Status, c.EndReason)
						}
					}
				}
				for _, line := range strings.Split(b.proc.stderr.String(), "\n") {
					for _, k := range kept {
						if strings.Contains(line, "orphaned call ended") && strings.Contains(line, "call_id="+k.ID) {
							t.Errorf("node-b ended its own live call %s", k.ID)
						}
					}
				}
			}
			hooks.mu.Lock()
			for _, bad := range hooks.bad {
				t.Error("webhook signature:", bad)
			}
			hooks.mu.Unlock()
			t.Logf("%s: %d orphans of the killed node ended with status-update and report %v after the SIGKILL (restart included); %d s billed; %d live calls of the other node untouched",
				engine, len(orphans), took.Round(time.Millisecond), billed, len(kept))
			for _, n := range nodes {
				n.stop(t)
			}
		})
	}
}

func assistantID(t *testing.T, n *node) string {
	var list struct {
		Assistants []struct{ ID string } `json:"assistants"`
	}
	n.api(t, "GET", "/assistants", "", &list)
	if len(list.Assistants) == 0 {
		t.Fatal("no assistant")
	}
	return list.Assistants[0].ID
}
