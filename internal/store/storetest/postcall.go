package storetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// testPostcall covers what the post-call work writes: the call's snapshot
// columns, its end with a recording and a transaction hook, the summary and
// analysis, the recording's fate, the once-only report event and the
// expiry of GDPR-mode content.
func testPostcall(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, b := newOrg(t, db, "A"), newOrg(t, db, "B")
	c := &store.Call{OrgID: a.ID, Status: call.StatusInProgress, Direction: call.Inbound,
		Assistant: json.RawMessage(`{"name":"Front desk","metadata":{"crm":"7"}}`),
		Webhook:   json.RawMessage(`{"url":"https://hooks.example.com/x","secret":"sealed","events":null}`)}
	if err := db.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetCall(ctx, a.ID, c.ID)
	if err != nil || !jsonSame(got.Assistant, c.Assistant) || !jsonSame(got.Webhook, c.Webhook) || got.RecordingState != store.RecordingNone {
		t.Fatalf("snapshot columns: %+v, %v", got, err)
	}
	if list, _, err := db.ListCalls(ctx, a.ID, store.CallFilter{Page: store.Page{Limit: 10}}); err != nil || len(list) != 1 || list[0].Assistant != nil || list[0].ID != c.ID {
		t.Fatalf("listed calls carry the snapshot (or are missing): %+v, %v", list, err)
	}

	// The end, with a pending recording, consent, expiry and a hook whose
	// failure rolls the whole end back.
	ended := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	expires := ended.Add(30 * 24 * time.Hour)
	end := store.CallEnd{OrgID: a.ID, ID: c.ID, Status: call.StatusEnded, EndReason: call.EndUserHangup, EndedAt: ended,
		Recording: store.RecordingPending, Consent: "agreed", ContentExpiresAt: &expires,
		InTx: func(ctx context.Context, tx *sql.Tx) error { return errors.New("hook failed") }}
	if err := db.EndCall(ctx, end); err == nil {
		t.Fatal("EndCall succeeded although its hook failed")
	}
	if got, _ := db.GetCall(ctx, a.ID, c.ID); got.Status != call.StatusInProgress {
		t.Fatalf("a failed hook left the call %s; the end must roll back", got.Status)
	}
	hooked := false
	end.InTx = func(ctx context.Context, tx *sql.Tx) error {
		hooked = true
		var st string
		return tx.QueryRowContext(ctx, `SELECT status FROM calls WHERE id = '`+c.ID+`'`).Scan(&st)
	}
	if err := db.EndCall(ctx, end); err != nil || !hooked {
		t.Fatalf("EndCall = %v (hook ran: %v)", err, hooked)
	}
	got, _ = db.GetCall(ctx, a.ID, c.ID)
	if got.RecordingState != store.RecordingPending || got.Consent == nil || *got.Consent != "agreed" || got.ContentExpiresAt == nil || !got.ContentExpiresAt.Equal(expires) {
		t.Fatalf("ended call: recording %q consent %v expires %v", got.RecordingState, got.Consent, got.ContentExpiresAt)
	}

	// Results, scoped by organization.
	mustKind(t, db.SaveSummary(ctx, b.ID, c.ID, "x"), fault.NotFound)
	if err := db.SaveSummary(ctx, a.ID, c.ID, "The caller booked a visit."); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveAnalysis(ctx, a.ID, c.ID, nil, "still invalid after one repair"); err != nil {
		t.Fatal(err)
	}
	got, _ = db.GetCall(ctx, a.ID, c.ID)
	if got.AnalysisError == nil || got.AnalysisResult != nil {
		t.Fatalf("analysis error not kept: %+v", got)
	}
	if err := db.SaveAnalysis(ctx, a.ID, c.ID, json.RawMessage(`{"booked":true}`), ""); err != nil {
		t.Fatal(err)
	}
	got, _ = db.GetCall(ctx, a.ID, c.ID)
	if *got.Summary != "The caller booked a visit." || !jsonSame(got.AnalysisResult, json.RawMessage(`{"booked":true}`)) || got.AnalysisError != nil {
		t.Fatalf("results: %+v", got)
	}

	if err := db.FinishRecording(ctx, a.ID, c.ID, store.RecordingPending, nil, nil); err == nil {
		t.Fatal("FinishRecording accepted a pending state")
	}
	key := "recordings/a/c.wav"
	if err := db.FinishRecording(ctx, a.ID, c.ID, store.RecordingReady, &key, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = db.GetCall(ctx, a.ID, c.ID)
	if got.RecordingState != store.RecordingReady || *got.RecordingKey != key {
		t.Fatalf("recording: %q %v", got.RecordingState, got.RecordingKey)
	}

	// The report event: numbered after the call's events, queued once.
	if err := db.EnqueueEvents(ctx, store.OutboxEvent{OrgID: a.ID, CallID: &c.ID, Seq: 3, EventType: "status-update", URL: "https://h/x", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	ev := store.OutboxEvent{ID: "8f0c1e6a-0000-8000-8000-000000000001", OrgID: a.ID, CallID: &c.ID, EventType: "end-of-call-report", URL: "https://h/x", Payload: []byte(`{"n":1}`)}
	for i, want := range []bool{true, false} {
		calls := 0
		ins, err := db.InsertEventOnce(ctx, ev, func(context.Context, *sql.Tx) error { calls++; return nil })
		if err != nil || ins != want || calls != 1 {
			t.Fatalf("InsertEventOnce #%d = %v, %v (hook %d), want %v", i+1, ins, err, calls, want)
		}
	}
	stored, err := db.GetEvent(ctx, a.ID, ev.ID)
	if err != nil || stored.Seq != 4 || string(stored.Payload) != `{"n":1}` {
		t.Fatalf("report event = %+v, %v; want seq 4", stored, err)
	}
	if _, err := db.InsertEventOnce(ctx, store.OutboxEvent{OrgID: a.ID}, nil); err == nil {
		t.Fatal("InsertEventOnce without an id succeeded")
	}

	// Expiry: nothing before the date; then the content goes and the call stays.
	if exp, err := db.ExpiredContent(ctx, expires.Add(-time.Second), 10); err != nil || len(exp) != 0 {
		t.Fatalf("ExpiredContent before expiry = %+v, %v", exp, err)
	}
	if err := db.SaveTranscript(ctx, a.ID, c.ID, json.RawMessage(`[{"role":"user","content":"hi"}]`), json.RawMessage(`[]`)); err != nil {
		t.Fatal(err)
	}
	exp, err := db.ExpiredContent(ctx, expires, 10)
	if err != nil || len(exp) != 1 || exp[0].ID != c.ID || exp[0].OrgID != a.ID || exp[0].RecordingKey == nil || *exp[0].RecordingKey != key {
		t.Fatalf("ExpiredContent = %+v, %v", exp, err)
	}
	if err := db.ClearContent(ctx, a.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	got, _ = db.GetCall(ctx, a.ID, c.ID)
	if got.Messages != nil || got.Summary != nil || got.AnalysisResult != nil || got.RecordingKey != nil || got.RecordingState != store.RecordingNone ||
		got.Status != call.StatusEnded || got.EndedAt == nil || got.Metrics == nil {
		t.Fatalf("after ClearContent: %+v", got)
	}
	if exp, _ := db.ExpiredContent(ctx, expires.Add(time.Hour), 10); len(exp) != 0 {
		t.Fatalf("a cleared call is still listed: %+v", exp)
	}
}

func jsonSame(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}
