package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/postgres"
	"github.com/parley-voice/parley/internal/store/sqlite"
)

// The campaign dialer's side of the store: claiming leads under every cap,
// finding attempts that are over, settling them once, completing finished
// campaigns and the campaign counters, on a store whose clock the test sets.

// dialT0 is the fake clock's start.
var dialT0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// dialClock is a settable clock, read concurrently by the store.
type dialClock struct{ ms atomic.Int64 }

func (c *dialClock) Now() time.Time              { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *dialClock) at(d time.Duration)          { c.ms.Store(dialT0.Add(d).UnixMilli()) }
func (c *dialClock) t(d time.Duration) time.Time { return dialT0.Add(d) }

// dialWorld is a store on a fresh database with a fake clock, and helpers
// making organizations, campaigns and claims.
type dialWorld struct {
	t      *testing.T
	ctx    context.Context
	db     *store.DB
	clk    *dialClock
	agents map[string]string // organization → its assistant
	calls  atomic.Int64
}

// newDialWorld returns a store on base's database that reads the time from a
// fake clock at dialT0 (the drivers' Open has no clock). SQLite group-commits
// as it does when opened by its driver.
func newDialWorld(t *testing.T, base *store.DB) *dialWorld {
	t.Helper()
	clk := &dialClock{}
	clk.at(0)
	var drv store.Driver = sqlite.Driver{}
	if base.Driver() == "postgres" {
		drv = postgres.Driver{}
	}
	db := store.Open(drv, store.Config{Write: base.Writer(), Now: clk.Now, GroupCommit: base.Driver() == "sqlite"})
	t.Cleanup(func() { db.Close() }) // closes the shared pool; base's Close after is harmless
	return &dialWorld{t: t, ctx: context.Background(), db: db, clk: clk, agents: map[string]string{}}
}

func (w *dialWorld) org(name string) *store.Org {
	w.t.Helper()
	o := &store.Org{Name: name, MinutesBalance: 100}
	if err := w.db.CreateOrg(w.ctx, o, nil); err != nil {
		w.t.Fatal(err)
	}
	return o
}

// campaign creates a campaign of org in status st with n leads, created a
// millisecond apart in order; edit, when not nil, changes it first.
func (w *dialWorld) campaign(org *store.Org, st campaign.Status, n int, edit func(*store.Campaign)) (*store.Campaign, []store.Lead) {
	w.t.Helper()
	agent, ok := w.agents[org.ID]
	if !ok {
		d := &store.Doc{Kind: store.Assistants, OrgID: org.ID, Name: "Caller", Active: true, Body: json.RawMessage(`{}`)}
		if err := w.db.CreateDoc(w.ctx, d); err != nil {
			w.t.Fatal(err)
		}
		agent, w.agents[org.ID] = d.ID, d.ID
	}
	c := &store.Campaign{OrgID: org.ID, Name: "Campaign", AgentID: agent, Status: st, ScheduleStartTime: "09:00:00", ScheduleEndTime: "17:00:00", Timezone: "UTC"}
	if edit != nil {
		edit(c)
	}
	leads := make([]store.Lead, n)
	for i := range leads {
		leads[i].PhoneNumber = fmt.Sprintf("+3161%07d", i)
	}
	if err := w.db.CreateCampaign(w.ctx, c, leads); err != nil {
		w.t.Fatal(err)
	}
	return c, leads
}

func (w *dialWorld) newCallID() string { return fmt.Sprintf("call-%d", w.calls.Add(1)) }

// req is a claim of c's leads now whose caps do not bind; tests lower them.
func (w *dialWorld) req(c *store.Campaign) store.ClaimRequest {
	return store.ClaimRequest{OrgID: c.OrgID, CampaignID: c.ID, Now: w.clk.Now(), Limit: 100, MaxConcurrent: 1000, OrgMaxConcurrent: 1000,
		RateWindow: time.Second, RateMax: 1000, BootID: "boot-test", NewCallID: w.newCallID}
}

func (w *dialWorld) claim(r store.ClaimRequest) []store.Lead {
	w.t.Helper()
	got, err := w.db.ClaimLeads(w.ctx, r)
	if err != nil {
		w.t.Fatalf("ClaimLeads: %v", err)
	}
	return got
}

// claimIDs claims and checks which leads it got, in order.
func (w *dialWorld) claimIDs(r store.ClaimRequest, want ...string) []store.Lead {
	w.t.Helper()
	got := w.claim(r)
	if !slices.Equal(leadIDs(got), append([]string{}, want...)) {
		w.t.Fatalf("claimed %v, want %v", leadIDs(got), want)
	}
	return got
}

func (w *dialWorld) leads(c *store.Campaign) map[string]store.Lead {
	w.t.Helper()
	list, _, err := w.db.ListLeads(w.ctx, c.OrgID, c.ID, store.Page{Limit: 10000})
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]store.Lead{}
	for _, l := range list {
		out[l.ID] = l
	}
	return out
}

func (w *dialWorld) lead(c *store.Campaign, id string) store.Lead {
	w.t.Helper()
	l, ok := w.leads(c)[id]
	if !ok {
		w.t.Fatalf("lead %s not found", id)
	}
	return l
}

func (w *dialWorld) get(c *store.Campaign) *store.Campaign {
	w.t.Helper()
	got, err := w.db.GetCampaign(w.ctx, c.OrgID, c.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return got
}

func (w *dialWorld) settle(s store.Settlement) bool {
	w.t.Helper()
	ok, err := w.db.SettleLead(w.ctx, s)
	if err != nil {
		w.t.Fatalf("SettleLead: %v", err)
	}
	return ok
}

// settleDone settles a claimed lead as completed.
func (w *dialWorld) settleDone(l store.Lead) {
	w.t.Helper()
	if !w.settle(store.Settlement{LeadID: l.ID, CallID: *l.CallID, Status: campaign.LeadCompleted, Outcome: "answered"}) {
		w.t.Fatalf("settling lead %s (call %s) did nothing", l.ID, *l.CallID)
	}
}

func leadIDs(ls []store.Lead) []string {
	out := []string{}
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

func sameTime(a *time.Time, b time.Time) bool { return a != nil && a.Equal(b) }

// counters is what GetCampaign counts of a campaign's leads.
type counters struct {
	Total, Pending, Calling, Completed, Failed, Skipped, Retries int
	NextRetry                                                    *time.Time
}

func countersOf(c *store.Campaign) counters {
	return counters{c.TotalLeads, c.PendingLeads, c.CallingLeads, c.CompletedLeads, c.FailedLeads, c.SkippedLeads, c.RetriesScheduled, c.NextRetryAt}
}

func (w *dialWorld) wantCounters(what string, c *store.Campaign, want counters) {
	w.t.Helper()
	got := countersOf(c)
	if got.NextRetry != nil && want.NextRetry != nil && got.NextRetry.Equal(*want.NextRetry) {
		got.NextRetry = want.NextRetry
	}
	if got != want {
		w.t.Fatalf("%s counters = %+v (next retry %v), want %+v (next retry %v)", what, got, got.NextRetry, want, want.NextRetry)
	}
}

// testDialerClaim covers ClaimLeads' choice of leads: due pending leads oldest
// first, what a claim writes, Limit and the campaign cap (counting leads
// already calling), retries not yet due, and campaigns that give nothing
// (not scheduled, paused, backing off, unknown, another organization's).
func testDialerClaim(t *testing.T, base *store.DB) {
	w := newDialWorld(t, base)
	ctx := w.ctx
	org, other := w.org("A"), w.org("B")
	c, ls := w.campaign(org, campaign.Scheduled, 5, nil)
	w.clk.at(time.Second)
	late := &store.Lead{PhoneNumber: "+31699999999"}
	if err := w.db.AddLead(ctx, org.ID, c.ID, late); err != nil {
		t.Fatal(err)
	}
	l0, l1, l2, l3, l4 := ls[0].ID, ls[1].ID, ls[2].ID, ls[3].ID, ls[4].ID

	// Nothing from an unknown campaign, another organization's, or a draft.
	draft, _ := w.campaign(org, campaign.Draft, 2, nil)
	w.claimIDs(w.req(draft))
	r := w.req(c)
	r.CampaignID = "no-such-campaign"
	w.claimIDs(r)
	r = w.req(c)
	r.OrgID = other.ID
	w.claimIDs(r)

	// The oldest two; what a claim writes is what it returns.
	w.clk.at(2 * time.Second)
	r = w.req(c)
	r.Limit = 2
	got := w.claimIDs(r, l0, l1)
	stored := w.leads(c)
	for i, l := range got {
		want := fmt.Sprintf("call-%d", i+1)
		if l.Status != campaign.LeadCalling || l.Attempts != 1 || !sameTime(l.LastAttemptAt, w.clk.t(2*time.Second)) || l.CallID == nil || *l.CallID != want || l.NextAttemptAt != nil {
			t.Fatalf("claimed lead %d = %+v", i, l)
		}
		s := stored[l.ID]
		if s.Status != campaign.LeadCalling || s.Attempts != 1 || !sameTime(s.LastAttemptAt, w.clk.t(2*time.Second)) || s.CallID == nil || *s.CallID != want ||
			s.NextAttemptAt != nil || !s.UpdatedAt.Equal(w.clk.t(2*time.Second)) {
			t.Fatalf("stored claimed lead %d = %+v", i, s)
		}
	}
	if s := stored[l2]; s.Status != campaign.LeadPending || s.Attempts != 0 || s.CallID != nil || s.LastAttemptAt != nil {
		t.Fatalf("unclaimed lead = %+v", s)
	}

	// The campaign cap counts the leads already calling.
	r = w.req(c)
	r.MaxConcurrent = 3
	w.claimIDs(r, l2)
	w.claimIDs(r)

	// A retry not yet due is passed over; once due it comes first in line.
	if !w.settle(store.Settlement{LeadID: l0, CallID: *got[0].CallID, Status: campaign.LeadPending, NextAttemptAt: ptr(w.clk.t(10 * time.Minute)), Outcome: "no_answer"}) {
		t.Fatal("settling a retry did nothing")
	}
	r.MaxConcurrent = 4
	w.claimIDs(r, l3, l4)
	w.clk.at(10*time.Minute - time.Millisecond)
	r = w.req(c)
	w.claimIDs(r, late.ID)
	w.clk.at(10 * time.Minute)
	again := w.claimIDs(w.req(c), l0)
	if again[0].Attempts != 2 || again[0].NextAttemptAt != nil || *again[0].CallID == *got[0].CallID {
		t.Fatalf("retried lead = %+v", again[0])
	}
	if s := w.lead(c, l0); s.Attempts != 2 || s.NextAttemptAt != nil || !sameTime(s.LastAttemptAt, w.clk.t(10*time.Minute)) || *s.CallID != *again[0].CallID {
		t.Fatalf("stored retried lead = %+v", s)
	}

	// Paused, backing off: nothing. A client setting the status clears the
	// platform's reason and backoff; other edits keep them.
	p, _ := w.campaign(org, campaign.Scheduled, 3, nil)
	if ok, err := w.db.PauseCampaign(ctx, p.ID, "no_minutes"); err != nil || !ok {
		t.Fatalf("PauseCampaign = %v, %v", ok, err)
	}
	if ok, _ := w.db.PauseCampaign(ctx, p.ID, "again"); ok {
		t.Fatal("pausing a paused campaign reported a pause")
	}
	if g := w.get(p); g.Status != campaign.Paused || g.StatusReason == nil || *g.StatusReason != "no_minutes" {
		t.Fatalf("paused campaign = %+v", g)
	}
	w.claimIDs(w.req(p))
	if err := w.db.BackoffCampaign(ctx, p.ID, w.clk.t(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if g := w.get(p); g.BackoffUntil != nil {
		t.Fatalf("a paused campaign backs off until %v", g.BackoffUntil)
	}
	up, err := w.db.UpdateCampaign(ctx, org.ID, p.ID, func(c *store.Campaign) error { c.Status = campaign.Scheduled; return nil })
	if err != nil || up.Status != campaign.Scheduled || up.StatusReason != nil {
		t.Fatalf("resumed campaign = %+v, %v", up, err)
	}
	until := w.clk.t(11 * time.Minute)
	if err := w.db.BackoffCampaign(ctx, p.ID, until); err != nil {
		t.Fatal(err)
	}
	if up, err := w.db.UpdateCampaign(ctx, org.ID, p.ID, func(c *store.Campaign) error { c.Name = "Renamed"; return nil }); err != nil || !sameTime(up.BackoffUntil, until) {
		t.Fatalf("renamed campaign = %+v, %v", up, err)
	}
	w.clk.at(11*time.Minute - time.Millisecond)
	w.claimIDs(w.req(p))
	w.clk.at(11 * time.Minute)
	if got := w.claim(w.req(p)); len(got) != 3 {
		t.Fatalf("claimed %d leads once the backoff was over, want 3", len(got))
	}
	q, qs := w.campaign(org, campaign.Scheduled, 1, nil)
	if err := w.db.BackoffCampaign(ctx, q.ID, w.clk.t(time.Hour)); err != nil {
		t.Fatal(err)
	}
	w.claimIDs(w.req(q))
	if up, err := w.db.UpdateCampaign(ctx, org.ID, q.ID, func(c *store.Campaign) error { c.Status = campaign.Paused; return nil }); err != nil || up.BackoffUntil != nil {
		t.Fatalf("paused campaign after a backoff = %+v, %v", up, err)
	}
	if _, err := w.db.UpdateCampaign(ctx, org.ID, q.ID, func(c *store.Campaign) error { c.Status = campaign.Scheduled; return nil }); err != nil {
		t.Fatal(err)
	}
	w.claimIDs(w.req(q), qs[0].ID)
}

// testDialerCaps covers the organization's cap (the server's default, the
// organization's own, shared by its campaigns, not counting another
// organization's calls) and the rate cap.
func testDialerCaps(t *testing.T, base *store.DB) {
	w := newDialWorld(t, base)
	ctx := w.ctx
	org, other := w.org("Capped"), w.org("Other")
	p, _ := w.campaign(org, campaign.Scheduled, 6, nil)
	q, _ := w.campaign(org, campaign.Scheduled, 6, nil)
	o, _ := w.campaign(other, campaign.Scheduled, 6, nil)
	claimN := func(c *store.Campaign, orgDefault, limit, want int) []store.Lead {
		t.Helper()
		r := w.req(c)
		r.OrgMaxConcurrent, r.Limit = orgDefault, limit
		got := w.claim(r)
		if len(got) != want {
			t.Fatalf("claimed %d leads, want %d", len(got), want)
		}
		return got
	}
	fromP := claimN(p, 4, 3, 3)
	claimN(q, 4, 100, 1) // the default cap, shared by the organization's campaigns
	claimN(q, 4, 100, 0)
	claimN(p, 4, 100, 0)
	claimN(o, 4, 100, 4) // another organization's calls do not count
	if err := w.db.SetOrgCampaignCap(ctx, org.ID, ptr(6)); err != nil {
		t.Fatal(err)
	}
	claimN(q, 4, 100, 0) // the organization's own cap never raises the server's
	claimN(q, 6, 100, 2) // under a higher server cap, the organization's 6 holds
	if err := w.db.SetOrgCampaignCap(ctx, org.ID, ptr(7)); err != nil {
		t.Fatal(err)
	}
	claimN(p, 100, 100, 1) // and lowers it: 7 calling
	claimN(q, 100, 100, 0)
	if err := w.db.SetOrgCampaignCap(ctx, org.ID, nil); err != nil {
		t.Fatal(err)
	}
	for _, l := range fromP {
		w.settleDone(l)
	}
	claimN(p, 4, 100, 0) // 4 calling: the default again
	claimN(p, 5, 100, 1)
	if err := w.db.SetOrgCampaignCap(ctx, "no-such-org", ptr(3)); err == nil {
		t.Fatal("SetOrgCampaignCap of an unknown organization succeeded")
	}

	// At most RateMax dials start in any RateWindow: the leads whose last
	// attempt is inside the window count, whatever became of them.
	rated, _ := w.campaign(other, campaign.Scheduled, 10, nil)
	rate := func(limit, want int) {
		t.Helper()
		r := w.req(rated)
		r.RateWindow, r.RateMax, r.Limit = time.Minute, 3, limit
		got := w.claim(r)
		if len(got) != want {
			t.Fatalf("at %s claimed %d leads, want %d", w.clk.Now().Sub(dialT0), len(got), want)
		}
		for _, l := range got {
			w.settleDone(l)
		}
	}
	w.clk.at(time.Hour)
	rate(2, 2)
	w.clk.at(time.Hour + 20*time.Second)
	rate(100, 1)
	w.clk.at(time.Hour + 50*time.Second)
	rate(100, 0)
	w.clk.at(time.Hour + 61*time.Second) // the first two are out of the window
	rate(100, 2)
	w.clk.at(time.Hour + 81*time.Second)
	rate(100, 1)
	w.clk.at(time.Hour + 10*time.Minute)
	rate(100, 3)
	rate(100, 0)
}

// testDialerClaimRace claims from several goroutines at once: every lead is
// claimed exactly once, and the campaign and organization caps hold.
func testDialerClaimRace(t *testing.T, base *store.DB) {
	w := newDialWorld(t, base)
	const workers = 8
	// claimAll runs workers goroutines, worker i claiming from cs[i%len(cs)]
	// with limit until it gets nothing, and returns what they claimed.
	claimAll := func(cs []*store.Campaign, edit func(*store.ClaimRequest)) []store.Lead {
		t.Helper()
		var mu sync.Mutex
		var out []store.Lead
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range workers {
			r := w.req(cs[i%len(cs)])
			r.Limit = 7
			edit(&r)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range 1000 {
					got, err := w.db.ClaimLeads(w.ctx, r)
					if err != nil {
						t.Errorf("ClaimLeads: %v", err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					out = append(out, got...)
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		return out
	}
	seen := map[string]string{} // lead → its call
	calls := map[string]bool{}
	record := func(got []store.Lead) {
		t.Helper()
		for _, l := range got {
			if prev, ok := seen[l.ID]; ok {
				t.Fatalf("lead %s claimed twice (calls %s and %s)", l.ID, prev, *l.CallID)
			}
			if calls[*l.CallID] {
				t.Fatalf("call id %s given twice", *l.CallID)
			}
			seen[l.ID], calls[*l.CallID] = *l.CallID, true
		}
	}
	callingOf := func(cs ...*store.Campaign) int {
		t.Helper()
		n := 0
		for _, c := range cs {
			n += w.get(c).CallingLeads
		}
		return n
	}
	// rounds claims in rounds until every lead of cs was claimed, settling
	// every other calling lead between rounds so that some calls carry over;
	// after each round exactly as many leads as the cap allows are calling.
	rounds := func(cs []*store.Campaign, total, capacity int, edit func(*store.ClaimRequest)) {
		t.Helper()
		var calling []store.Lead
		for round := 0; len(seen) < total || len(calling) > 0; round++ {
			if round > 100 {
				t.Fatalf("no progress: %d of %d leads claimed", len(seen), total)
			}
			want := min(capacity, len(calling)+total-len(seen)) // what the cap allows of what is there
			got := claimAll(cs, edit)
			record(got)
			calling = append(calling, got...)
			if n := callingOf(cs...); n > capacity || n != len(calling) || n != want {
				t.Fatalf("round %d: %d calling in the store, %d claimed and not settled, want %d (cap %d)", round, n, len(calling), want, capacity)
			}
			keep := calling[:0]
			for i, l := range calling {
				if i%2 == 0 || len(seen) == total {
					w.settleDone(l)
				} else {
					keep = append(keep, l)
				}
			}
			calling = keep
		}
	}

	// No cap binds: 8 claimers of 7 leads at a time take 200 leads, each once.
	org := w.org("Race")
	c, ls := w.campaign(org, campaign.Scheduled, 200, nil)
	got := claimAll([]*store.Campaign{c}, func(*store.ClaimRequest) {})
	record(got)
	if len(got) != len(ls) {
		t.Fatalf("claimed %d leads, want %d", len(got), len(ls))
	}
	for id, l := range w.leads(c) {
		if l.Status != campaign.LeadCalling || l.Attempts != 1 || l.CallID == nil || *l.CallID != seen[id] {
			t.Fatalf("lead after the race = %+v, claimed with call %s", l, seen[id])
		}
	}

	// The campaign cap of 5 holds across claimers.
	clear(seen)
	capped, _ := w.campaign(w.org("Capped"), campaign.Scheduled, 40, nil)
	rounds([]*store.Campaign{capped}, 40, 5, func(r *store.ClaimRequest) { r.MaxConcurrent = 5 })

	// The organization's cap of 6 holds across its two campaigns.
	clear(seen)
	shared := w.org("Shared")
	if err := w.db.SetOrgCampaignCap(w.ctx, shared.ID, ptr(6)); err != nil {
		t.Fatal(err)
	}
	a, _ := w.campaign(shared, campaign.Scheduled, 25, nil)
	b, _ := w.campaign(shared, campaign.Scheduled, 25, nil)
	rounds([]*store.Campaign{a, b}, 50, 6, func(*store.ClaimRequest) {})
}

// testDialerEndedAttempts covers which calling leads EndedAttempts reports:
// those whose call ended (with its end reason and whether it was answered),
// never one whose call is live, and one whose call row never came only once
// the process life that claimed it is over.
func testDialerEndedAttempts(t *testing.T, base *store.DB) {
	w := newDialWorld(t, base)
	ctx := w.ctx
	org := w.org("Ended")
	bootA, err := w.db.StartBoot(ctx, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	bootC, _ := w.db.StartBoot(ctx, "node-c")
	c, ls := w.campaign(org, campaign.Scheduled, 7, func(c *store.Campaign) { c.MaxAttempts, c.RetryDelaySeconds = ptr(3), ptr(600) })
	// Lead i is claimed at second i: 0-3 by node-a's life, 4 by node-c's,
	// 5 by a life never recorded; 6 stays pending.
	for i, boot := range []string{bootA.ID, bootA.ID, bootA.ID, bootA.ID, bootC.ID, "boot-unknown"} {
		w.clk.at(time.Duration(i) * time.Second)
		r := w.req(c)
		r.Limit, r.BootID = 1, boot
		w.claimIDs(r, ls[i].ID)
	}
	id := func(i int) string { return ls[i].ID }
	// Lead 0's call is live, lead 1's was answered and ended, lead 2's
	// failed unanswered; 3, 4 and 5 have no call row.
	for i, st := range []call.Status{call.StatusRinging, call.StatusRinging, call.StatusDialing} {
		if err := w.db.CreateCall(ctx, &store.Call{ID: fmt.Sprintf("call-%d", i+1), OrgID: org.ID, Status: st, Direction: call.Outbound, BootID: &bootA.ID}); err != nil {
			t.Fatal(err)
		}
	}
	w.clk.at(6 * time.Second)
	if err := w.db.StartCall(ctx, org.ID, "call-2", w.clk.Now()); err != nil {
		t.Fatal(err)
	}
	w.clk.at(10 * time.Second)
	secs := 4
	if err := w.db.EndCall(ctx, store.CallEnd{OrgID: org.ID, ID: "call-2", Status: call.StatusEnded, EndReason: call.EndUserHangup, EndedAt: w.clk.Now(), Duration: &secs}); err != nil {
		t.Fatal(err)
	}
	if err := w.db.EndCall(ctx, store.CallEnd{OrgID: org.ID, ID: "call-3", Status: call.StatusFailed, EndReason: call.EndNoAnswer, EndedAt: w.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := w.db.Heartbeat(ctx, bootC.ID); err != nil { // node-a's last beat is at 0s, node-c's at 10s
		t.Fatal(err)
	}
	ended := func(staleBefore time.Duration, limit int, want ...string) []store.EndedAttempt {
		t.Helper()
		got, err := w.db.EndedAttempts(ctx, w.clk.Now().Sub(w.clk.t(staleBefore)), limit)
		ids := []string{}
		for _, a := range got {
			ids = append(ids, a.ID)
		}
		if err != nil || !slices.Equal(ids, append([]string{}, want...)) {
			t.Fatalf("EndedAttempts(stale before %s) = %v, %v; want %v", staleBefore, ids, err, want)
		}
		return got
	}
	got := ended(-time.Minute, 100, id(1), id(2), id(5))
	for i, want := range []struct {
		missing, answered bool
		reason, call      string
	}{{false, true, "user_hangup", "call-2"}, {false, false, "no_answer", "call-3"}, {true, false, "", "call-6"}} {
		a := got[i]
		if a.CallMissing != want.missing || a.Answered != want.answered || a.EndReason != want.reason || a.CallID == nil || *a.CallID != want.call ||
			a.Status != campaign.LeadCalling || a.Attempts != 1 || a.CampaignID != c.ID || a.OrgID != org.ID || a.PhoneNumber != ls[[]int{1, 2, 5}[i]].PhoneNumber ||
			a.CampaignStatus != campaign.Scheduled || a.AgentID != c.AgentID || a.MaxAttempts == nil || *a.MaxAttempts != 3 ||
			a.RetryDelaySeconds == nil || *a.RetryDelaySeconds != 600 || !sameTime(a.LastAttemptAt, w.clk.t(time.Duration([]int{1, 2, 5}[i])*time.Second)) {
			t.Fatalf("ended attempt %d = %+v", i, a)
		}
	}
	ended(-time.Minute, 2, id(1), id(2))
	// node-a's heartbeat is stale: its claim without a call is over; node-c's is not.
	ended(5*time.Second, 100, id(1), id(2), id(3), id(5))
	if err := w.db.Heartbeat(ctx, bootA.ID); err != nil {
		t.Fatal(err)
	}
	ended(5*time.Second, 100, id(1), id(2), id(5))
	// node-a starts again: its first life is over, but a live call is not ended.
	if _, err := w.db.StartBoot(ctx, "node-a"); err != nil {
		t.Fatal(err)
	}
	ended(5*time.Second, 100, id(1), id(2), id(3), id(5))
	// node-c stops.
	if err := w.db.StopBoot(ctx, bootC.ID); err != nil {
		t.Fatal(err)
	}
	ended(-time.Minute, 100, id(1), id(2), id(3), id(4), id(5))
	// Lead 0's call ends; the campaign's status is reported as it is now.
	if err := w.db.EndCall(ctx, store.CallEnd{OrgID: org.ID, ID: "call-1", Status: call.StatusFailed, EndReason: call.EndBusy, EndedAt: w.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.db.PauseCampaign(ctx, c.ID, "no_minutes"); err != nil || !ok {
		t.Fatalf("PauseCampaign = %v, %v", ok, err)
	}
	got = ended(-time.Minute, 100, id(0), id(1), id(2), id(3), id(4), id(5))
	if got[0].EndReason != "busy" || got[0].Answered || got[0].CallMissing || got[0].CampaignStatus != campaign.Paused {
		t.Fatalf("ended attempt of lead 0 = %+v", got[0])
	}
	// Settled leads are no longer reported.
	if !w.settle(store.Settlement{LeadID: id(1), CallID: "call-2", Status: campaign.LeadCompleted}) ||
		!w.settle(store.Settlement{LeadID: id(3), CallID: "call-4", Status: campaign.LeadPending, Uncounted: true, Released: true}) {
		t.Fatal("settling ended attempts did nothing")
	}
	ended(-time.Minute, 100, id(0), id(2), id(4), id(5))
}

// testDialerSettle covers SettleLead: only a lead still calling with that
// call moves, once; an uncounted attempt is taken back; a released lead
// names no call; a retry's time and the outcome are stored; a retry in a
// campaign cancelled meanwhile is skipped.
func testDialerSettle(t *testing.T, base *store.DB) {
	w := newDialWorld(t, base)
	ctx := w.ctx
	org := w.org("Settle")
	c, ls := w.campaign(org, campaign.Scheduled, 4, nil)
	l0, l1, l2, l3 := ls[0].ID, ls[1].ID, ls[2].ID, ls[3].ID
	r := w.req(c)
	r.Limit = 3
	w.claimIDs(r, l0, l1, l2) // calls 1, 2, 3
	w.clk.at(time.Minute)
	for _, s := range []store.Settlement{
		{LeadID: l0, CallID: "call-2", Status: campaign.LeadCompleted},
		{LeadID: "no-such-lead", CallID: "call-1", Status: campaign.LeadCompleted},
		{LeadID: l3, CallID: "call-1", Status: campaign.LeadCompleted}, // pending
	} {
		if w.settle(s) {
			t.Fatalf("settlement %+v moved a lead", s)
		}
	}
	if !w.settle(store.Settlement{LeadID: l0, CallID: "call-1", Status: campaign.LeadCompleted, Outcome: "answered"}) {
		t.Fatal("settling lead 0 did nothing")
	}
	if w.settle(store.Settlement{LeadID: l0, CallID: "call-1", Status: campaign.LeadFailed, Outcome: "again"}) {
		t.Fatal("a second settlement moved lead 0")
	}
	if l := w.lead(c, l0); l.Status != campaign.LeadCompleted || l.Attempts != 1 || l.CallID == nil || *l.CallID != "call-1" ||
		l.LastOutcome == nil || *l.LastOutcome != "answered" || l.NextAttemptAt != nil || !sameTime(l.LastAttemptAt, dialT0) || !l.UpdatedAt.Equal(w.clk.Now()) {
		t.Fatalf("completed lead = %+v", l)
	}
	// Never dialled: the attempt is taken back and the lead names no call.
	if !w.settle(store.Settlement{LeadID: l1, CallID: "call-2", Status: campaign.LeadPending, Uncounted: true, Released: true, Outcome: "not_dialled"}) {
		t.Fatal("releasing lead 1 did nothing")
	}
	if l := w.lead(c, l1); l.Status != campaign.LeadPending || l.Attempts != 0 || l.CallID != nil || l.NextAttemptAt != nil || l.LastOutcome == nil || *l.LastOutcome != "not_dialled" {
		t.Fatalf("released lead = %+v", l)
	}
	// A retry in an hour keeps its call until tried again.
	retryAt := w.clk.t(time.Hour)
	if !w.settle(store.Settlement{LeadID: l2, CallID: "call-3", Status: campaign.LeadPending, NextAttemptAt: &retryAt, Outcome: "no_answer"}) {
		t.Fatal("settling lead 2 for a retry did nothing")
	}
	if l := w.lead(c, l2); l.Status != campaign.LeadPending || l.Attempts != 1 || !sameTime(l.NextAttemptAt, retryAt) || l.CallID == nil || *l.CallID != "call-3" || *l.LastOutcome != "no_answer" {
		t.Fatalf("lead due again = %+v", l)
	}
	w.wantCounters("after the settlements", w.get(c), counters{Total: 4, Pending: 3, Completed: 1, Retries: 1, NextRetry: &retryAt})
	// The released lead keeps its place in line; the retry waits its time.
	again := w.claimIDs(w.req(c), l1, l3) // calls 4, 5
	if again[0].Attempts != 1 {
		t.Fatalf("released lead claimed again = %+v", again[0])
	}
	w.clk.at(time.Hour)
	w.claimIDs(w.req(c), l2) // call 6
	// Settling without an outcome keeps the last one.
	if !w.settle(store.Settlement{LeadID: l1, CallID: "call-4", Status: campaign.LeadFailed}) {
		t.Fatal("settling lead 1 did nothing")
	}
	if l := w.lead(c, l1); l.Status != campaign.LeadFailed || *l.LastOutcome != "not_dialled" || l.Attempts != 1 || *l.CallID != "call-4" {
		t.Fatalf("failed lead = %+v", l)
	}

	// Cancelled meanwhile: a retry is skipped, a final status stays.
	late := &store.Lead{PhoneNumber: "+31600000009"}
	if err := w.db.AddLead(ctx, org.ID, c.ID, late); err != nil {
		t.Fatal(err)
	}
	if _, err := w.db.UpdateCampaign(ctx, org.ID, c.ID, func(c *store.Campaign) error { c.Status = campaign.Cancelled; return nil }); err != nil {
		t.Fatal(err)
	}
	if !w.settle(store.Settlement{LeadID: l2, CallID: "call-6", Status: campaign.LeadPending, NextAttemptAt: ptr(w.clk.t(2 * time.Hour)), Outcome: "busy"}) ||
		!w.settle(store.Settlement{LeadID: l3, CallID: "call-5", Status: campaign.LeadCompleted, Outcome: "answered"}) {
		t.Fatal("settling in a cancelled campaign did nothing")
	}
	if l := w.lead(c, l2); l.Status != campaign.LeadSkipped || l.NextAttemptAt != nil || *l.LastOutcome != "busy" || l.Attempts != 2 {
		t.Fatalf("retry in a cancelled campaign = %+v", l)
	}
	if l := w.lead(c, l3); l.Status != campaign.LeadCompleted {
		t.Fatalf("completed lead in a cancelled campaign = %+v", l)
	}
	w.wantCounters("after the cancel", w.get(c), counters{Total: 5, Completed: 2, Failed: 1, Skipped: 2})
}

// testDialerCompleteFinished covers CompleteFinished: a scheduled campaign
// with leads, all final, is completed; one with a lead pending or calling, one
// without leads, and one not scheduled are not.
func testDialerCompleteFinished(t *testing.T, base *store.DB) {
	w := newDialWorld(t, base)
	ctx := w.ctx
	org := w.org("Finish")
	final := func(l store.Lead, st campaign.LeadStatus) {
		t.Helper()
		if err := w.db.SetLeadStatus(ctx, org.ID, l.ID, st, nil); err != nil {
			t.Fatal(err)
		}
	}
	done, dl := w.campaign(org, campaign.Scheduled, 3, nil)
	final(dl[0], campaign.LeadCompleted)
	final(dl[1], campaign.LeadFailed)
	final(dl[2], campaign.LeadSkipped)
	if err := w.db.BackoffCampaign(ctx, done.ID, w.clk.t(time.Hour)); err != nil {
		t.Fatal(err)
	}
	pending, pl := w.campaign(org, campaign.Scheduled, 2, nil)
	final(pl[0], campaign.LeadCompleted)
	calling, cl := w.campaign(org, campaign.Scheduled, 2, nil)
	final(cl[1], campaign.LeadCompleted)
	claimed := w.claimIDs(w.req(calling), cl[0].ID)
	empty, _ := w.campaign(org, campaign.Scheduled, 0, nil)
	paused, ppl := w.campaign(org, campaign.Scheduled, 1, nil)
	final(ppl[0], campaign.LeadCompleted)
	if ok, err := w.db.PauseCampaign(ctx, paused.ID, "no_minutes"); err != nil || !ok {
		t.Fatalf("PauseCampaign = %v, %v", ok, err)
	}
	draft, drl := w.campaign(org, campaign.Draft, 1, nil)
	final(drl[0], campaign.LeadCompleted)

	w.clk.at(time.Minute)
	complete := func(want int, completed ...*store.Campaign) {
		t.Helper()
		n, err := w.db.CompleteFinished(ctx)
		if err != nil || n != want {
			t.Fatalf("CompleteFinished = %d, %v; want %d", n, err, want)
		}
		for _, c := range completed {
			if g := w.get(c); g.Status != campaign.Completed || g.BackoffUntil != nil || g.StatusReason != nil || !g.UpdatedAt.Equal(w.clk.Now()) {
				t.Fatalf("completed campaign = %+v", g)
			}
		}
	}
	complete(1, done)
	for c, st := range map[*store.Campaign]campaign.Status{pending: campaign.Scheduled, calling: campaign.Scheduled, empty: campaign.Scheduled, paused: campaign.Paused, draft: campaign.Draft} {
		if g := w.get(c); g.Status != st {
			t.Fatalf("campaign %s = %s, want %s", c.ID, g.Status, st)
		}
	}
	complete(0)
	w.settleDone(claimed[0])
	complete(1, calling)
}

// testDialerCounters covers the campaign counters after a mix of claims and
// settlements, ScheduledCampaigns, and cancelling: pending leads are
// skipped, a lead being called is not.
func testDialerCounters(t *testing.T, base *store.DB) {
	w := newDialWorld(t, base)
	ctx := w.ctx
	org, other := w.org("Counted"), w.org("Other")
	c, ls := w.campaign(org, campaign.Scheduled, 8, nil)
	w.clk.at(time.Second)
	y, _ := w.campaign(other, campaign.Scheduled, 1, nil)
	w.campaign(org, campaign.Draft, 1, nil)
	pz, _ := w.campaign(other, campaign.Scheduled, 1, nil)
	if ok, err := w.db.PauseCampaign(ctx, pz.ID, "trunk_auth_failed"); err != nil || !ok {
		t.Fatalf("PauseCampaign = %v, %v", ok, err)
	}
	id := func(i int) string { return ls[i].ID }
	r := w.req(c)
	r.Limit = 4
	got := w.claimIDs(r, id(0), id(1), id(2), id(3))
	in := func(d time.Duration) *time.Time { return ptr(w.clk.t(d)) }
	for _, s := range []store.Settlement{
		{LeadID: id(0), CallID: *got[0].CallID, Status: campaign.LeadCompleted},
		{LeadID: id(1), CallID: *got[1].CallID, Status: campaign.LeadFailed},
		{LeadID: id(2), CallID: *got[2].CallID, Status: campaign.LeadPending, NextAttemptAt: in(2 * time.Hour)},
	} {
		if !w.settle(s) {
			t.Fatalf("settlement %+v did nothing", s)
		}
	}
	r.Limit = 1
	l4 := w.claimIDs(r, id(4))
	if !w.settle(store.Settlement{LeadID: id(4), CallID: *l4[0].CallID, Status: campaign.LeadPending, NextAttemptAt: in(time.Hour)}) {
		t.Fatal("settling lead 4 did nothing")
	}
	l5 := w.claimIDs(r, id(5))
	if !w.settle(store.Settlement{LeadID: id(5), CallID: *l5[0].CallID, Status: campaign.LeadPending, Uncounted: true, Released: true}) {
		t.Fatal("releasing lead 5 did nothing")
	}
	if err := w.db.SetLeadStatus(ctx, org.ID, id(6), campaign.LeadSkipped, nil); err != nil {
		t.Fatal(err)
	}
	// 0 completed, 1 failed, 2 and 4 due again, 3 calling, 5 released, 6
	// skipped, 7 never tried.
	want := counters{Total: 8, Pending: 4, Calling: 1, Completed: 1, Failed: 1, Skipped: 1, Retries: 2, NextRetry: in(time.Hour)}
	w.wantCounters("GetCampaign", w.get(c), want)
	list, _, err := w.db.ListCampaignsPage(ctx, org.ID, store.Page{Limit: 10})
	if err != nil || len(list) != 2 || list[0].ID != c.ID {
		t.Fatalf("ListCampaignsPage = %+v, %v", list, err)
	}
	w.wantCounters("ListCampaignsPage", &list[0], want)
	sched, err := w.db.ScheduledCampaigns(ctx)
	if err != nil || len(sched) != 2 || sched[0].ID != c.ID || sched[1].ID != y.ID {
		t.Fatalf("ScheduledCampaigns = %+v, %v; want the two scheduled, oldest first", sched, err)
	}
	w.wantCounters("ScheduledCampaigns", &sched[0], want)
	w.wantCounters("ScheduledCampaigns (other organization)", &sched[1], counters{Total: 1, Pending: 1})

	// Cancelling skips the pending leads and leaves the call in progress.
	w.clk.at(time.Minute)
	up, err := w.db.UpdateCampaign(ctx, org.ID, c.ID, func(c *store.Campaign) error { c.Status = campaign.Cancelled; return nil })
	if err != nil || up.Status != campaign.Cancelled {
		t.Fatalf("UpdateCampaign = %+v, %v", up, err)
	}
	w.wantCounters("after the cancel", up, counters{Total: 8, Calling: 1, Completed: 1, Failed: 1, Skipped: 5})
	leads := w.leads(c)
	for _, i := range []int{2, 4, 5, 7} {
		if l := leads[id(i)]; l.Status != campaign.LeadSkipped || l.NextAttemptAt != nil || !l.UpdatedAt.Equal(w.clk.Now()) {
			t.Fatalf("pending lead %d after the cancel = %+v", i, l)
		}
	}
	if l := leads[id(3)]; l.Status != campaign.LeadCalling || l.CallID == nil || *l.CallID != *got[3].CallID || l.Attempts != 1 {
		t.Fatalf("lead being called after the cancel = %+v", l)
	}
	for i, st := range map[int]campaign.LeadStatus{0: campaign.LeadCompleted, 1: campaign.LeadFailed, 6: campaign.LeadSkipped} {
		if leads[id(i)].Status != st {
			t.Fatalf("lead %d after the cancel = %s, want %s", i, leads[id(i)].Status, st)
		}
	}
	w.claimIDs(w.req(c))
	if sched, _ := w.db.ScheduledCampaigns(ctx); len(sched) != 1 || sched[0].ID != y.ID {
		t.Fatalf("ScheduledCampaigns after the cancel = %+v", sched)
	}
	if ended, err := w.db.EndedAttempts(ctx, 0, 10); err != nil || len(ended) != 1 || ended[0].ID != id(3) || ended[0].CampaignStatus != campaign.Cancelled || !ended[0].CallMissing {
		t.Fatalf("EndedAttempts after the cancel = %+v, %v", ended, err)
	}
	if !w.settle(store.Settlement{LeadID: id(3), CallID: *got[3].CallID, Status: campaign.LeadCompleted}) {
		t.Fatal("settling the last call did nothing")
	}
	w.wantCounters("at the end", w.get(c), counters{Total: 8, Completed: 2, Failed: 1, Skipped: 5})
}

// testDialerSettleDuringCancel settles a retry while a cancel of its
// campaign is committing (PostgreSQL; SQLite has one writer): the settle
// waits for the cancel and the lead is skipped, not left pending in a
// cancelled campaign where nothing would ever call or skip it.
func testDialerSettleDuringCancel(t *testing.T, base *store.DB) {
	if base.Driver() != "postgres" {
		t.Skip("SQLite runs one write at a time")
	}
	w := newDialWorld(t, base)
	ctx := w.ctx
	org := w.org("Cancel")
	c, ls := w.campaign(org, campaign.Scheduled, 1, nil)
	w.claimIDs(w.req(c), ls[0].ID)
	// The cancel's transaction, as UpdateCampaign writes it, left open.
	tx, err := w.db.Writer().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET status = 'cancelled' WHERE id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE campaign_leads SET status = 'skipped', next_attempt_at = NULL WHERE campaign_id = $1 AND status = 'pending'`, c.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ok, err := w.db.SettleLead(ctx, store.Settlement{LeadID: ls[0].ID, CallID: "call-1", Status: campaign.LeadPending, NextAttemptAt: ptr(w.clk.t(time.Hour))})
		if err == nil && !ok {
			err = fmt.Errorf("the settlement did nothing")
		}
		done <- err
	}()
	// Wait until the settle waits for the cancel's lock (or has finished).
	deadline := time.Now().Add(time.Minute)
	for waiting := false; !waiting; {
		if time.Now().After(deadline) {
			t.Fatal("the settle neither finished nor waited for a lock")
		}
		select {
		case err := <-done:
			done <- err
			waiting = true
		default:
			var n int
			if err := w.db.Writer().QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE campaign_leads SET%'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			waiting = n > 0
			time.Sleep(time.Millisecond)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l := w.lead(c, ls[0].ID); l.Status != campaign.LeadSkipped || l.NextAttemptAt != nil {
		t.Fatalf("retry settled during the cancel = %+v, want skipped", l)
	}
}
