package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// Run exercises the store contract against stores made by open. Every driver
// runs it; a behaviour that differs between engines is a bug in a driver.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *store.DB)
	}{
		{"MigrateTwice", testMigrateTwice},
		{"OrgsAndKeys", testOrgsAndKeys},
		{"Docs", testDocs},
		{"Numbers", testNumbers},
		{"Pages", testPages},
		{"InUse", testInUse},
		{"Campaigns", testCampaigns},
		{"Calls", testCalls},
		{"Usage", testUsage},
		{"BYOK", testBYOK},
		{"Domains", testDomains},
		{"Outbox", testOutbox},
		{"OutboxOrder", testOutboxOrder},
		{"Postcall", testPostcall},
		{"Retention", testRetention},
		{"Billing", testBilling},
		{"Boots", testBoots},
		{"Writes", testWrites},
		{"DialerClaim", testDialerClaim},
		{"DialerCaps", testDialerCaps},
		{"DialerClaimRace", testDialerClaimRace},
		{"DialerEndedAttempts", testDialerEndedAttempts},
		{"DialerSettle", testDialerSettle},
		{"DialerCompleteFinished", testDialerCompleteFinished},
		{"DialerCounters", testDialerCounters},
		{"DialerSettleDuringCancel", testDialerSettleDuringCancel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func ptr[T any](v T) *T { return &v }

func mustKind(t *testing.T, err error, want fault.Kind) {
	t.Helper()
	if got := fault.KindOf(err); got != want || err == nil {
		t.Fatalf("error = %v (kind %v), want kind %v", err, got, want)
	}
}

func newOrg(t *testing.T, db *store.DB, name string) *store.Org {
	t.Helper()
	o := &store.Org{Name: name, MinutesBalance: 10}
	if err := db.CreateOrg(context.Background(), o, nil); err != nil {
		t.Fatal(err)
	}
	return o
}

func testMigrateTwice(t *testing.T, db *store.DB) {
	n, err := db.Migrate(context.Background())
	if err != nil || n != 0 {
		t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
	}
}

func testOrgsAndKeys(t *testing.T, db *store.DB) {
	ctx := context.Background()
	parent := &store.Org{Name: "Parent", MinutesBalance: 500.5, HasLocalModelsAccess: true}
	key := &store.APIKey{ID: "k1", Hash: "h1", Prefix: "fl_live_abcd", Name: "first"}
	if err := db.CreateOrg(ctx, parent, key); err != nil {
		t.Fatal(err)
	}
	child := &store.Org{Name: "Child", ParentID: &parent.ID, Email: ptr("ops@child.example")}
	if err := db.CreateOrg(ctx, child, &store.APIKey{ID: "k2", Hash: "h2", Prefix: "p"}); err != nil {
		t.Fatal(err)
	}
	mustKind(t, db.CreateOrg(ctx, &store.Org{Name: "Orphan", ParentID: ptr("00000000-0000-4000-8000-000000000000")}, nil), fault.Invalid)
	mustKind(t, db.CreateOrg(ctx, &store.Org{Name: "Dup"}, &store.APIKey{ID: "k1", Hash: "x", Prefix: "p"}), fault.Conflict)
	if orgs, _ := db.ListOrgs(ctx); len(orgs) != 2 {
		t.Fatalf("a failed CreateOrg left rows behind: %d orgs", len(orgs))
	}
	got, err := db.GetOrg(ctx, parent.ID)
	if err != nil || got.Name != "Parent" || got.MinutesBalance != 500.5 || !got.HasLocalModelsAccess || got.ParentID != nil || got.Email != nil {
		t.Fatalf("GetOrg = %+v, %v", got, err)
	}
	if got, err := db.GetOrg(ctx, child.ID); err != nil || got.Email == nil || *got.Email != "ops@child.example" {
		t.Fatalf("GetOrg(child).Email = %v, %v", got, err)
	}
	kids, total, err := db.ChildOrgsPage(ctx, parent.ID, store.Page{Limit: 10})
	if err != nil || len(kids) != 1 || total != 1 || kids[0].ID != child.ID || *kids[0].ParentID != parent.ID {
		t.Fatalf("ChildOrgs = %+v, %v", kids, err)
	}
	k, err := db.APIKeyByID(ctx, "k1")
	if err != nil || k.OrgID != parent.ID || k.Hash != "h1" || k.RevokedAt != nil {
		t.Fatalf("APIKeyByID = %+v, %v", k, err)
	}
	if err := db.RevokeAPIKey(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if k, _ := db.APIKeyByID(ctx, "k1"); k.RevokedAt == nil {
		t.Fatal("revoked key has no RevokedAt")
	}
	mustKind(t, db.RevokeAPIKey(ctx, "nope"), fault.NotFound)
	_, err = db.APIKeyByID(ctx, "nope")
	mustKind(t, err, fault.NotFound)
	if err := db.SetMinutesBalance(ctx, child.ID, -3.25); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRetention(ctx, child.ID, 30, 90); err != nil {
		t.Fatal(err)
	}
	c, _ := db.GetOrg(ctx, child.ID)
	if c.MinutesBalance != -3.25 || *c.ContentRetentionDays != 30 || *c.MetadataRetentionDays != 90 {
		t.Fatalf("child after updates = %+v", c)
	}
	if err := db.CreateAPIKey(ctx, &store.APIKey{ID: "k3", OrgID: child.ID, Hash: "h3", Prefix: "p"}); err != nil {
		t.Fatal(err)
	}
	keys, _ := db.ListAPIKeys(ctx, child.ID)
	if len(keys) != 2 {
		t.Fatalf("child has %d keys, want 2", len(keys))
	}
}

func testDocs(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, b := newOrg(t, db, "A"), newOrg(t, db, "B")
	d := &store.Doc{Kind: store.Assistants, OrgID: a.ID, Name: "Receptionist", Active: true, Body: json.RawMessage(`{"name":"Receptionist","business_name":"Acme"}`)}
	if err := db.CreateDoc(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetDoc(ctx, store.Assistants, a.ID, d.ID)
	if err != nil || got.Name != "Receptionist" || string(got.Body) != string(d.Body) || !got.CreatedAt.Equal(d.CreatedAt) {
		t.Fatalf("GetDoc = %+v, %v", got, err)
	}
	_, err = db.GetDoc(ctx, store.Assistants, b.ID, d.ID)
	mustKind(t, err, fault.NotFound)
	_, err = db.GetDoc(ctx, store.ToolTemplates, a.ID, d.ID)
	mustKind(t, err, fault.NotFound)
	if list, total, _ := db.ListDocsPage(ctx, store.Assistants, b.ID, store.Page{Limit: 100}); len(list) != 0 || total != 0 {
		t.Fatalf("org B sees %d assistants", len(list))
	}
	_, err = db.UpdateDoc(ctx, store.Assistants, b.ID, d.ID, func(cur *store.Doc) (*store.Doc, error) { return cur, nil })
	mustKind(t, err, fault.NotFound)
	up, err := db.UpdateDoc(ctx, store.Assistants, a.ID, d.ID, func(cur *store.Doc) (*store.Doc, error) {
		n := *cur
		n.Name, n.Active, n.Body = "Front desk", false, json.RawMessage(`{"name":"Front desk"}`)
		return &n, nil
	})
	if err != nil || up.Name != "Front desk" || up.Active || up.ID != d.ID {
		t.Fatalf("UpdateDoc = %+v, %v", up, err)
	}
	_, err = db.UpdateDoc(ctx, store.Assistants, a.ID, d.ID, func(cur *store.Doc) (*store.Doc, error) {
		return nil, fault.Invalidf("name", "bad")
	})
	mustKind(t, err, fault.Invalid)
	for i := 0; i < 3; i++ {
		if err := db.CreateDoc(ctx, &store.Doc{Kind: store.AnalysisTemplates, OrgID: a.ID, Name: "t", Body: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	page, total, err := db.ListDocsPage(ctx, store.AnalysisTemplates, a.ID, store.Page{Limit: 2, Offset: 1})
	if err != nil || total != 3 || len(page) != 2 {
		t.Fatalf("ListDocsPage = %d items, total %d, %v", len(page), total, err)
	}
	m := &store.Doc{Kind: store.MCPServers, OrgID: a.ID, Name: "crm", Body: json.RawMessage(`{}`), Secret: ptr("v1:sealed")}
	if err := db.CreateDoc(ctx, m); err != nil {
		t.Fatal(err)
	}
	mustKind(t, db.CreateDoc(ctx, &store.Doc{Kind: store.MCPServers, OrgID: a.ID, Name: "crm", Body: json.RawMessage(`{}`)}), fault.Conflict)
	if err := db.CreateDoc(ctx, &store.Doc{Kind: store.MCPServers, OrgID: b.ID, Name: "crm", Body: json.RawMessage(`{}`)}); err != nil {
		t.Fatalf("same MCP name in another org: %v", err)
	}
	if got, _ := db.GetDoc(ctx, store.MCPServers, a.ID, m.ID); got.Secret == nil || *got.Secret != "v1:sealed" {
		t.Fatalf("secret not kept: %+v", got.Secret)
	}
	mustKind(t, db.DeleteDoc(ctx, store.Assistants, b.ID, d.ID), fault.NotFound)
	if err := db.DeleteDoc(ctx, store.Assistants, a.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	mustKind(t, db.DeleteDoc(ctx, store.Assistants, a.ID, d.ID), fault.NotFound)
}

func testNumbers(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, b := newOrg(t, db, "A"), newOrg(t, db, "B")
	asst := &store.Doc{Kind: store.Assistants, OrgID: a.ID, Name: "Sales", Active: true, Body: json.RawMessage(`{"business_name":"Acme BV"}`)}
	trunk := &store.Doc{Kind: store.SIPTrunks, OrgID: a.ID, Name: "Trunk", Active: true, Body: json.RawMessage(`{}`)}
	foreign := &store.Doc{Kind: store.Assistants, OrgID: b.ID, Name: "Theirs", Active: true, Body: json.RawMessage(`{}`)}
	for _, d := range []*store.Doc{asst, trunk, foreign} {
		if err := db.CreateDoc(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	n := &store.Number{OrgID: a.ID, PhoneNumber: "+31850835037", Name: ptr("Main"), AssistantID: &asst.ID, TransferTrunkID: &trunk.ID, IsActive: true}
	if err := db.CreateNumber(ctx, n); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetNumber(ctx, a.ID, n.ID)
	if err != nil || *got.AssistantName != "Sales" || *got.BusinessName != "Acme BV" || *got.TransferTrunkName != "Trunk" || got.WorkflowName != nil {
		t.Fatalf("GetNumber = %+v, %v", got, err)
	}
	mustKind(t, db.CreateNumber(ctx, &store.Number{OrgID: b.ID, PhoneNumber: "+31850835037", IsActive: true}), fault.Conflict)
	err = db.CreateNumber(ctx, &store.Number{OrgID: a.ID, PhoneNumber: "+31850000001", AssistantID: &foreign.ID, IsActive: true})
	mustKind(t, err, fault.Invalid)
	if e, _ := fault.As(err); e.Field != "assistant_id" {
		t.Fatalf("foreign assistant error names %q", e.Field)
	}
	_, err = db.GetNumber(ctx, b.ID, n.ID)
	mustKind(t, err, fault.NotFound)
	byPhone, err := db.NumberByPhone(ctx, "+31850835037")
	if err != nil || byPhone.ID != n.ID {
		t.Fatalf("NumberByPhone = %+v, %v", byPhone, err)
	}
	up, err := db.UpdateNumber(ctx, a.ID, n.ID, func(n *store.Number) error { n.AssistantID = nil; n.IsActive = false; return nil })
	if err != nil || up.AssistantID != nil || up.AssistantName != nil || up.IsActive {
		t.Fatalf("UpdateNumber = %+v, %v", up, err)
	}
	_, err = db.UpdateNumber(ctx, a.ID, n.ID, func(n *store.Number) error { n.TransferTrunkID = &foreign.ID; return nil })
	mustKind(t, err, fault.Invalid)
	// Deleting a trunk detaches it.
	if err := db.DeleteDoc(ctx, store.SIPTrunks, a.ID, trunk.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetNumber(ctx, a.ID, n.ID); got.TransferTrunkID != nil {
		t.Fatal("deleted trunk still attached")
	}
	mustKind(t, db.DeleteNumber(ctx, b.ID, n.ID), fault.NotFound)
	if err := db.DeleteNumber(ctx, a.ID, n.ID); err != nil {
		t.Fatal(err)
	}
}

func testInUse(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a := newOrg(t, db, "A")
	wf := &store.Doc{Kind: store.Workflows, OrgID: a.ID, Name: "Flow", Active: true, Body: json.RawMessage(`{}`)}
	mcp := &store.Doc{Kind: store.MCPServers, OrgID: a.ID, Name: "crm", Active: true, Body: json.RawMessage(`{}`)}
	for _, d := range []*store.Doc{wf, mcp} {
		if err := db.CreateDoc(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	asst := &store.Doc{Kind: store.Assistants, OrgID: a.ID, Name: "Uses MCP", Active: true,
		Body: json.RawMessage(`{"llm_config":{"tools":[{"type":"mcp","mcp_server_id":"` + mcp.ID + `"}]}}`)}
	mention := &store.Doc{Kind: store.Assistants, OrgID: a.ID, Name: "Mentions", Active: true,
		Body: json.RawMessage(`{"first_message":"` + mcp.ID + `"}`)}
	for _, d := range []*store.Doc{asst, mention} {
		if err := db.CreateDoc(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	n := &store.Number{OrgID: a.ID, PhoneNumber: "+31201234567", WorkflowID: &wf.ID, IsActive: true}
	if err := db.CreateNumber(ctx, n); err != nil {
		t.Fatal(err)
	}
	mustKind(t, db.DeleteDoc(ctx, store.Workflows, a.ID, wf.ID), fault.Conflict)
	mustKind(t, db.DeleteDoc(ctx, store.MCPServers, a.ID, mcp.ID), fault.Conflict)
	if _, err := db.UpdateNumber(ctx, a.ID, n.ID, func(n *store.Number) error { n.WorkflowID = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteDoc(ctx, store.Workflows, a.ID, wf.ID); err != nil {
		t.Fatalf("delete detached workflow: %v", err)
	}
	if err := db.DeleteDoc(ctx, store.Assistants, a.ID, asst.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteDoc(ctx, store.MCPServers, a.ID, mcp.ID); err != nil {
		t.Fatalf("delete unused MCP server (only mentioned in text): %v", err)
	}
}

func testCampaigns(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, b := newOrg(t, db, "A"), newOrg(t, db, "B")
	asst := &store.Doc{Kind: store.Assistants, OrgID: a.ID, Name: "Caller", Active: true, Body: json.RawMessage(`{}`)}
	if err := db.CreateDoc(ctx, asst); err != nil {
		t.Fatal(err)
	}
	c := &store.Campaign{OrgID: a.ID, Name: "Q4", AgentID: asst.ID, Status: campaign.Draft, ScheduleStartTime: "09:00:00", ScheduleEndTime: "17:00:00", Timezone: "Europe/Amsterdam"}
	leads := []store.Lead{{PhoneNumber: "+31612345678", Variables: map[string]string{"name": "John"}}, {PhoneNumber: "+31612345679"}}
	if err := db.CreateCampaign(ctx, c, leads); err != nil {
		t.Fatal(err)
	}
	mustKind(t, db.CreateCampaign(ctx, &store.Campaign{OrgID: b.ID, Name: "x", AgentID: asst.ID, Status: campaign.Draft, ScheduleStartTime: "09:00:00", ScheduleEndTime: "17:00:00", Timezone: "UTC"}, nil), fault.Invalid)
	got, err := db.GetCampaign(ctx, a.ID, c.ID)
	if err != nil || got.TotalLeads != 2 || got.Status != campaign.Draft {
		t.Fatalf("GetCampaign = %+v, %v", got, err)
	}
	list, total, err := db.ListLeads(ctx, a.ID, c.ID, store.Page{Limit: 100})
	if err != nil || total != 2 || list[0].PhoneNumber != "+31612345678" || list[0].Variables["name"] != "John" || list[0].Status != campaign.LeadPending {
		t.Fatalf("ListLeads = %+v, %d, %v", list, total, err)
	}
	_, _, err = db.ListLeads(ctx, b.ID, c.ID, store.Page{Limit: 100})
	mustKind(t, err, fault.NotFound)
	mustKind(t, db.DeleteDoc(ctx, store.Assistants, a.ID, asst.ID), fault.Conflict)
	if err := db.SetLeadStatus(ctx, a.ID, list[0].ID, campaign.LeadCalling, ptr("call-1")); err != nil {
		t.Fatal(err)
	}
	mustKind(t, db.DeleteLead(ctx, a.ID, c.ID, list[0].ID), fault.Conflict)
	mustKind(t, db.DeleteCampaign(ctx, a.ID, c.ID), fault.Conflict)
	if err := db.SetLeadStatus(ctx, a.ID, list[0].ID, campaign.LeadCompleted, nil); err != nil {
		t.Fatal(err)
	}
	after, _, _ := db.ListLeads(ctx, a.ID, c.ID, store.Page{Limit: 100})
	if after[0].Attempts != 1 || after[0].LastAttemptAt == nil || *after[0].CallID != "call-1" {
		t.Fatalf("lead after a call = %+v", after[0])
	}
	up, err := db.UpdateCampaign(ctx, a.ID, c.ID, func(c *store.Campaign) error { c.Status = campaign.Completed; return nil })
	if err != nil || up.CompletedLeads != 1 || up.Status != campaign.Completed {
		t.Fatalf("UpdateCampaign = %+v, %v", up, err)
	}
	mustKind(t, db.AddLead(ctx, a.ID, c.ID, &store.Lead{PhoneNumber: "+31600000000"}), fault.Conflict)
	if err := db.DeleteLead(ctx, a.ID, c.ID, list[1].ID); err != nil {
		t.Fatal(err)
	}
	mustKind(t, db.DeleteLead(ctx, a.ID, c.ID, list[1].ID), fault.NotFound)
	if err := db.DeleteCampaign(ctx, a.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteDoc(ctx, store.Assistants, a.ID, asst.ID); err != nil {
		t.Fatalf("assistant of a deleted campaign: %v", err)
	}
}

func testCalls(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, b := newOrg(t, db, "A"), newOrg(t, db, "B")
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	id := "call-_+31623731537_XqaQxRRgAzYc"
	for i, st := range []call.Status{call.StatusEnded, call.StatusInProgress, call.StatusEnded, call.StatusFailed} {
		c := &store.Call{OrgID: a.ID, Status: st, Direction: call.Inbound, CreatedAt: base.Add(time.Duration(i) * time.Hour)}
		if i == 0 {
			c.ID, c.Messages, c.DurationSeconds = id, json.RawMessage(`[{"role":"assistant","content":"Hi"}]`), ptr(84)
		}
		if err := db.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.GetCall(ctx, a.ID, id)
	if err != nil || got.Status != call.StatusEnded || got.Direction != call.Inbound || *got.DurationSeconds != 84 || string(got.Messages) == "" {
		t.Fatalf("GetCall = %+v, %v", got, err)
	}
	_, err = db.GetCall(ctx, b.ID, id)
	mustKind(t, err, fault.NotFound)
	ended := call.StatusEnded
	list, total, err := db.ListCalls(ctx, a.ID, store.CallFilter{Status: &ended, Page: store.Page{Limit: 10}})
	if err != nil || total != 2 || len(list) != 2 || list[0].CreatedAt.Before(list[1].CreatedAt) {
		t.Fatalf("ListCalls(status) = %d/%d, %v", len(list), total, err)
	}
	since, until := base.Add(time.Hour), base.Add(2*time.Hour)
	_, total, _ = db.ListCalls(ctx, a.ID, store.CallFilter{Since: &since, Until: &until, Page: store.Page{Limit: 10}})
	if total != 2 {
		t.Fatalf("ListCalls(range) total = %d, want 2", total)
	}
	list, total, _ = db.ListCalls(ctx, a.ID, store.CallFilter{Page: store.Page{Limit: 1, Offset: 3}})
	if total != 4 || len(list) != 1 || list[0].ID != id {
		t.Fatalf("ListCalls(page) = %+v, total %d", list, total)
	}
	mustKind(t, db.CreateCall(ctx, &store.Call{ID: id, OrgID: a.ID, Status: call.StatusRinging}), fault.Conflict)
	st, err := db.Stats(ctx, a.ID, base)
	if err != nil || st.ActiveCalls != 1 {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
}

func testUsage(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a := newOrg(t, db, "A")
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		if err := db.CreateUsageLog(ctx, &store.UsageLog{OrgID: a.ID, DurationSec: 60 * (i + 1), CallType: "phone", BYOKLLM: i == 1, CreatedAt: base.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	logs, total, sum, err := db.ListUsage(ctx, a.ID, store.UsageFilter{Page: store.Page{Limit: 2}})
	if err != nil || total != 3 || len(logs) != 2 || sum.TotalDurationSeconds != 360 || logs[0].DurationSec != 180 || !logs[1].BYOKLLM {
		t.Fatalf("ListUsage = %+v, %d, %+v, %v", logs, total, sum, err)
	}
	since := base.Add(90 * time.Minute)
	_, total, sum, _ = db.ListUsage(ctx, a.ID, store.UsageFilter{Since: &since, Page: store.Page{Limit: 10}})
	if total != 1 || sum.TotalDurationSeconds != 180 {
		t.Fatalf("ListUsage(since) = %d, %+v", total, sum)
	}
	st, _ := db.Stats(ctx, a.ID, base.Add(30*time.Minute))
	if st.MonthlyUsageMinutes != 5 {
		t.Fatalf("MonthlyUsageMinutes = %v, want 5", st.MonthlyUsageMinutes)
	}
}

func testBYOK(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, b := newOrg(t, db, "A"), newOrg(t, db, "B")
	_, err := db.UpdateBYOKConfig(ctx, a.ID, "openai", func([]byte) ([]byte, error) { return []byte(`{}`), nil })
	mustKind(t, err, fault.Invalid)
	if err := db.PutBYOKKey(ctx, &store.BYOKKey{OrgID: a.ID, Provider: "openai", SecretID: "s1", Sealed: "v1:x"}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutBYOKKey(ctx, &store.BYOKKey{OrgID: a.ID, Provider: "openai", SecretID: "s2", Sealed: "v1:y"}); err != nil {
		t.Fatal(err)
	}
	keys, _ := db.BYOKKeys(ctx, a.ID)
	if len(keys) != 1 || keys[0].SecretID != "s2" || keys[0].Sealed != "v1:y" {
		t.Fatalf("BYOKKeys = %+v", keys)
	}
	if keys, _ := db.BYOKKeys(ctx, b.ID); len(keys) != 0 {
		t.Fatal("org B sees org A's keys")
	}
	out, err := db.UpdateBYOKConfig(ctx, a.ID, "openai", func(old []byte) ([]byte, error) {
		if old != nil {
			return nil, errors.New("expected no previous config")
		}
		return []byte(`{"base_url":"http://x"}`), nil
	})
	if err != nil || string(out) != `{"base_url":"http://x"}` {
		t.Fatalf("UpdateBYOKConfig = %s, %v", out, err)
	}
	cfgs, _ := db.BYOKConfigs(ctx, a.ID)
	if string(cfgs["openai"]) != `{"base_url":"http://x"}` {
		t.Fatalf("BYOKConfigs = %v", cfgs)
	}
	if err := db.DeleteBYOKKey(ctx, a.ID, "openai"); err != nil {
		t.Fatal(err)
	}
	mustKind(t, db.DeleteBYOKKey(ctx, a.ID, "openai"), fault.NotFound)
	if cfgs, _ := db.BYOKConfigs(ctx, a.ID); len(cfgs) != 0 {
		t.Fatal("config outlived its key")
	}
}
