// Package store persists Parley's control-plane data: organizations and their
// API keys, assistants and the other configuration resources, numbers,
// campaigns, calls and usage.
//
// There is one store, *DB, written once against database/sql, and one driver
// contract, Driver, that says what differs between databases: placeholder
// syntax, how a unique-constraint violation looks, and the migrations. Two
// drivers implement it: store/sqlite (the embedded default) and store/postgres
// (pgx, for multi-node deployments). Both carry identically numbered
// migrations, and store/storetest is the behavioural suite every driver runs.
//
// Every method that reads or writes an organization's data takes the
// organization id and puts it in the WHERE clause: a row of another
// organization is indistinguishable from a missing one (fault.NotFound).
// Timestamps are stored as Unix milliseconds (UTC) in both dialects.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"
)

// Driver is what a database engine contributes to the store.
type Driver interface {
	// Name is "sqlite" or "postgres".
	Name() string
	// Placeholder returns the n-th (1-based) bind parameter, "?" or "$n".
	Placeholder(n int) string
	// IsUniqueViolation reports whether err is a unique-constraint violation.
	IsUniqueViolation(err error) bool
	// Migrations holds NNNN_name.sql files, applied in order, each in its own transaction.
	Migrations() fs.FS
	// IsTransient reports whether err is worth retrying as it is: a
	// deadlock or serialization failure, a busy database.
	IsTransient(err error) bool
	// SkipLocked is appended to a SELECT that claims rows inside a write
	// transaction, so concurrent claimers take disjoint rows without waiting:
	// "FOR UPDATE SKIP LOCKED" on PostgreSQL; "" on SQLite, whose single
	// writer already runs claims one at a time.
	SkipLocked() string
}

// DB is the store. Create it with Open; it is safe for concurrent use.
type DB struct {
	drv    Driver
	write  *sql.DB    // the single writer on SQLite; the pool on PostgreSQL
	readDB *sql.DB    // readers; may be the same pool as write
	read   *stmtCache // prepared read statements over readDB
	now    func() time.Time

	// commits group-commits writes on a single-connection database; nil
	// when every write has a transaction of its own.
	commits      *committer
	writeTimeout time.Duration
	stats        writeStats

	mu      sync.Mutex
	rebound map[string]string
}

// Config configures a DB.
type Config struct {
	// Write receives every write transaction. On SQLite it should allow one connection.
	Write *sql.DB
	// Read serves reads. Nil means Write.
	Read *sql.DB
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// GroupCommit batches concurrent write transactions into one commit
	// (each in its own savepoint). Set it when Write has one connection.
	GroupCommit bool
	// WriteTimeout bounds a write transaction; zero means WriteTimeout.
	WriteTimeout time.Duration
}

// Open wraps connections opened by a driver package. It does not migrate; call Migrate.
func Open(drv Driver, cfg Config) *DB {
	db := &DB{drv: drv, write: cfg.Write, readDB: cfg.Read, now: cfg.Now, writeTimeout: cfg.WriteTimeout, rebound: map[string]string{}}
	if db.writeTimeout <= 0 {
		db.writeTimeout = WriteTimeout
	}
	if cfg.GroupCommit {
		db.commits = newCommitter(db.write)
	}
	if db.readDB == nil {
		db.readDB = db.write
	}
	db.read = newStmtCache(db.readDB)
	if db.now == nil {
		db.now = time.Now
	}
	return db
}

// Driver returns the driver's name.
func (db *DB) Driver() string { return db.drv.Name() }

// Writer is the connection pool every write goes through (one connection on
// SQLite). The job queue shares it, so that jobs are queued in the store's
// own transactions and, on SQLite, writers never contend for the file lock.
func (db *DB) Writer() *sql.DB { return db.write }

// Close commits the writes still queued and closes the connection pools.
func (db *DB) Close() error {
	if db.commits != nil {
		db.commits.stop()
	}
	if db.readDB == db.write {
		return db.read.close()
	}
	return errors.Join(db.write.Close(), db.read.close())
}

// Ping checks that the database answers and returns how long it took.
func (db *DB) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	var one int
	err := db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	return time.Since(start), err
}

// q rewrites "?" placeholders into the driver's syntax, caching the result.
func (db *DB) q(query string) string {
	if db.drv.Placeholder(1) == "?" {
		return query
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if r, ok := db.rebound[query]; ok {
		return r
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteString(db.drv.Placeholder(n))
			continue
		}
		b.WriteByte(query[i])
	}
	r := b.String()
	db.rebound[query] = r
	return r
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Migrate applies the driver's migrations that have not run yet and returns how many ran.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	entries, err := fs.ReadDir(db.drv.Migrations(), ".")
	if err != nil {
		return 0, fmt.Errorf("read migrations: %w", err)
	}
	type mig struct {
		version int
		name    string
	}
	var migs []mig
	for _, e := range entries {
		var v int
		if _, err := fmt.Sscanf(e.Name(), "%04d_", &v); err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return 0, fmt.Errorf("migration file %q: name must be NNNN_description.sql", e.Name())
		}
		migs = append(migs, mig{v, e.Name()})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	applied := 0
	for _, m := range migs {
		err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			body, err := fs.ReadFile(db.drv.Migrations(), m.name)
			if err != nil {
				return err
			}
			for _, stmt := range splitStatements(string(body)) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", m.name, err)
				}
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`), m.version, m.name, db.now().UnixMilli()); err != nil {
				return err
			}
			applied++
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("migrate: %w", err)
		}
	}
	return applied, nil
}

// splitStatements splits a migration on semicolons at line ends. Migrations
// keep to plain DDL, so no statement contains such a semicolon inside it.
func splitStatements(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// NewID returns a random UUID v4 string.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ms converts a time to stored milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS converts stored milliseconds to a UTC time.
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func msPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

func strPtr(v sql.NullString) *string {
	if !v.Valid {
		return nil
	}
	s := v.String
	return &s
}

func nullStr(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}
