package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/store"
)

// testBilling: a call's end takes its minutes from the paying organization
// (the parent of a child organization) in the same transaction, the usage
// log carries the figures, and a call is billed once however often its end
// is written.
func testBilling(t *testing.T, db *store.DB) {
	ctx := context.Background()
	parent := &store.Org{Name: "Reseller", MinutesBalance: 100}
	if err := db.CreateOrg(ctx, parent, nil); err != nil {
		t.Fatal(err)
	}
	child := &store.Org{Name: "Client", ParentID: &parent.ID, MinutesBalance: 7}
	if err := db.CreateOrg(ctx, child, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := db.PayerBalance(ctx, child.ID); err != nil || b != 100 {
		t.Fatalf("a child's paying balance = %v, %v; want its parent's 100", b, err)
	}
	end := func(org string, secs int) (string, error) {
		c := &store.Call{OrgID: org, Status: call.StatusInProgress, Direction: call.Inbound}
		if err := db.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c.ID, db.EndCall(ctx, store.CallEnd{OrgID: org, ID: c.ID, Status: call.StatusEnded, EndReason: call.EndUserHangup,
			EndedAt: time.Now(), Duration: &secs, Usage: &store.UsageLog{OrgID: org, CallID: &c.ID, DurationSec: secs, CallType: "phone"}})
	}
	var total int
	for _, secs := range []int{61, 1, 30, 125} {
		if _, err := end(parent.ID, secs); err != nil {
			t.Fatal(err)
		}
		total += secs
	}
	childCall, err := end(child.ID, 90)
	if err != nil {
		t.Fatal(err)
	}
	total += 90
	p, _ := db.GetOrg(ctx, parent.ID)
	c, _ := db.GetOrg(ctx, child.ID)
	if want := 100 - float64(total)/60; math.Abs(p.MinutesBalance-want) > 1e-9 || c.MinutesBalance != 7 {
		t.Fatalf("balances: parent %v (want %v), child %v (want 7, untouched)", p.MinutesBalance, want, c.MinutesBalance)
	}
	logs, _, sum, err := db.ListUsage(ctx, parent.ID, store.UsageFilter{Page: store.Page{Limit: 10}})
	if err != nil || len(logs) != 4 || sum.TotalDurationSeconds != total-90 || math.Abs(sum.TotalMinutesUsed-float64(total-90)/60) > 1e-9 {
		t.Fatalf("parent usage: %d logs, %+v, %v", len(logs), sum, err)
	}
	for _, l := range logs {
		if l.MinutesUsed != float64(l.DurationSec)/60 || l.BilledOrgID == nil || *l.BilledOrgID != parent.ID {
			t.Fatalf("usage log figures: %+v", l)
		}
	}
	clogs, _, _, _ := db.ListUsage(ctx, child.ID, store.UsageFilter{Page: store.Page{Limit: 10}})
	if len(clogs) != 1 || clogs[0].BilledOrgID == nil || *clogs[0].BilledOrgID != parent.ID || clogs[0].MinutesUsed != 1.5 {
		t.Fatalf("child usage log: %+v", clogs)
	}

	// The same end written again (a retry whose first commit went
	// through) changes nothing and says so.
	secs := 90
	err = db.EndCall(ctx, store.CallEnd{OrgID: child.ID, ID: childCall, Status: call.StatusEnded, EndedAt: time.Now(), Duration: &secs,
		Usage: &store.UsageLog{OrgID: child.ID, CallID: &childCall, DurationSec: secs, CallType: "phone"}})
	if !errors.Is(err, store.ErrEnded) {
		t.Fatalf("second end = %v, want ErrEnded", err)
	}
	if again, _ := db.GetOrg(ctx, parent.ID); again.MinutesBalance != p.MinutesBalance {
		t.Fatalf("a second end billed again: %v → %v", p.MinutesBalance, again.MinutesBalance)
	}

	// Settling folds the usage into the stored balances; what is seen
	// stays the same, and a second settlement has nothing to do.
	if n, err := db.SettleUsage(ctx); err != nil || n != 5 {
		t.Fatalf("SettleUsage = %d, %v; want the 5 logs", n, err)
	}
	if n, err := db.SettleUsage(ctx); err != nil || n != 0 {
		t.Fatalf("second SettleUsage = %d, %v", n, err)
	}
	if again, _ := db.GetOrg(ctx, parent.ID); math.Abs(again.MinutesBalance-p.MinutesBalance) > 1e-9 {
		t.Fatalf("settling changed the balance: %v → %v", p.MinutesBalance, again.MinutesBalance)
	}
	if b, _ := db.PayerBalance(ctx, child.ID); math.Abs(b-p.MinutesBalance) > 1e-9 {
		t.Fatalf("paying balance after settling = %v, want %v", b, p.MinutesBalance)
	}
	// Setting the balance with usage unsettled: the set value is what is seen.
	if _, err := end(parent.ID, 30); err != nil {
		t.Fatal(err)
	}
	if err := db.SetMinutesBalance(ctx, parent.ID, 40); err != nil {
		t.Fatal(err)
	}
	if o, _ := db.GetOrg(ctx, parent.ID); math.Abs(o.MinutesBalance-40) > 1e-9 {
		t.Fatalf("balance after set with unsettled usage = %v, want 40", o.MinutesBalance)
	}
	db.SettleUsage(ctx)
	if o, _ := db.GetOrg(ctx, parent.ID); math.Abs(o.MinutesBalance-40) > 1e-9 {
		t.Fatalf("balance after set and settle = %v, want 40", o.MinutesBalance)
	}
	if _, err := end(parent.ID, 60); err != nil {
		t.Fatal(err)
	}
	if o, _ := db.GetOrg(ctx, parent.ID); math.Abs(o.MinutesBalance-39) > 1e-9 {
		t.Fatalf("balance after a minute's call = %v, want 39", o.MinutesBalance)
	}
	p, _ = db.GetOrg(ctx, parent.ID)

	// Adding minutes; the balance may go below zero (a call longer than
	// what was left) and is topped up by adding.
	if b, err := db.AddMinutes(ctx, parent.ID, -200); err != nil || math.Abs(b-(p.MinutesBalance-200)) > 1e-9 {
		t.Fatalf("AddMinutes(-200) = %v, %v", b, err)
	}
	if b, err := db.AddMinutes(ctx, parent.ID, 250); err != nil || math.Abs(b-(p.MinutesBalance+50)) > 1e-9 {
		t.Fatalf("AddMinutes(250) = %v, %v", b, err)
	}
	if _, err := db.AddMinutes(ctx, "no-such-org", 1); err == nil {
		t.Fatal("AddMinutes on a missing organization succeeded")
	}
}

// testBoots: a boot is over once stopped, stale or superseded by a newer
// boot of its node; only boots with live calls are listed, and ending a
// call as a boot's orphan needs that boot to still own it.
func testBoots(t *testing.T, db *store.DB) {
	ctx := context.Background()
	org := newOrg(t, db, "Boots")
	a1, err := db.StartBoot(ctx, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := db.StartBoot(ctx, "node-b")
	live := func(boot string, st call.Status) *store.Call {
		c := &store.Call{OrgID: org.ID, Status: st, Direction: call.Inbound, BootID: &boot}
		if err := db.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca := live(a1.ID, call.StatusInProgress)
	live(a1.ID, call.StatusRinging)
	cb := live(b1.ID, call.StatusInProgress)
	if got, _ := db.GetCall(ctx, org.ID, ca.ID); got.BootID == nil || *got.BootID != a1.ID {
		t.Fatalf("call boot = %v", got.BootID)
	}
	fresh := time.Now().Add(-time.Minute)
	over, err := db.BootsOver(ctx, fresh, "")
	if err != nil || len(over) != 0 {
		t.Fatalf("boots over while both nodes beat: %+v, %v", over, err)
	}
	// node-a restarts: its first life is over; node-b's is not.
	a2, _ := db.StartBoot(ctx, "node-a")
	live(a2.ID, call.StatusInProgress)
	over, _ = db.BootsOver(ctx, fresh, "")
	if len(over) != 1 || over[0].ID != a1.ID || over[0].NodeID != "node-a" {
		t.Fatalf("after node-a restarted, boots over = %+v", over)
	}
	if o, _ := db.BootsOver(ctx, fresh, "node-b"); len(o) != 0 {
		t.Fatalf("node filter: %+v", o)
	}
	calls, err := db.LiveCallsOf(ctx, a1.ID, 10)
	if err != nil || len(calls) != 2 {
		t.Fatalf("live calls of the first life: %d, %v", len(calls), err)
	}
	// Ending an orphan is conditional on the boot still owning it.
	secs := 3
	err = db.EndCall(ctx, store.CallEnd{OrgID: org.ID, ID: cb.ID, BootID: a1.ID, Status: call.StatusEndedWithError, EndReason: call.EndServerLost, EndedAt: time.Now(), Duration: &secs})
	if !errors.Is(err, store.ErrEnded) {
		t.Fatalf("ending node-b's call as node-a's orphan = %v, want ErrEnded", err)
	}
	if err := db.EndCall(ctx, store.CallEnd{OrgID: org.ID, ID: ca.ID, BootID: a1.ID, Status: call.StatusEndedWithError, EndReason: call.EndServerLost, EndedAt: time.Now(), Duration: &secs}); err != nil {
		t.Fatal(err)
	}
	if calls, _ := db.LiveCallsOf(ctx, a1.ID, 10); len(calls) != 1 {
		t.Fatalf("live calls after one orphan ended: %d", len(calls))
	}
	// A stale heartbeat makes node-b's boot over; a heartbeat revives it.
	later := time.Now().Add(time.Hour)
	if o, _ := db.BootsOver(ctx, later, "node-b"); len(o) != 1 {
		t.Fatalf("stale node-b not over: %+v", o)
	}
	// A stopped boot is over at once.
	if err := db.StopBoot(ctx, b1.ID); err != nil {
		t.Fatal(err)
	}
	if o, _ := db.BootsOver(ctx, fresh, "node-b"); len(o) != 1 || o[0].StoppedAt == nil {
		t.Fatalf("stopped node-b not over: %+v", o)
	}
	if err := db.Heartbeat(ctx, a2.ID); err != nil {
		t.Fatal(err)
	}
	// Calls made before boots were recorded are found by the empty boot.
	legacy := &store.Call{OrgID: org.ID, Status: call.StatusInProgress, Direction: call.Inbound}
	if err := db.CreateCall(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	if calls, _ := db.LiveCallsOf(ctx, "", 10); len(calls) != 1 || calls[0].ID != legacy.ID {
		t.Fatalf("unowned live calls: %+v", calls)
	}
}

// testWrites: writes are detached from their caller's cancellation, and
// concurrent writes (group-committed on SQLite) fail alone.
func testWrites(t *testing.T, db *store.DB) {
	org := newOrg(t, db, "Writes")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &store.Call{OrgID: org.ID, Status: call.StatusRinging, Direction: call.Inbound}
	if err := db.CreateCall(ctx, c); err != nil {
		t.Fatalf("a write whose caller gave up was dropped: %v", err)
	}
	bg := context.Background()
	if _, err := db.GetCall(bg, org.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	// 200 concurrent writes, every tenth of which fails (a duplicate id):
	// the others all commit.
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("w-%d", i)
			if i%10 == 0 {
				id = c.ID
			}
			errs[i] = db.CreateCall(bg, &store.Call{ID: id, OrgID: org.ID, Status: call.StatusRinging, Direction: call.Inbound})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%10 == 0) != (err != nil) {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	_, total, err := db.ListCalls(bg, org.ID, store.CallFilter{Page: store.Page{Limit: 1}})
	if err != nil || total != 1+n-n/10 {
		t.Fatalf("calls after concurrent writes: %d, %v; want %d", total, err, 1+n-n/10)
	}
	// A hook failing inside a write rolls back that write only.
	failing := &store.Call{OrgID: org.ID, Status: call.StatusInProgress, Direction: call.Inbound}
	if err := db.CreateCall(bg, failing); err != nil {
		t.Fatal(err)
	}
	wg.Add(2)
	var hookErr, okErr error
	go func() {
		defer wg.Done()
		hookErr = db.EndCall(bg, store.CallEnd{OrgID: org.ID, ID: failing.ID, Status: call.StatusEnded, EndedAt: time.Now(),
			InTx: func(context.Context, *sql.Tx) error { return errors.New("hook failed") }})
	}()
	go func() {
		defer wg.Done()
		okErr = db.CreateCall(bg, &store.Call{ID: "after-hook", OrgID: org.ID, Status: call.StatusRinging, Direction: call.Inbound})
	}()
	wg.Wait()
	if hookErr == nil || okErr != nil {
		t.Fatalf("hook write = %v (want its error), neighbour = %v", hookErr, okErr)
	}
	if got, _ := db.GetCall(bg, org.ID, failing.ID); got.Status != call.StatusInProgress {
		t.Fatalf("the failed end left the call %s", got.Status)
	}
	if load := db.WriteLoad(); load.InFlight != 0 || load.Latency <= 0 {
		t.Fatalf("write load after the writes: %+v", load)
	}
}
