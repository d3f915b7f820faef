package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// pgStats reads pg_stat_statements of the server's database. The counts
// are per database, so the server must be the only other client of it
// while the campaign runs (the harness's own statements are left out by
// their text).
type pgStats struct{ db *sql.DB }

func openPGStats(ctx context.Context, dbURL string) (*pgStats, error) {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public`); err != nil {
		db.Close()
		return nil, fmt.Errorf("pg_stat_statements (the server needs shared_preload_libraries=pg_stat_statements): %w", err)
	}
	p := &pgStats{db: db}
	if err := p.reset(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("pg_stat_statements (the server needs shared_preload_libraries=pg_stat_statements): %w", err)
	}
	return p, nil
}

func (p *pgStats) close() { p.db.Close() }

func (p *pgStats) reset(ctx context.Context) error {
	_, err := p.db.ExecContext(ctx, `SELECT public.pg_stat_statements_reset()`)
	return err
}

// statement is one normalised statement's count.
type statement struct {
	Calls int64
	Query string
}

// The server's statements in this database; the harness's own mention
// pg_stat_statements and are left out.
const ownStatements = `FROM public.pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND query NOT ILIKE '%pg_stat_statements%'`

// read returns the total of statements executed since the reset and the
// top most frequent ones.
func (p *pgStats) read(ctx context.Context, top int) (int64, []statement, error) {
	var total sql.NullInt64
	if err := p.db.QueryRowContext(ctx, `SELECT SUM(calls) `+ownStatements).Scan(&total); err != nil {
		return 0, nil, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	rows, err := p.db.QueryContext(ctx, `SELECT calls, query `+ownStatements+` ORDER BY calls DESC LIMIT $1`, top)
	if err != nil {
		return 0, nil, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	defer rows.Close()
	var out []statement
	for rows.Next() {
		var s statement
		if err := rows.Scan(&s.Calls, &s.Query); err != nil {
			return 0, nil, err
		}
		s.Query = strings.Join(strings.Fields(s.Query), " ")
		out = append(out, s)
	}
	return total.Int64, out, rows.Err()
}

// perPoll measures the statements one call of poll costs the server (the
// harness's GET /campaigns/{id}), so they can be taken out of the run's
// total: 20 calls, less what the idle server ran meanwhile (its dialer
// steps and heartbeats, measured for 2 s before).
func (p *pgStats) perPoll(ctx context.Context, poll func() error) (float64, error) {
	const n = 20
	idle, err := p.over(ctx, func() error { time.Sleep(2 * time.Second); return nil })
	if err != nil {
		return 0, err
	}
	start := time.Now()
	polled, err := p.over(ctx, func() error {
		for range n {
			if err := poll(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	background := float64(idle) / 2 * time.Since(start).Seconds()
	return max(0, float64(polled)-background) / n, nil
}

// over counts the statements run while f runs.
func (p *pgStats) over(ctx context.Context, f func() error) (int64, error) {
	if err := p.reset(ctx); err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	total, _, err := p.read(ctx, 0)
	return total, err
}
