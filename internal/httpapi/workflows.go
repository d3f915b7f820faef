package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/workflow"
)

// Workflows (spec §7.17). The stored body keeps the validated definition and
// the summary figures the list shows.

type workflowBody struct {
	Name       string          `json:"name"`
	IsActive   bool            `json:"is_active"`
	Definition json.RawMessage `json:"definition"`
	EntryNode  string          `json:"entry_node"`
	NodeCount  int             `json:"node_count"`
	EdgeCount  int             `json:"edge_count"`
}

func (s *Server) workflows() docResource {
	return docResource{kind: store.Workflows, one: "workflow", many: "workflows", build: s.buildWorkflow,
		render: func(d *store.Doc) any {
			var b workflowBody
			json.Unmarshal(d.Body, &b)
			return map[string]any{"id": d.ID, "org_id": d.OrgID, "name": b.Name, "is_active": b.IsActive, "definition": b.Definition,
				"created_at": ts(d.CreatedAt), "updated_at": ts(d.UpdatedAt)}
		}}
}

func (s *Server) buildWorkflow(_ context.Context, org string, merged, _ object, cur *store.Doc) (*store.Doc, error) {
	// Nodes' tools may carry signing secrets (server.secret): sealed like
	// an assistant's (see buildSealed).
	return s.buildSealed(store.Workflows, org, merged, cur, func(doc object) (map[string]json.RawMessage, error) {
		d, err := s.validWorkflow(doc)
		if err != nil {
			return nil, err
		}
		var canon map[string]json.RawMessage
		if err := json.Unmarshal(d.Body, &canon); err != nil {
			return nil, fmt.Errorf("decode workflow: %w", err)
		}
		return canon, nil
	})
}

// validWorkflow validates a workflow document and returns its row.
func (s *Server) validWorkflow(merged object) (*store.Doc, error) {
	fs := newFields(merged, "entry_node", "node_count", "edge_count")
	b := workflowBody{IsActive: true}
	b.Name, _ = fs.str("name", true)
	if v, ok := fs.boolean("is_active"); ok {
		b.IsActive = v
	}
	def, ok := fs.raw("definition")
	if !ok || isNull(def) {
		fs.f.Missing("definition")
	}
	fs.unknown()
	if err := fs.err(); err != nil {
		return nil, err
	}
	res, err := workflow.Validate(def, s.valid)
	if err != nil {
		return nil, err
	}
	b.Definition, b.EntryNode, b.NodeCount, b.EdgeCount = res.Definition, res.EntryNode, res.NodeCount, res.EdgeCount
	body, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	return &store.Doc{Name: b.Name, Active: b.IsActive, Body: body}, nil
}

func (s *Server) listWorkflows(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r, defaultLimit, maxLimit)
	if err != nil {
		return err
	}
	docs, total, err := s.db.ListDocsPage(r.Context(), store.Workflows, orgID(r), p)
	if err != nil {
		return err
	}
	out := make([]any, len(docs))
	for i, d := range docs {
		var b workflowBody
		json.Unmarshal(d.Body, &b)
		out[i] = map[string]any{"id": d.ID, "name": b.Name, "is_active": b.IsActive, "entry_node": b.EntryNode,
			"node_count": b.NodeCount, "edge_count": b.EdgeCount, "created_at": ts(d.CreatedAt), "updated_at": ts(d.UpdatedAt)}
	}
	return reply(w, http.StatusOK, map[string]any{"workflows": out, "pagination": pagination(p, total)})
}
