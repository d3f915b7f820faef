// Package storetest is the behavioural suite every store driver runs, and the
// helpers tests use to get a fresh, migrated store on SQLite or PostgreSQL.
//
// PostgreSQL tests need a server: set PARLEY_TEST_POSTGRES_URL to a database
// URL the tests may create schemas in (scripts/test.sh starts a throwaway
// server and sets it). Without it PostgreSQL tests skip, unless
// PARLEY_REQUIRE_POSTGRES=1, when they fail.
package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/postgres"
	"github.com/parley-voice/parley/internal/store/sqlite"
)

// Opener opens a fresh, empty, migrated store for one test.
type Opener func(t testing.TB) *store.DB

// Engines returns the openers available in this environment by name:
// "sqlite" always, "postgres" when PARLEY_TEST_POSTGRES_URL is set.
func Engines(t testing.TB) map[string]Opener {
	out := map[string]Opener{"sqlite": OpenSQLite}
	if PostgresURL(t) != "" {
		out["postgres"] = OpenPostgres
	}
	return out
}

// PostgresURL returns the test server URL, failing the test when PostgreSQL is
// required but not configured.
func PostgresURL(t testing.TB) string {
	u := os.Getenv("PARLEY_TEST_POSTGRES_URL")
	if u == "" && os.Getenv("PARLEY_REQUIRE_POSTGRES") == "1" {
		t.Fatal("PARLEY_REQUIRE_POSTGRES=1 but PARLEY_TEST_POSTGRES_URL is not set")
	}
	return u
}

// OpenSQLite opens a migrated SQLite store in a temporary directory.
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "parley.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// OpenPostgres creates a schema of its own on the test server, opens a migrated
// store in it, and drops the schema when the test ends.
func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), postgres.Config{URL: PostgresSchema(t), MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(fmt.Errorf("migrate: %w", err))
	}
	return db
}

// PostgresSchema creates an empty schema of its own on the test server and
// returns a URL that uses it (search_path); the schema is dropped when the
// test ends. It skips the test when no server is configured.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	if base == "" {
		t.Skip("PARLEY_TEST_POSTGRES_URL not set")
	}
	ctx := context.Background()
	schema := "t_" + strings.ReplaceAll(store.NewID(), "-", "")[:20]
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err == nil {
			admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			admin.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
