package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

// Number is a registered phone number.
type Number struct {
	ID              string
	OrgID           string
	PhoneNumber     string // E.164, unique across the server: an inbound call routes to one organization
	Name            *string
	AssistantID     *string
	WorkflowID      *string
	TransferTrunkID *string
	Source          *string
	IsActive        bool
	CreatedAt       time.Time
	UpdatedAt       time.Time

	// Read-only, joined from the referenced rows.
	AssistantName     *string
	BusinessName      *string
	WorkflowName      *string
	TransferTrunkName *string
}

const numberSelect = `SELECT n.id, n.org_id, n.phone_number, n.name, n.assistant_id, n.workflow_id, n.transfer_trunk_id, n.source, n.is_active, n.created_at, n.updated_at,
	a.name, a.body, w.name, t.name
	FROM numbers n
	LEFT JOIN assistants a ON a.id = n.assistant_id
	LEFT JOIN workflows w ON w.id = n.workflow_id
	LEFT JOIN sip_trunks t ON t.id = n.transfer_trunk_id`

func scanNumber(row interface{ Scan(...any) error }) (*Number, error) {
	var n Number
	var name, aid, wid, tid, src, aname, abody, wname, tname sql.NullString
	var c, u int64
	if err := row.Scan(&n.ID, &n.OrgID, &n.PhoneNumber, &name, &aid, &wid, &tid, &src, &n.IsActive, &c, &u, &aname, &abody, &wname, &tname); err != nil {
		return nil, err
	}
	n.Name, n.AssistantID, n.WorkflowID, n.TransferTrunkID, n.Source = strPtr(name), strPtr(aid), strPtr(wid), strPtr(tid), strPtr(src)
	n.AssistantName, n.WorkflowName, n.TransferTrunkName = strPtr(aname), strPtr(wname), strPtr(tname)
	if abody.Valid {
		n.BusinessName = businessName(abody.String)
	}
	n.CreatedAt, n.UpdatedAt = fromMS(c), fromMS(u)
	return &n, nil
}

// checkRefs verifies that the ids a number points at belong to its organization.
func (db *DB) checkRefs(ctx context.Context, tx querier, n *Number) error {
	var f fault.Fields
	refs := []struct {
		id    *string
		kind  Kind
		field string
	}{{n.AssistantID, Assistants, "assistant_id"}, {n.WorkflowID, Workflows, "workflow_id"}, {n.TransferTrunkID, SIPTrunks, "transfer_trunk_id"}}
	for _, r := range refs {
		if r.id == nil {
			continue
		}
		if err := db.checkRef(ctx, tx, r.kind, n.OrgID, *r.id, r.field); err != nil {
			if fault.KindOf(err) != fault.Invalid {
				return err
			}
			f.Merge(err)
		}
	}
	return f.Err()
}

// CreateNumber registers a number. A number already registered (by anyone) is a conflict.
func (db *DB) CreateNumber(ctx context.Context, n *Number) error {
	now := db.now().UTC().Truncate(time.Millisecond)
	if n.ID == "" {
		n.ID = NewID()
	}
	n.CreatedAt, n.UpdatedAt = now, now
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := db.checkRefs(ctx, tx, n); err != nil {
			return err
		}
		_, err := db.w(tx).ExecContext(ctx, db.q(`INSERT INTO numbers (id, org_id, phone_number, name, assistant_id, workflow_id, transfer_trunk_id, source, is_active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			n.ID, n.OrgID, n.PhoneNumber, nullStr(n.Name), nullStr(n.AssistantID), nullStr(n.WorkflowID), nullStr(n.TransferTrunkID), nullStr(n.Source), n.IsActive, ms(now), ms(now))
		if err != nil {
			if db.drv.IsUniqueViolation(err) {
				return &fault.Error{Kind: fault.Conflict, Code: "number_exists", Field: "phone_number", Message: fmt.Sprintf("phone_number %s is already registered", n.PhoneNumber)}
			}
			return fmt.Errorf("insert number: %w", err)
		}
		return nil
	})
}

// GetNumber returns one of the organization's numbers.
func (db *DB) GetNumber(ctx context.Context, orgID, id string) (*Number, error) {
	return db.getNumber(ctx, db.read, orgID, id)
}

func (db *DB) getNumber(ctx context.Context, q querier, orgID, id string) (*Number, error) {
	n, err := scanNumber(q.QueryRowContext(ctx, db.q(numberSelect+` WHERE n.id = ? AND n.org_id = ?`), id, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.NotFoundf("number %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get number: %w", err)
	}
	return n, nil
}

// NumberByPhone finds a number by its E.164 spelling, in any organization (inbound routing).
func (db *DB) NumberByPhone(ctx context.Context, phone string) (*Number, error) {
	n, err := scanNumber(db.read.QueryRowContext(ctx, db.q(numberSelect+` WHERE n.phone_number = ?`), phone))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.NotFoundf("number %s not found", phone)
	}
	if err != nil {
		return nil, fmt.Errorf("get number: %w", err)
	}
	return n, nil
}

// ListNumbers returns the organization's numbers, oldest first.
func (db *DB) ListNumbers(ctx context.Context, orgID string) ([]Number, error) {
	rows, err := db.read.QueryContext(ctx, db.q(numberSelect+` WHERE n.org_id = ? ORDER BY n.created_at, n.id`), orgID)
	if err != nil {
		return nil, fmt.Errorf("list numbers: %w", err)
	}
	defer rows.Close()
	out := []Number{}
	for rows.Next() {
		n, err := scanNumber(rows)
		if err != nil {
			return nil, fmt.Errorf("list numbers: %w", err)
		}
		out = append(out, *n)
	}
	return out, rows.Err()
}

// ListNumbersPage returns a window of the organization's numbers, oldest
// first, and how many there are.
func (db *DB) ListNumbersPage(ctx context.Context, orgID string, p Page) ([]Number, int, error) {
	return listPage(ctx, db, "numbers", `SELECT COUNT(*) FROM numbers WHERE org_id = ?`,
		numberSelect+` WHERE n.org_id = ? ORDER BY n.created_at, n.id`, []any{orgID}, p, scanNumber)
}

// UpdateNumber applies change to the stored number and writes it back atomically.
func (db *DB) UpdateNumber(ctx context.Context, orgID, id string, change func(n *Number) error) (*Number, error) {
	var out *Number
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n, err := db.getNumber(ctx, tx, orgID, id)
		if err != nil {
			return err
		}
		if err := change(n); err != nil {
			return err
		}
		n.ID, n.OrgID = id, orgID
		if err := db.checkRefs(ctx, tx, n); err != nil {
			return err
		}
		_, err = db.w(tx).ExecContext(ctx, db.q(`UPDATE numbers SET phone_number = ?, name = ?, assistant_id = ?, workflow_id = ?, transfer_trunk_id = ?, source = ?, is_active = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
			n.PhoneNumber, nullStr(n.Name), nullStr(n.AssistantID), nullStr(n.WorkflowID), nullStr(n.TransferTrunkID), nullStr(n.Source), n.IsActive, ms(db.now()), id, orgID)
		if err != nil {
			if db.drv.IsUniqueViolation(err) {
				return &fault.Error{Kind: fault.Conflict, Code: "number_exists", Field: "phone_number", Message: fmt.Sprintf("phone_number %s is already registered", n.PhoneNumber)}
			}
			return fmt.Errorf("update number: %w", err)
		}
		out, err = db.getNumber(ctx, tx, orgID, id)
		return err
	})
	return out, err
}

// DeleteNumber removes one of the organization's numbers.
func (db *DB) DeleteNumber(ctx context.Context, orgID, id string) error {
	res, err := db.exec(ctx, db.q(`DELETE FROM numbers WHERE id = ? AND org_id = ?`), id, orgID)
	if err != nil {
		return fmt.Errorf("delete number: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fault.NotFoundf("number %s not found", id)
	}
	return nil
}
