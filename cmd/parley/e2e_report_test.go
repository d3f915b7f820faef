package main

// End-to-end test of what comes out of a call: baresip calls `parley serve`
// (local speech, the fake OpenAI-compatible model for the conversation and
// the post-call work), hangs up, and the assistant's webhook receives a
// signed end-of-call report with the summary, a schema-valid analysis and a
// recording_url that downloads the call as a two-channel WAV.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/webhook"
)

const (
	reportSummary = "The caller asked to book an appointment for tomorrow morning and the assistant booked it."
	reportSecret  = "whsec_e2e_report"
)

// hookSink receives the assistant's webhooks and checks their signatures.
type hookSink struct {
	t  *testing.T
	mu sync.Mutex
	// reports are the end-of-call-report bodies, in arrival order.
	reports [][]byte
	ids     []string
	bad     []string
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := webhook.Verify(reportSecret, r.Header, body, time.Now(), 0); err != nil {
		h.bad = append(h.bad, r.Header.Get(webhook.HeaderEvent)+": "+err.Error())
	}
	if r.Header.Get(webhook.HeaderEvent) == webhook.EventEndOfCallReport {
		h.reports = append(h.reports, body)
		h.ids = append(h.ids, r.Header.Get(webhook.HeaderID))
	}
	w.WriteHeader(http.StatusOK)
}

func (h *hookSink) report(t *testing.T, timeout time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h.mu.Lock()
		n := len(h.reports)
		h.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no end-of-call report")
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.bad {
		t.Error("webhook signature:", b)
	}
	return h.reports[0]
}

// reportModel answers the conversation, the summary and the analysis.
func reportModel(reply string) func(openaifake.Request) openaifake.Reply {
	return func(req openaifake.Request) openaifake.Reply {
		switch {
		case req.ResponseFormat != nil:
			return openaifake.Reply{Text: `{"intent":"book_appointment","appointment_booked":true,"day":"tomorrow"}`}
		case len(req.Messages) > 0 && strings.Contains(req.Messages[0].Content, "You summarize phone calls"):
			return openaifake.Reply{Text: reportSummary}
		}
		return openaifake.Reply{Text: reply}
	}
}

func TestE2EBaresipEndOfCallReport(t *testing.T) {
	if inNetns(t) {
		return
	}
	hooks := &hookSink{t: t}
	recv := httptest.NewServer(hooks)
	defer recv.Close()
	reply := "Sure, I can book tomorrow morning for you."
	s := startE2EWith(t, openaifake.Config{Respond: reportModel(reply)}, "PARLEY_ALLOW_PRIVATE_URLS=true")
	schema := `{"type":"object","properties":{"intent":{"type":"string"},"appointment_booked":{"type":"boolean"},"day":{"type":"string"}},"required":["intent","appointment_booked"]}`
	s.setupNumber(t, `,"recording_enabled":true,"webhook_url":"`+recv.URL+`/hooks","webhook_secret":"`+reportSecret+`",
		"webhook_events":["status-update","end-of-call-report"],
		"analysis_plan":{"structured_data_plan":{"enabled":true,"schema":`+schema+`,
			"messages":[{"role":"system","content":"Extract {{schema}} from this call. It ended with {{ended_reason}}."},{"role":"user","content":"{{transcript}}"}]},
			"min_messages_threshold":2}`)
	script := []segment{{silence: 4 * time.Second}, {say: "book an appointment for tomorrow morning"}, {silence: 6 * time.Second}}
	wav := callerWAV(t, t.TempDir(), script)
	heard := dial(t, s, wav)

	var msg struct {
		Message struct {
			Type            string `json:"type"`
			Call            struct{ ID, Status string }
			Summary         string          `json:"summary"`
			Analysis        json.RawMessage `json:"analysis"`
			RecordingURL    string          `json:"recording_url"`
			EndReason       string          `json:"end_reason"`
			DurationSeconds int             `json:"duration_seconds"`
			StartedAt       time.Time       `json:"started_at"`
			EndedAt         time.Time       `json:"ended_at"`
			Messages        []struct{ Role, Content string }
			Assistant       map[string]any `json:"assistant"`
		} `json:"message"`
	}
	body := hooks.report(t, 30*time.Second)
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatal(err)
	}
	m := msg.Message
	t.Logf("end-of-call report: call %s %s/%s, %d s, summary %q, analysis %s, recording_url %s", m.Call.ID, m.Call.Status, m.EndReason, m.DurationSeconds, m.Summary, m.Analysis, m.RecordingURL)
	if m.Type != "end-of-call-report" || m.Call.Status != "ended" || m.EndReason != "user_hangup" || m.Summary != reportSummary {
		t.Fatalf("report: %s", body)
	}
	var analysis map[string]any
	if err := json.Unmarshal(m.Analysis, &analysis); err != nil || analysis["appointment_booked"] != true || analysis["intent"] != "book_appointment" {
		t.Fatalf("analysis %s (%v)", m.Analysis, err)
	}
	if len(m.Messages) != 3 || m.Assistant["name"] != "Front desk" || m.Assistant["webhook_secret"] != nil {
		t.Fatalf("report messages %+v, assistant %v", m.Messages, m.Assistant)
	}
	// The model saw the plan's prompt, placeholders filled.
	var sawPlan bool
	for _, q := range s.llm.Requests() {
		if q.ResponseFormat != nil && strings.Contains(q.Messages[0].Content, "It ended with user_hangup.") &&
			strings.Contains(q.Messages[1].Content, "book an appointment for tomorrow morning") {
			sawPlan = true
		}
	}
	if !sawPlan {
		t.Error("no analysis request with the plan's filled-in prompt")
	}

	// The call row holds the same results.
	var row struct {
		Summary        string          `json:"summary"`
		AnalysisResult json.RawMessage `json:"analysis_result"`
		RecordingURL   string          `json:"recording_url"`
	}
	s.api(t, "GET", "/calls/"+url.PathEscape(m.Call.ID), "", &row)
	if row.Summary != reportSummary || !bytes.Equal(compactJSON(t, row.AnalysisResult), compactJSON(t, m.Analysis)) || row.RecordingURL == "" {
		t.Fatalf("call row: %+v", row)
	}

	// The recording: the signed link works without a key; without a key or
	// a signature, with a forged signature, or with another organization's
	// key it does not.
	rec := httpGet(t, m.RecordingURL, "")
	if rec.status != 200 || rec.header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("GET recording_url = %d %s", rec.status, rec.body)
	}
	plain := s.base + "/api/v1/calls/" + url.PathEscape(m.Call.ID) + "/recording"
	if r := httpGet(t, plain, ""); r.status != 401 {
		t.Errorf("recording without a key or signature = %d, want 401", r.status)
	}
	if r := httpGet(t, plain, e2eKey); r.status != 200 || !bytes.Equal(r.body, rec.body) {
		t.Errorf("recording with the API key = %d (%d bytes)", r.status, len(r.body))
	}
	u, _ := url.Parse(m.RecordingURL)
	q := u.Query()
	q.Set("signature", strings.Repeat("0", len(q.Get("signature"))))
	u.RawQuery = q.Encode()
	if r := httpGet(t, u.String(), ""); r.status != 401 {
		t.Errorf("recording with a forged signature = %d, want 401", r.status)
	}
	var other struct {
		APIKey string `json:"api_key"`
	}
	s.api(t, "POST", "/organizations", `{"name":"Someone else"}`, &other)
	if r := httpGet(t, plain, other.APIKey); r.status != 404 {
		t.Errorf("recording with another organization's key = %d, want 404", r.status)
	}

	// A stereo WAV as long as the call, caller left, assistant right.
	hdr, err := audio.ReadWAVHeader(bytes.NewReader(rec.body))
	if err != nil || hdr.Channels != 2 || hdr.Rate != 8000 || hdr.BitsPerSample != 16 {
		t.Fatalf("recording header %+v, %v", hdr, err)
	}
	left, right := splitStereo(t, rec.body)
	callLen := m.EndedAt.Sub(m.StartedAt).Seconds()
	recLen := float64(len(left)) / 8000
	t.Logf("recording %.2f s, call %.2f s (started_at → ended_at)", recLen, callLen)
	if math.Abs(recLen-callLen) > 0.5 {
		t.Errorf("recording is %.2f s for a %.2f s call", recLen, callLen)
	}
	// Left follows the caller's script (speech 4.0 s to about 6.3 s, nothing
	// else); right follows what the caller heard from Parley.
	caller := speechProfile(readWAV(t, wav))
	leftP, rightP, heardP := speechProfile(left), speechProfile(right), speechProfile(heard)
	t.Logf("caller script %s", spans(caller))
	t.Logf("left channel  %s", spans(leftP))
	t.Logf("right channel %s", spans(rightP))
	t.Logf("heard by bsip %s", spans(heardP))
	if a, shift := bestAgreement(leftP, caller, 5); a < 0.9 {
		t.Errorf("left channel matches the caller's speech in %.0f%% of 100 ms windows (best shift %d), want ≥ 90%%", a*100, shift)
	}
	if a, shift := bestAgreement(rightP, heardP, 5); a < 0.9 {
		t.Errorf("right channel matches what the caller heard in %.0f%% of windows (best shift %d), want ≥ 90%%", a*100, shift)
	}
	if speechIn(rightP, 0.2, 1.5) < 0.6 || speechIn(leftP, 0.2, 1.5) > 0.05 {
		t.Errorf("the first message is not on the right channel alone")
	}
	if speechIn(leftP, 4.3, 6.0) < 0.6 || speechIn(rightP, 4.3, 6.0) > 0.05 {
		t.Errorf("the caller's words are not on the left channel alone")
	}
}

// bestAgreement is the share of windows where a and b agree, at the best
// shift of b within ±maxShift windows.
func bestAgreement(a, b []bool, maxShift int) (float64, int) {
	best, at := 0.0, 0
	for shift := -maxShift; shift <= maxShift; shift++ {
		same, n := 0, 0
		for i := range a {
			j := i + shift
			if j < 0 || j >= len(b) {
				continue
			}
			n++
			if a[i] == b[j] {
				same++
			}
		}
		if n > 0 && float64(same)/float64(n) > best {
			best, at = float64(same)/float64(n), shift
		}
	}
	return best, at
}

func splitStereo(t *testing.T, wav []byte) (left, right []int16) {
	t.Helper()
	r := bytes.NewReader(wav)
	hdr, err := audio.ReadWAVHeader(r)
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Channels != 2 || hdr.BitsPerSample != 16 {
		t.Fatalf("not 16-bit stereo: %+v", hdr)
	}
	data, _ := io.ReadAll(r)
	for i := 0; i+3 < len(data); i += 4 {
		left = append(left, int16(binary.LittleEndian.Uint16(data[i:])))
		right = append(right, int16(binary.LittleEndian.Uint16(data[i+2:])))
	}
	return left, right
}

func readWAV(t *testing.T, path string) []int16 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcm, _, err := audio.ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

type got struct {
	status int
	header http.Header
	body   []byte
}

func httpGet(t *testing.T, u, key string) got {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return got{resp.StatusCode, resp.Header, b}
}

func compactJSON(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not JSON: %s", raw)
	}
	b, _ := json.Marshal(v)
	return b
}
