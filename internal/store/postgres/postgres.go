// Package postgres is the store's driver for PostgreSQL, the engine for
// multi-node deployments, through pgx's database/sql adapter.
//
// All nodes share one database; the schema is migrated by whichever node starts
// first (migrations run in transactions and record their version, so a second
// node finds them applied).
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/parley-voice/parley/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Driver implements store.Driver for PostgreSQL.
type Driver struct{}

var _ store.Driver = Driver{}

// Name implements store.Driver.
func (Driver) Name() string { return "postgres" }

// Placeholder implements store.Driver.
func (Driver) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

// IsUniqueViolation implements store.Driver.
func (Driver) IsUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

// IsTransient implements store.Driver: a serialization failure or a
// deadlock, which succeed when run again.
func (Driver) IsTransient(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40001" || pg.Code == "40P01")
}

// Migrations implements store.Driver.
func (Driver) Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}

// SkipLocked implements store.Driver.
func (Driver) SkipLocked() string { return "FOR UPDATE SKIP LOCKED" }

// Config configures the PostgreSQL store.
type Config struct {
	// URL is a postgres:// connection URL. Extra query parameters such as
	// search_path are passed to the server as run-time parameters.
	URL string
	// MaxConns caps the pool. Zero means 16.
	MaxConns int
}

// Open connects to the database. It does not migrate.
func Open(ctx context.Context, cfg Config) (*store.DB, error) {
	db, err := sql.Open("pgx", cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	n := cfg.MaxConns
	if n == 0 {
		n = 16
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	return store.Open(Driver{}, store.Config{Write: db}), nil
}
