package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/store"
)

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
