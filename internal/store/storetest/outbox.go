package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

func eventIDs(evs []store.OutboxEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func mustIDs(t *testing.T, what string, evs []store.OutboxEvent, want ...string) {
	t.Helper()
	got := eventIDs(evs)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func testOutbox(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, b := newOrg(t, db, "A"), newOrg(t, db, "B")
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	const lease = 30 * time.Second
	callID := "call-_+31623731537_XqaQxRRgAzYc"
	// The exact bytes to send: non-ASCII, escapes, odd spacing and a trailing newline.
	payload := []byte("{\"message\":{\"type\":\"status-update\",  \"text\":\"h\u00e9llo \\\"w\\\" \u2603 \\u00e9\"}}\n")
	evs := []store.OutboxEvent{
		{OrgID: a.ID, CallID: &callID, Seq: 1, EventType: "status-update", URL: "https://example.com/hook", Secret: ptr("v1:sealed"), Payload: payload, NextAttemptAt: base, CreatedAt: base},
		{OrgID: a.ID, CallID: &callID, Seq: 2, EventType: "end-of-call-report", URL: "https://example.com/hook", Payload: []byte(`{"message":{}}`), NextAttemptAt: base.Add(time.Second), CreatedAt: base},
		{OrgID: b.ID, EventType: "status-update", URL: "https://b.example/hook", Payload: []byte(`{}`), NextAttemptAt: base.Add(-time.Minute), CreatedAt: base.Add(-time.Minute)},
		{OrgID: a.ID, EventType: "status-update", URL: "https://example.com/hook", Payload: []byte(`{}`), NextAttemptAt: base.Add(time.Hour), CreatedAt: base.Add(time.Minute)},
	}
	if err := db.EnqueueEvents(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	e1, e2, e3, e4 := evs[0].ID, evs[1].ID, evs[2].ID, evs[3].ID
	if e1 == "" || e1 == e2 {
		t.Fatalf("EnqueueEvents assigned ids %q, %q", e1, e2)
	}

	claim := func(now time.Time, limit int) []store.OutboxEvent {
		t.Helper()
		got, err := db.ClaimEvents(ctx, now, limit, lease)
		if err != nil {
			t.Fatalf("ClaimEvents: %v", err)
		}
		return got
	}
	if got := claim(base.Add(time.Second), 0); len(got) != 0 {
		t.Fatalf("limit 0 claimed %d events", len(got))
	}
	if _, err := db.ClaimEvents(ctx, base, 1, 0); err == nil {
		t.Fatal("ClaimEvents accepted a zero lease")
	}

	// Limit and due order: e3 (due a minute early) before e1. e2 is due
	// too, but it is e1's call's next event to the same URL: it waits
	// until e1 is delivered or has failed.
	t1 := base.Add(time.Second)
	got := claim(t1, 2)
	mustIDs(t, "first claim", got, e3, e1)
	c := got[1]
	if c.Attempts != 1 || !c.NextAttemptAt.Equal(t1.Add(lease)) || !bytes.Equal(c.Payload, payload) ||
		c.Secret == nil || *c.Secret != "v1:sealed" || c.CallID == nil || *c.CallID != callID || c.Seq != 1 ||
		c.OrgID != a.ID || c.URL != "https://example.com/hook" || c.EventType != "status-update" || !c.CreatedAt.Equal(base) {
		t.Fatalf("claimed event = %+v (payload %q)", c, c.Payload)
	}
	mustIDs(t, "claim while leased (e2 behind e1)", claim(t1, 10))
	mustIDs(t, "claim just before the lease ends", claim(t1.Add(lease-time.Millisecond), 10))
	// A worker that died holding the claim: the events come back with attempts 2.
	got = claim(t1.Add(lease), 10)
	mustIDs(t, "claim after the lease", got, e3, e1)
	for _, e := range got {
		if e.Attempts != 2 {
			t.Fatalf("reclaimed event %s has attempts %d, want 2", e.ID, e.Attempts)
		}
	}
	if stored, err := db.GetEvent(ctx, a.ID, e1); err != nil || stored.Attempts != 2 || !stored.NextAttemptAt.Equal(t1.Add(2*lease)) || !bytes.Equal(stored.Payload, payload) {
		t.Fatalf("GetEvent after claims = %+v, %v", stored, err)
	}

	// Outcomes.
	t2 := base.Add(2 * time.Minute)
	if err := db.MarkDelivered(ctx, e1, t2); err != nil {
		t.Fatal(err)
	}
	if err := db.FailEvent(ctx, e3, t2, "receiver answered 410"); err != nil {
		t.Fatal(err)
	}
	mustIDs(t, "claim after e1 was delivered", claim(t2, 10), e2)
	if err := db.RetryEvent(ctx, e2, base.Add(5*time.Minute), "receiver answered 500"); err != nil {
		t.Fatal(err)
	}
	if e, err := db.GetEvent(ctx, a.ID, e1); err != nil || e.DeliveredAt == nil || !e.DeliveredAt.Equal(t2) || e.FailedAt != nil || e.LastError != nil {
		t.Fatalf("delivered event = %+v, %v", e, err)
	}
	if e, err := db.GetEvent(ctx, b.ID, e3); err != nil || e.FailedAt == nil || !e.FailedAt.Equal(t2) || e.DeliveredAt != nil || e.LastError == nil || *e.LastError != "receiver answered 410" {
		t.Fatalf("failed event = %+v, %v", e, err)
	}
	if e, err := db.GetEvent(ctx, a.ID, e2); err != nil || !e.NextAttemptAt.Equal(base.Add(5*time.Minute)) || e.LastError == nil || *e.LastError != "receiver answered 500" || e.Attempts != 1 || e.DeliveredAt != nil || e.FailedAt != nil {
		t.Fatalf("retried event = %+v, %v", e, err)
	}
	// Late reports from a slow worker do not resurrect or fail a finished event.
	if err := db.RetryEvent(ctx, e1, base, "late"); err != nil {
		t.Fatal(err)
	}
	if err := db.FailEvent(ctx, e1, base, "late"); err != nil {
		t.Fatal(err)
	}
	if e, _ := db.GetEvent(ctx, a.ID, e1); e.DeliveredAt == nil || e.FailedAt != nil || e.LastError != nil || !e.NextAttemptAt.Equal(t1.Add(2*lease)) {
		t.Fatalf("delivered event changed by late reports: %+v", e)
	}
	mustKind(t, db.MarkDelivered(ctx, "no-such-event", t2), fault.NotFound)
	mustKind(t, db.RetryEvent(ctx, "no-such-event", t2, "x"), fault.NotFound)
	mustKind(t, db.FailEvent(ctx, "no-such-event", t2, "x"), fault.NotFound)
	// Delivered and failed events are never claimed again; e2 and e4 are due later.
	mustIDs(t, "claim before retry time", claim(base.Add(4*time.Minute), 10))
	got = claim(base.Add(2*time.Hour), 10)
	mustIDs(t, "claim after retry time", got, e2, e4)
	if got[0].Attempts != 2 || got[1].Attempts != 1 {
		t.Fatalf("attempts = %d, %d; want 2, 1", got[0].Attempts, got[1].Attempts)
	}

	// Organization scoping and lists.
	_, err := db.GetEvent(ctx, b.ID, e1)
	mustKind(t, err, fault.NotFound)
	_, err = db.GetEvent(ctx, a.ID, e3)
	mustKind(t, err, fault.NotFound)
	list, total, err := db.ListEvents(ctx, a.ID, store.EventFilter{Page: store.Page{Limit: 10}})
	if err != nil || total != 3 {
		t.Fatalf("ListEvents = %d, %v", total, err)
	}
	mustIDs(t, "ListEvents (newest first)", list, e4, e2, e1)
	list, total, _ = db.ListEvents(ctx, a.ID, store.EventFilter{CallID: callID, Page: store.Page{Limit: 10}})
	if total != 2 {
		t.Fatalf("ListEvents(call) total = %d", total)
	}
	mustIDs(t, "ListEvents(call)", list, e2, e1)
	list, total, _ = db.ListEvents(ctx, a.ID, store.EventFilter{EventType: "status-update", Page: store.Page{Limit: 10}})
	if total != 2 {
		t.Fatalf("ListEvents(type) total = %d", total)
	}
	mustIDs(t, "ListEvents(type)", list, e4, e1)
	list, total, _ = db.ListEvents(ctx, a.ID, store.EventFilter{Page: store.Page{Limit: 1, Offset: 1}})
	if total != 3 {
		t.Fatalf("ListEvents(page) total = %d", total)
	}
	mustIDs(t, "ListEvents(page)", list, e2)
	list, total, _ = db.ListEvents(ctx, b.ID, store.EventFilter{Page: store.Page{Limit: 10}})
	if total != 1 {
		t.Fatalf("org B ListEvents total = %d", total)
	}
	mustIDs(t, "org B ListEvents", list, e3)
	if list, total, _ := db.ListEvents(ctx, b.ID, store.EventFilter{CallID: callID, Page: store.Page{Limit: 10}}); total != 0 || len(list) != 0 {
		t.Fatalf("org B sees org A's call events: %d", total)
	}

	// Delivery log.
	logs := []*store.Delivery{
		{OrgID: a.ID, EventID: e1, EventType: "status-update", CallID: &callID, URL: "https://example.com/hook", Attempt: 1, StatusCode: ptr(500), Error: ptr("receiver answered 500"), Duration: 1234 * time.Millisecond, CreatedAt: base.Add(time.Second)},
		{OrgID: a.ID, EventID: e1, EventType: "status-update", CallID: &callID, URL: "https://example.com/hook", Attempt: 2, StatusCode: ptr(200), Duration: 87 * time.Millisecond, CreatedAt: base.Add(time.Second)},
		{OrgID: a.ID, EventID: e2, EventType: "end-of-call-report", CallID: &callID, URL: "https://example.com/hook", Attempt: 1, Error: ptr("dial tcp: connection refused"), CreatedAt: base.Add(2 * time.Second)},
		{OrgID: a.ID, EventID: e4, EventType: "status-update", URL: "https://example.com/hook", Attempt: 1, StatusCode: ptr(204), CreatedAt: base.Add(3 * time.Second)},
		{OrgID: b.ID, EventID: e3, EventType: "status-update", URL: "https://b.example/hook", Attempt: 1, StatusCode: ptr(410), Error: ptr("gone"), CreatedAt: base.Add(time.Second)},
	}
	for _, d := range logs {
		if err := db.LogDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		if d.ID == "" {
			t.Fatal("LogDelivery assigned no id")
		}
	}
	ds, total, err := db.ListDeliveries(ctx, a.ID, store.DeliveryFilter{EventID: e1, Page: store.Page{Limit: 10}})
	if err != nil || total != 2 || len(ds) != 2 {
		t.Fatalf("ListDeliveries(event) = %d/%d, %v", len(ds), total, err)
	}
	if d := ds[0]; d.ID != logs[1].ID || d.Attempt != 2 || d.StatusCode == nil || *d.StatusCode != 200 || d.Error != nil || d.Duration != 87*time.Millisecond ||
		d.CallID == nil || *d.CallID != callID || d.OrgID != a.ID || d.EventType != "status-update" || d.URL != "https://example.com/hook" || !d.CreatedAt.Equal(base.Add(time.Second)) {
		t.Fatalf("newest delivery = %+v", d)
	}
	if d := ds[1]; d.Attempt != 1 || *d.StatusCode != 500 || d.Error == nil || *d.Error != "receiver answered 500" || d.Duration != 1234*time.Millisecond {
		t.Fatalf("older delivery = %+v", d)
	}
	ds, total, _ = db.ListDeliveries(ctx, a.ID, store.DeliveryFilter{Page: store.Page{Limit: 10}})
	if total != 4 || len(ds) != 4 || ds[0].ID != logs[3].ID || ds[1].ID != logs[2].ID || ds[1].StatusCode != nil {
		t.Fatalf("ListDeliveries(all) = %+v, total %d", ds, total)
	}
	ds, total, _ = db.ListDeliveries(ctx, a.ID, store.DeliveryFilter{CallID: callID, Page: store.Page{Limit: 2, Offset: 1}})
	if total != 3 || len(ds) != 2 || ds[0].ID != logs[1].ID || ds[1].ID != logs[0].ID {
		t.Fatalf("ListDeliveries(call, page) = %+v, total %d", ds, total)
	}
	ds, total, _ = db.ListDeliveries(ctx, b.ID, store.DeliveryFilter{Page: store.Page{Limit: 10}})
	if total != 1 || len(ds) != 1 || ds[0].ID != logs[4].ID {
		t.Fatalf("org B ListDeliveries = %+v, total %d", ds, total)
	}
	if ds, total, _ := db.ListDeliveries(ctx, b.ID, store.DeliveryFilter{EventID: e1, Page: store.Page{Limit: 10}}); total != 0 || len(ds) != 0 {
		t.Fatalf("org B sees org A's deliveries: %d", total)
	}

	// Concurrent claimers take disjoint events. Everything above is leased
	// until after now, so exactly these 50 are due.
	const n, workers = 50, 4
	batch := make([]store.OutboxEvent, n)
	for i := range batch {
		batch[i] = store.OutboxEvent{OrgID: b.ID, EventType: "status-update", URL: "https://b.example/hook", Payload: []byte(`{}`),
			NextAttemptAt: base.Add(time.Duration(i) * time.Millisecond), CreatedAt: base}
	}
	if err := db.EnqueueEvents(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	now := base.Add(time.Minute)
	claimed := make([][]store.OutboxEvent, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				got, err := db.ClaimEvents(ctx, now, 3, time.Hour)
				if err != nil {
					errs[w] = err
					return
				}
				if len(got) == 0 {
					return
				}
				claimed[w] = append(claimed[w], got...)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	var all []string
	for w := range workers {
		if errs[w] != nil {
			t.Fatalf("worker %d: %v", w, errs[w])
		}
		for _, e := range claimed[w] {
			if e.Attempts != 1 {
				t.Fatalf("concurrently claimed event %s has attempts %d", e.ID, e.Attempts)
			}
			if prev, dup := seen[e.ID]; dup {
				t.Fatalf("event %s claimed by workers %d and %d", e.ID, prev, w)
			}
			seen[e.ID] = w
			all = append(all, e.ID)
		}
	}
	want := eventIDs(batch)
	sort.Strings(all)
	sort.Strings(want)
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("concurrent claims returned %d events, want the %d due", len(all), len(want))
	}
	mustIDs(t, "claim after the concurrent claims", claim(now, 100))
}

// testOutboxOrder: one call's events to one URL are claimed one at a time
// in seq order, whatever their due times; another URL, another call and
// events without a call do not wait; a failed event lets the next go.
func testOutboxOrder(t *testing.T, db *store.DB) {
	ctx := context.Background()
	org := newOrg(t, db, "Order")
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	const lease = time.Minute
	x, y := "call-x", "call-y"
	ev := func(call *string, seq int, url string, due time.Duration) store.OutboxEvent {
		return store.OutboxEvent{OrgID: org.ID, CallID: call, Seq: seq, EventType: "status-update", URL: url, Payload: []byte(`{}`),
			NextAttemptAt: base.Add(due), CreatedAt: base}
	}
	const u, v = "https://a.example/hook", "https://b.example/hook"
	evs := []store.OutboxEvent{
		ev(&x, 3, u, 0),           // x1: due first, but third in its call
		ev(&x, 1, u, time.Second), // x2
		ev(&x, 2, u, 0),           // x3
		ev(&x, 4, v, 0),           // x4: the same call to another URL
		ev(&y, 1, u, 0),           // y1: another call
		ev(nil, 0, u, 0),          // n1: no call
		ev(nil, 0, u, 0),          // n2
	}
	if err := db.EnqueueEvents(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	xSeq3, xSeq1, xSeq2, xv, y1, n1, n2 := evs[0].ID, evs[1].ID, evs[2].ID, evs[3].ID, evs[4].ID, evs[5].ID, evs[6].ID
	claimIDs := func(now time.Time) map[string]bool {
		t.Helper()
		got, err := db.ClaimEvents(ctx, now, 100, lease)
		if err != nil {
			t.Fatalf("ClaimEvents: %v", err)
		}
		out := map[string]bool{}
		for _, e := range got {
			out[e.ID] = true
		}
		return out
	}
	want := func(what string, got map[string]bool, ids ...string) {
		t.Helper()
		if len(got) != len(ids) {
			t.Fatalf("%s claimed %v, want %v", what, got, ids)
		}
		for _, id := range ids {
			if !got[id] {
				t.Fatalf("%s claimed %v, want %v", what, got, ids)
			}
		}
	}
	// At base, x's seq 1 is not due yet, so nothing of x to u goes; seq 4
	// to v does not wait for u's events.
	t0 := base
	want("at base", claimIDs(t0), xv, y1, n1, n2)
	t1 := base.Add(time.Second)
	want("once seq 1 is due", claimIDs(t1), xSeq1)
	want("while seq 1 is in flight", claimIDs(t1))
	if err := db.MarkDelivered(ctx, xSeq1, t1); err != nil {
		t.Fatal(err)
	}
	want("after seq 1 was delivered", claimIDs(t1), xSeq2)
	if err := db.FailEvent(ctx, xSeq2, t1, "receiver answered 410"); err != nil {
		t.Fatal(err)
	}
	want("after seq 2 failed", claimIDs(t1), xSeq3)
	// A retry due later holds back nothing else: only the call's own later
	// events to that URL, and there are none.
	if err := db.RetryEvent(ctx, xSeq3, base.Add(time.Hour), "receiver answered 500"); err != nil {
		t.Fatal(err)
	}
	want("with seq 3 waiting to retry", claimIDs(t1))
}
