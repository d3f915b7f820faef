package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/provider/google"
	"github.com/parley-voice/parley/internal/provider/google/googlefake"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/realtime/realtimefake"
)

// realtimeScript is what the caller says to each realtime fake and how the
// fake model answers: a tool call on the first turn, a long answer on the
// second (which the caller interrupts), a short one on the third.
func realtimeScript() realtimefake.Script {
	return realtimefake.Script{
		Transcripts: []string{"please book a table for two", "tell me everything", "stop there"},
		Tools:       []realtimefake.ToolTrigger{{Trigger: "book", Name: "book_table", Arguments: `{"guests":2}`}},
		Replies: map[string]string{"everything": "We open at nine in the morning and close at eleven at night, every day of the week " +
			"except Mondays, and the kitchen takes its last orders at half past ten."},
	}
}

// realtimeCase is one provider's side of TestE2ERealtime.
type realtimeCase struct {
	name string
	// llm is the assistant's llm_config.
	llm string
	// start serves the provider's fake and returns the server's settings
	// and a BYOK key to store (provider, key), if any.
	start func(t *testing.T) (env []string, byokProvider, byokKey string)
	// cutShort reports that the fake saw the barge-in (a truncated item or
	// an interrupted turn) and how far into the answer.
	cutShort func() (string, bool)
}

// TestE2ERealtime: a phone call (the `parley call` softphone, real SIP and
// RTP) with a realtime assistant of each provider, against the provider's
// protocol fake. The first message is said; the caller's first turn makes
// the model call a webhook tool and speak its result; the caller cuts into
// the long answer to the second turn; then the control API's say and
// end-call reach the model, and the call ends with api_request.
func TestE2ERealtime(t *testing.T) {
	for _, bin := range []string{"espeak-ng"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("PARLEY_REQUIRE_E2E") != "" {
				t.Fatalf("end-to-end test needs %s", bin)
			}
			t.Skipf("end-to-end test needs %s", bin)
		}
	}
	bin := parleyBinary(t)
	for _, rc := range []realtimeCase{openAICase(openaifake.RealtimeOpenAI), openAICase(openaifake.RealtimeXAI), geminiCase(false), geminiCase(true)} {
		t.Run(rc.name, func(t *testing.T) { realtimeCall(t, bin, rc) })
	}
}

// openAICase is the Realtime protocol: OpenAI (openai_live) or xAI
// (xai_realtime), with the server's key.
func openAICase(mode openaifake.RealtimeMode) realtimeCase {
	var fake *openaifake.RealtimeServer
	rc := realtimeCase{name: "openai", llm: `{"provider":"openai_live","model":"gpt-live-1"}`}
	setting, key := "PARLEY_OPENAI_REALTIME_URL", "fake"
	if mode == openaifake.RealtimeXAI {
		rc.name, rc.llm = "xai", `{"provider":"xai_realtime","model":"grok-voice-think-fast-2.0","turn_detection":{"silence_duration_ms":500}}`
		setting, key = "PARLEY_XAI_REALTIME_URL", "xai-realtime-test"
	}
	rc.start = func(t *testing.T) ([]string, string, string) {
		fake = openaifake.NewRealtime(openaifake.RealtimeConfig{APIKey: key, Mode: mode, Script: realtimeScript()})
		srv := httptest.NewServer(fake)
		t.Cleanup(func() { fake.Close(); srv.Close() })
		env := []string{setting + "=" + strings.Replace(srv.URL, "http://", "ws://", 1) + "/v1/realtime"}
		if mode == openaifake.RealtimeXAI {
			env = append(env, "PARLEY_XAI_API_KEY="+key)
		}
		return env, "", ""
	}
	rc.cutShort = func() (string, bool) {
		for _, s := range fake.Sessions() {
			if len(s.Truncates) > 0 {
				return fmt.Sprintf("item %s truncated at %d ms", s.Truncates[0].ItemID, s.Truncates[0].AudioEndMs), true
			}
		}
		return "", false
	}
	return rc
}

// geminiCase is Gemini Live with an AI Studio key (the server's) or a
// Vertex AI service account (BYOK).
func geminiCase(vertex bool) realtimeCase {
	var live *googlefake.Live
	rc := realtimeCase{name: "gemini studio", llm: `{"provider":"google_realtime","model":"` + google.LiveModelStudio31 + `","voice":"Kore"}`}
	if vertex {
		rc.name, rc.llm = "gemini vertex", `{"provider":"google_realtime","model":"`+google.LiveModelVertex+`","voice":"Kore"}`
	}
	rc.start = func(t *testing.T) ([]string, string, string) {
		acct, err := googlefake.NewAccount("eu-live-project", "parley@eu-live-project.iam.gserviceaccount.com")
		if err != nil {
			t.Fatal(err)
		}
		fake := googlefake.New(googlefake.Config{Account: acct})
		live = googlefake.NewLive(googlefake.LiveConfig{Server: fake, StudioKey: "AIza-live-test", Script: realtimeScript()})
		mux := http.NewServeMux()
		mux.Handle(googlefake.TokenPath, fake)
		mux.Handle("/ws/", live)
		srv := httptest.NewServer(mux)
		t.Cleanup(func() { live.Close(); srv.Close() })
		env := []string{"PARLEY_GOOGLE_LIVE_URL=" + srv.URL, "PARLEY_GOOGLE_VERTEX_URL=" + srv.URL,
			"PARLEY_GOOGLE_TOKEN_URL=" + srv.URL + googlefake.TokenPath}
		if vertex {
			return env, "google_vertex", acct.JSON
		}
		return append(env, "PARLEY_GOOGLE_API_KEY=AIza-live-test"), "", ""
	}
	rc.cutShort = func() (string, bool) {
		for _, s := range live.Sessions() {
			if s.Interrupted > 0 {
				return fmt.Sprintf("%d turn(s) interrupted", s.Interrupted), true
			}
		}
		return "", false
	}
	return rc
}

// toolReceiver answers the assistant's webhook tool.
type toolReceiver struct {
	mu    sync.Mutex
	calls []string
}

func (r *toolReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(req.Body).Decode(&body)
	b, _ := json.Marshal(body)
	r.mu.Lock()
	r.calls = append(r.calls, string(b))
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"result":"booked for two at eight"}`)
}

func realtimeCall(t *testing.T, bin string, rc realtimeCase) {
	env, byokProvider, byokKey := rc.start(t)
	tools := &toolReceiver{}
	tsrv := httptest.NewServer(tools)
	t.Cleanup(tsrv.Close)
	s := startE2EWith(t, openaifake.Config{}, append(env, "PARLEY_ALLOW_PRIVATE_URLS=true")...)
	if byokProvider != "" {
		body, _ := json.Marshal(map[string]string{"provider": byokProvider, "api_key": byokKey})
		s.api(t, "POST", "/byok", string(body), nil)
	}
	var a struct{ Assistant struct{ ID string } }
	llm := strings.TrimSuffix(rc.llm, "}") + `,"messages":[{"role":"system","content":"You take table bookings."}],
		"tools":[{"type":"function","function":{"name":"book_table","description":"Book a table.",
		"parameters":{"type":"object","properties":{"guests":{"type":"integer"}}}},"server":{"url":"` + tsrv.URL + `/book"}}]}`
	s.api(t, "POST", "/assistants", `{"name":"Realtime desk","first_message":"Hello, this is the booking line.",
		"llm_config":`+llm+`,"tts_config":null}`, &a)
	s.api(t, "POST", "/numbers", `{"phone_number":"+15550100","assistant_id":"`+a.Assistant.ID+`"}`, nil)

	dir := t.TempDir()
	wav := callerWAV(t, dir, []segment{{silence: 3 * time.Second}, {say: "please book a table for two"}, {silence: 6 * time.Second},
		{say: "tell me everything"}, {silence: 1500 * time.Millisecond}, {say: "stop there"}, {silence: 30 * time.Second}})
	heard := filepath.Join(dir, "heard.wav")
	caller := startProc(t, bin, nil, "call", "--server", s.sip, "--play", wav, "--record", heard, "+15550100")

	id := waitCallLive(t, s)
	waitTranscript(t, s, id, 30*time.Second, func(msgs []transcriptMsg) bool {
		return count(msgs, "user") >= 3 && msgs[len(msgs)-1].Role == "assistant"
	})
	const said = "Your table is booked for eight."
	s.api(t, "POST", "/calls/"+id+"/control", `{"type":"say","content":"`+said+`","end_after":false}`, nil)
	waitTranscript(t, s, id, 15*time.Second, func(msgs []transcriptMsg) bool { return msgs[len(msgs)-1].Content == said })
	s.api(t, "POST", "/calls/"+id+"/control", `{"type":"end-call","message":"Goodbye."}`, nil)
	caller.wait(t, 30*time.Second)

	var c struct {
		e2eCall
		Metrics json.RawMessage `json:"metrics"`
	}
	poll(t, 10*time.Second, "the call to end", func() bool {
		s.api(t, "GET", "/calls/"+id, "", &c)
		return c.Status != "in-progress"
	})
	if c.Status != "ended" || c.EndReason != "api_request" {
		t.Fatalf("call ended as %s / %s, want ended / api_request", c.Status, c.EndReason)
	}
	var roles []string
	for _, m := range c.Messages {
		roles = append(roles, m.Role)
	}
	want := "assistant user assistant user assistant user assistant assistant assistant"
	if strings.Join(roles, " ") != want {
		t.Fatalf("transcript roles %v, want %s\n%+v", roles, want, c.Messages)
	}
	m := c.Messages
	if m[0].Content != "Hello, this is the booking line." || m[1].Content != "please book a table for two" ||
		!strings.Contains(m[2].Content, "booked for two at eight") || !m[4].Interrupted || m[7].Content != said || m[8].Content != "Goodbye." {
		t.Errorf("transcript %+v: want the greeting, the tool's result spoken, the second answer interrupted, the say and the goodbye", m)
	}
	if len(tools.calls) != 1 || !strings.Contains(tools.calls[0], "book_table") {
		t.Errorf("webhook tool called %d times: %v", len(tools.calls), tools.calls)
	}
	if how, ok := rc.cutShort(); !ok {
		t.Error("the provider never learnt of the barge-in")
	} else {
		t.Logf("barge-in: %s", how)
	}
	if got := soundIn(t, heard); got < 5*time.Second {
		t.Errorf("the caller heard %v of sound, want the greeting, the answers, the say and the goodbye", got)
	}
}

type transcriptMsg struct {
	Role        string `json:"role"`
	Content     string `json:"content"`
	Interrupted bool   `json:"interrupted"`
}

func count(msgs []transcriptMsg, role string) int {
	n := 0
	for _, m := range msgs {
		if m.Role == role {
			n++
		}
	}
	return n
}

// waitCallLive waits for the one call to be in progress and returns its id.
func waitCallLive(t *testing.T, s *e2eServer) string {
	t.Helper()
	var id string
	poll(t, 15*time.Second, "a call in progress", func() bool {
		var list struct {
			Calls []struct{ ID, Status string }
		}
		s.api(t, "GET", "/calls", "", &list)
		for _, c := range list.Calls {
			if c.Status == "in-progress" {
				id = c.ID
				return true
			}
		}
		return false
	})
	return id
}

// waitTranscript waits until the call's transcript so far satisfies ok.
func waitTranscript(t *testing.T, s *e2eServer, id string, d time.Duration, ok func([]transcriptMsg) bool) {
	t.Helper()
	var c struct{ Messages []transcriptMsg }
	poll(t, d, "the transcript", func() bool {
		s.api(t, "GET", "/calls/"+id, "", &c)
		return len(c.Messages) > 0 && ok(c.Messages)
	})
}

// poll is waitFor at a pace the API's rate limit allows.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
