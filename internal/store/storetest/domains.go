package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// testDomains: one e-mail domain per organization, records kept as sent,
// updates and deletes only of the row named, other organizations unseen.
func testDomains(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, b := newOrg(t, db, "A"), newOrg(t, db, "B")
	_, err := db.GetDomain(ctx, a.ID)
	mustKind(t, err, fault.NotFound)

	d := &store.Domain{OrgID: a.ID, Name: "mail.example.com", Status: "not_started", Region: "eu-west-1"}
	if err := db.CreateDomain(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetDomain(ctx, a.ID)
	if err != nil || got.ID != d.ID || got.Name != "mail.example.com" || got.ResendDomainID != nil || got.Records == nil || len(got.Records) != 0 ||
		got.VerifiedAt != nil || !got.CreatedAt.Equal(d.CreatedAt) {
		t.Fatalf("created = %+v, %v", got, err)
	}
	mustKind(t, db.CreateDomain(ctx, &store.Domain{OrgID: a.ID, Name: "other.example.com", Status: "not_started", Region: "eu-west-1"}), fault.Conflict)
	_, err = db.GetDomain(ctx, b.ID)
	mustKind(t, err, fault.NotFound)

	rid, ten, now := "rs-1", 10, time.Now().UTC().Truncate(time.Millisecond)
	d.ResendDomainID, d.Status, d.VerifiedAt = &rid, "verified", &now
	d.Records = []store.DomainRecord{{Record: "SPF", Name: "send", Type: "MX", TTL: "Auto", Status: "verified", Value: "feedback-smtp.eu-west-1.amazonses.com", Priority: &ten},
		{Record: "DKIM", Name: "resend._domainkey", Type: "TXT", TTL: "Auto", Status: "verified", Value: "p=MIG"}}
	if err := db.UpdateDomain(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err = db.GetDomain(ctx, a.ID)
	if err != nil || *got.ResendDomainID != "rs-1" || got.Status != "verified" || !got.VerifiedAt.Equal(now) || len(got.Records) != 2 ||
		*got.Records[0].Priority != 10 || got.Records[1].Priority != nil || got.Records[1].Value != "p=MIG" {
		t.Fatalf("updated = %+v, %v", got, err)
	}
	// Another organization's id, or a row that is gone, is not updated.
	mustKind(t, db.UpdateDomain(ctx, &store.Domain{ID: d.ID, OrgID: b.ID, Name: "x.example.com", Status: "pending", Region: "eu-west-1"}), fault.NotFound)
	mustKind(t, db.DeleteDomain(ctx, b.ID, d.ID), fault.NotFound)

	// Put with the same Resend domain keeps the row; with another replaces it.
	same := &store.Domain{OrgID: a.ID, Name: "mail.example.com", ResendDomainID: &rid, Status: "pending", Region: "eu-west-1"}
	if err := db.PutDomain(ctx, same); err != nil || same.ID != d.ID || !same.CreatedAt.Equal(d.CreatedAt) {
		t.Fatalf("put same = %+v, %v (first %s)", same, err, d.ID)
	}
	rid2 := "rs-2"
	other := &store.Domain{OrgID: a.ID, Name: "news.example.com", ResendDomainID: &rid2, Status: "not_started", Region: "us-east-1"}
	if err := db.PutDomain(ctx, other); err != nil || other.ID == d.ID {
		t.Fatalf("put other = %+v, %v", other, err)
	}
	got, err = db.GetDomain(ctx, a.ID)
	if err != nil || got.ID != other.ID || got.Name != "news.example.com" || got.VerifiedAt != nil {
		t.Fatalf("after put = %+v, %v", got, err)
	}
	mustKind(t, db.UpdateDomain(ctx, d), fault.NotFound) // the replaced row
	fresh := &store.Domain{OrgID: b.ID, Name: "b.example.com", ResendDomainID: &rid2, Status: "pending", Region: "eu-west-1"}
	if err := db.PutDomain(ctx, fresh); err != nil {
		t.Fatal(err)
	}

	mustKind(t, db.DeleteDomain(ctx, a.ID, d.ID), fault.NotFound)
	if err := db.DeleteDomain(ctx, a.ID, other.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.GetDomain(ctx, a.ID)
	mustKind(t, err, fault.NotFound)
	if got, err := db.GetDomain(ctx, b.ID); err != nil || got.Name != "b.example.com" {
		t.Fatalf("B's domain = %+v, %v", got, err)
	}
}
