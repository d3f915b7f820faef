package httpapi

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/parley-voice/parley/internal/apikey"
	"github.com/parley-voice/parley/internal/assistant"
	"github.com/parley-voice/parley/internal/billing"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// orgObject renders the caller's organization; children, when set, adds
// that page of its child organizations.
func (s *Server) orgObject(r *http.Request, children *store.Page) (map[string]any, error) {
	ctx := r.Context()
	o, err := s.db.GetOrg(ctx, orgID(r))
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	st, err := s.db.Stats(ctx, o.ID, time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return nil, err
	}
	out := map[string]any{
		"id": o.ID, "name": o.Name, "email": o.Email, "minutes_balance": minutes(o.MinutesBalance),
		// SDK-OLD's Organization: credits_balance and plan.
		"credits_balance": minutes(o.MinutesBalance), "plan": billing.Plan,
		"monthly_usage_minutes": math.Round(st.MonthlyUsageMinutes*100) / 100,
		"active_numbers":        st.ActiveNumbers, "active_agents": st.ActiveAgents, "active_calls": st.ActiveCalls,
		"has_local_models_access": o.HasLocalModelsAccess, "parent_org_id": o.ParentID,
		"content_retention_days": o.ContentRetentionDays, "metadata_retention_days": o.MetadataRetentionDays,
		"webhook_url": o.WebhookURL, "webhook_secret_set": o.WebhookSecret != nil,
		"max_concurrent_campaign_calls": o.MaxConcurrentCampaignCalls,
		"created_at":                    ts(o.CreatedAt),
	}
	if children != nil {
		kids, total, err := s.db.ChildOrgsPage(ctx, o.ID, *children)
		if err != nil {
			return nil, err
		}
		out["children_pagination"] = pagination(*children, total)
		children := make([]any, len(kids))
		for i, k := range kids {
			children[i] = map[string]any{"id": k.ID, "name": k.Name, "created_at": ts(k.CreatedAt)}
		}
		out["children"] = children
	}
	return out, nil
}

func (s *Server) getOrganization(w http.ResponseWriter, r *http.Request) error {
	withChildren := false
	if v := r.URL.Query().Get("include_children"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fault.Invalidf("include_children", "must be true or false (got %q)", v)
		}
		withChildren = b
	}
	var children *store.Page
	if withChildren {
		p, err := page(r, defaultLimit, maxLimit)
		if err != nil {
			return err
		}
		children = &p
	}
	out, err := s.orgObject(r, children)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, out)
}

// getAccount is the deprecated GET /account: the same data in the Account shape.
func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) error {
	o, err := s.orgObject(r, nil)
	if err != nil {
		return err
	}
	w.Header().Set("Deprecation", "true")
	w.Header().Set("Link", `</api/v1/organizations>; rel="successor-version"`)
	return reply(w, http.StatusOK, map[string]any{
		"id": o["id"], "name": o["name"], "email": o["email"], "company_name": o["name"],
		"minutes_balance": o["minutes_balance"], "monthly_usage_minutes": o["monthly_usage_minutes"],
		"active_numbers": o["active_numbers"], "active_agents": o["active_agents"], "active_calls": o["active_calls"],
	})
}

// createOrganization creates a child organization of the caller's (whitelabel
// resellers). Only top-level organizations may have children; the new
// organization's API key is in the response and nowhere else.
func (s *Server) createOrganization(w http.ResponseWriter, r *http.Request) error {
	obj, err := s.readObject(w, r, false)
	if err != nil {
		return err
	}
	fs := newFields(obj)
	name, _ := fs.str("name", true)
	if len(name) > 200 {
		fs.f.Invalidf("name", "must be at most 200 characters")
	}
	email, _ := fs.nullableStr("email")
	if email != nil && *email != "" {
		if msg := assistant.BadFormat(catalog.FormatEmail, *email); msg != "" {
			fs.f.Invalidf("email", "%s", msg)
		}
	} else {
		email = nil
	}
	caller := orgID(r)
	if parent, set := fs.refID("parent_org_id"); set && parent != nil && *parent != caller {
		fs.f.Invalidf("parent_org_id", "must be your own organization's id (%s) or omitted", caller)
	}
	fs.unknown()
	if err := fs.err(); err != nil {
		return err
	}
	me, err := s.db.GetOrg(r.Context(), caller)
	if err != nil {
		return err
	}
	if me.ParentID != nil {
		return fault.New(fault.Forbidden, "forbidden", "only top-level organizations can create child organizations")
	}
	key, ident := apikey.New(s.keys)
	org := &store.Org{Name: name, ParentID: &caller, Email: email, HasLocalModelsAccess: me.HasLocalModelsAccess}
	if err := s.db.CreateOrg(r.Context(), org, &store.APIKey{ID: ident.ID, Hash: ident.Hash, Prefix: ident.Prefix, Name: "created by " + caller}); err != nil {
		return err
	}
	return reply(w, http.StatusCreated, map[string]any{"id": org.ID, "name": org.Name, "email": org.Email, "parent_org_id": org.ParentID,
		"credits_balance": minutes(org.MinutesBalance), "plan": billing.Plan, "api_key": key, "created_at": ts(org.CreatedAt)})
}

var (
	contentRetention  = []int{30, 90, 180, 365}
	metadataRetention = []int{30, 90, 180, 365, 730}
)

// updateOrganization sets the retention periods (sent together, content ≤
// metadata), the organization webhook (webhook.go) and the cap on campaign
// calls at once (null: the server's default). Each group changes only when
// sent; at least one field must be.
func (s *Server) updateOrganization(w http.ResponseWriter, r *http.Request) error {
	obj, err := s.readObject(w, r, false)
	if err != nil {
		return err
	}
	fs := newFields(obj)
	_, sentC := obj["content_retention_days"]
	_, sentM := obj["metadata_retention_days"]
	retention := sentC || sentM
	content, okC := fs.integer("content_retention_days")
	metadata, okM := fs.integer("metadata_retention_days")
	if retention {
		if !sentC {
			fs.f.Missing("content_retention_days")
		} else if okC && !slices.Contains(contentRetention, content) {
			fs.f.Invalidf("content_retention_days", "must be one of 30, 90, 180, 365 (got %d)", content)
		}
		if !sentM {
			fs.f.Missing("metadata_retention_days")
		} else if okM && !slices.Contains(metadataRetention, metadata) {
			fs.f.Invalidf("metadata_retention_days", "must be one of 30, 90, 180, 365, 730 (got %d)", metadata)
		}
		if fs.f.Len() == 0 && content > metadata {
			fs.f.Invalidf("content_retention_days", "must not be longer than metadata_retention_days (%d > %d)", content, metadata)
		}
	}
	hook := s.readOrgWebhook(fs)
	campaignCap, capSet := readCampaignCap(fs)
	if !retention && !hook.urlSet && !hook.secretSet && !capSet {
		fs.f.Add("content_retention_days", "missing_field", "and metadata_retention_days are required unless webhook_url, webhook_secret or max_concurrent_campaign_calls is sent")
	}
	fs.unknown()
	if err := fs.err(); err != nil {
		return err
	}
	ctx, org := r.Context(), orgID(r)
	if retention {
		if err := s.db.SetRetention(ctx, org, content, metadata); err != nil {
			return err
		}
	}
	if hook.urlSet || hook.secretSet {
		if err := s.setOrgWebhook(ctx, org, hook); err != nil {
			return err
		}
	}
	if capSet {
		if err := s.db.SetOrgCampaignCap(ctx, org, campaignCap); err != nil {
			return err
		}
	}
	out, err := s.orgObject(r, nil)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, out)
}

// readCampaignCap reads max_concurrent_campaign_calls: an integer from 1 to
// 10000, or null for the server's default. set reports whether it was sent
// and valid.
func readCampaignCap(fs *fields) (val *int, set bool) {
	raw, ok := fs.raw("max_concurrent_campaign_calls")
	if !ok {
		return nil, false
	}
	if isNull(raw) {
		return nil, true
	}
	const rule = "must be an integer from 1 to 10000, or null for the server's default"
	num, ok := jsonNumber(raw)
	if !ok {
		fs.f.Invalidf("max_concurrent_campaign_calls", rule)
		return nil, false
	}
	n, err := strconv.Atoi(num.String())
	if err != nil || n < 1 || n > 10000 {
		fs.f.Invalidf("max_concurrent_campaign_calls", rule+" (got %s)", num)
		return nil, false
	}
	return &n, true
}
