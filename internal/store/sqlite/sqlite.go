// Package sqlite is the store's embedded driver: one SQLite file in WAL mode,
// through the pure-Go modernc.org/sqlite (no cgo).
//
// SQLite allows one writer at a time. The driver therefore opens two pools on
// the same file: a writer with a single connection whose transactions begin
// IMMEDIATE (so they never fail on a lock upgrade), and a reader pool that runs
// concurrently with it thanks to WAL. WAL needs a local filesystem, not NFS.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"

	"github.com/parley-voice/parley/internal/store"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Driver implements store.Driver for SQLite.
type Driver struct{}

var _ store.Driver = Driver{}

// Name implements store.Driver.
func (Driver) Name() string { return "sqlite" }

// Placeholder implements store.Driver.
func (Driver) Placeholder(int) string { return "?" }

// IsUniqueViolation implements store.Driver.
func (Driver) IsUniqueViolation(err error) bool {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() {
		case 2067, 1555: // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
			return true
		}
	}
	return false
}

// Migrations implements store.Driver.
func (Driver) Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}

// IsTransient implements store.Driver: the database was busy (another
// process held the file lock past the busy timeout).
func (Driver) IsTransient(err error) bool {
	var coded interface{ Code() int }
	return errors.As(err, &coded) && coded.Code()&0xff == 5 // SQLITE_BUSY and its extended codes
}

// SkipLocked implements store.Driver: write transactions begin IMMEDIATE on
// the single writer connection, so claims never overlap.
func (Driver) SkipLocked() string { return "" }

// Config configures the SQLite store.
type Config struct {
	// Path is the database file; its directory is created if needed.
	Path string
	// ReadConns caps the reader pool. Zero means 2×GOMAXPROCS (at least 4).
	ReadConns int
}

// Open opens (creating if needed) the database file. It does not migrate.
func Open(ctx context.Context, cfg Config) (*store.DB, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: create data directory: %w", err)
		}
	}
	pragmas := "_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	base := "file:" + (&url.URL{Path: cfg.Path}).EscapedPath()
	write, err := sql.Open("sqlite", base+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open writer: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	read, err := sql.Open("sqlite", base+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	n := cfg.ReadConns
	if n == 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	return store.Open(Driver{}, store.Config{Write: write, Read: read, GroupCommit: true}), nil
}
