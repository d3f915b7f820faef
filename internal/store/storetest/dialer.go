package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

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
