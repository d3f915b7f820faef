package retention_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/blob"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/jobs"
	"github.com/parley-voice/parley/internal/retention"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/postgres"
	"github.com/parley-voice/parley/internal/store/sqlite"
	"github.com/parley-voice/parley/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const day = 24 * time.Hour

// t0 is when the oldest test calls end.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// clock is a fake clock the store and the service share.
type clock struct{ ms atomic.Int64 }

func newClock(at time.Time) *clock {
	c := &clock{}
	c.set(at)
	return c
}

func (c *clock) set(at time.Time)     { c.ms.Store(at.UnixMilli()) }
func (c *clock) Now() time.Time       { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *clock) at(d time.Duration)   { c.set(t0.Add(d)) }
func (c *clock) since() time.Duration { return c.Now().Sub(t0) }

// forEachEngine runs fn on SQLite, and on PostgreSQL when
// PARLEY_TEST_POSTGRES_URL is set, with a fresh store whose clock is clk.
func forEachEngine(t *testing.T, fn func(t *testing.T, db *store.DB, clk *clock)) {
	for name, open := range storetest.Engines(t) {
		t.Run(name, func(t *testing.T) {
			clk := newClock(t0)
			fn(t, openClocked(t, open, clk), clk)
		})
	}
}

// openClocked opens a fresh migrated store and returns one on the same
// database that reads the time from clk (the drivers' Open has no clock).
func openClocked(t *testing.T, open storetest.Opener, clk *clock) *store.DB {
	t.Helper()
	base := open(t)
	var drv store.Driver = sqlite.Driver{}
	if base.Driver() == "postgres" {
		drv = postgres.Driver{}
	}
	db := store.Open(drv, store.Config{Write: base.Writer(), Now: clk.Now})
	t.Cleanup(func() { db.Close() }) // its prepared statements; base closes the pool after
	return db
}

// world is the test data: organizations, calls, events and recordings.
type world struct {
	db    *store.DB
	blobs *blob.Dir
	a     *store.Org // content 30 days, metadata 90 days
	b     *store.Org // no retention
	child *store.Org // A's child, no settings of its own
	lead  string     // A's campaign lead that called "old"
	camp  string
	// Calls of A: old (ended t0: recording, events, lead), failed (ended
	// t0+1h: analysis error, recording key without object), young (ended
	// t0+40d), live (never ended). Calls of B and of the child end at t0.
	old, failed, young, live, ofB, ofChild string
	// Events of old: a delivered and a pending status update, a delivered
	// end-of-call report.
	delivered, pending, report string
}

const phone = "+31612345678"

// callID is shaped like an inbound call id, which holds the caller's number.
func callID(name string) string { return "call-_" + phone + "_" + name }

func recKey(orgID, id string) string { return "recordings/" + orgID + "/" + id + ".wav" }

func setup(t *testing.T, db *store.DB, clk *clock) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{db: db}
	var err error
	if w.blobs, err = blob.NewDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	w.a, w.b = &store.Org{Name: "A", MinutesBalance: 10}, &store.Org{Name: "B", MinutesBalance: 10}
	for _, o := range []*store.Org{w.a, w.b} {
		if err := db.CreateOrg(ctx, o, nil); err != nil {
			t.Fatal(err)
		}
	}
	w.child = &store.Org{Name: "Child of A", ParentID: &w.a.ID}
	if err := db.CreateOrg(ctx, w.child, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRetention(ctx, w.a.ID, 30, 90); err != nil {
		t.Fatal(err)
	}

	w.old, w.failed, w.young, w.live = callID("old"), callID("failed"), callID("young"), callID("live")
	w.ofB, w.ofChild = callID("b"), callID("child")
	w.call(t, clk, w.a.ID, w.old, 0, true, true)
	w.call(t, clk, w.a.ID, w.failed, time.Hour, true, false)
	if err := db.SaveAnalysis(ctx, w.a.ID, w.failed, nil, "the model said: the caller lives at Main Street 1"); err != nil {
		t.Fatal(err)
	}
	w.call(t, clk, w.a.ID, w.young, 40*day, true, true)
	w.call(t, clk, w.b.ID, w.ofB, 0, true, true)
	w.call(t, clk, w.child.ID, w.ofChild, 0, false, false)
	clk.at(0)
	live := &store.Call{ID: w.live, OrgID: w.a.ID, Status: call.StatusInProgress, Direction: call.Inbound, CallerPhone: ptr(phone),
		StartedAt: ptr(t0.Add(-100 * day)), Messages: json.RawMessage(`[{"role":"user","content":"still talking"}]`)}
	if err := db.CreateCall(ctx, live); err != nil {
		t.Fatal(err)
	}

	// The old call's webhook events, each with a delivery attempt.
	w.delivered, w.pending, w.report = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000003"
	for i, e := range []struct{ id, typ, payload string }{
		{w.delivered, "status-update", `{"message":{"type":"status-update","customer":{"number":"` + phone + `"}}}`},
		{w.pending, "status-update", `{"message":{"type":"status-update","customer":{"number":"` + phone + `"}}}`},
		{w.report, "end-of-call-report", `{"message":{"type":"end-of-call-report","messages":[{"role":"user","content":"my address is Main Street 1"}]}}`},
	} {
		id := w.old
		if err := db.EnqueueEvents(ctx, store.OutboxEvent{ID: e.id, OrgID: w.a.ID, CallID: &id, Seq: i + 1, EventType: e.typ, URL: "https://hooks.example.com/x", Payload: []byte(e.payload)}); err != nil {
			t.Fatal(err)
		}
		if err := db.LogDelivery(ctx, &store.Delivery{OrgID: w.a.ID, EventID: e.id, EventType: e.typ, CallID: &id, URL: "https://hooks.example.com/x", Attempt: 1, StatusCode: ptr(200)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{w.delivered, w.report} {
		if err := db.MarkDelivered(ctx, id, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}

	// A campaign lead that called the old call.
	asst := &store.Doc{Kind: store.Assistants, OrgID: w.a.ID, Name: "Caller", Active: true, Body: json.RawMessage(`{}`)}
	if err := db.CreateDoc(ctx, asst); err != nil {
		t.Fatal(err)
	}
	camp := &store.Campaign{OrgID: w.a.ID, Name: "Spring", AgentID: asst.ID, Status: campaign.Draft,
		ScheduleStartTime: "09:00:00", ScheduleEndTime: "17:00:00", Timezone: "UTC"}
	if err := db.CreateCampaign(ctx, camp, []store.Lead{{PhoneNumber: phone}}); err != nil {
		t.Fatal(err)
	}
	leads, _, err := db.ListLeads(ctx, w.a.ID, camp.ID, store.Page{Limit: 10})
	if err != nil || len(leads) != 1 {
		t.Fatalf("leads: %+v, %v", leads, err)
	}
	w.camp, w.lead = camp.ID, leads[0].ID
	if err := db.SetLeadStatus(ctx, w.a.ID, w.lead, campaign.LeadCompleted, &w.old); err != nil {
		t.Fatal(err)
	}
	return w
}

// call makes a call of org that ends at t0+ended: transcript, summary and
// analysis, and a recording, stored as an object when object is set.
func (w *world) call(t *testing.T, clk *clock, orgID, id string, ended time.Duration, recorded, object bool) {
	t.Helper()
	ctx := context.Background()
	end := t0.Add(ended)
	clk.set(end.Add(-5 * time.Minute))
	c := &store.Call{ID: id, OrgID: orgID, Status: call.StatusInProgress, Direction: call.Inbound, CallerPhone: ptr(phone), StartedAt: ptr(clk.Now())}
	if err := w.db.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	clk.set(end)
	rec := store.RecordingNone
	if recorded {
		rec = store.RecordingPending
	}
	if err := w.db.EndCall(ctx, store.CallEnd{OrgID: orgID, ID: id, Status: call.StatusEnded, EndReason: call.EndUserHangup, EndedAt: end,
		Duration: ptr(300), Messages: json.RawMessage(`[{"role":"user","content":"my address is Main Street 1"}]`),
		Metrics: json.RawMessage(`[{"turn":1}]`), Recording: rec}); err != nil {
		t.Fatal(err)
	}
	if err := w.db.SaveSummary(ctx, orgID, id, "The caller gave their address."); err != nil {
		t.Fatal(err)
	}
	if err := w.db.SaveAnalysis(ctx, orgID, id, json.RawMessage(`{"address":"Main Street 1"}`), ""); err != nil {
		t.Fatal(err)
	}
	if recorded {
		key := recKey(orgID, id)
		if object {
			if err := w.blobs.Put(ctx, key, strings.NewReader("RIFF...."), 8, "audio/wav"); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.db.FinishRecording(ctx, orgID, id, store.RecordingReady, &key, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func (w *world) get(t *testing.T, orgID, id string) *store.Call {
	t.Helper()
	c, err := w.db.GetCall(context.Background(), orgID, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (w *world) hasObject(t *testing.T, orgID, id string) bool {
	t.Helper()
	o, err := w.blobs.Open(context.Background(), recKey(orgID, id))
	if errors.Is(err, blob.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	return true
}

// contentKept fails unless the call has all its content (and its object,
// when it has a recording; the failed call's was never stored).
func (w *world) contentKept(t *testing.T, orgID, id string) {
	t.Helper()
	c := w.get(t, orgID, id)
	if c.Messages == nil || c.Summary == nil || (c.AnalysisResult == nil && c.AnalysisError == nil) {
		t.Fatalf("%s lost content it should keep: %+v", id, c)
	}
	if c.RecordingKey != nil && id != w.failed && !w.hasObject(t, orgID, id) {
		t.Fatalf("%s lost its recording object", id)
	}
}

// contentGone fails unless the call's content and its recording are gone
// and what the call was is still there.
func (w *world) contentGone(t *testing.T, orgID, id string) {
	t.Helper()
	c := w.get(t, orgID, id)
	if c.Messages != nil || c.Summary != nil || c.AnalysisResult != nil || c.AnalysisError != nil || c.RecordingKey != nil || c.RecordingState != store.RecordingNone {
		t.Fatalf("%s keeps content: %+v", id, c)
	}
	if w.hasObject(t, orgID, id) {
		t.Fatalf("%s keeps its recording object", id)
	}
	if c.EndedAt == nil || c.DurationSeconds == nil || *c.DurationSeconds != 300 || c.Metrics == nil || c.Status != call.StatusEnded {
		t.Fatalf("%s lost more than its content: %+v", id, c)
	}
}

func (w *world) phoneKept(t *testing.T, orgID, id string, want bool) {
	t.Helper()
	c := w.get(t, orgID, id)
	if got := c.CallerPhone != nil && *c.CallerPhone == phone; got != want {
		t.Fatalf("%s caller_phone = %v; want kept %v", id, c.CallerPhone, want)
	}
}

func (w *world) events(t *testing.T) []string {
	t.Helper()
	list, _, err := w.db.ListEvents(context.Background(), w.a.ID, store.EventFilter{CallID: w.old, Page: store.Page{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, e := range list {
		out = append(out, e.ID)
	}
	slices.Sort(out)
	return out
}

func (w *world) attempts(t *testing.T) int {
	t.Helper()
	_, n, err := w.db.ListDeliveries(context.Background(), w.a.ID, store.DeliveryFilter{CallID: w.old, Page: store.Page{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (w *world) leadCall(t *testing.T) *string {
	t.Helper()
	leads, _, err := w.db.ListLeads(context.Background(), w.a.ID, w.camp, store.Page{Limit: 10})
	if err != nil || len(leads) != 1 {
		t.Fatalf("leads: %+v, %v", leads, err)
	}
	return leads[0].CallID
}

// untouched checks the calls no pass may touch: B's, the child's, the live one.
func (w *world) untouched(t *testing.T) {
	t.Helper()
	w.contentKept(t, w.b.ID, w.ofB)
	w.phoneKept(t, w.b.ID, w.ofB, true)
	w.contentKept(t, w.child.ID, w.ofChild)
	w.phoneKept(t, w.child.ID, w.ofChild, true)
	if c := w.get(t, w.a.ID, w.live); c.Messages == nil || c.CallerPhone == nil {
		t.Fatalf("the live call was touched: %+v", c)
	}
}

// syncBuffer is a log sink the test reads while nothing writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newService(w *world, clk *clock, logs *syncBuffer, blobs blob.Store) *retention.Service {
	if blobs == nil {
		blobs = w.blobs
	}
	return retention.New(retention.Config{Store: w.db, Blobs: blobs, Now: clk.Now, Batch: 2,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
}

func run(t *testing.T, svc *retention.Service, clk *clock, want retention.Counts) {
	t.Helper()
	got, err := svc.Run(context.Background())
	if err != nil || got != want {
		t.Fatalf("pass at day %d = %+v, %v; want %+v", int(clk.since()/day), got, err, want)
	}
}

// TestRetention: content goes after 30 days, metadata after 90, events
// pending delivery wait, other organizations and live calls are untouched,
// and a pass after a pass does nothing.
func TestRetention(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB, clk *clock) {
		w := setup(t, db, clk)
		logs := &syncBuffer{}
		svc := newService(w, clk, logs, nil)
		all := []string{w.delivered, w.pending, w.report}
		slices.Sort(all)

		// Day 29 (of the old calls): nothing is due.
		clk.at(29 * day)
		run(t, svc, clk, retention.Counts{})
		w.contentKept(t, w.a.ID, w.old)
		w.contentKept(t, w.a.ID, w.failed)
		if got := w.events(t); !slices.Equal(got, all) {
			t.Fatalf("events before any retention: %v", got)
		}

		// Day 31: the old calls' content goes (the missing object of the
		// failed call is no error), with the delivered end-of-call report;
		// their number, the status events, their attempts and the lead's
		// link stay. The young call (11 days) keeps everything.
		clk.at(31 * day)
		run(t, svc, clk, retention.Counts{ContentPurged: 2})
		w.contentGone(t, w.a.ID, w.old)
		w.contentGone(t, w.a.ID, w.failed)
		w.phoneKept(t, w.a.ID, w.old, true)
		w.phoneKept(t, w.a.ID, w.failed, true)
		if got := w.events(t); !slices.Equal(got, []string{w.delivered, w.pending}) {
			t.Fatalf("events after the content went: %v; want the status updates", got)
		}
		if n := w.attempts(t); n != 3 {
			t.Fatalf("delivery attempts after the content went: %d, want 3", n)
		}
		if id := w.leadCall(t); id == nil || *id != w.old {
			t.Fatalf("lead link after the content went: %v", id)
		}
		w.contentKept(t, w.a.ID, w.young)
		w.untouched(t)
		run(t, svc, clk, retention.Counts{})

		// Day 91: the old calls' metadata goes, except the event still
		// pending delivery, which keeps the old call due; the young call
		// (51 days) loses its content and keeps its number.
		clk.at(91 * day)
		run(t, svc, clk, retention.Counts{ContentPurged: 1, MetadataPurged: 1, MetadataDeferred: 1})
		w.phoneKept(t, w.a.ID, w.old, false)
		w.phoneKept(t, w.a.ID, w.failed, false)
		if id := w.leadCall(t); id != nil {
			t.Fatalf("lead still linked to %s", *id)
		}
		if got := w.events(t); !slices.Equal(got, []string{w.pending}) {
			t.Fatalf("events after the metadata went: %v; want only the pending one", got)
		}
		if n := w.attempts(t); n != 1 {
			t.Fatalf("delivery attempts after the metadata went: %d, want the pending event's", n)
		}
		w.contentGone(t, w.a.ID, w.young)
		w.phoneKept(t, w.a.ID, w.young, true)
		w.untouched(t)
		run(t, svc, clk, retention.Counts{MetadataDeferred: 1})

		// The pending event is delivered: the next pass finishes the call.
		if err := db.MarkDelivered(context.Background(), w.pending, clk.Now()); err != nil {
			t.Fatal(err)
		}
		clk.at(92 * day)
		run(t, svc, clk, retention.Counts{MetadataPurged: 1})
		if got, n := w.events(t), w.attempts(t); len(got) != 0 || n != 0 {
			t.Fatalf("the old call keeps events %v and %d attempts", got, n)
		}
		run(t, svc, clk, retention.Counts{})
		w.untouched(t)

		// The log says what happened per organization and never names a
		// number or a call (inbound call ids hold the number).
		out := logs.String()
		for _, want := range []string{`"org_id":"` + w.a.ID + `"`, `"content_purged":2`, `"metadata_purged":1`} {
			if !strings.Contains(out, want) {
				t.Fatalf("log lacks %s:\n%s", want, out)
			}
		}
		if strings.Contains(out, "612345678") || strings.Contains(out, "call-_") {
			t.Fatalf("log names a number or a call:\n%s", out)
		}
	})
}

// failingBlobs refuses deletes, naming the key as real stores do.
type failingBlobs struct{ blob.Store }

func (failingBlobs) Delete(_ context.Context, key string) error {
	return fmt.Errorf("s3: delete %s: connection refused", key)
}

// TestBlobStoreDown: a recording that cannot be deleted keeps its call's
// content (the row never forgets an object still stored); the pass goes on
// with other work and says why without naming the call. The next pass,
// with the store back, finishes.
func TestBlobStoreDown(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB, clk *clock) {
		w := setup(t, db, clk)
		logs := &syncBuffer{}
		other := &store.Org{Name: "Other"}
		if err := db.CreateOrg(context.Background(), other, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.SetRetention(context.Background(), other.ID, 30, 30); err != nil {
			t.Fatal(err)
		}
		clk.set(t0.Add(-time.Hour))
		otherCall := callID("other")
		w.call(t, clk, other.ID, otherCall, 0, false, false)
		clk.at(31 * day)
		got, err := newService(w, clk, logs, failingBlobs{w.blobs}).Run(context.Background())
		if err == nil {
			t.Fatal("a pass whose recordings cannot be deleted succeeded")
		}
		if strings.Contains(err.Error(), "612345678") || strings.Contains(logs.String(), "612345678") {
			t.Fatalf("the failure names the number: %v\n%s", err, logs.String())
		}
		if got.ContentPurged != 1 || got.MetadataPurged != 1 {
			t.Fatalf("counts = %+v; want the other organization's call done", got)
		}
		w.contentKept(t, w.a.ID, w.old)
		w.contentGone(t, other.ID, otherCall)
		w.phoneKept(t, other.ID, otherCall, false)
		run(t, newService(w, clk, logs, nil), clk, retention.Counts{ContentPurged: 2})
		w.contentGone(t, w.a.ID, w.old)
	})
}

// TestCancelled: a pass stops when its context ends and leaves the rest.
func TestCancelled(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB, clk *clock) {
		w := setup(t, db, clk)
		clk.at(31 * day)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		got, err := newService(w, clk, &syncBuffer{}, nil).Run(ctx)
		if !errors.Is(err, context.Canceled) || got != (retention.Counts{}) {
			t.Fatalf("cancelled pass = %+v, %v", got, err)
		}
		w.contentKept(t, w.a.ID, w.old)
	})
}

// TestPeriodicJob: the job queue runs the pass (kind "retention", queue
// "maintenance") when it starts.
func TestPeriodicJob(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB, clk *clock) {
		w := setup(t, db, clk)
		clk.at(31 * day)
		svc := retention.New(retention.Config{Store: db, Blobs: w.blobs, Now: clk.Now, Interval: time.Hour})
		workers := river.NewWorkers()
		svc.Register(workers)
		q, err := jobs.Open(context.Background(), jobs.Config{Engine: db.Driver(), DB: db.Writer(), NodeID: "node-1",
			Queues: svc.Queues(), Workers: workers, Periodic: svc.Periodic(), PollInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := q.Stop(context.Background(), 5*time.Second); err != nil {
				t.Errorf("stop queue: %v", err)
			}
		})
		deadline := time.Now().Add(15 * time.Second)
		for w.get(t, w.a.ID, w.old).Messages != nil {
			if time.Now().After(deadline) {
				t.Fatal("the periodic job did not purge the expired content")
			}
			time.Sleep(20 * time.Millisecond)
		}
		w.contentGone(t, w.a.ID, w.old)
		w.untouched(t)
	})
}

func ptr[T any](v T) *T { return &v }
