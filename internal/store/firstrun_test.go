package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/postgres"
	"github.com/parley-voice/parley/internal/store/sqlite"
	"github.com/parley-voice/parley/internal/store/storetest"
)

// TestCreateFirstOrg: nodes starting together on one empty database (here
// several store handles, on PostgreSQL each with its own connection pool)
// create exactly one first organization, and a later start creates none.
func TestCreateFirstOrg(t *testing.T) {
	ctx := context.Background()
	for name, open := range map[string]func(t *testing.T) []*store.DB{
		"sqlite": func(t *testing.T) []*store.DB {
			db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "parley.db")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return []*store.DB{db, db, db, db}
		},
		"postgres": func(t *testing.T) []*store.DB {
			url := storetest.PostgresSchema(t)
			var dbs []*store.DB
			for range 4 {
				db, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 2})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				dbs = append(dbs, db)
			}
			return dbs
		},
	} {
		t.Run(name, func(t *testing.T) {
			dbs := open(t)
			if _, err := dbs[0].Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			created := make([]bool, len(dbs))
			errs := make([]error, len(dbs))
			for i, db := range dbs {
				wg.Go(func() {
					o := &store.Org{Name: fmt.Sprintf("node %d", i), MinutesBalance: 60}
					k := &store.APIKey{ID: fmt.Sprintf("first-key-%d", i), Hash: "h", Prefix: "p", Name: "first run"}
					created[i], errs[i] = db.CreateFirstOrg(ctx, o, k)
				})
			}
			wg.Wait()
			n := 0
			for i := range dbs {
				if errs[i] != nil {
					t.Fatalf("node %d: %v", i, errs[i])
				}
				if created[i] {
					n++
				}
			}
			orgs, err := dbs[0].ListOrgs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 || len(orgs) != 1 || orgs[0].MinutesBalance != 60 {
				t.Fatalf("%d nodes created an organization; %d stored (%+v), want one with 60 minutes", n, len(orgs), orgs)
			}
			keys, err := dbs[0].ListAPIKeys(ctx, orgs[0].ID)
			if err != nil || len(keys) != 1 {
				t.Fatalf("first organization's keys: %v, %v", keys, err)
			}
			again, err := dbs[1].CreateFirstOrg(ctx, &store.Org{Name: "later"}, nil)
			if err != nil || again {
				t.Fatalf("a start with an organization present created one: %v, %v", again, err)
			}
		})
	}
}
