package voice

import (
	"context"
	"errors"
	"testing"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// An outbound call over its trunk's max_concurrent_calls is refused with a
// 503 (trunk_at_limit) before anything is written or dialled.
func TestDialTrunkAtLimit(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	trunk := e.trunk(t, "Small trunk", "127.0.0.1:9", "", "", map[string]any{"max_concurrent_calls": 1})
	num := e.number(t, "+31201230009", nil, &trunk)
	if err := e.db.CreateCall(ctx, &store.Call{ID: "call-live", OrgID: e.org.ID, Direction: call.Outbound, Status: call.StatusInProgress, NumberID: &num.ID}); err != nil {
		t.Fatal(err)
	}
	aid, doc := e.assistant(t, map[string]any{"name": "Caller"})
	_, err := e.engine.Dial(ctx, call.Dial{OrgID: e.org.ID, Destination: "+31612345678", NumberID: num.ID, AssistantID: aid, Assistant: doc})
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Kind != fault.Unavailable || fe.Code != "trunk_at_limit" {
		t.Fatalf("Dial over the trunk's limit = %v, want 503 trunk_at_limit", err)
	}
	if calls, _, err := e.db.ListCalls(ctx, e.org.ID, store.CallFilter{Page: store.Page{Limit: 10}}); err != nil || len(calls) != 1 {
		t.Fatalf("%d call rows (%v), want only the live one", len(calls), err)
	}
}
