package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/webhook"
)

// statusSink keeps the status-update webhooks of every call.
type statusSink struct {
	mu    sync.Mutex
	calls map[string]*hookedCall
}

// hookedCall is what a call's status updates said.
type hookedCall struct {
	statuses  []string
	endReason string
	assistant struct {
		LLM struct {
			Messages []struct{ Role, Content string } `json:"messages"`
		} `json:"llm_config"`
		FirstMessage string         `json:"first_message"`
		Metadata     map[string]any `json:"metadata"`
	}
}

func (h *statusSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.WriteHeader(http.StatusOK)
	if r.Header.Get(webhook.HeaderEvent) != webhook.EventStatusUpdate {
		return
	}
	var m struct {
		Message struct {
			Status    string `json:"status"`
			EndReason string `json:"end_reason"`
			Call      struct{ ID string }
			Assistant json.RawMessage `json:"assistant"`
		} `json:"message"`
	}
	if json.Unmarshal(body, &m) != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls[m.Message.Call.ID]
	if c == nil {
		c = &hookedCall{}
		h.calls[m.Message.Call.ID] = c
		_ = json.Unmarshal(m.Message.Assistant, &c.assistant)
	}
	c.statuses = append(c.statuses, m.Message.Status)
	if m.Message.EndReason != "" {
		c.endReason = m.Message.EndReason
	}
}

type campaignLead struct {
	ID          string            `json:"id"`
	PhoneNumber string            `json:"phone_number"`
	Status      string            `json:"status"`
	Attempts    int               `json:"attempts"`
	CallID      string            `json:"call_id"`
	Variables   map[string]string `json:"variables"`
	LastOutcome string            `json:"last_outcome"`
}

type campaignCall struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	EndReason string    `json:"end_reason"`
	CreatedAt time.Time `json:"created_at"`
	EndedAt   time.Time `json:"ended_at"`
}

// TestE2ECampaign dials a 50-lead campaign through a SIPp trunk whose
// callees answer (and hang up after 2 s), are busy, do not answer, or whose
// trunk answers 503, by the last digit of the number; every lead must end in
// the right state after the right number of attempts, the counters must
// match the call rows, retries must come after the configured delay, and
// each call must carry its lead's variables and ids.
func TestE2ECampaign(t *testing.T) {
	far := startFarEnd(t, 2*time.Second)
	sink := &statusSink{calls: map[string]*hookedCall{}}
	recv := httptest.NewServer(sink)
	defer recv.Close()
	s := startE2EWith(t, openaifake.Config{}, "PARLEY_ALLOW_PRIVATE_URLS=true", "PARLEY_RING_TIMEOUT=2s",
		"PARLEY_CAMPAIGN_TICK=100ms", "PARLEY_CAMPAIGN_BACKOFF=1s", "PARLEY_RATE_LIMIT=100000")

	var a struct{ Assistant struct{ ID string } }
	s.api(t, "POST", "/assistants", `{"name":"Reminders","first_message":"Hello {{name}}, this is Acme about your appointment.",
		"webhook_url":"`+recv.URL+`/hooks","webhook_events":["status-update"],
		"llm_config":{"provider":"openai","model":"gpt-4.1","messages":[{"role":"system","content":"You remind people of appointments."}]},
		"stt_config":{"provider":"local","model":"pocketsphinx","language":"en","keyterms":["yes","no"]},
		"tts_config":{"provider":"local","model":"espeak-ng","voice_id":"en-us"}}`, &a)
	var tr struct {
		Trunk struct{ ID string } `json:"sip_trunk"`
	}
	s.api(t, "POST", "/sip-trunks", `{"name":"SIPp","address":"`+far.Addr+`"}`, &tr)
	s.api(t, "POST", "/numbers", `{"phone_number":"+31201234567","transfer_trunk_id":"`+tr.Trunk.ID+`"}`, nil)

	const n = 50
	leads := make([]string, n)
	for i := range leads {
		leads[i] = fmt.Sprintf(`{"phone_number":"+3161000%04d","variables":{"name":"Person %d","company":"Company %d"}}`, i, i, i)
	}
	var c struct {
		Campaign struct{ ID string } `json:"campaign"`
	}
	s.api(t, "POST", "/campaigns", `{"name":"Reminders","agent_id":"`+a.Assistant.ID+`",
		"system_message_template":"You are calling {{name}} from {{company}} about {{topic}}.",
		"schedule_start_time":"00:00:00","schedule_end_time":"23:59:59","timezone":"UTC",
		"max_concurrent_calls":10,"calls_per_second":5,"max_attempts":2,"retry_delay_seconds":3,
		"leads":[`+strings.Join(leads, ",")+`]}`, &c)
	id := c.Campaign.ID
	start := time.Now()
	s.api(t, "PATCH", "/campaigns/"+id, `{"status":"scheduled"}`, nil)

	var camp struct {
		Campaign struct {
			Status         string `json:"status"`
			TotalLeads     int    `json:"total_leads"`
			CompletedLeads int    `json:"completed_leads"`
			FailedLeads    int    `json:"failed_leads"`
			PendingLeads   int    `json:"pending_leads"`
			CallingLeads   int    `json:"calling_leads"`
		} `json:"campaign"`
	}
	maxCalling := 0
	for deadline := time.Now().Add(3 * time.Minute); ; {
		s.api(t, "GET", "/campaigns/"+id, "", &camp)
		maxCalling = max(maxCalling, camp.Campaign.CallingLeads)
		if camp.Campaign.Status == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign not completed in 3 minutes: %+v", camp.Campaign)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("campaign of %d leads completed in %s; at most %d calling at once", n, time.Since(start).Round(time.Millisecond), maxCalling)
	if maxCalling > 10 {
		t.Errorf("%d leads calling at once, max_concurrent_calls 10", maxCalling)
	}

	var ls struct{ Leads []campaignLead }
	s.api(t, "GET", "/campaigns/"+id+"/leads?limit=100", "", &ls)
	var cs struct{ Calls []campaignCall }
	s.api(t, "GET", "/calls?limit=200", "", &cs)
	calls := map[string]campaignCall{}
	for _, cl := range cs.Calls {
		calls[cl.ID] = cl
	}
	// Every call of a lead, from the webhooks' metadata.
	sink.mu.Lock()
	defer sink.mu.Unlock()
	byLead := map[string][]campaignCall{}
	for callID, h := range sink.calls {
		if h.assistant.Metadata["campaign_id"] != id {
			t.Errorf("call %s: metadata %v without the campaign id", callID, h.assistant.Metadata)
			continue
		}
		lead, _ := h.assistant.Metadata["lead_id"].(string)
		cl, ok := calls[callID]
		if !ok {
			t.Errorf("webhooks for call %s, which GET /calls does not list", callID)
		}
		byLead[lead] = append(byLead[lead], cl)
	}
	if len(sink.calls) != len(cs.Calls) {
		t.Errorf("%d calls in webhooks, %d call rows", len(sink.calls), len(cs.Calls))
	}
	invites := far.Invites()
	want := map[byte]struct {
		status, reason, outcome string
		attempts                int
	}{
		'1': {"failed", "busy", "busy", 2},
		'2': {"failed", "no_answer", "no_answer", 2},
		'3': {"failed", "trunk_congested", "trunk_congested", 2},
	}
	completed, failed := 0, 0
	var retryGaps []time.Duration
	for _, l := range ls.Leads {
		w, special := want[l.PhoneNumber[len(l.PhoneNumber)-1]]
		if !special {
			w.status, w.reason, w.outcome, w.attempts = "completed", "", "answered", 1
		}
		lc := byLead[l.ID]
		sort.Slice(lc, func(i, j int) bool { return lc[i].CreatedAt.Before(lc[j].CreatedAt) })
		if l.Status != w.status || l.Attempts != w.attempts || l.LastOutcome != w.outcome || len(lc) != w.attempts || invites[l.PhoneNumber] != w.attempts {
			t.Errorf("lead %s: %s after %d attempts (%s), %d call rows, %d INVITEs; want %s after %d (%s)",
				l.PhoneNumber, l.Status, l.Attempts, l.LastOutcome, len(lc), invites[l.PhoneNumber], w.status, w.attempts, w.outcome)
			continue
		}
		for _, cl := range lc {
			if special && cl.EndReason != w.reason {
				t.Errorf("lead %s: call %s ended %s, want %s", l.PhoneNumber, cl.ID, cl.EndReason, w.reason)
			}
		}
		if l.CallID != lc[len(lc)-1].ID {
			t.Errorf("lead %s names call %s, its last call is %s", l.PhoneNumber, l.CallID, lc[len(lc)-1].ID)
		}
		if len(lc) == 2 {
			retryGaps = append(retryGaps, lc[1].CreatedAt.Sub(lc[0].EndedAt))
		}
		switch l.Status {
		case "completed":
			completed++
		case "failed":
			failed++
		}
		// The lead's own variables reached its calls; the unknown
		// placeholder stayed visible and was reported.
		h := sink.calls[l.CallID]
		name, company := l.Variables["name"], l.Variables["company"]
		msgs := h.assistant.LLM.Messages
		if h.assistant.FirstMessage != "Hello "+name+", this is Acme about your appointment." || len(msgs) != 2 ||
			msgs[1].Content != "You are calling "+name+" from "+company+" about {{topic}}." ||
			h.assistant.Metadata["lead_id"] != l.ID || fmt.Sprint(h.assistant.Metadata["unfilled_variables"]) != "[topic]" {
			t.Errorf("lead %s: the call ran with first message %q, messages %+v, metadata %v", l.PhoneNumber, h.assistant.FirstMessage, msgs, h.assistant.Metadata)
		}
	}
	if completed != 35 || failed != 15 || camp.Campaign.CompletedLeads != completed || camp.Campaign.FailedLeads != failed ||
		camp.Campaign.TotalLeads != n || camp.Campaign.PendingLeads != 0 || camp.Campaign.CallingLeads != 0 {
		t.Errorf("counters %+v; leads completed %d failed %d", camp.Campaign, completed, failed)
	}
	sort.Slice(retryGaps, func(i, j int) bool { return retryGaps[i] < retryGaps[j] })
	if len(retryGaps) != 15 {
		t.Fatalf("%d retries, want 15", len(retryGaps))
	}
	t.Logf("retry gaps (end of first call → second call created), configured 3 s: min %s median %s max %s",
		retryGaps[0].Round(time.Millisecond), retryGaps[7].Round(time.Millisecond), retryGaps[14].Round(time.Millisecond))
	// The delay runs from the settlement, at most one tick (100 ms) after
	// the end; the congested leads also wait out the 1 s backoff.
	if retryGaps[0] < 3*time.Second || retryGaps[14] > 6*time.Second {
		t.Errorf("retry gaps %s … %s, want from 3 s (retry_delay_seconds) to a few ticks more", retryGaps[0], retryGaps[14])
	}
	if e := far.Errors(); e != "" {
		t.Logf("SIPp errors:\n%s", tail(e, 2000))
	}
}
