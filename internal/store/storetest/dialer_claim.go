package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/store"
)

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
