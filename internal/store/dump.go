package store

import (
	"context"
	"fmt"
	"strings"
)

// Dump returns every row of every table as tab-separated text. It is for tests
// and diagnostics (the secrets-at-rest test searches it for clear text).
func (db *DB) Dump(ctx context.Context) (string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
	if db.drv.Name() == "postgres" {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`
	}
	tables, err := db.stringsTx(ctx, db.read, q)
	if err != nil {
		return "", fmt.Errorf("list tables: %w", err)
	}
	var b strings.Builder
	for _, tbl := range tables {
		rows, err := db.read.QueryContext(ctx, "SELECT * FROM "+tbl)
		if err != nil {
			return "", fmt.Errorf("dump %s: %w", tbl, err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		fmt.Fprintf(&b, "== %s\n", tbl)
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return "", fmt.Errorf("dump %s: %w", tbl, err)
			}
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%v\t", v)
			}
			b.WriteByte('\n')
		}
		if err := rows.Close(); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}
