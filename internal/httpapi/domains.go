package httpapi

import (
	"context"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/parley-voice/parley/internal/domain"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// Domains manages organizations' e-mail sending domains (internal/domain).
type Domains interface {
	Get(ctx context.Context, orgID string) (*store.Domain, error)
	Create(ctx context.Context, orgID, name, region string) (*store.Domain, error)
	Delete(ctx context.Context, orgID string) error
	Refresh(ctx context.Context, orgID string) (*store.Domain, error)
	Verify(ctx context.Context, orgID string) (*store.Domain, error)
	Remotes(ctx context.Context, orgID string) ([]domain.Remote, *string, error)
	Select(ctx context.Context, orgID, field, resendID string) (*store.Domain, error)
}

// domainJSON is the Domain object (spec §7.12), bare, with the members both
// SDKs read: SDK-NEW's full object, and SDK-OLD's `domain` (the name) and
// `verified` beside it (docs/compatibility.md, Domains).
func domainJSON(d *store.Domain) map[string]any {
	recs := d.Records
	if recs == nil {
		recs = []store.DomainRecord{}
	}
	return map[string]any{
		"id": d.ID, "org_id": d.OrgID, "domain_name": d.Name, "domain": d.Name,
		"verified": d.Status == string(domain.StatusVerified), "resend_domain_id": d.ResendDomainID,
		"status": d.Status, "region": d.Region, "records": recs,
		"created_at": ts(d.CreatedAt), "updated_at": ts(d.UpdatedAt), "verified_at": tsPtr(d.VerifiedAt),
	}
}

// domainsOrErr returns the domain service, or 503 when the server has none.
func (s *Server) domainsOrErr() (Domains, error) {
	if s.domains == nil {
		return nil, &fault.Error{Kind: fault.Unavailable, Code: "domains_unavailable", Message: "e-mail domains are not available on this server"}
	}
	return s.domains, nil
}

// domainBody returns the domain service and the request's JSON object body
// (an absent body is {} when allowEmpty).
func (s *Server) domainBody(w http.ResponseWriter, r *http.Request, allowEmpty bool) (Domains, *fields, error) {
	ds, err := s.domainsOrErr()
	if err != nil {
		return nil, nil, err
	}
	obj, err := s.readObject(w, r, allowEmpty)
	if err != nil {
		return nil, nil, err
	}
	return ds, newFields(obj), nil
}

// domainError passes err on, with Retry-After when it is Resend's rate limit.
func domainError(w http.ResponseWriter, err error) error {
	if d, ok := domain.RetryAfter(err); ok && d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
	}
	return err
}

// domainReply answers one domain, or the error that came instead.
func domainReply(w http.ResponseWriter, status int, d *store.Domain, err error, extra map[string]any) error {
	if err != nil {
		return domainError(w, err)
	}
	out := domainJSON(d)
	for k, v := range extra {
		out[k] = v
	}
	return reply(w, status, out)
}

// domainOp answers the organization's domain as op returns it: GET
// /domains (Domains.Get), POST /domains/verify and /domains/refresh, whose
// body may be absent or {} (readBody).
func (s *Server) domainOp(op func(Domains, context.Context, string) (*store.Domain, error), readBody bool) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var ds Domains
		var err error
		if readBody {
			var fs *fields
			if ds, fs, err = s.domainBody(w, r, true); err == nil {
				fs.unknown()
				err = fs.err()
			}
		} else {
			ds, err = s.domainsOrErr()
		}
		if err != nil {
			return err
		}
		d, err := op(ds, r.Context(), orgID(r))
		return domainReply(w, http.StatusOK, d, err, nil)
	}
}

// createDomain takes {"domain_name": …} (SDK-NEW, docs) or {"domain": …}
// (SDK-OLD), and an optional Resend region (Parley extension).
func (s *Server) createDomain(w http.ResponseWriter, r *http.Request) error {
	ds, fs, err := s.domainBody(w, r, false)
	if err != nil {
		return err
	}
	fs.alias("domain", "domain_name")
	raw, ok := fs.str("domain_name", true)
	var name string
	if ok {
		var nerr error
		if name, nerr = domain.Name("domain_name", raw); nerr != nil {
			fs.f.Merge(nerr)
		}
	}
	region, _ := fs.str("region", false)
	if region != "" && !slices.Contains(domain.Regions, region) {
		fs.f.Invalidf("region", "must be one of %s (got %q)", strings.Join(domain.Regions, ", "), region)
	}
	fs.unknown()
	if err := fs.err(); err != nil {
		return err
	}
	d, err := ds.Create(r.Context(), orgID(r), name, region)
	return domainReply(w, http.StatusCreated, d, err, nil)
}

// deleteDomain ignores a body: the SDKs may send one, and there is one
// domain per organization to name.
func (s *Server) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.domainsOrErr()
	if err != nil {
		return err
	}
	if err := ds.Delete(r.Context(), orgID(r)); err != nil {
		return domainError(w, err)
	}
	return reply(w, http.StatusOK, success)
}

// listResendDomains lists the domains of the organization's Resend account.
func (s *Server) listResendDomains(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.domainsOrErr()
	if err != nil {
		return err
	}
	list, selected, err := ds.Remotes(r.Context(), orgID(r))
	if err != nil {
		return domainError(w, err)
	}
	out := make([]map[string]any, len(list))
	for i, d := range list {
		out[i] = map[string]any{"id": d.ID, "name": d.Name, "status": d.Status, "region": d.Region}
	}
	return reply(w, http.StatusOK, map[string]any{"domains": out, "selected_domain_id": selected})
}

// selectResendDomain takes {"resendDomainId": …} (SDK-NEW), {"domain_id": …}
// (SDK-OLD) or {"resend_domain_id": …} (the Domain object's own spelling).
func (s *Server) selectResendDomain(w http.ResponseWriter, r *http.Request) error {
	ds, fs, err := s.domainBody(w, r, false)
	if err != nil {
		return err
	}
	fs.alias("domain_id", "resendDomainId")
	fs.alias("resend_domain_id", "resendDomainId")
	id, _ := fs.str("resendDomainId", true)
	fs.unknown()
	if err := fs.err(); err != nil {
		return err
	}
	d, err := ds.Select(r.Context(), orgID(r), "resendDomainId", strings.TrimSpace(id))
	return domainReply(w, http.StatusOK, d, err, map[string]any{"success": true})
}
