package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

// Kind names a configuration resource kept as a JSON document.
type Kind uint8

// Document kinds.
const (
	KindUnknown Kind = iota
	Assistants
	ToolTemplates
	AnalysisTemplates
	Workflows
	MCPServers
	SIPTrunks
)

var kindInfo = [...]struct{ table, noun string }{
	{"", "resource"},
	{"assistants", "assistant"},
	{"tool_templates", "tool template"},
	{"analysis_templates", "analysis template"},
	{"workflows", "workflow"},
	{"mcp_servers", "MCP server"},
	{"sip_trunks", "SIP trunk"},
}

// Noun is the human name of one resource of the kind ("assistant").
func (k Kind) Noun() string { return kindInfo[k].noun }

func (k Kind) String() string { return kindInfo[k].table }

// Doc is a configuration resource: a few indexed columns plus its canonical JSON body.
type Doc struct {
	Kind      Kind
	ID        string
	OrgID     string
	Name      string
	Active    bool
	Body      json.RawMessage // canonical document without id, org_id and timestamps
	Secret    *string         // sealed write-only values (trunk password, MCP headers); never returned
	CreatedAt time.Time
	UpdatedAt time.Time
}

const docColumns = `id, org_id, name, is_active, body, secret, created_at, updated_at`

func scanDoc(k Kind, row interface{ Scan(...any) error }) (*Doc, error) {
	d := Doc{Kind: k}
	var body string
	var secret sql.NullString
	var c, u int64
	if err := row.Scan(&d.ID, &d.OrgID, &d.Name, &d.Active, &body, &secret, &c, &u); err != nil {
		return nil, err
	}
	d.Body, d.Secret, d.CreatedAt, d.UpdatedAt = json.RawMessage(body), strPtr(secret), fromMS(c), fromMS(u)
	return &d, nil
}

// CreateDoc inserts d, assigning its ID (when empty) and timestamps.
func (db *DB) CreateDoc(ctx context.Context, d *Doc) error {
	now := db.now().UTC().Truncate(time.Millisecond)
	if d.ID == "" {
		d.ID = NewID()
	}
	d.CreatedAt, d.UpdatedAt = now, now
	_, err := db.exec(ctx, db.q(`INSERT INTO `+d.Kind.String()+` (`+docColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		d.ID, d.OrgID, d.Name, d.Active, string(d.Body), nullStr(d.Secret), ms(now), ms(now))
	if err != nil {
		if db.drv.IsUniqueViolation(err) {
			return fault.Conflictf("duplicate_name", "a %s named %q already exists", d.Kind.Noun(), d.Name)
		}
		return fmt.Errorf("insert %s: %w", d.Kind.Noun(), err)
	}
	return nil
}

// GetDoc returns one document of the organization.
func (db *DB) GetDoc(ctx context.Context, k Kind, orgID, id string) (*Doc, error) {
	d, err := scanDoc(k, db.read.QueryRowContext(ctx, db.q(`SELECT `+docColumns+` FROM `+k.String()+` WHERE id = ? AND org_id = ?`), id, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.NotFoundf("%s %s not found", k.Noun(), id)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", k.Noun(), err)
	}
	return d, nil
}

// AllDocs returns every document of a kind, of every organization, oldest
// first (startup maintenance such as sealing secrets left in clear).
func (db *DB) AllDocs(ctx context.Context, k Kind) ([]Doc, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+docColumns+` FROM `+k.String()+` ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list all %s: %w", k, err)
	}
	defer rows.Close()
	var out []Doc
	for rows.Next() {
		d, err := scanDoc(k, rows)
		if err != nil {
			return nil, fmt.Errorf("list all %s: %w", k, err)
		}
		out = append(out, *d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list all %s: %w", k, err)
	}
	return out, nil
}

// ListDocsPage returns a window of the organization's documents, oldest
// first, and how many there are.
func (db *DB) ListDocsPage(ctx context.Context, k Kind, orgID string, p Page) ([]Doc, int, error) {
	return listPage(ctx, db, k.String(), `SELECT COUNT(*) FROM `+k.String()+` WHERE org_id = ?`,
		`SELECT `+docColumns+` FROM `+k.String()+` WHERE org_id = ? ORDER BY created_at, id`, []any{orgID}, p,
		func(row interface{ Scan(...any) error }) (*Doc, error) { return scanDoc(k, row) })
}

// UpdateDoc reads the current document, lets change compute the new one, and
// writes it back in one transaction. change may return a fault to abort.
// The ID, OrgID, Kind and CreatedAt of the result are kept from the stored row.
func (db *DB) UpdateDoc(ctx context.Context, k Kind, orgID, id string, change func(cur *Doc) (*Doc, error)) (*Doc, error) {
	var out *Doc
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		cur, err := scanDoc(k, db.w(tx).QueryRowContext(ctx, db.q(`SELECT `+docColumns+` FROM `+k.String()+` WHERE id = ? AND org_id = ?`), id, orgID))
		if errors.Is(err, sql.ErrNoRows) {
			return fault.NotFoundf("%s %s not found", k.Noun(), id)
		}
		if err != nil {
			return fmt.Errorf("get %s: %w", k.Noun(), err)
		}
		next, err := change(cur)
		if err != nil {
			return err
		}
		next.Kind, next.ID, next.OrgID, next.CreatedAt = k, cur.ID, cur.OrgID, cur.CreatedAt
		next.UpdatedAt = db.now().UTC().Truncate(time.Millisecond)
		_, err = db.w(tx).ExecContext(ctx, db.q(`UPDATE `+k.String()+` SET name = ?, is_active = ?, body = ?, secret = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
			next.Name, next.Active, string(next.Body), nullStr(next.Secret), ms(next.UpdatedAt), id, orgID)
		if err != nil {
			if db.drv.IsUniqueViolation(err) {
				return fault.Conflictf("duplicate_name", "a %s named %q already exists", k.Noun(), next.Name)
			}
			return fmt.Errorf("update %s: %w", k.Noun(), err)
		}
		out = next
		return nil
	})
	return out, err
}

// DeleteDoc deletes a document. Kinds that others depend on refuse with fault.Conflict
// while in use: a workflow attached to numbers, an MCP server referenced by an
// assistant's tools, an assistant that a campaign still to be finished uses.
// Deleting an assistant or a SIP trunk detaches it from numbers.
func (db *DB) DeleteDoc(ctx context.Context, k Kind, orgID, id string) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		ok, err := db.docExists(ctx, tx, k, orgID, id)
		if err != nil {
			return err
		}
		if !ok {
			return fault.NotFoundf("%s %s not found", k.Noun(), id)
		}
		if err := db.checkInUse(ctx, tx, k, orgID, id); err != nil {
			return err
		}
		if _, err := db.w(tx).ExecContext(ctx, db.q(`DELETE FROM `+k.String()+` WHERE id = ? AND org_id = ?`), id, orgID); err != nil {
			return fmt.Errorf("delete %s: %w", k.Noun(), err)
		}
		return nil
	})
}

func (db *DB) checkInUse(ctx context.Context, tx *sql.Tx, k Kind, orgID, id string) error {
	switch k {
	case Workflows:
		nums, err := db.stringsTx(ctx, tx, `SELECT phone_number FROM numbers WHERE org_id = ? AND workflow_id = ? ORDER BY phone_number`, orgID, id)
		if err != nil {
			return err
		}
		if len(nums) > 0 {
			return fault.Conflictf("workflow_in_use", "workflow is attached to %d number(s) (%s); detach them first with PATCH /numbers/{id} {\"workflow_id\": null}", len(nums), strings.Join(nums, ", "))
		}
	case MCPServers:
		// Assistants reference MCP servers from their tools; the id is a UUID, so a
		// substring match is exact enough to find candidates, and the body is checked.
		rows, err := db.w(tx).QueryContext(ctx, db.q(`SELECT name, body FROM assistants WHERE org_id = ? AND body LIKE ?`), orgID, "%"+id+"%")
		if err != nil {
			return fmt.Errorf("find assistants using MCP server: %w", err)
		}
		defer rows.Close()
		var users []string
		for rows.Next() {
			var name, body string
			if err := rows.Scan(&name, &body); err != nil {
				return fmt.Errorf("find assistants using MCP server: %w", err)
			}
			if referencesMCP(body, id) {
				users = append(users, name)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(users) > 0 {
			return fault.Conflictf("mcp_server_in_use", "MCP server is used by assistant(s) %s; remove it from their tools first", strings.Join(users, ", "))
		}
	case Assistants:
		names, err := db.stringsTx(ctx, tx, `SELECT name FROM campaigns WHERE org_id = ? AND agent_id = ? AND status IN ('draft', 'scheduled', 'paused') ORDER BY name`, orgID, id)
		if err != nil {
			return err
		}
		if len(names) > 0 {
			return fault.Conflictf("assistant_in_use", "assistant is used by campaign(s) %s that are not finished; cancel them or delete them first", strings.Join(names, ", "))
		}
	}
	return nil
}

func referencesMCP(body, id string) bool {
	var doc struct {
		LLM struct {
			Tools []struct {
				Type        string `json:"type"`
				MCPServerID string `json:"mcp_server_id"`
			} `json:"tools"`
		} `json:"llm_config"`
	}
	if json.Unmarshal([]byte(body), &doc) != nil {
		return true // unreadable: err on the side of keeping the server
	}
	for _, t := range doc.LLM.Tools {
		if t.Type == "mcp" && t.MCPServerID == id {
			return true
		}
	}
	return false
}

func (db *DB) stringsTx(ctx context.Context, tx querier, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// DocExists reports whether the organization has a document of kind k with that id.
func (db *DB) DocExists(ctx context.Context, k Kind, orgID, id string) (bool, error) {
	return db.docExists(ctx, db.read, k, orgID, id)
}

func (db *DB) docExists(ctx context.Context, q querier, k Kind, orgID, id string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM `+k.String()+` WHERE id = ? AND org_id = ?`), id, orgID).Scan(&n); err != nil {
		return false, fmt.Errorf("find %s: %w", k.Noun(), err)
	}
	return n > 0, nil
}

// checkRef returns an invalid_reference fault naming field when the organization
// has no document of kind k with that id.
func (db *DB) checkRef(ctx context.Context, q querier, k Kind, orgID, id, field string) error {
	ok, err := db.docExists(ctx, q, k, orgID, id)
	if err != nil || ok {
		return err
	}
	return &fault.Error{Kind: fault.Invalid, Code: "invalid_reference", Field: field,
		Message: fmt.Sprintf("%s does not match any %s in this organization", field, k.Noun())}
}
