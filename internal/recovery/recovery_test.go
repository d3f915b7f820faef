package recovery_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/recovery"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scheduled counts the post-call work queued per call.
type scheduled struct {
	mu    sync.Mutex
	calls map[string]int
}

func (s *scheduled) Schedule(_ context.Context, _ *sql.Tx, _, callID, recording string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[callID]++
	return nil
}

func (s *scheduled) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

type rig struct {
	db    *store.DB
	org   *store.Org
	after *scheduled
}

func newRig(t *testing.T, open storetest.Opener) *rig {
	db := open(t)
	org := &store.Org{Name: "Clinic", MinutesBalance: 100}
	if err := db.CreateOrg(context.Background(), org, nil); err != nil {
		t.Fatal(err)
	}
	return &rig{db: db, org: org, after: &scheduled{}}
}

func (r *rig) service(node string, now func() time.Time) *recovery.Service {
	return recovery.New(recovery.Config{NodeID: node, Store: r.db, AfterCall: r.after, Heartbeat: 20 * time.Millisecond, Now: now})
}

// liveCall makes a call run by boot: answered started ago (in progress), or
// ringing.
func (r *rig) liveCall(t *testing.T, boot string, answered bool, started time.Time) *store.Call {
	t.Helper()
	c := &store.Call{OrgID: r.org.ID, Direction: call.Inbound, Status: call.StatusRinging, BootID: &boot,
		Webhook: json.RawMessage(`{"url":"https://hooks.example.com/h","secret":"sealed-secret","events":["status-update","end-of-call-report"]}`)}
	if answered {
		c.Status, c.StartedAt = call.StatusInProgress, &started
	}
	if err := r.db.CreateCall(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *rig) call(t *testing.T, id string) *store.Call {
	t.Helper()
	c, err := r.db.GetCall(context.Background(), r.org.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *rig) statusEvents(t *testing.T, id string) []map[string]any {
	t.Helper()
	evs, _, err := r.db.ListEvents(context.Background(), r.org.ID, store.EventFilter{CallID: id, Page: store.Page{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, ev := range evs {
		if ev.EventType != "status-update" {
			continue
		}
		var body struct {
			Message map[string]any `json:"message"`
		}
		if err := json.Unmarshal(ev.Payload, &body); err != nil {
			t.Fatal(err)
		}
		if ev.Secret == nil || *ev.Secret != "sealed-secret" {
			t.Fatalf("status-update secret = %v, want the call's sealed secret", ev.Secret)
		}
		out = append(out, body.Message)
	}
	return out
}

// TestRestartEndsOwnOrphans: a node killed mid-call starts again; its
// earlier life's calls are ended (answered: ended-with-error, billed up to
// the last heartbeat, with a status-update and post-call work; ringing:
// failed, unbilled); another node's live call is untouched; a second sweep
// ends nothing more.
func TestRestartEndsOwnOrphans(t *testing.T) {
	for name, open := range storetest.Engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, open)
			a1 := r.service("node-a", nil)
			boot1, err := a1.Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			b := r.service("node-b", nil)
			bootB, _ := b.Start(ctx)
			started := time.Now().Add(-42 * time.Second)
			answered := r.liveCall(t, boot1, true, started)
			ringing := r.liveCall(t, boot1, false, time.Time{})
			other := r.liveCall(t, bootB, true, started)
			// node-a dies without stopping and starts again.
			a2 := r.service("node-a", nil)
			if _, err := a2.Start(ctx); err != nil {
				t.Fatal(err)
			}
			n, err := a2.Sweep(ctx)
			if err != nil || n != 2 {
				t.Fatalf("Sweep = %d, %v; want the 2 calls of the earlier life", n, err)
			}

			got := r.call(t, answered.ID)
			if got.Status != call.StatusEndedWithError || got.EndReason == nil || *got.EndReason != string(call.EndServerLost) || got.DurationSeconds == nil {
				t.Fatalf("answered orphan: status %s, reason %v, duration %v", got.Status, got.EndReason, got.DurationSeconds)
			}
			// Ended at its last activity: its boot's heartbeat, just now.
			if d := *got.DurationSeconds; d < 42 || d > 45 {
				t.Fatalf("duration %d s, want about 42", d)
			}
			if evs := r.statusEvents(t, answered.ID); len(evs) != 1 || evs[0]["end_reason"] != string(call.EndServerLost) ||
				evs[0]["call"].(map[string]any)["status"] != "ended-with-error" {
				t.Fatalf("status-updates of the answered orphan: %v", evs)
			}
			if r.after.count(answered.ID) != 1 {
				t.Fatalf("post-call work queued %d times", r.after.count(answered.ID))
			}
			logs, _, sum, _ := r.db.ListUsage(ctx, r.org.ID, store.UsageFilter{Page: store.Page{Limit: 10}})
			if len(logs) != 1 || sum.TotalDurationSeconds != *got.DurationSeconds {
				t.Fatalf("usage: %+v %+v", logs, sum)
			}
			org, _ := r.db.GetOrg(ctx, r.org.ID)
			if want := 100 - float64(*got.DurationSeconds)/60; math.Abs(org.MinutesBalance-want) > 1e-9 {
				t.Fatalf("balance %v, want %v", org.MinutesBalance, want)
			}

			ring := r.call(t, ringing.ID)
			if ring.Status != call.StatusFailed || *ring.EndReason != string(call.EndServerLost) || ring.DurationSeconds != nil || r.after.count(ringing.ID) != 0 {
				t.Fatalf("ringing orphan: %s %v %v, post-call %d", ring.Status, *ring.EndReason, ring.DurationSeconds, r.after.count(ringing.ID))
			}
			if evs := r.statusEvents(t, ringing.ID); len(evs) != 1 || evs[0]["call"].(map[string]any)["status"] != "failed" {
				t.Fatalf("status-updates of the ringing orphan: %v", evs)
			}
			if o := r.call(t, other.ID); o.Status != call.StatusInProgress {
				t.Fatalf("the live node's call was ended: %s", o.Status)
			}
			if n, err := a2.Sweep(ctx); n != 0 || err != nil {
				t.Fatalf("second sweep = %d, %v", n, err)
			}
		})
	}
}

// TestConcurrentSweepsEndOnce: several nodes sweeping the same orphans at
// once end, bill and announce each exactly once.
func TestConcurrentSweepsEndOnce(t *testing.T) {
	for name, open := range storetest.Engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, open)
			dead := r.service("node-dead", nil)
			boot, _ := dead.Start(ctx)
			var ids []string
			for range 30 {
				ids = append(ids, r.liveCall(t, boot, true, time.Now().Add(-10*time.Second)).ID)
			}
			if err := r.db.StopBoot(ctx, boot); err != nil { // over at once
				t.Fatal(err)
			}
			var total atomic.Int64
			var wg sync.WaitGroup
			for i := range 4 {
				s := r.service("sweeper-"+string(rune('a'+i)), nil)
				if _, err := s.Start(ctx); err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, err := s.Sweep(ctx)
					if err != nil {
						t.Error(err)
					}
					total.Add(int64(n))
				}()
			}
			wg.Wait()
			if total.Load() != 30 {
				t.Fatalf("sweepers ended %d calls in all, want 30", total.Load())
			}
			_, _, sum, _ := r.db.ListUsage(ctx, r.org.ID, store.UsageFilter{Page: store.Page{Limit: 1}})
			if sum.TotalCalls != 30 {
				t.Fatalf("%d usage logs, want 30", sum.TotalCalls)
			}
			for _, id := range ids {
				if r.after.count(id) != 1 || len(r.statusEvents(t, id)) != 1 {
					t.Fatalf("call %s: post-call %d, status-updates %d", id, r.after.count(id), len(r.statusEvents(t, id)))
				}
			}
		})
	}
}

// TestDeadNodeAndRun: a node that stops heartbeating is taken for dead after
// DeadAfter and its calls are ended by a live node's Run; a node that
// heartbeats keeps its calls.
func TestDeadNodeAndRun(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite)
	ctx := context.Background()
	gone := r.service("node-gone", nil)
	bootGone, _ := gone.Start(ctx)
	orphan := r.liveCall(t, bootGone, true, time.Now().Add(-5*time.Second))

	alive := r.service("node-alive", nil)
	bootAlive, _ := alive.Start(ctx)
	kept := r.liveCall(t, bootAlive, true, time.Now())
	runCtx, stop := context.WithCancel(ctx)
	aliveDone := make(chan error, 1)
	go func() { aliveDone <- alive.Run(runCtx) }()

	// node-gone never beats again; node-alive beats every 20 ms. With a
	// DeadAfter of 300 ms, only node-gone is taken for dead.
	sweeper := recovery.New(recovery.Config{NodeID: "node-sweeper", Store: r.db, Heartbeat: 20 * time.Millisecond, DeadAfter: 300 * time.Millisecond})
	if _, err := sweeper.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sweepDone := make(chan error, 1)
	go func() { sweepDone <- sweeper.Run(runCtx) }()
	deadline := time.Now().Add(5 * time.Second)
	for r.call(t, orphan.ID).Status != call.StatusEndedWithError {
		if time.Now().After(deadline) {
			t.Fatal("the dead node's call was not ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // many more sweeps, past several DeadAfters
	if c := r.call(t, kept.ID); c.Status != call.StatusInProgress {
		t.Fatalf("a heartbeating node's call was ended: %s", c.Status)
	}
	stop()
	if err := <-aliveDone; err != nil {
		t.Fatal(err)
	}
	if err := <-sweepDone; err != nil {
		t.Fatal(err)
	}
	if err := alive.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Stopped cleanly with a call still live (its end failed to write):
	// the next sweep ends it.
	if n, err := sweeper.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after a stop = %d, %v", n, err)
	}
}

// TestAdoptUnowned: on a single-node database, live calls made before boots
// were recorded are ended too.
func TestAdoptUnowned(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite)
	ctx := context.Background()
	started := time.Now().Add(-time.Minute)
	legacy := &store.Call{OrgID: r.org.ID, Direction: call.Inbound, Status: call.StatusInProgress, StartedAt: &started}
	if err := r.db.CreateCall(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	s := recovery.New(recovery.Config{NodeID: "n", Store: r.db, AdoptUnowned: true})
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if c := r.call(t, legacy.ID); c.Status != call.StatusEndedWithError {
		t.Fatalf("unowned call: %s", c.Status)
	}
}
