package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

// BYOKKey is an organization's sealed provider key.
type BYOKKey struct {
	OrgID     string
	Provider  string
	SecretID  string // opaque id shown to clients as <provider>_secret_id
	Sealed    string // secret.Keyring.Seal output; never leaves the server
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PutBYOKKey adds or replaces a provider key; a replaced key gets a new SecretID.
func (db *DB) PutBYOKKey(ctx context.Context, k *BYOKKey) error {
	now := ms(db.now())
	_, err := db.exec(ctx, db.q(`INSERT INTO byok_keys (org_id, provider, secret_id, sealed, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (org_id, provider) DO UPDATE SET secret_id = excluded.secret_id, sealed = excluded.sealed, updated_at = excluded.updated_at`),
		k.OrgID, k.Provider, k.SecretID, k.Sealed, now, now)
	if err != nil {
		return fmt.Errorf("store byok key: %w", err)
	}
	return nil
}

// DeleteBYOKKey removes a provider key and that provider's settings.
func (db *DB) DeleteBYOKKey(ctx context.Context, orgID, provider string) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.w(tx).ExecContext(ctx, db.q(`DELETE FROM byok_keys WHERE org_id = ? AND provider = ?`), orgID, provider)
		if err != nil {
			return fmt.Errorf("delete byok key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.NotFoundf("no %s key is configured", provider)
		}
		if _, err := db.w(tx).ExecContext(ctx, db.q(`DELETE FROM byok_configs WHERE org_id = ? AND provider = ?`), orgID, provider); err != nil {
			return fmt.Errorf("delete byok config: %w", err)
		}
		return nil
	})
}

// BYOKKeys returns an organization's provider keys (sealed).
func (db *DB) BYOKKeys(ctx context.Context, orgID string) ([]BYOKKey, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT org_id, provider, secret_id, sealed, created_at, updated_at FROM byok_keys WHERE org_id = ? ORDER BY provider`), orgID)
	if err != nil {
		return nil, fmt.Errorf("list byok keys: %w", err)
	}
	defer rows.Close()
	var out []BYOKKey
	for rows.Next() {
		var k BYOKKey
		var c, u int64
		if err := rows.Scan(&k.OrgID, &k.Provider, &k.SecretID, &k.Sealed, &c, &u); err != nil {
			return nil, fmt.Errorf("list byok keys: %w", err)
		}
		k.CreatedAt, k.UpdatedAt = fromMS(c), fromMS(u)
		out = append(out, k)
	}
	return out, rows.Err()
}

// BYOKConfigs returns an organization's provider settings as raw JSON objects by provider.
func (db *DB) BYOKConfigs(ctx context.Context, orgID string) (map[string][]byte, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT provider, config FROM byok_configs WHERE org_id = ?`), orgID)
	if err != nil {
		return nil, fmt.Errorf("list byok configs: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var p, c string
		if err := rows.Scan(&p, &c); err != nil {
			return nil, fmt.Errorf("list byok configs: %w", err)
		}
		out[p] = []byte(c)
	}
	return out, rows.Err()
}

// UpdateBYOKConfig reads the stored settings of provider (nil when none), lets merge
// compute the new ones, and stores them, all in one transaction. It fails with
// fault.Invalid when the organization has no key for provider.
func (db *DB) UpdateBYOKConfig(ctx context.Context, orgID, provider string, merge func(old []byte) ([]byte, error)) ([]byte, error) {
	var out []byte
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM byok_keys WHERE org_id = ? AND provider = ?`), orgID, provider).Scan(&n); err != nil {
			return fmt.Errorf("check byok key: %w", err)
		}
		if n == 0 {
			return fault.Invalidf("provider", "has no key configured; add one with POST /byok before setting %s options", provider)
		}
		var old sql.NullString
		err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT config FROM byok_configs WHERE org_id = ? AND provider = ?`), orgID, provider).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read byok config: %w", err)
		}
		var oldBytes []byte
		if old.Valid {
			oldBytes = []byte(old.String)
		}
		out, err = merge(oldBytes)
		if err != nil {
			return err
		}
		_, err = db.w(tx).ExecContext(ctx, db.q(`INSERT INTO byok_configs (org_id, provider, config, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (org_id, provider) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`), orgID, provider, string(out), ms(db.now()))
		if err != nil {
			return fmt.Errorf("store byok config: %w", err)
		}
		return nil
	})
	return out, err
}
