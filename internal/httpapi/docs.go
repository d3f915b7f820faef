package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/parley-voice/parley/internal/assistant"
	"github.com/parley-voice/parley/internal/docsecret"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// A docResource is a configuration resource stored as a canonical JSON document:
// assistants, tool and analysis templates, MCP servers, SIP trunks, workflows.
// Create and PATCH share one path: the client's fields are laid over the stored
// document (nothing, on create) and the result is validated as a whole, so a
// PATCH changes only what was sent and can never store what a create would refuse.
type docResource struct {
	kind      store.Kind
	one, many string // response wrapper keys
	// build validates the merged document and returns the row to store. cur is
	// nil on create. sent is what the client sent.
	build func(ctx context.Context, org string, merged, sent object, cur *store.Doc) (*store.Doc, error)
	// render is the response object of one document; nil means the body plus
	// id, org_id and timestamps.
	render func(d *store.Doc) any
}

func (s *Server) renderDoc(res docResource, d *store.Doc) any {
	if res.render != nil {
		return res.render(d)
	}
	return docObject(d)
}

// docObject is the stored body with the row's identity and timestamps. The
// body is canonical JSON written by the validators, which never store these
// four keys, so the fields are spliced in front of it without re-decoding.
func docObject(d *store.Doc) json.RawMessage {
	body := bytes.TrimSpace(d.Body)
	out := make([]byte, 0, len(body)+160)
	out = append(out, `{"id":`...)
	out = strconv.AppendQuote(out, d.ID)
	out = append(out, `,"org_id":`...)
	out = strconv.AppendQuote(out, d.OrgID)
	out = append(out, `,"created_at":"`...)
	out = d.CreatedAt.UTC().AppendFormat(out, timeFormat)
	out = append(out, `","updated_at":"`...)
	out = d.UpdatedAt.UTC().AppendFormat(out, timeFormat)
	out = append(out, '"')
	if len(body) > 2 && body[0] == '{' {
		out = append(out, ',')
		out = append(out, body[1:]...)
	} else {
		out = append(out, '}')
	}
	return out
}

func (s *Server) listDocs(res docResource) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := page(r, defaultLimit, maxLimit)
		if err != nil {
			return err
		}
		docs, total, err := s.db.ListDocsPage(r.Context(), res.kind, orgID(r), p)
		if err != nil {
			return err
		}
		out := make([]any, len(docs))
		for i := range docs {
			out[i] = s.renderDoc(res, &docs[i])
		}
		return reply(w, http.StatusOK, map[string]any{res.many: out, "pagination": pagination(p, total)})
	}
}

func (s *Server) createDoc(res docResource, extra func(d *store.Doc, out map[string]any)) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		obj, err := s.readObject(w, r, false)
		if err != nil {
			return err
		}
		d, err := res.build(r.Context(), orgID(r), cloneObject(obj), obj, nil)
		if err != nil {
			return err
		}
		d.Kind, d.OrgID = res.kind, orgID(r)
		if err := s.db.CreateDoc(r.Context(), d); err != nil {
			return err
		}
		out := map[string]any{res.one: s.renderDoc(res, d)}
		if extra != nil {
			extra(d, out)
		}
		return reply(w, http.StatusCreated, out)
	}
}

func (s *Server) getDoc(res docResource) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := docID(r, res.kind.Noun())
		if err != nil {
			return err
		}
		d, err := s.db.GetDoc(r.Context(), res.kind, orgID(r), id)
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, map[string]any{res.one: s.renderDoc(res, d)})
	}
}

func (s *Server) updateDoc(res docResource) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := docID(r, res.kind.Noun())
		if err != nil {
			return err
		}
		obj, err := s.readObject(w, r, false)
		if err != nil {
			return err
		}
		org := orgID(r)
		d, err := s.db.UpdateDoc(r.Context(), res.kind, org, id, func(cur *store.Doc) (*store.Doc, error) {
			var merged object
			if err := json.Unmarshal(cur.Body, &merged); err != nil {
				return nil, fmt.Errorf("decode stored %s: %w", res.kind.Noun(), err)
			}
			for k, v := range obj {
				merged[k] = v
			}
			return res.build(r.Context(), org, merged, obj, cur)
		})
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, map[string]any{res.one: s.renderDoc(res, d)})
	}
}

func (s *Server) deleteDoc(k store.Kind) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := docID(r, k.Noun())
		if err != nil {
			return err
		}
		if err := s.db.DeleteDoc(r.Context(), k, orgID(r), id); err != nil {
			return err
		}
		return reply(w, http.StatusOK, success)
	}
}

func cloneObject(o object) object {
	c := make(object, len(o))
	for k, v := range o {
		c[k] = v
	}
	return c
}

// docFrom turns a validated canonical document into a row.
func docFrom(canon map[string]json.RawMessage) (*store.Doc, error) {
	var head struct {
		Name     string `json:"name"`
		IsActive *bool  `json:"is_active"`
	}
	body, err := json.Marshal(canon)
	if err != nil {
		return nil, fmt.Errorf("encode document: %w", err)
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return nil, fmt.Errorf("read document name: %w", err)
	}
	return &store.Doc{Name: head.Name, Active: head.IsActive == nil || *head.IsActive, Body: body}, nil
}

// --- assistants ---

func (s *Server) assistants() docResource {
	return docResource{kind: store.Assistants, one: "assistant", many: "assistants", build: s.buildAssistant}
}

func (s *Server) buildAssistant(ctx context.Context, org string, merged, _ object, cur *store.Doc) (*store.Doc, error) {
	return s.buildSealed(store.Assistants, org, merged, cur, func(doc object) (map[string]json.RawMessage, error) {
		canon, err := s.valid.Normalize(doc, assistant.Options{})
		if err != nil {
			return nil, err
		}
		return canon, s.checkMCPRefs(ctx, org, canon, "llm_config.tools")
	})
}

// buildSealed validates a document that holds secrets (assistants, tool
// templates) with normalize and returns the row with the secrets sealed in
// its secret column and only markers left in the body (see docsecret).
// Markers sent back by the client are ignored; a secret sent as null or ""
// is cleared; one not sent is kept from cur.
func (s *Server) buildSealed(k store.Kind, org string, merged object, cur *store.Doc, normalize func(object) (map[string]json.RawMessage, error)) (*store.Doc, error) {
	stored := docsecret.Secrets{}
	id := store.NewID()
	if cur != nil {
		var err error
		if stored, err = docsecret.Open(s.keys, cur); err != nil {
			return nil, err
		}
		id = cur.ID
	}
	cleared := docsecret.Clean(k, merged)
	canon, err := normalize(merged)
	if err != nil {
		return nil, err
	}
	docsecret.Keep(k, canon, stored, cleared)
	secrets, _ := docsecret.Extract(k, canon)
	d, err := docFrom(canon)
	if err != nil {
		return nil, err
	}
	d.ID = id
	if d.Secret, err = docsecret.Seal(s.keys, k, org, id, secrets); err != nil {
		return nil, err
	}
	return d, nil
}

// checkMCPRefs fails, naming field, when an assistant's mcp tools refer to
// MCP servers the organization does not have.
func (s *Server) checkMCPRefs(ctx context.Context, org string, canon map[string]json.RawMessage, field string) error {
	var f fault.Fields
	for _, id := range assistant.MCPServerIDs(canon) {
		ok, err := s.db.DocExists(ctx, store.MCPServers, org, id)
		if err != nil {
			return err
		}
		if !ok {
			f.Add(field, "invalid_reference", fmt.Sprintf("references MCP server %s, which does not exist in this organization", id))
		}
	}
	return f.Err()
}

// --- tool templates ---

func (s *Server) toolTemplates() docResource {
	return docResource{kind: store.ToolTemplates, one: "tool_template", many: "tool_templates", render: toolTemplateObject,
		build: func(_ context.Context, org string, merged, sent object, cur *store.Doc) (*store.Doc, error) {
			if err := checkToolTemplateSpellings(sent); err != nil {
				return nil, err
			}
			return s.buildSealed(store.ToolTemplates, org, merged, cur, func(doc object) (map[string]json.RawMessage, error) {
				return s.valid.NormalizeToolTemplate(doc)
			})
		}}
}

// --- analysis templates ---

func (s *Server) analysisTemplates() docResource {
	return docResource{kind: store.AnalysisTemplates, one: "analysis_template", many: "analysis_templates",
		build: func(_ context.Context, _ string, merged, _ object, _ *store.Doc) (*store.Doc, error) {
			canon, err := assistant.NormalizeAnalysisTemplate(merged)
			if err != nil {
				return nil, err
			}
			return docFrom(canon)
		}}
}

// listAnalysisTemplates answers both list shapes seen in the sources: the SDK's
// {"analysis_templates": [...]} and the API reference's {"data", "total", "limit", "offset"}.
func (s *Server) listAnalysisTemplates(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r, 50, 100)
	if err != nil {
		return err
	}
	docs, total, err := s.db.ListDocsPage(r.Context(), store.AnalysisTemplates, orgID(r), p)
	if err != nil {
		return err
	}
	out := make([]any, len(docs))
	for i := range docs {
		out[i] = docObject(&docs[i])
	}
	return reply(w, http.StatusOK, map[string]any{"analysis_templates": out, "data": out, "total": total, "limit": p.Limit, "offset": p.Offset})
}
