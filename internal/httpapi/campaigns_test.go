package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/store"
)

// wantParam checks a 400 that names field as its param.
func (r resp) wantParam(t testing.TB, field string) {
	t.Helper()
	r.wantError(t, 400, "", field)
	if r.Body["param"] != field {
		t.Fatalf("param = %v, want %s: %s", r.Body["param"], field, r.Raw)
	}
}

// pacingOf is a campaign answer's pacing members, printed.
func pacingOf(c map[string]any) string {
	return fmt.Sprintf("conc=%v cps=%v attempts=%v delay=%v days=%v", c["max_concurrent_calls"], c["calls_per_second"], c["max_attempts"], c["retry_delay_seconds"], c["days_of_week"])
}

func TestCampaignPacing(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		asst := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "Caller"}).obj(t, "assistant")["id"].(string)
		base := func(extra map[string]any) map[string]any {
			b := map[string]any{"name": "P", "agent_id": asst}
			for k, v := range extra {
				b[k] = v
			}
			return b
		}

		// Defaults filled in; the live members present.
		r := e.must(201, "POST", "/api/v1/campaigns", base(nil))
		c := r.obj(t, "campaign")
		id := c["id"].(string)
		if got, want := pacingOf(c), "conc=10 cps=1 attempts=3 delay=1800 days=[]"; got != want {
			t.Fatalf("defaults: %s, want %s", got, want)
		}
		for _, k := range []string{"status_reason", "next_retry_at", "backoff_until"} {
			if v, ok := c[k]; !ok || v != nil {
				t.Errorf("%s = %v (present %v), want null", k, v, ok)
			}
		}
		for _, k := range []string{"pending_leads", "calling_leads", "skipped_leads", "retries_scheduled"} {
			if c[k] != float64(0) {
				t.Errorf("%s = %v, want 0", k, c[k])
			}
		}
		if p := r.obj(t, "campaign")["progress"].(map[string]any); p["total"] != float64(0) || p["done"] != float64(0) || p["percent"] != float64(0) {
			t.Errorf("progress = %v", p)
		}

		// Every member set; days normalised: any case, short or full, unique, Monday first.
		c = e.must(201, "POST", "/api/v1/campaigns", base(map[string]any{"max_concurrent_calls": 5, "calls_per_second": 0.5, "max_attempts": 2,
			"retry_delay_seconds": 60, "days_of_week": []any{"Friday", "MON", "tue", "monday", " Sun "}})).obj(t, "campaign")
		if got, want := pacingOf(c), "conc=5 cps=0.5 attempts=2 delay=60 days=[mon tue fri sun]"; got != want {
			t.Fatalf("set: %s, want %s", got, want)
		}
		set := c["id"].(string)
		c = e.must(200, "GET", "/api/v1/campaigns/"+set, nil).obj(t, "campaign")
		if got, want := pacingOf(c), "conc=5 cps=0.5 attempts=2 delay=60 days=[mon tue fri sun]"; got != want {
			t.Fatalf("read back: %s, want %s", got, want)
		}
		// The limits themselves are accepted.
		c = e.must(200, "PATCH", "/api/v1/campaigns/"+set, map[string]any{"max_concurrent_calls": 1000, "calls_per_second": 100, "max_attempts": 10, "retry_delay_seconds": 604800, "days_of_week": []any{"SATURDAY"}}).obj(t, "campaign")
		if got, want := pacingOf(c), "conc=1000 cps=100 attempts=10 delay=604800 days=[sat]"; got != want {
			t.Fatalf("upper limits: %s, want %s", got, want)
		}
		c = e.must(200, "PATCH", "/api/v1/campaigns/"+set, map[string]any{"max_concurrent_calls": 1, "calls_per_second": 0.01, "max_attempts": 1, "retry_delay_seconds": 1}).obj(t, "campaign")
		if got, want := pacingOf(c), "conc=1 cps=0.01 attempts=1 delay=1 days=[sat]"; got != want {
			t.Fatalf("lower limits: %s, want %s", got, want)
		}
		// null returns each member to its default; days [] is every day too.
		c = e.must(200, "PATCH", "/api/v1/campaigns/"+set, map[string]any{"max_concurrent_calls": nil, "calls_per_second": nil, "max_attempts": nil, "retry_delay_seconds": nil, "days_of_week": nil}).obj(t, "campaign")
		if got, want := pacingOf(c), "conc=10 cps=1 attempts=3 delay=1800 days=[]"; got != want {
			t.Fatalf("after nulls: %s, want %s", got, want)
		}
		e.must(200, "PATCH", "/api/v1/campaigns/"+set, map[string]any{"days_of_week": []any{"wed"}})
		if c = e.must(200, "PATCH", "/api/v1/campaigns/"+set, map[string]any{"days_of_week": []any{}}).obj(t, "campaign"); fmt.Sprint(c["days_of_week"]) != "[]" {
			t.Fatalf("days after [] = %v", c["days_of_week"])
		}
		// A member not sent keeps its value.
		e.must(200, "PATCH", "/api/v1/campaigns/"+set, map[string]any{"max_attempts": 4})
		if c = e.must(200, "PATCH", "/api/v1/campaigns/"+set, map[string]any{"name": "renamed"}).obj(t, "campaign"); c["max_attempts"] != float64(4) {
			t.Fatalf("max_attempts after an unrelated PATCH = %v", c["max_attempts"])
		}

		// Refusals name the member, on create and on PATCH, and change nothing.
		for _, tc := range []struct {
			field string
			value any
		}{
			{"max_concurrent_calls", 0}, {"max_concurrent_calls", 1001}, {"max_concurrent_calls", 2.5}, {"max_concurrent_calls", "10"}, {"max_concurrent_calls", true},
			{"calls_per_second", 0}, {"calls_per_second", 0.009}, {"calls_per_second", 100.5}, {"calls_per_second", -1}, {"calls_per_second", "1"},
			{"max_attempts", 0}, {"max_attempts", 11}, {"max_attempts", []any{3}},
			{"retry_delay_seconds", 0}, {"retry_delay_seconds", 604801}, {"retry_delay_seconds", 1e12},
			{"days_of_week", []any{"funday"}}, {"days_of_week", []any{"mo"}}, {"days_of_week", "mon"}, {"days_of_week", []any{1}}, {"days_of_week", map[string]any{"mon": true}},
		} {
			t.Run(fmt.Sprintf("%s=%v", tc.field, tc.value), func(t *testing.T) {
				e.do("POST", "/api/v1/campaigns", e.keyA, base(map[string]any{tc.field: tc.value})).wantParam(t, tc.field)
				e.do("PATCH", "/api/v1/campaigns/"+id, e.keyA, map[string]any{tc.field: tc.value}).wantParam(t, tc.field)
			})
		}
		if got, want := pacingOf(e.must(200, "GET", "/api/v1/campaigns/"+id, nil).obj(t, "campaign")), "conc=10 cps=1 attempts=3 delay=1800 days=[]"; got != want {
			t.Fatalf("after refusals: %s, want %s", got, want)
		}

		// A window may cross midnight; start equal to end is all day.
		c = e.must(201, "POST", "/api/v1/campaigns", base(map[string]any{"schedule_start_time": "22:00", "schedule_end_time": "02:00"})).obj(t, "campaign")
		if c["schedule_start_time"] != "22:00:00" || c["schedule_end_time"] != "02:00:00" {
			t.Fatalf("overnight window = %v → %v", c["schedule_start_time"], c["schedule_end_time"])
		}
		c = e.must(200, "PATCH", "/api/v1/campaigns/"+id, map[string]any{"schedule_start_time": "00:00:00", "schedule_end_time": "00:00:00"}).obj(t, "campaign")
		if c["schedule_start_time"] != "00:00:00" || c["schedule_end_time"] != "00:00:00" {
			t.Fatalf("all-day window = %v → %v", c["schedule_start_time"], c["schedule_end_time"])
		}
		e.must(200, "PATCH", "/api/v1/campaigns/"+id, map[string]any{"schedule_start_time": "18:00:00"}) // now 18:00 → 00:00

		// The answered read-only members may be sent back; they are ignored.
		c = e.must(200, "PATCH", "/api/v1/campaigns/"+id, map[string]any{"name": "echo", "pending_leads": 7, "progress": map[string]any{"total": 9},
			"status_reason": "x", "next_retry_at": nil, "backoff_until": nil, "retries_scheduled": 1, "calling_leads": 1, "skipped_leads": 1}).obj(t, "campaign")
		if c["name"] != "echo" || c["pending_leads"] != float64(0) || c["status_reason"] != nil {
			t.Fatalf("echo = %v", c)
		}
	})
}

// TestCampaignLive covers what the dialer writes, as the API shows it: the
// counters, progress, retries, the pause reason, the backoff, each lead's
// next attempt and last outcome; and editing a running campaign.
func TestCampaignLive(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		asst := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "Caller"}).obj(t, "assistant")["id"].(string)
		trunk := e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "T", "provider": "p", "address": "sip.example.com"}).obj(t, "trunk")["id"].(string)
		e.must(201, "POST", "/api/v1/numbers", map[string]any{"phone_number": "+31201234567", "transfer_trunk_id": trunk})
		var leads []any
		for i := range 4 {
			leads = append(leads, map[string]any{"phone_number": fmt.Sprintf("+3161234567%d", i)})
		}
		c := e.must(201, "POST", "/api/v1/campaigns", map[string]any{"name": "Live", "agent_id": asst, "status": "scheduled", "leads": leads}).obj(t, "campaign")
		id := c["id"].(string)
		if c["pending_leads"] != float64(4) || c["progress"].(map[string]any)["pending"] != float64(4) {
			t.Fatalf("new campaign = %v", c)
		}
		ls := e.must(200, "GET", "/api/v1/campaigns/"+id+"/leads", nil).list(t, "leads")
		leadID := func(i int) string { return ls[i].(map[string]any)["id"].(string) }
		if l := ls[0].(map[string]any); l["next_attempt_at"] != nil || l["last_outcome"] != nil {
			t.Fatalf("new lead = %v", l)
		}
		// Lead 0 busy, to be tried again; lead 1 being called; lead 2 completed.
		retry := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
		for i, callID := range []string{"call-0", "call-1", "call-2"} {
			if err := e.db.SetLeadStatus(ctx, e.orgA, leadID(i), campaign.LeadCalling, &callID); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range []store.Settlement{
			{LeadID: leadID(0), CallID: "call-0", Status: campaign.LeadPending, NextAttemptAt: &retry, Outcome: "busy"},
			{LeadID: leadID(2), CallID: "call-2", Status: campaign.LeadCompleted, Outcome: "answered"},
		} {
			if ok, err := e.db.SettleLead(ctx, s); err != nil || !ok {
				t.Fatalf("settle %s: %v %v", s.LeadID, ok, err)
			}
		}
		c = e.must(200, "GET", "/api/v1/campaigns/"+id, nil).obj(t, "campaign")
		got := fmt.Sprintf("pending=%v calling=%v completed=%v retries=%v next=%v", c["pending_leads"], c["calling_leads"], c["completed_leads"], c["retries_scheduled"], c["next_retry_at"])
		if want := "pending=2 calling=1 completed=1 retries=1 next=2030-05-06T07:08:09.000Z"; got != want {
			t.Fatalf("counters: %s, want %s", got, want)
		}
		p := c["progress"].(map[string]any)
		if got, want := fmt.Sprintf("%v/%v %v%% pending=%v calling=%v retries=%v", p["done"], p["total"], p["percent"], p["pending"], p["calling"], p["retries_scheduled"]), "1/4 25% pending=2 calling=1 retries=1"; got != want {
			t.Fatalf("progress: %s, want %s", got, want)
		}
		l := e.must(200, "GET", "/api/v1/campaigns/"+id+"/leads", nil).list(t, "leads")[0].(map[string]any)
		if l["next_attempt_at"] != "2030-05-06T07:08:09.000Z" || l["last_outcome"] != "busy" || l["status"] != "pending" || l["attempts"] != float64(1) {
			t.Fatalf("retried lead = %v", l)
		}

		// A scheduled campaign may be edited; completed stays the platform's.
		c = e.must(200, "PATCH", "/api/v1/campaigns/"+id, map[string]any{"max_concurrent_calls": 2, "days_of_week": []any{"mon", "tue"}}).obj(t, "campaign")
		if c["status"] != "scheduled" || c["max_concurrent_calls"] != float64(2) {
			t.Fatalf("edit while scheduled = %v", c)
		}
		e.do("PATCH", "/api/v1/campaigns/"+id, e.keyA, map[string]any{"status": "completed"}).wantParam(t, "status")

		// A congested trunk: backoff_until shows until a client sets a status.
		until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		if err := e.db.BackoffCampaign(ctx, id, until); err != nil {
			t.Fatal(err)
		}
		if c = e.must(200, "GET", "/api/v1/campaigns/"+id, nil).obj(t, "campaign"); c["backoff_until"] != "2030-01-02T03:04:05.000Z" {
			t.Fatalf("backoff_until = %v", c["backoff_until"])
		}
		// Paused by the platform: the reason shows, the campaign can be edited,
		// and scheduling it again clears the reason.
		if ok, err := e.db.PauseCampaign(ctx, id, "insufficient_credits: no minutes left"); err != nil || !ok {
			t.Fatalf("pause: %v %v", ok, err)
		}
		c = e.must(200, "PATCH", "/api/v1/campaigns/"+id, map[string]any{"calls_per_second": 0.2}).obj(t, "campaign")
		if c["status"] != "paused" || c["status_reason"] != "insufficient_credits: no minutes left" || c["calls_per_second"] != 0.2 {
			t.Fatalf("paused by the platform = %v", c)
		}
		c = e.must(200, "PATCH", "/api/v1/campaigns/"+id, map[string]any{"status": "scheduled"}).obj(t, "campaign")
		if c["status"] != "scheduled" || c["status_reason"] != nil || c["backoff_until"] != nil {
			t.Fatalf("scheduled again = %v", c)
		}

		// A lead being called cannot be removed, nor the campaign deleted.
		e.do("DELETE", "/api/v1/campaigns/"+id+"/leads/"+leadID(1), e.keyA, nil).wantError(t, 409, "lead_calling", "call ends")
		r := e.do("DELETE", "/api/v1/campaigns/"+id, e.keyA, nil)
		r.wantError(t, 409, "campaign_calling", "1 lead(s) being called")
		if msg := r.Body["error"].(string); !strings.Contains(msg, "pause or cancel") || !strings.Contains(msg, "once those calls have ended") {
			t.Fatalf("delete refusal does not say what to do: %s", msg)
		}
		// Cancelled: pending leads skipped, the call in progress finishes.
		c = e.must(200, "PATCH", "/api/v1/campaigns/"+id, map[string]any{"status": "cancelled"}).obj(t, "campaign")
		if c["skipped_leads"] != float64(2) || c["calling_leads"] != float64(1) || c["pending_leads"] != float64(0) || c["next_retry_at"] != nil {
			t.Fatalf("cancelled = %v", c)
		}
		if ok, err := e.db.SettleLead(ctx, store.Settlement{LeadID: leadID(1), CallID: "call-1", Status: campaign.LeadFailed, Outcome: "no_answer"}); err != nil || !ok {
			t.Fatalf("settle: %v %v", ok, err)
		}
		if p = e.must(200, "GET", "/api/v1/campaigns/"+id, nil).obj(t, "campaign")["progress"].(map[string]any); p["done"] != float64(4) || p["percent"] != float64(100) {
			t.Fatalf("progress after the last call = %v", p)
		}
		e.must(200, "DELETE", "/api/v1/campaigns/"+id, nil)
	})
}

func TestOrganizationCampaignCap(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		if r := e.must(200, "GET", "/api/v1/organizations", nil); r.Body["max_concurrent_campaign_calls"] != nil {
			t.Fatalf("default cap = %s", r.Raw)
		} else if _, ok := r.Body["max_concurrent_campaign_calls"]; !ok {
			t.Fatalf("no max_concurrent_campaign_calls: %s", r.Raw)
		}
		for _, n := range []int{25, 1, 10000} {
			if r := e.must(200, "PATCH", "/api/v1/organizations", map[string]any{"max_concurrent_campaign_calls": n}); r.Body["max_concurrent_campaign_calls"] != float64(n) {
				t.Fatalf("after setting %d: %s", n, r.Raw)
			}
		}
		if r := e.must(200, "GET", "/api/v1/organizations", nil); r.Body["max_concurrent_campaign_calls"] != float64(10000) {
			t.Fatalf("read back: %s", r.Raw)
		}
		for _, bad := range []any{0, 10001, -3, 2.5, "20", true} {
			e.do("PATCH", "/api/v1/organizations", e.keyA, map[string]any{"max_concurrent_campaign_calls": bad}).wantParam(t, "max_concurrent_campaign_calls")
		}
		// Other organizations are untouched; null returns to the server's default.
		if r := e.do("GET", "/api/v1/organizations", e.keyB, nil); r.Body["max_concurrent_campaign_calls"] != nil {
			t.Fatalf("org B = %s", r.Raw)
		}
		if r := e.must(200, "PATCH", "/api/v1/organizations", map[string]any{"max_concurrent_campaign_calls": nil}); r.Body["max_concurrent_campaign_calls"] != nil {
			t.Fatalf("after null: %s", r.Raw)
		}
		// Sent alone, it satisfies "at least one member".
		e.do("PATCH", "/api/v1/organizations", e.keyA, map[string]any{}).wantError(t, 400, "missing_field", "max_concurrent_campaign_calls")
	})
}

// next_dial_at is the next opening of a closed window, about now in an open
// one, and null when the campaign is not scheduled.
func TestCampaignNextDial(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		asst := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "Caller"}).obj(t, "assistant")["id"].(string)
		trunk := e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "T", "provider": "p", "address": "sip.example.com"}).obj(t, "trunk")["id"].(string)
		e.must(201, "POST", "/api/v1/numbers", map[string]any{"phone_number": "+31201234567", "transfer_trunk_id": trunk})
		now := time.Now().UTC()
		clock := func(d time.Duration) string { return now.Add(d).Format("15:04:05") }
		create := func(status, start, end string) map[string]any {
			return e.must(201, "POST", "/api/v1/campaigns", map[string]any{"name": "N", "agent_id": asst, "status": status, "timezone": "UTC",
				"schedule_start_time": start, "schedule_end_time": end, "leads": []any{map[string]any{"phone_number": "+31612345678"}}}).obj(t, "campaign")
		}
		closed := create("scheduled", clock(2*time.Hour), clock(3*time.Hour))
		want := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).Add(
			time.Duration(now.Add(2*time.Hour).Hour())*time.Hour + time.Duration(now.Add(2*time.Hour).Minute())*time.Minute + time.Duration(now.Add(2*time.Hour).Second())*time.Second)
		if want.Before(now) {
			want = want.AddDate(0, 0, 1)
		}
		if got, _ := time.Parse(time.RFC3339, closed["next_dial_at"].(string)); !got.Equal(want) {
			t.Fatalf("closed window: next_dial_at %v, want %v", closed["next_dial_at"], want)
		}
		open := create("scheduled", clock(-time.Hour), clock(time.Hour))
		if got, _ := time.Parse(time.RFC3339, open["next_dial_at"].(string)); got.Sub(now) < -time.Second || got.Sub(now) > 10*time.Second {
			t.Fatalf("open window: next_dial_at %v, want about now (%v)", open["next_dial_at"], now)
		}
		if draft := create("draft", clock(-time.Hour), clock(time.Hour)); draft["next_dial_at"] != nil {
			t.Fatalf("draft: next_dial_at %v, want null", draft["next_dial_at"])
		}
	})
}
