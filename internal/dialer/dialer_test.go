package dialer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/dialer"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
)

// fakeEngine stands in for the voice engine: a dial writes the call row as
// dialing (as voice.Engine.Dial does) and remembers the request; the test
// ends the calls.
type fakeEngine struct {
	db     *store.DB
	boot   string
	mu     sync.Mutex
	dials  []call.Dial
	refuse error
}

func (f *fakeEngine) Dial(ctx context.Context, d call.Dial) (string, error) {
	f.mu.Lock()
	refuse := f.refuse
	f.mu.Unlock()
	if refuse != nil {
		return "", refuse
	}
	dest := d.Destination
	num := d.NumberID
	row := &store.Call{ID: d.ID, OrgID: d.OrgID, Direction: call.Outbound, Status: call.StatusDialing, CallerPhone: &dest, BootID: &f.boot, NumberID: &num}
	if err := f.db.CreateCall(ctx, row); err != nil {
		return "", err
	}
	f.mu.Lock()
	f.dials = append(f.dials, d)
	f.mu.Unlock()
	return d.ID, nil
}

func (f *fakeEngine) taken() []call.Dial {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.dials
	f.dials = nil
	return out
}

// rig is one organization with an assistant, a trunk, a number and a
// campaign, on a fresh store.
type rig struct {
	t        *testing.T
	ctx      context.Context
	db       *store.DB
	org      *store.Org
	camp     *store.Campaign
	eng      *fakeEngine
	d        *dialer.Dialer
	now      time.Time
	boot     string
	leadByID map[string]store.Lead
	trunkID  string
}

var amsterdam, _ = time.LoadLocation("Europe/Amsterdam")

func newRig(t *testing.T, open storetest.Opener, leads []store.Lead, edit func(c *store.Campaign)) *rig {
	t.Helper()
	ctx := context.Background()
	db := open(t)
	r := &rig{t: t, ctx: ctx, db: db, trunkID: "", now: time.Date(2026, 12, 3, 8, 59, 0, 0, amsterdam), leadByID: map[string]store.Lead{}}
	r.org = &store.Org{Name: "Acme", MinutesBalance: 100}
	must(t, db.CreateOrg(ctx, r.org, nil))
	asst := &store.Doc{Kind: store.Assistants, OrgID: r.org.ID, Name: "Caller", Active: true, Body: json.RawMessage(`{
		"name": "Caller", "first_message": "Hello {{name}}, this is Acme.",
		"voicemail_detection": true, "voicemail_message": "Please call us back.",
		"metadata": {"crm": "7"},
		"llm_config": {"provider": "openai", "model": "gpt-4.1", "messages": [{"role": "system", "content": "You work for Acme. The callee is {{name}}."}]},
		"stt_config": {"provider": "deepgram"}, "tts_config": {"provider": "elevenlabs"}}`)}
	must(t, db.CreateDoc(ctx, asst))
	trunk := &store.Doc{Kind: store.SIPTrunks, OrgID: r.org.ID, Name: "trunk", Active: true, Body: json.RawMessage(`{"name":"trunk","address":"127.0.0.1:5070"}`)}
	must(t, db.CreateDoc(ctx, trunk))
	r.trunkID = trunk.ID
	must(t, db.CreateNumber(ctx, &store.Number{OrgID: r.org.ID, PhoneNumber: "+31201234567", TransferTrunkID: &trunk.ID, IsActive: true}))
	tmpl := "You are calling {{name}} from {{company}}. Their role is {{role}}."
	r.camp = &store.Campaign{OrgID: r.org.ID, Name: "Reminders", AgentID: asst.ID, Status: campaign.Draft, SystemMessageTemplate: &tmpl,
		ScheduleStartTime: "09:00:00", ScheduleEndTime: "17:00:00", Timezone: "Europe/Amsterdam",
		MaxConcurrentCalls: ptr(2), CallsPerSecond: ptr(100.0), MaxAttempts: ptr(2), RetryDelaySeconds: ptr(60)}
	if edit != nil {
		edit(r.camp)
	}
	must(t, db.CreateCampaign(ctx, r.camp, leads))
	for _, l := range leads {
		r.leadByID[l.ID] = l
	}
	b, err := db.StartBoot(ctx, "node-a")
	must(t, err)
	r.boot = b.ID
	r.eng = &fakeEngine{db: db, boot: b.ID}
	r.d = r.dialerFor(b.ID, r.eng)
	return r
}

func (r *rig) dialerFor(boot string, eng dialer.Caller) *dialer.Dialer {
	keys, err := secret.NewKeyring(make([]byte, 32))
	must(r.t, err)
	return dialer.New(dialer.Config{Store: r.db, Calls: eng, Keys: keys, BootID: boot, Tick: time.Second,
		Now: func() time.Time { return r.now }, Backoff: 30 * time.Second})
}

func (r *rig) schedule() {
	r.t.Helper()
	_, err := r.db.UpdateCampaign(r.ctx, r.org.ID, r.camp.ID, func(c *store.Campaign) error { c.Status = campaign.Scheduled; return nil })
	must(r.t, err)
}

func (r *rig) step() []call.Dial {
	r.t.Helper()
	must(r.t, r.d.Step(r.ctx))
	return r.eng.taken()
}

// end ends a call: answered or not, with an end reason.
func (r *rig) end(d call.Dial, answered bool, reason call.EndReason) {
	r.t.Helper()
	st := call.StatusFailed
	if answered {
		must(r.t, r.db.StartCall(r.ctx, d.OrgID, d.ID, r.now))
		st = call.StatusEnded
	}
	must(r.t, r.db.EndCall(r.ctx, store.CallEnd{OrgID: d.OrgID, ID: d.ID, Status: st, EndReason: reason, EndedAt: r.now}))
}

func (r *rig) campaign() *store.Campaign {
	r.t.Helper()
	c, err := r.db.GetCampaign(r.ctx, r.org.ID, r.camp.ID)
	must(r.t, err)
	return c
}

func (r *rig) leads() map[string]store.Lead {
	r.t.Helper()
	ls, _, err := r.db.ListLeads(r.ctx, r.org.ID, r.camp.ID, store.Page{Limit: 1000})
	must(r.t, err)
	out := map[string]store.Lead{}
	for _, l := range ls {
		out[l.PhoneNumber] = l
	}
	return out
}

func leadsN(n int) []store.Lead {
	out := make([]store.Lead, n)
	for i := range out {
		out[i] = store.Lead{PhoneNumber: fmt.Sprintf("+3161000%04d", i), Variables: map[string]string{"name": fmt.Sprintf("Lead %d", i), "company": "Co" + fmt.Sprint(i)}}
	}
	return out
}

func TestCampaignLifecycle(t *testing.T) {
	for name, open := range storetest.Engines(t) {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, open, leadsN(4), nil)
			if got := r.step(); len(got) != 0 {
				t.Fatalf("draft campaign dialled %d leads", len(got))
			}
			r.schedule()
			if got := r.step(); len(got) != 0 {
				t.Fatalf("dialled %d leads at 08:59, before the window", len(got))
			}
			r.now = r.now.Add(time.Minute) // 09:00
			first := r.step()
			if len(first) != 2 {
				t.Fatalf("dialled %d leads at 09:00, want 2 (max_concurrent_calls)", len(first))
			}
			if got := r.step(); len(got) != 0 {
				t.Fatalf("dialled %d more while 2 are calling", len(got))
			}
			c := r.campaign()
			if c.CallingLeads != 2 || c.PendingLeads != 2 {
				t.Fatalf("counters calling=%d pending=%d, want 2 and 2", c.CallingLeads, c.PendingLeads)
			}
			checkRendered(t, first[0], r.camp.ID)

			r.end(first[0], true, call.EndUserHangup) // a person answered
			r.end(first[1], false, call.EndBusy)
			second := r.step()
			if len(second) != 2 {
				t.Fatalf("after two ended, dialled %d, want 2", len(second))
			}
			ls := r.leads()
			if l := ls[first[0].Destination]; l.Status != campaign.LeadCompleted || l.Attempts != 1 || *l.LastOutcome != "answered" {
				t.Fatalf("answered lead: %s attempts %d", l.Status, l.Attempts)
			}
			busy := ls[first[1].Destination]
			if busy.Status != campaign.LeadPending || busy.Attempts != 1 || busy.NextAttemptAt == nil || !busy.NextAttemptAt.Equal(r.now.Add(time.Minute)) {
				t.Fatalf("busy lead: %s attempts %d next %v, want pending 1 at %v", busy.Status, busy.Attempts, busy.NextAttemptAt, r.now.Add(time.Minute))
			}
			if c := r.campaign(); c.RetriesScheduled != 1 || c.NextRetryAt == nil {
				t.Fatalf("retries scheduled %d next %v", c.RetriesScheduled, c.NextRetryAt)
			}
			r.end(second[0], false, call.EndNoAnswer)
			r.end(second[1], false, call.EndDeclined)
			if got := r.step(); len(got) != 0 {
				t.Fatalf("dialled %d before the retry delay", len(got))
			}
			r.now = r.now.Add(59 * time.Second)
			if got := r.step(); len(got) != 0 {
				t.Fatalf("dialled %d one second before the retry delay", len(got))
			}
			r.now = r.now.Add(time.Second)
			retries := r.step()
			if len(retries) != 2 {
				t.Fatalf("dialled %d retries at the delay, want 2", len(retries))
			}
			for _, d := range retries {
				if d.Destination != first[1].Destination && d.Destination != second[0].Destination {
					t.Fatalf("retried %s, which is not a busy/no-answer lead", d.Destination)
				}
			}
			r.end(retries[0], false, call.EndBusy)
			r.end(retries[1], false, call.EndBusy)
			r.step()
			c = r.campaign()
			if c.Status != campaign.Completed {
				t.Fatalf("campaign %s after every lead ended, want completed", c.Status)
			}
			if c.CompletedLeads != 1 || c.FailedLeads != 3 || c.PendingLeads != 0 || c.CallingLeads != 0 || c.TotalLeads != 4 {
				t.Fatalf("counters %+v", c)
			}
			for num, l := range r.leads() {
				if l.Status == campaign.LeadFailed && num != second[1].Destination && l.Attempts != 2 {
					t.Fatalf("lead %s failed after %d attempts, want 2 (max_attempts)", num, l.Attempts)
				}
			}
		})
	}
}

// checkRendered checks the assistant of a campaign call: the lead's
// variables filled in, the template added as a system message, unknown
// placeholders left visible and reported, the ids in metadata.
func checkRendered(t *testing.T, d call.Dial, campaignID string) {
	t.Helper()
	var doc struct {
		FirstMessage string `json:"first_message"`
		LLM          struct {
			Messages []struct{ Role, Content string } `json:"messages"`
		} `json:"llm_config"`
		Metadata map[string]any `json:"metadata"`
	}
	must(t, json.Unmarshal(d.Assistant, &doc))
	n := strings.TrimPrefix(d.Destination, "+3161000")
	var i int
	fmt.Sscan(n, &i)
	name := fmt.Sprintf("Lead %d", i)
	if doc.FirstMessage != "Hello "+name+", this is Acme." {
		t.Errorf("first message %q", doc.FirstMessage)
	}
	if len(doc.LLM.Messages) != 2 || doc.LLM.Messages[0].Content != "You work for Acme. The callee is "+name+"." ||
		doc.LLM.Messages[1].Content != fmt.Sprintf("You are calling %s from Co%d. Their role is {{role}}.", name, i) {
		t.Errorf("messages %+v", doc.LLM.Messages)
	}
	if doc.Metadata["campaign_id"] != campaignID || doc.Metadata["lead_id"] == nil || doc.Metadata["crm"] != "7" {
		t.Errorf("metadata %v", doc.Metadata)
	}
	if fmt.Sprint(doc.Metadata["unfilled_variables"]) != "[role]" {
		t.Errorf("unfilled_variables %v, want [role]", doc.Metadata["unfilled_variables"])
	}
	if d.AssistantID == "" || d.ID == "" || !strings.HasPrefix(d.ID, "call-outbound-") {
		t.Errorf("dial %+v", d)
	}
}

func TestWindowCrossingMidnightAndDays(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite, leadsN(3), func(c *store.Campaign) {
		c.ScheduleStartTime, c.ScheduleEndTime, c.DaysOfWeek = "22:00:00", "02:00:00", []string{"thu"}
	})
	r.schedule()
	r.now = time.Date(2026, 12, 3, 21, 59, 59, 0, amsterdam) // Thursday
	if got := r.step(); len(got) != 0 {
		t.Fatalf("dialled %d before 22:00", len(got))
	}
	r.now = time.Date(2026, 12, 4, 1, 30, 0, 0, amsterdam) // Friday 01:30, the Thursday window
	if got := r.step(); len(got) != 2 {
		t.Fatalf("dialled %d on Friday 01:30 inside Thursday's window, want 2", len(got))
	}
	r.now = time.Date(2026, 12, 4, 22, 30, 0, 0, amsterdam) // Friday evening: not a dialling day
	for _, d := range r.eng.dials {
		r.end(d, true, call.EndUserHangup)
	}
	if got := r.step(); len(got) != 0 {
		t.Fatalf("dialled %d on Friday evening", len(got))
	}
}

// A 503 from the trunk stops the campaign's dials for the backoff; only the
// leads in flight spend an attempt, retried after the delay.
func TestTrunkCongestionBacksOff(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite, leadsN(4), nil)
	r.schedule()
	r.now = r.now.Add(time.Hour)
	ds := r.step()
	r.end(ds[0], false, call.EndTrunkCongested)
	r.end(ds[1], true, call.EndUserHangup)
	if got := r.step(); len(got) != 0 {
		t.Fatalf("dialled %d right after the trunk answered 503", len(got))
	}
	l := r.leads()[ds[0].Destination]
	if l.Status != campaign.LeadPending || l.Attempts != 1 || *l.LastOutcome != "trunk_congested" || !l.NextAttemptAt.Equal(r.now.Add(time.Minute)) {
		t.Fatalf("congested lead: %s attempts %d next %v", l.Status, l.Attempts, l.NextAttemptAt)
	}
	if c := r.campaign(); c.PendingLeads != 3 || c.BackoffUntil == nil {
		t.Fatalf("pending %d backoff %v, want 3 leads waiting and a backoff", c.PendingLeads, c.BackoffUntil)
	}
	r.now = r.now.Add(29 * time.Second)
	if got := r.step(); len(got) != 0 {
		t.Fatalf("dialled %d during the backoff", len(got))
	}
	r.now = r.now.Add(2 * time.Second)
	if got := r.step(); len(got) != 2 {
		t.Fatalf("dialled %d after the backoff, want the 2 untried leads", len(got))
	}
}

// A trunk's channel limit caps the campaign's calls together with the
// organization's other outbound calls on that trunk.
func TestTrunkChannelLimit(t *testing.T) {
	for name, open := range storetest.Engines(t) {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, open, leadsN(6), func(c *store.Campaign) { c.MaxConcurrentCalls = ptr(10) })
			_, err := r.db.UpdateDoc(r.ctx, store.SIPTrunks, r.org.ID, r.trunkID, func(cur *store.Doc) (*store.Doc, error) {
				cur.Body = json.RawMessage(`{"name":"trunk","address":"127.0.0.1:5070","max_concurrent_calls":3}`)
				return cur, nil
			})
			must(t, err)
			// An API call already out on another number of the same trunk.
			other := &store.Number{OrgID: r.org.ID, PhoneNumber: "+31201234999", TransferTrunkID: &r.trunkID, IsActive: true}
			must(t, r.db.CreateNumber(r.ctx, other))
			must(t, r.db.CreateCall(r.ctx, &store.Call{ID: "call-api", OrgID: r.org.ID, Direction: call.Outbound, Status: call.StatusInProgress, NumberID: &other.ID}))
			r.schedule()
			r.now = r.now.Add(time.Hour)
			first := r.step()
			if len(first) != 2 {
				t.Fatalf("dialled %d with 1 of the trunk's 3 channels taken, want 2", len(first))
			}
			if got := r.step(); len(got) != 0 {
				t.Fatalf("dialled %d more over the trunk's limit", len(got))
			}
			must(t, r.db.EndCall(r.ctx, store.CallEnd{OrgID: r.org.ID, ID: "call-api", Status: call.StatusEnded, EndReason: call.EndUserHangup, EndedAt: r.now}))
			if got := r.step(); len(got) != 1 {
				t.Fatalf("dialled %d after the API call ended, want 1", len(got))
			}
		})
	}
}

func TestInsufficientBalancePauses(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite, leadsN(2), nil)
	must(t, r.db.SetMinutesBalance(r.ctx, r.org.ID, 0))
	r.schedule()
	r.now = r.now.Add(time.Hour)
	if got := r.step(); len(got) != 0 {
		t.Fatalf("dialled %d without minutes", len(got))
	}
	c := r.campaign()
	if c.Status != campaign.Paused || c.StatusReason == nil || !strings.Contains(*c.StatusReason, "insufficient_credits") {
		t.Fatalf("campaign %s reason %v, want paused for insufficient_credits", c.Status, c.StatusReason)
	}
	if c.PendingLeads != 2 {
		t.Fatalf("pending %d, want 2: no lead may be failed for want of minutes", c.PendingLeads)
	}
	must(t, r.db.SetMinutesBalance(r.ctx, r.org.ID, 10))
	r.schedule()
	if c := r.campaign(); c.StatusReason != nil {
		t.Fatalf("reason %q kept after the client scheduled again", *c.StatusReason)
	}
	if got := r.step(); len(got) != 2 {
		t.Fatalf("dialled %d after minutes were added, want 2", len(got))
	}
}

func TestEngineRefusalHandsLeadBack(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite, leadsN(2), nil)
	r.schedule()
	r.now = r.now.Add(time.Hour)
	r.eng.refuse = fault.New(fault.Unavailable, "telephony_off", "no SIP")
	r.step()
	for num, l := range r.leads() {
		if l.Status != campaign.LeadPending || l.Attempts != 0 || l.CallID != nil {
			t.Fatalf("lead %s: %s attempts %d call %v, want handed back untouched", num, l.Status, l.Attempts, l.CallID)
		}
	}
	if c := r.campaign(); c.BackoffUntil == nil {
		t.Fatal("no backoff after the engine refused")
	}
	r.eng.refuse = fault.Invalidf("number_id", "number has no trunk")
	r.now = r.now.Add(time.Minute)
	r.step()
	if c := r.campaign(); c.Status != campaign.Paused || c.StatusReason == nil || !strings.Contains(*c.StatusReason, "no trunk") {
		t.Fatalf("campaign %s reason %v, want paused naming the problem", c.Status, c.StatusReason)
	}
}

func TestPausedAndCancelled(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite, leadsN(5), nil)
	r.schedule()
	r.now = r.now.Add(time.Hour)
	live := r.step()
	if _, err := r.db.UpdateCampaign(r.ctx, r.org.ID, r.camp.ID, func(c *store.Campaign) error { c.Status = campaign.Paused; return nil }); err != nil {
		t.Fatal(err)
	}
	r.end(live[0], true, call.EndUserHangup)
	if got := r.step(); len(got) != 0 {
		t.Fatalf("paused campaign dialled %d", len(got))
	}
	if l := r.leads()[live[0].Destination]; l.Status != campaign.LeadCompleted {
		t.Fatalf("a live call of a paused campaign did not settle: %s", l.Status)
	}
	if _, err := r.db.UpdateCampaign(r.ctx, r.org.ID, r.camp.ID, func(c *store.Campaign) error { c.Status = campaign.Cancelled; return nil }); err != nil {
		t.Fatal(err)
	}
	r.end(live[1], false, call.EndBusy) // would be retried: skipped in a cancelled campaign
	r.step()
	c := r.campaign()
	if c.SkippedLeads != 4 || c.CompletedLeads != 1 || c.PendingLeads != 0 || c.CallingLeads != 0 || c.Status != campaign.Cancelled {
		t.Fatalf("after cancel: %+v", c)
	}
}

// A claim whose process life died before its call row was written was
// never dialled: it is handed back uncounted, once that life is over.
func TestClaimOfDeadLifeHandedBack(t *testing.T) {
	for name, open := range storetest.Engines(t) {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, open, leadsN(1), nil)
			r.schedule()
			r.now = r.now.Add(time.Hour)
			dead, err := r.db.StartBoot(r.ctx, "node-b")
			must(t, err)
			claimed, err := r.db.ClaimLeads(r.ctx, store.ClaimRequest{OrgID: r.org.ID, CampaignID: r.camp.ID, Now: r.now, Limit: 1, MaxConcurrent: 1,
				OrgMaxConcurrent: 1, RateWindow: time.Second, RateMax: 1, BootID: dead.ID, NewCallID: call.OutboundID})
			if err != nil || len(claimed) != 1 {
				t.Fatalf("claim = %d, %v", len(claimed), err)
			}
			r.now = r.now.Add(time.Minute)
			if got := r.step(); len(got) != 0 {
				t.Fatalf("dialled %d while another live node holds the claim", len(got))
			}
			must(t, r.db.StopBoot(r.ctx, dead.ID)) // that life is over, its dial never started
			got := r.step()
			if len(got) != 1 || got[0].ID == *claimed[0].CallID {
				t.Fatalf("after the hand-back dialled %d (%v), want 1 under a new call id", len(got), got)
			}
			l := r.leads()[claimed[0].PhoneNumber]
			if l.Status != campaign.LeadCalling || l.Attempts != 1 || l.CallID == nil || *l.CallID != got[0].ID {
				t.Fatalf("lead %s attempts %d call %v, want calling, 1 attempt (the dead claim uncounted), %s", l.Status, l.Attempts, l.CallID, got[0].ID)
			}
		})
	}
}

// Two dialers (two nodes) stepping at once over one database never dial a
// lead twice and never exceed the campaign's cap.
func TestTwoNodesShareACampaign(t *testing.T) {
	for name, open := range storetest.Engines(t) {
		t.Run(name, func(t *testing.T) {
			const n = 60
			r := newRig(t, open, leadsN(n), func(c *store.Campaign) { c.MaxConcurrentCalls = ptr(7) })
			r.schedule()
			r.now = r.now.Add(time.Hour)
			b2, err := r.db.StartBoot(r.ctx, "node-b")
			must(t, err)
			eng2 := &fakeEngine{db: r.db, boot: b2.ID}
			d2 := r.dialerFor(b2.ID, eng2)
			seen := map[string]int{}
			for round := 0; round < 200 && len(seen) < n; round++ {
				var wg sync.WaitGroup
				for _, d := range []*dialer.Dialer{r.d, d2} {
					wg.Add(1)
					go func() { defer wg.Done(); must(t, d.Step(r.ctx)) }()
				}
				wg.Wait()
				ds := append(r.eng.taken(), eng2.taken()...)
				if c := r.campaign(); c.CallingLeads > 7 {
					t.Fatalf("%d leads calling, cap 7", c.CallingLeads)
				}
				for _, d := range ds {
					seen[d.Destination]++
					r.end(d, true, call.EndUserHangup)
				}
				r.now = r.now.Add(time.Second)
			}
			for num, k := range seen {
				if k != 1 {
					t.Fatalf("lead %s dialled %d times", num, k)
				}
			}
			r.step()
			if c := r.campaign(); len(seen) != n || c.CompletedLeads != n || c.Status != campaign.Completed {
				t.Fatalf("dialled %d of %d; campaign %s completed %d", len(seen), n, c.Status, c.CompletedLeads)
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// A lead added while the campaign runs is dialled like the others.
func TestLeadAddedWhileRunning(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite, leadsN(1), nil)
	r.schedule()
	r.now = r.now.Add(time.Hour)
	first := r.step()
	late := store.Lead{PhoneNumber: "+31699999999", Variables: map[string]string{"name": "Late"}}
	must(t, r.db.AddLead(r.ctx, r.org.ID, r.camp.ID, &late))
	got := r.step()
	if len(first) != 1 || len(got) != 1 || got[0].Destination != late.PhoneNumber {
		t.Fatalf("dialled %v then %v, want the added lead in the second step", first, got)
	}
	r.end(first[0], true, call.EndUserHangup)
	r.step()
	if c := r.campaign(); c.Status != campaign.Scheduled {
		t.Fatalf("campaign %s with the added lead still calling", c.Status)
	}
	r.end(got[0], true, call.EndUserHangup)
	r.step()
	if c := r.campaign(); c.Status != campaign.Completed || c.CompletedLeads != 2 {
		t.Fatalf("campaign %s with %d completed, want completed with 2", c.Status, c.CompletedLeads)
	}
}

// On the day clocks go forward, a window starting inside the skipped hour
// opens when the clocks jump; on the day they go back it opens once.
func TestWindowOnDSTDays(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite, leadsN(4), func(c *store.Campaign) {
		c.ScheduleStartTime, c.ScheduleEndTime, c.MaxConcurrentCalls = "02:30:00", "05:00:00", ptr(1)
	})
	r.schedule()
	utc := func(mo time.Month, d, h, m int) time.Time { return time.Date(2026, mo, d, h, m, 0, 0, time.UTC) }
	r.now = utc(3, 29, 0, 59) // 01:59 CET, the skipped hour next
	if got := r.step(); len(got) != 0 {
		t.Fatalf("dialled %d at 01:59 CET", len(got))
	}
	r.now = utc(3, 29, 1, 0) // 03:00 CEST: clocks jumped over 02:30
	got := r.step()
	if len(got) != 1 {
		t.Fatalf("dialled %d at 03:00 CEST on the spring-forward day, want 1", len(got))
	}
	r.end(got[0], true, call.EndUserHangup)
	r.now = utc(10, 25, 0, 29) // 02:29 CEST, before the first 02:30 of the fall-back day
	if got := r.step(); len(got) != 0 {
		t.Fatalf("dialled %d at 02:29 CEST", len(got))
	}
	r.now = utc(10, 25, 0, 30) // 02:30 CEST, the first one
	if got = r.step(); len(got) != 1 {
		t.Fatalf("dialled %d at the first 02:30 of the fall-back day, want 1", len(got))
	}
	r.end(got[0], true, call.EndUserHangup)
	r.now = utc(10, 25, 1, 15) // 02:15 CET, the repeated hour: still the same opening
	if got = r.step(); len(got) != 1 {
		t.Fatalf("dialled %d in the repeated hour, inside the opening, want 1", len(got))
	}
}
