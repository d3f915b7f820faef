package httpapi

import (
	"net/http"
	"strings"

	"github.com/parley-voice/parley/internal/store"
)

// readNumber applies a create or PATCH body to n.
func readNumber(obj object, n *store.Number, create bool) error {
	fs := newFields(obj, "agent_name", "business_name", "transfer_trunk_name", "workflow_name")
	fs.alias("number", "phone_number")
	fs.alias("agent_id", "assistant_id")
	if v, ok := fs.str("phone_number", create); ok {
		v = strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(v), " ", ""), "-", "")
		if !validE164(v) {
			fs.f.Invalidf("phone_number", "must be an E.164 number such as +31201234567 (got %q)", v)
		}
		n.PhoneNumber = v
	}
	if v, set := fs.nullableStr("name"); set {
		n.Name = v
	}
	if v, set := fs.refID("assistant_id"); set {
		n.AssistantID = v
	}
	if v, set := fs.refID("transfer_trunk_id"); set {
		n.TransferTrunkID = v
	}
	if v, set := fs.refID("workflow_id"); set {
		n.WorkflowID = v
	}
	if v, set := fs.nullableStr("source"); set {
		n.Source = v
	}
	if v, ok := fs.boolean("is_active"); ok {
		n.IsActive = v
	}
	fs.unknown()
	return fs.err()
}

func (s *Server) listNumbers(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r, defaultLimit, maxLimit)
	if err != nil {
		return err
	}
	nums, total, err := s.db.ListNumbersPage(r.Context(), orgID(r), p)
	if err != nil {
		return err
	}
	out := make([]any, len(nums))
	for i := range nums {
		out[i] = numberObject(&nums[i])
	}
	return reply(w, http.StatusOK, map[string]any{"numbers": out, "pagination": pagination(p, total)})
}

func (s *Server) createNumber(w http.ResponseWriter, r *http.Request) error {
	obj, err := s.readObject(w, r, false)
	if err != nil {
		return err
	}
	n := &store.Number{OrgID: orgID(r), IsActive: true}
	if err := readNumber(obj, n, true); err != nil {
		return err
	}
	if err := s.db.CreateNumber(r.Context(), n); err != nil {
		return err
	}
	got, err := s.db.GetNumber(r.Context(), n.OrgID, n.ID)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, map[string]any{"number": numberObject(got)})
}

func (s *Server) getNumber(w http.ResponseWriter, r *http.Request) error {
	id, err := docID(r, "number")
	if err != nil {
		return err
	}
	n, err := s.db.GetNumber(r.Context(), orgID(r), id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"number": numberObject(n)})
}

func (s *Server) updateNumber(w http.ResponseWriter, r *http.Request) error {
	id, err := docID(r, "number")
	if err != nil {
		return err
	}
	obj, err := s.readObject(w, r, false)
	if err != nil {
		return err
	}
	n, err := s.db.UpdateNumber(r.Context(), orgID(r), id, func(n *store.Number) error { return readNumber(obj, n, false) })
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"number": numberObject(n)})
}

func (s *Server) deleteNumber(w http.ResponseWriter, r *http.Request) error {
	id, err := docID(r, "number")
	if err != nil {
		return err
	}
	if err := s.db.DeleteNumber(r.Context(), orgID(r), id); err != nil {
		return err
	}
	return reply(w, http.StatusOK, success)
}
