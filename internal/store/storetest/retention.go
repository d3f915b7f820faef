package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// testRetention covers the store's side of retention: which organizations
// have a policy, which calls are due (by organization, end time, live calls
// never), paging through them, and the purges of content and metadata: what
// they clear and keep, webhook events pending delivery and recordings not
// yet seen deleted keeping a call due, idempotence and organization scoping.
func testRetention(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, b := newOrg(t, db, "A"), newOrg(t, db, "B")
	if err := db.SetRetention(ctx, a.ID, 30, 90); err != nil {
		t.Fatal(err)
	}
	child := &store.Org{Name: "Child of A", ParentID: &a.ID}
	if err := db.CreateOrg(ctx, child, nil); err != nil {
		t.Fatal(err)
	}
	only := &store.Org{Name: "Content only", ContentRetentionDays: ptr(180)}
	if err := db.CreateOrg(ctx, only, nil); err != nil {
		t.Fatal(err)
	}
	pols, err := db.RetentionPolicies(ctx)
	if err != nil || len(pols) != 2 {
		t.Fatalf("RetentionPolicies = %+v, %v; want A and the content-only org", pols, err)
	}
	for _, p := range pols {
		switch p.OrgID {
		case a.ID:
			if p.ContentDays == nil || *p.ContentDays != 30 || p.MetadataDays == nil || *p.MetadataDays != 90 {
				t.Fatalf("policy of A = %+v", p)
			}
		case only.ID:
			if p.ContentDays == nil || *p.ContentDays != 180 || p.MetadataDays != nil {
				t.Fatalf("policy of the content-only org = %+v", p)
			}
		default:
			t.Fatalf("policy of an organization without settings: %+v", p)
		}
	}

	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	phone := "+31612345678"
	mkCall := func(org, id string, ended *time.Time, key *string, st store.RecordingState) {
		t.Helper()
		status := call.StatusEnded
		if ended == nil {
			status = call.StatusInProgress
		}
		c := &store.Call{ID: id, OrgID: org, Status: status, Direction: call.Inbound, CallerPhone: ptr(phone), EndedAt: ended,
			Messages: json.RawMessage(`[{"role":"user","content":"my address is Main Street 1"}]`), Summary: ptr("A visit was booked."),
			AnalysisResult: json.RawMessage(`{"booked":true}`), Metrics: json.RawMessage(`[{"turn":1}]`), RecordingKey: key, RecordingState: st}
		if err := db.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	k1, k3 := "recordings/a/call-1.wav", "recordings/a/call-3.wav"
	at := func(d time.Duration) *time.Time { v := base.Add(d); return &v }
	mkCall(a.ID, "call-1", at(0), &k1, store.RecordingReady)
	mkCall(a.ID, "call-2", at(0), nil, store.RecordingNone)
	mkCall(a.ID, "call-3", at(10*day), &k3, store.RecordingReady)
	mkCall(a.ID, "call-4", at(0), nil, store.RecordingPending)
	mkCall(a.ID, "call-live", nil, nil, store.RecordingNone)
	mkCall(b.ID, "call-b", at(0), nil, store.RecordingNone)
	mkCall(child.ID, "call-child", at(0), nil, store.RecordingNone)
	if err := db.SaveAnalysis(ctx, a.ID, "call-2", nil, "the model answered nonsense"); err != nil {
		t.Fatal(err)
	}

	ids := func(cs []store.DueCall) []string {
		out := []string{}
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	due := func(what string, list func(context.Context, string, time.Time, store.DueCall, int) ([]store.DueCall, error), org string, before time.Time, want ...string) {
		t.Helper()
		got, err := list(ctx, org, before, store.DueCall{}, 100)
		if err != nil || !slices.Equal(ids(got), append([]string{}, want...)) {
			t.Fatalf("%s due before %s = %v, %v; want %v", what, before.Format(time.DateOnly), ids(got), err, want)
		}
	}

	// Due: ended at or before the limit, this organization's, never live;
	// ordered by end time then id, and paged from a cursor.
	due("content", db.ContentDue, a.ID, base.Add(-time.Millisecond))
	due("content", db.ContentDue, a.ID, base, "call-1", "call-2", "call-4")
	due("content", db.ContentDue, a.ID, base.Add(20*day), "call-1", "call-2", "call-4", "call-3")
	due("content", db.ContentDue, b.ID, base.Add(20*day), "call-b")
	due("metadata", db.MetadataDue, a.ID, base.Add(20*day), "call-1", "call-2", "call-4", "call-3")
	var paged []string
	var after store.DueCall
	for range 10 {
		page, err := db.ContentDue(ctx, a.ID, base.Add(20*day), after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged, after = append(paged, page[0].ID), page[0]
	}
	if !slices.Equal(paged, []string{"call-1", "call-2", "call-4", "call-3"}) {
		t.Fatalf("paged one at a time: %v", paged)
	}
	if got, _ := db.ContentDue(ctx, a.ID, base, store.DueCall{}, 1); len(got) != 1 || got[0].RecordingKey == nil || *got[0].RecordingKey != k1 || !got[0].EndedAt.Equal(base) {
		t.Fatalf("due call = %+v; want its recording key and end", got)
	}

	// Webhook events of call-1 (a delivered status update and report, a
	// pending status update, each with a delivery attempt) and of call-2 (a
	// report still pending), and a campaign lead that called call-1.
	ev := func(id, callID, typ string) {
		t.Helper()
		c := callID
		if err := db.EnqueueEvents(ctx, store.OutboxEvent{ID: id, OrgID: a.ID, CallID: &c, EventType: typ, URL: "https://h.example/x",
			Payload: []byte(`{"message":{"customer":{"number":"` + phone + `"}}}`)}); err != nil {
			t.Fatal(err)
		}
		if err := db.LogDelivery(ctx, &store.Delivery{OrgID: a.ID, EventID: id, EventType: typ, CallID: &c, URL: "https://h.example/x", Attempt: 1}); err != nil {
			t.Fatal(err)
		}
	}
	evID := func(n byte) string { return "00000000-0000-4000-8000-00000000000" + string('0'+n) }
	ev(evID(1), "call-1", "status-update")
	ev(evID(2), "call-1", "end-of-call-report")
	ev(evID(3), "call-1", "status-update")
	ev(evID(4), "call-2", "end-of-call-report")
	for _, id := range []string{evID(1), evID(2)} {
		if err := db.MarkDelivered(ctx, id, base.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	events := func(callID string) []string {
		t.Helper()
		list, _, err := db.ListEvents(ctx, a.ID, store.EventFilter{CallID: callID, Page: store.Page{Limit: 100}})
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
	attempts := func(callID string) int {
		t.Helper()
		_, n, err := db.ListDeliveries(ctx, a.ID, store.DeliveryFilter{CallID: callID, Page: store.Page{Limit: 100}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	asst := &store.Doc{Kind: store.Assistants, OrgID: a.ID, Name: "Caller", Active: true, Body: json.RawMessage(`{}`)}
	if err := db.CreateDoc(ctx, asst); err != nil {
		t.Fatal(err)
	}
	camp := &store.Campaign{OrgID: a.ID, Name: "Q1", AgentID: asst.ID, Status: campaign.Draft, ScheduleStartTime: "09:00:00", ScheduleEndTime: "17:00:00", Timezone: "UTC"}
	if err := db.CreateCampaign(ctx, camp, []store.Lead{{PhoneNumber: phone}}); err != nil {
		t.Fatal(err)
	}
	leads, _, err := db.ListLeads(ctx, a.ID, camp.ID, store.Page{Limit: 10})
	if err != nil || len(leads) != 1 {
		t.Fatalf("ListLeads = %+v, %v", leads, err)
	}
	if err := db.SetLeadStatus(ctx, a.ID, leads[0].ID, campaign.LeadCompleted, ptr("call-1")); err != nil {
		t.Fatal(err)
	}

	purged := func(what string, got store.PurgeOutcome, err error, want store.PurgeOutcome) {
		t.Helper()
		if err != nil || got != want {
			t.Fatalf("%s = %v, %v; want %v", what, got, err, want)
		}
	}
	get := func(org, id string) *store.Call {
		t.Helper()
		c, err := db.GetCall(ctx, org, id)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Content: cleared with the delivered report; the number, the other
	// events, their attempts and the figures stay.
	out, err := db.PurgeContent(ctx, a.ID, "call-1", &k1)
	purged("PurgeContent(call-1)", out, err, store.Purged)
	c := get(a.ID, "call-1")
	if c.Messages != nil || c.Summary != nil || c.AnalysisResult != nil || c.AnalysisError != nil || c.RecordingKey != nil || c.RecordingState != store.RecordingNone {
		t.Fatalf("content after purge: %+v", c)
	}
	if c.CallerPhone == nil || *c.CallerPhone != phone || c.Metrics == nil || c.EndedAt == nil || c.Status != call.StatusEnded {
		t.Fatalf("purging content took more: %+v", c)
	}
	if got := events("call-1"); !slices.Equal(got, []string{evID(1), evID(3)}) {
		t.Fatalf("events of call-1 after its content purge = %v; want the status updates", got)
	}
	if n := attempts("call-1"); n != 3 {
		t.Fatalf("delivery attempts of call-1 after its content purge = %d, want 3", n)
	}
	out, err = db.PurgeContent(ctx, a.ID, "call-1", &k1)
	purged("PurgeContent(call-1) again", out, err, store.AlreadyPurged)
	due("content", db.ContentDue, a.ID, base, "call-2", "call-4")

	// Scoped: another organization's call, a live call, a missing call.
	_, err = db.PurgeContent(ctx, b.ID, "call-1", nil)
	mustKind(t, err, fault.NotFound)
	_, err = db.PurgeContent(ctx, a.ID, "call-live", nil)
	mustKind(t, err, fault.NotFound)
	_, err = db.PurgeMetadata(ctx, a.ID, "call-live")
	mustKind(t, err, fault.NotFound)
	_, err = db.PurgeMetadata(ctx, a.ID, "call-nope")
	mustKind(t, err, fault.NotFound)
	if live := get(a.ID, "call-live"); live.Messages == nil || live.CallerPhone == nil {
		t.Fatalf("a live call was touched: %+v", live)
	}

	// A report pending delivery holds the transcript: the call stays due
	// until it is finished, then goes.
	out, err = db.PurgeContent(ctx, a.ID, "call-2", nil)
	purged("PurgeContent(call-2) with its report pending", out, err, store.PurgeDeferred)
	if c := get(a.ID, "call-2"); c.Messages != nil || c.AnalysisError != nil {
		t.Fatalf("a deferred purge left the content: %+v", c)
	}
	if got := events("call-2"); !slices.Equal(got, []string{evID(4)}) {
		t.Fatalf("the pending report was deleted: %v", got)
	}
	due("content", db.ContentDue, a.ID, base, "call-2", "call-4")
	if err := db.FailEvent(ctx, evID(4), base.Add(time.Hour), "gave up"); err != nil {
		t.Fatal(err)
	}
	out, err = db.PurgeContent(ctx, a.ID, "call-2", nil)
	purged("PurgeContent(call-2) with its report failed", out, err, store.Purged)
	if got := events("call-2"); len(got) != 0 {
		t.Fatalf("the failed report stayed: %v", got)
	}

	// A recording is forgotten only once the caller says it deleted that
	// very object, and not while its upload is pending.
	out, err = db.PurgeContent(ctx, a.ID, "call-3", nil)
	purged("PurgeContent(call-3) without deleting its recording", out, err, store.PurgeDeferred)
	out, err = db.PurgeContent(ctx, a.ID, "call-3", ptr("recordings/a/other.wav"))
	purged("PurgeContent(call-3) having deleted another object", out, err, store.PurgeDeferred)
	if c := get(a.ID, "call-3"); c.RecordingKey == nil || *c.RecordingKey != k3 || c.RecordingState != store.RecordingReady || c.Messages != nil {
		t.Fatalf("deferred call-3: key %v state %q messages %s", c.RecordingKey, c.RecordingState, c.Messages)
	}
	out, err = db.PurgeContent(ctx, a.ID, "call-3", &k3)
	purged("PurgeContent(call-3)", out, err, store.Purged)
	if c := get(a.ID, "call-3"); c.RecordingKey != nil || c.RecordingState != store.RecordingNone {
		t.Fatalf("call-3 recording after purge: %v %q", c.RecordingKey, c.RecordingState)
	}
	out, err = db.PurgeContent(ctx, a.ID, "call-4", nil)
	purged("PurgeContent(call-4) with its upload pending", out, err, store.PurgeDeferred)
	if c := get(a.ID, "call-4"); c.RecordingState != store.RecordingPending {
		t.Fatalf("a pending upload was forgotten: %q", c.RecordingState)
	}
	k4 := "recordings/a/call-4.wav"
	if err := db.FinishRecording(ctx, a.ID, "call-4", store.RecordingReady, &k4, nil); err != nil {
		t.Fatal(err)
	}
	out, err = db.PurgeContent(ctx, a.ID, "call-4", nil)
	purged("PurgeContent(call-4) listed before its upload", out, err, store.PurgeDeferred)
	out, err = db.PurgeContent(ctx, a.ID, "call-4", &k4)
	purged("PurgeContent(call-4)", out, err, store.Purged)
	due("content", db.ContentDue, a.ID, base.Add(20*day))

	// Metadata: the number, the lead's link and the finished events with
	// their attempts go; a pending event and its attempt stay, and keep
	// the call due until it is finished.
	out, err = db.PurgeMetadata(ctx, a.ID, "call-1")
	purged("PurgeMetadata(call-1) with an event pending", out, err, store.PurgeDeferred)
	if c := get(a.ID, "call-1"); c.CallerPhone != nil || c.EndedAt == nil || c.Metrics == nil {
		t.Fatalf("call-1 after its metadata purge: %+v", c)
	}
	if leads, _, _ := db.ListLeads(ctx, a.ID, camp.ID, store.Page{Limit: 10}); leads[0].CallID != nil || leads[0].Status != campaign.LeadCompleted || leads[0].PhoneNumber != phone {
		t.Fatalf("lead after the metadata purge: %+v", leads[0])
	}
	if got := events("call-1"); !slices.Equal(got, []string{evID(3)}) {
		t.Fatalf("events of call-1 = %v; want the pending one", got)
	}
	if n := attempts("call-1"); n != 1 {
		t.Fatalf("delivery attempts of call-1 = %d; want the pending event's", n)
	}
	due("metadata", db.MetadataDue, a.ID, base, "call-1", "call-2", "call-4")
	if err := db.MarkDelivered(ctx, evID(3), base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	out, err = db.PurgeMetadata(ctx, a.ID, "call-1")
	purged("PurgeMetadata(call-1)", out, err, store.Purged)
	if got, n := events("call-1"), attempts("call-1"); len(got) != 0 || n != 0 {
		t.Fatalf("call-1 keeps events %v and %d attempts", got, n)
	}
	out, err = db.PurgeMetadata(ctx, a.ID, "call-1")
	purged("PurgeMetadata(call-1) again", out, err, store.AlreadyPurged)
	due("metadata", db.MetadataDue, a.ID, base, "call-2", "call-4")
	_, err = db.PurgeMetadata(ctx, b.ID, "call-2")
	mustKind(t, err, fault.NotFound)

	// Other organizations' calls are untouched.
	for _, oc := range []struct{ org, id string }{{b.ID, "call-b"}, {child.ID, "call-child"}} {
		if c := get(oc.org, oc.id); c.Messages == nil || c.Summary == nil || c.CallerPhone == nil {
			t.Fatalf("call %s of another organization was touched: %+v", oc.id, c)
		}
	}
}
