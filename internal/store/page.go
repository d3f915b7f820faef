package store

import (
	"context"
	"fmt"
)

// Page selects a window of a list: Limit rows after skipping Offset, in the
// list's stable order (every paged query ends its ORDER BY with the id).
type Page struct {
	Limit  int
	Offset int
}

// listPage counts the rows matching a list and reads one page of them.
// countQuery is a SELECT COUNT(*) and pageQuery a SELECT ending in ORDER BY;
// both take args, and pageQuery gets LIMIT and OFFSET appended. what names
// the list in errors ("numbers").
func listPage[T any](ctx context.Context, db *DB, what, countQuery, pageQuery string, args []any, p Page, scan func(row interface{ Scan(...any) error }) (*T, error)) ([]T, int, error) {
	var total int
	if err := db.read.QueryRowContext(ctx, db.q(countQuery), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count %s: %w", what, err)
	}
	rows, err := db.read.QueryContext(ctx, db.q(pageQuery+` LIMIT ? OFFSET ?`), append(args[:len(args):len(args)], p.Limit, p.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list %s: %w", what, err)
		}
		out = append(out, *v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", what, err)
	}
	return out, total, nil
}
