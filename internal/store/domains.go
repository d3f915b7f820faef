package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

// Domain is an organization's e-mail sending domain (at most one).
type Domain struct {
	ID             string
	OrgID          string
	Name           string
	ResendDomainID *string // nil until the domain exists at Resend
	Status         string  // not_started, pending, verified, failed
	Region         string
	Records        []DomainRecord
	CreatedAt      time.Time
	UpdatedAt      time.Time
	VerifiedAt     *time.Time
}

// DomainRecord is one DNS record a domain needs, in the API's spelling.
type DomainRecord struct {
	Record   string `json:"record,omitempty"`
	Name     string `json:"name,omitempty"`
	Type     string `json:"type,omitempty"`
	TTL      string `json:"ttl,omitempty"`
	Status   string `json:"status,omitempty"`
	Value    string `json:"value,omitempty"`
	Priority *int   `json:"priority,omitempty"`
}

const domainColumns = `id, org_id, domain_name, resend_domain_id, status, region, records, created_at, updated_at, verified_at`

func scanDomain(row interface{ Scan(...any) error }) (*Domain, error) {
	var d Domain
	var rid sql.NullString
	var records string
	var c, u int64
	var v sql.NullInt64
	if err := row.Scan(&d.ID, &d.OrgID, &d.Name, &rid, &d.Status, &d.Region, &records, &c, &u, &v); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(records), &d.Records); err != nil {
		return nil, fmt.Errorf("domain %s records: %w", d.ID, err)
	}
	d.ResendDomainID, d.CreatedAt, d.UpdatedAt, d.VerifiedAt = strPtr(rid), fromMS(c), fromMS(u), fromNullMS(v)
	return &d, nil
}

func domainRecords(d *Domain) (string, error) {
	recs := d.Records
	if recs == nil {
		recs = []DomainRecord{}
	}
	b, err := json.Marshal(recs)
	return string(b), err
}

// errDomainExists is the conflict of a second domain in one organization.
func errDomainExists() error {
	return fault.Conflictf("domain_exists", "this organization already has an e-mail domain; delete it (DELETE /domains) before adding another")
}

// CreateDomain adds the organization's domain; Conflict when it has one.
// ID, CreatedAt and UpdatedAt are set.
func (db *DB) CreateDomain(ctx context.Context, d *Domain) error {
	now := db.now().UTC().Truncate(time.Millisecond)
	if d.ID == "" {
		d.ID = NewID()
	}
	d.CreatedAt, d.UpdatedAt = now, now
	recs, err := domainRecords(d)
	if err != nil {
		return fmt.Errorf("insert domain: %w", err)
	}
	return db.insertDomain(ctx, db.exec, d, recs, now)
}

// insertDomain inserts d (records already encoded) with exec: a lone
// statement, or one inside a transaction.
func (db *DB) insertDomain(ctx context.Context, exec func(context.Context, string, ...any) (sql.Result, error), d *Domain, recs string, now time.Time) error {
	_, err := exec(ctx, db.q(`INSERT INTO email_domains (`+domainColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		d.ID, d.OrgID, d.Name, nullStr(d.ResendDomainID), d.Status, d.Region, recs, ms(now), ms(now), msPtr(d.VerifiedAt))
	if err != nil {
		if db.drv.IsUniqueViolation(err) {
			return errDomainExists()
		}
		return fmt.Errorf("insert domain: %w", err)
	}
	return nil
}

// GetDomain returns the organization's domain, NotFound when it has none.
func (db *DB) GetDomain(ctx context.Context, orgID string) (*Domain, error) {
	d, err := scanDomain(db.read.QueryRowContext(ctx, db.q(`SELECT `+domainColumns+` FROM email_domains WHERE org_id = ?`), orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.NotFoundf("this organization has no e-mail domain; add one with POST /domains")
	}
	if err != nil {
		return nil, fmt.Errorf("get domain: %w", err)
	}
	return d, nil
}

// UpdateDomain stores what Resend reported of the domain d.ID (name,
// Resend id, status, region, records, verified time). It is NotFound when
// that row is gone (deleted, or replaced by another domain meanwhile).
// UpdatedAt is set.
func (db *DB) UpdateDomain(ctx context.Context, d *Domain) error {
	now := db.now().UTC().Truncate(time.Millisecond)
	recs, err := domainRecords(d)
	if err != nil {
		return fmt.Errorf("update domain: %w", err)
	}
	res, err := db.exec(ctx, db.q(`UPDATE email_domains SET domain_name = ?, resend_domain_id = ?, status = ?, region = ?, records = ?, updated_at = ?, verified_at = ? WHERE id = ? AND org_id = ?`),
		d.Name, nullStr(d.ResendDomainID), d.Status, d.Region, recs, ms(now), msPtr(d.VerifiedAt), d.ID, d.OrgID)
	if err != nil {
		return fmt.Errorf("update domain: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fault.NotFoundf("the e-mail domain was deleted meanwhile")
	}
	d.UpdatedAt = now
	return nil
}

// PutDomain makes d the organization's domain: it replaces the one it has
// (keeping its id and created_at when it is the same Resend domain) or adds
// it. ID, CreatedAt and UpdatedAt are set.
func (db *DB) PutDomain(ctx context.Context, d *Domain) error {
	now := db.now().UTC().Truncate(time.Millisecond)
	recs, err := domainRecords(d)
	if err != nil {
		return fmt.Errorf("put domain: %w", err)
	}
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		old, err := scanDomain(db.w(tx).QueryRowContext(ctx, db.q(`SELECT `+domainColumns+` FROM email_domains WHERE org_id = ?`), d.OrgID))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("put domain: %w", err)
		case old.ResendDomainID != nil && d.ResendDomainID != nil && *old.ResendDomainID == *d.ResendDomainID:
			d.ID, d.CreatedAt = old.ID, old.CreatedAt
		default:
			if _, err := db.w(tx).ExecContext(ctx, db.q(`DELETE FROM email_domains WHERE id = ?`), old.ID); err != nil {
				return fmt.Errorf("put domain: %w", err)
			}
			old = nil
		}
		if old != nil {
			_, err = db.w(tx).ExecContext(ctx, db.q(`UPDATE email_domains SET domain_name = ?, status = ?, region = ?, records = ?, updated_at = ?, verified_at = ? WHERE id = ?`),
				d.Name, d.Status, d.Region, recs, ms(now), msPtr(d.VerifiedAt), d.ID)
			d.UpdatedAt = now
			if err != nil {
				return fmt.Errorf("put domain: %w", err)
			}
			return nil
		}
		d.ID, d.CreatedAt, d.UpdatedAt = NewID(), now, now
		return db.insertDomain(ctx, db.w(tx).ExecContext, d, recs, now)
	})
}

// DeleteDomain removes the organization's domain id; NotFound when it is gone.
func (db *DB) DeleteDomain(ctx context.Context, orgID, id string) error {
	res, err := db.exec(ctx, db.q(`DELETE FROM email_domains WHERE id = ? AND org_id = ?`), id, orgID)
	if err != nil {
		return fmt.Errorf("delete domain: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fault.NotFoundf("this organization has no e-mail domain")
	}
	return nil
}
