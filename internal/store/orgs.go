package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

// Org is an organization (a tenant).
type Org struct {
	ID                    string
	Name                  string
	ParentID              *string
	Email                 *string // contact address (SDK-OLD); optional
	MinutesBalance        float64
	ContentRetentionDays  *int
	MetadataRetentionDays *int
	HasLocalModelsAccess  bool
	// WebhookURL receives the organization's webhooks (spec §9.1: events of
	// assistants without a webhook_url, and assistant-request for numbers
	// without an assistant). WebhookSecret is sealed.
	WebhookURL    *string
	WebhookSecret *string
	// MaxConcurrentCampaignCalls caps the organization's campaign calls at
	// once below the server's cap; nil leaves the server's.
	MaxConcurrentCampaignCalls *int
	CreatedAt, UpdatedAt       time.Time
}

// OrgStats are an organization's live counters.
type OrgStats struct {
	MonthlyUsageMinutes float64
	ActiveNumbers       int
	ActiveAgents        int
	ActiveCalls         int
}

// APIKey is the stored identity of a bearer key; the key itself is never stored.
type APIKey struct {
	ID        string // lookup id derived from the key
	OrgID     string
	Hash      string // keyed hash of the full key
	Prefix    string // first characters, for display
	Name      string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// CreateOrg inserts an organization and, when key is not nil, its first API key, atomically.
func (db *DB) CreateOrg(ctx context.Context, o *Org, key *APIKey) error {
	now := db.now()
	if o.ID == "" {
		o.ID = NewID()
	}
	o.CreatedAt, o.UpdatedAt = now.UTC().Truncate(time.Millisecond), now.UTC().Truncate(time.Millisecond)
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if o.ParentID != nil {
			var n int
			if err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM organizations WHERE id = ?`), *o.ParentID).Scan(&n); err != nil {
				return fmt.Errorf("check parent organization: %w", err)
			}
			if n == 0 {
				return fault.Invalidf("parent_org_id", "references an organization that does not exist")
			}
		}
		return db.insertOrg(ctx, tx, o, key, now)
	})
}

// insertOrg inserts o and, when key is not nil, its first API key.
func (db *DB) insertOrg(ctx context.Context, tx *sql.Tx, o *Org, key *APIKey, now time.Time) error {
	_, err := db.w(tx).ExecContext(ctx, db.q(`INSERT INTO organizations (id, name, parent_id, email, minutes_balance, content_retention_days, metadata_retention_days, has_local_models_access, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		o.ID, o.Name, nullStr(o.ParentID), nullStr(o.Email), o.MinutesBalance, nullInt(o.ContentRetentionDays), nullInt(o.MetadataRetentionDays), o.HasLocalModelsAccess, ms(now), ms(now))
	if err != nil {
		return fmt.Errorf("insert organization: %w", err)
	}
	if key != nil {
		key.OrgID = o.ID
		return db.insertKey(ctx, tx, key)
	}
	return nil
}

func (db *DB) insertKey(ctx context.Context, tx querier, k *APIKey) error {
	now := db.now()
	k.CreatedAt = now.UTC().Truncate(time.Millisecond)
	_, err := tx.ExecContext(ctx, db.q(`INSERT INTO api_keys (id, org_id, hash, prefix, name, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		k.ID, k.OrgID, k.Hash, k.Prefix, k.Name, ms(now))
	if err != nil {
		if db.drv.IsUniqueViolation(err) {
			return fault.Conflictf("api_key_exists", "an API key with this identity already exists")
		}
		return fmt.Errorf("insert api key: %w", err)
	}
	return nil
}

// CreateAPIKey stores a new key for an existing organization.
func (db *DB) CreateAPIKey(ctx context.Context, k *APIKey) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM organizations WHERE id = ?`), k.OrgID).Scan(&n); err != nil {
			return fmt.Errorf("check organization: %w", err)
		}
		if n == 0 {
			return fault.NotFoundf("organization %s not found", k.OrgID)
		}
		return db.insertKey(ctx, tx, k)
	})
}

// APIKeyByID returns a key by its lookup id, revoked or not.
func (db *DB) APIKeyByID(ctx context.Context, id string) (*APIKey, error) {
	var k APIKey
	var created int64
	var revoked sql.NullInt64
	err := db.read.QueryRowContext(ctx, db.q(`SELECT id, org_id, hash, prefix, name, created_at, revoked_at FROM api_keys WHERE id = ?`), id).
		Scan(&k.ID, &k.OrgID, &k.Hash, &k.Prefix, &k.Name, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.NotFoundf("API key not found")
	}
	if err != nil {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	k.CreatedAt, k.RevokedAt = fromMS(created), fromNullMS(revoked)
	return &k, nil
}

// ListAPIKeys returns an organization's keys, newest first.
func (db *DB) ListAPIKeys(ctx context.Context, orgID string) ([]APIKey, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT id, org_id, hash, prefix, name, created_at, revoked_at FROM api_keys WHERE org_id = ? ORDER BY created_at DESC, id`), orgID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		var k APIKey
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&k.ID, &k.OrgID, &k.Hash, &k.Prefix, &k.Name, &created, &revoked); err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		k.CreatedAt, k.RevokedAt = fromMS(created), fromNullMS(revoked)
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey marks a key revoked. Revoking twice is not an error.
func (db *DB) RevokeAPIKey(ctx context.Context, id string) error {
	res, err := db.exec(ctx, db.q(`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`), ms(db.now()), id)
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fault.NotFoundf("API key %s not found", id)
	}
	return nil
}

// unsettledMinutes is the usage not yet folded into an organization's stored
// balance; balanceOf is an organization's balance (o is its alias).
const unsettledMinutes = `(SELECT COALESCE(SUM(u.minutes_used), 0) FROM usage_logs u WHERE u.billed_org_id = %s.id AND u.settled_at IS NULL)`

func balanceOf(o string) string { return o + ".minutes_balance - " + fmt.Sprintf(unsettledMinutes, o) }

var orgColumns = `id, name, parent_id, email, ` + balanceOf("organizations") + ` AS minutes_balance, content_retention_days, metadata_retention_days, has_local_models_access, webhook_url, webhook_secret, max_concurrent_campaign_calls, created_at, updated_at`

func scanOrg(row interface{ Scan(...any) error }) (*Org, error) {
	var o Org
	var parent, email, hookURL, hookSecret sql.NullString
	var content, metadata, campaignCap sql.NullInt64
	var created, updated int64
	if err := row.Scan(&o.ID, &o.Name, &parent, &email, &o.MinutesBalance, &content, &metadata, &o.HasLocalModelsAccess, &hookURL, &hookSecret, &campaignCap, &created, &updated); err != nil {
		return nil, err
	}
	o.ParentID, o.Email, o.ContentRetentionDays, o.MetadataRetentionDays = strPtr(parent), strPtr(email), intPtr(content), intPtr(metadata)
	o.WebhookURL, o.WebhookSecret, o.MaxConcurrentCampaignCalls = strPtr(hookURL), strPtr(hookSecret), intPtr(campaignCap)
	o.CreatedAt, o.UpdatedAt = fromMS(created), fromMS(updated)
	return &o, nil
}

// GetOrg returns an organization.
func (db *DB) GetOrg(ctx context.Context, id string) (*Org, error) {
	o, err := scanOrg(db.read.QueryRowContext(ctx, db.q(`SELECT `+orgColumns+` FROM organizations WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.NotFoundf("organization %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get organization: %w", err)
	}
	return o, nil
}

// ListOrgs returns every organization, oldest first (for administration).
func (db *DB) ListOrgs(ctx context.Context) ([]Org, error) {
	return db.listOrgs(ctx, `SELECT `+orgColumns+` FROM organizations ORDER BY created_at, id`)
}

// ChildOrgsPage returns a window of an organization's child organizations,
// oldest first, and how many there are.
func (db *DB) ChildOrgsPage(ctx context.Context, parentID string, p Page) ([]Org, int, error) {
	return listPage(ctx, db, "child organizations", `SELECT COUNT(*) FROM organizations WHERE parent_id = ?`,
		`SELECT `+orgColumns+` FROM organizations WHERE parent_id = ? ORDER BY created_at, id`, []any{parentID}, p, scanOrg)
}

func (db *DB) listOrgs(ctx context.Context, query string, args ...any) ([]Org, error) {
	rows, err := db.read.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	defer rows.Close()
	var out []Org
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, fmt.Errorf("list organizations: %w", err)
		}
		out = append(out, *o)
	}
	return out, rows.Err()
}

// SetMinutesBalance sets an organization's balance.
func (db *DB) SetMinutesBalance(ctx context.Context, orgID string, minutes float64) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// The stored balance is what is left once unsettled usage is taken.
		res, err := db.w(tx).ExecContext(ctx, db.q(`UPDATE organizations SET minutes_balance = ? + `+fmt.Sprintf(unsettledMinutes, "organizations")+`, updated_at = ? WHERE id = ?`),
			minutes, ms(db.now()), orgID)
		if err != nil {
			return fmt.Errorf("set minutes balance: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.NotFoundf("organization %s not found", orgID)
		}
		return nil
	})
}

// AddMinutes adds minutes (negative: takes them) to an organization's
// balance and returns the new balance.
func (db *DB) AddMinutes(ctx context.Context, orgID string, minutes float64) (float64, error) {
	var balance float64
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.w(tx).ExecContext(ctx, db.q(`UPDATE organizations SET minutes_balance = minutes_balance + ?, updated_at = ? WHERE id = ?`), minutes, ms(db.now()), orgID)
		if err != nil {
			return fmt.Errorf("add minutes: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.NotFoundf("organization %s not found", orgID)
		}
		return db.w(tx).QueryRowContext(ctx, db.q(`SELECT `+balanceOf("o")+` FROM organizations o WHERE o.id = ?`), orgID).Scan(&balance)
	})
	return balance, err
}

// PayerBalance is the balance calls of an organization are billed against:
// its own, or its parent's for a child organization.
func (db *DB) PayerBalance(ctx context.Context, orgID string) (float64, error) {
	var balance float64
	err := db.read.QueryRowContext(ctx, db.q(`SELECT `+balanceOf("p")+` FROM organizations o JOIN organizations p ON p.id = COALESCE(o.parent_id, o.id) WHERE o.id = ?`), orgID).Scan(&balance)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fault.NotFoundf("organization %s not found", orgID)
	}
	if err != nil {
		return 0, fmt.Errorf("read the paying organization's balance: %w", err)
	}
	return balance, nil
}

// SettleUsage folds unsettled usage into the paying organizations' stored
// balances, in one transaction, and returns how many usage logs it settled.
// The balances people see do not change: they already counted that usage.
// Concurrent settlers settle each log once (it is marked in the same
// statement that reads it).
func (db *DB) SettleUsage(ctx context.Context) (int, error) {
	n := 0
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rows, err := db.w(tx).QueryContext(ctx, db.q(`UPDATE usage_logs SET settled_at = ? WHERE settled_at IS NULL AND billed_org_id IS NOT NULL RETURNING billed_org_id, minutes_used`), ms(db.now()))
		if err != nil {
			return fmt.Errorf("settle usage: %w", err)
		}
		owed := map[string]float64{}
		for rows.Next() {
			var org string
			var m sql.NullFloat64
			if err := rows.Scan(&org, &m); err != nil {
				rows.Close()
				return fmt.Errorf("settle usage: %w", err)
			}
			owed[org] += m.Float64
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("settle usage: %w", err)
		}
		orgs := make([]string, 0, len(owed))
		for org := range owed {
			orgs = append(orgs, org)
		}
		sort.Strings(orgs) // one lock order for every settler
		for _, org := range orgs {
			if _, err := db.w(tx).ExecContext(ctx, db.q(`UPDATE organizations SET minutes_balance = minutes_balance - ? WHERE id = ?`), owed[org], org); err != nil {
				return fmt.Errorf("settle the usage of organization %s: %w", org, err)
			}
		}
		return nil
	})
	return n, err
}

// OrgWebhook returns the organization's webhook URL and sealed secret (nil
// when unset), a lighter read than GetOrg for the call path.
func (db *DB) OrgWebhook(ctx context.Context, orgID string) (url, sealedSecret *string, err error) {
	var u, sec sql.NullString
	err = db.read.QueryRowContext(ctx, db.q(`SELECT webhook_url, webhook_secret FROM organizations WHERE id = ?`), orgID).Scan(&u, &sec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fault.NotFoundf("organization %s not found", orgID)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read the organization's webhook: %w", err)
	}
	return strPtr(u), strPtr(sec), nil
}

// SetWebhook sets (nil clears) the organization's webhook URL and sealed secret.
func (db *DB) SetWebhook(ctx context.Context, orgID string, url, sealedSecret *string) error {
	res, err := db.exec(ctx, db.q(`UPDATE organizations SET webhook_url = ?, webhook_secret = ?, updated_at = ? WHERE id = ?`), nullStr(url), nullStr(sealedSecret), ms(db.now()), orgID)
	if err != nil {
		return fmt.Errorf("set webhook: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fault.NotFoundf("organization %s not found", orgID)
	}
	return nil
}

// SetRetention sets an organization's retention periods in days.
func (db *DB) SetRetention(ctx context.Context, orgID string, contentDays, metadataDays int) error {
	res, err := db.exec(ctx, db.q(`UPDATE organizations SET content_retention_days = ?, metadata_retention_days = ?, updated_at = ? WHERE id = ?`), contentDays, metadataDays, ms(db.now()), orgID)
	if err != nil {
		return fmt.Errorf("set retention: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fault.NotFoundf("organization %s not found", orgID)
	}
	return nil
}

// Stats computes an organization's counters; the month starts at monthStart.
func (db *DB) Stats(ctx context.Context, orgID string, monthStart time.Time) (OrgStats, error) {
	var s OrgStats
	var usageSec sql.NullInt64
	err := db.read.QueryRowContext(ctx, db.q(`SELECT
		(SELECT COALESCE(SUM(duration_sec), 0) FROM usage_logs WHERE org_id = ? AND created_at >= ?),
		(SELECT COUNT(*) FROM numbers WHERE org_id = ? AND is_active = ?),
		(SELECT COUNT(*) FROM assistants WHERE org_id = ? AND is_active = ?),
		(SELECT COUNT(*) FROM calls WHERE org_id = ? AND status IN ('connecting', 'ringing', 'dialing', 'in-progress'))`),
		orgID, ms(monthStart), orgID, true, orgID, true, orgID).Scan(&usageSec, &s.ActiveNumbers, &s.ActiveAgents, &s.ActiveCalls)
	if err != nil {
		return s, fmt.Errorf("organization stats: %w", err)
	}
	s.MonthlyUsageMinutes = float64(usageSec.Int64) / 60
	return s, nil
}

func nullInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func intPtr(v sql.NullInt64) *int {
	if !v.Valid {
		return nil
	}
	i := int(v.Int64)
	return &i
}
