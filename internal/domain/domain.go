// Package domain is an organization's e-mail sending domain (spec §7.12):
// one per organization, created in and read back from the organization's own
// Resend account with its Resend BYOK key, and stored with the DNS records to
// publish and the verification status Resend last reported. The notification
// e-mail asks VerifiedDomain which domain, if any, it may send from.
//
// Every Resend failure becomes a fault error here: a refused request is 400,
// a refused key 400 (the organization must replace it), a Resend domain gone
// 409, Resend's rate limit 429 (RetryAfter says how long), and Resend not
// answering 503.
package domain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/provider/resend"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// Status is a domain's verification status, the spec's four values.
type Status string

// The statuses.
const (
	StatusNotStarted Status = "not_started"
	StatusPending    Status = "pending"
	StatusVerified   Status = "verified"
	StatusFailed     Status = "failed"
)

// statusOf maps Resend's domain statuses onto the spec's four: a domain is
// verified only when Resend says so in full; one that is part way, or whose
// check failed for now, is pending; one that failed in part has failed.
func statusOf(resendStatus string) Status {
	switch resendStatus {
	case "verified":
		return StatusVerified
	case "not_started":
		return StatusNotStarted
	case "failed", "partially_failed":
		return StatusFailed
	default: // pending, partially_verified, temporary_failure, anything new
		return StatusPending
	}
}

// Regions are the Resend regions a domain can send from.
var Regions = []string{"eu-west-1", "us-east-1", "sa-east-1", "ap-northeast-1"}

// DefaultRegion is where domains are created unless asked otherwise: the EU,
// as the reference platform does (spec §12.12).
const DefaultRegion = "eu-west-1"

// Config configures a Service.
type Config struct {
	Store   *store.DB
	Keyring *secret.Keyring
	Resend  *resend.Client
	Logger  *slog.Logger
	Now     func() time.Time // nil means time.Now
}

// Service manages organizations' sending domains. It is safe for concurrent use.
type Service struct {
	db     *store.DB
	keys   *secret.Keyring
	resend *resend.Client
	log    *slog.Logger
	now    func() time.Time
}

// New returns a Service configured by cfg.
func New(cfg Config) *Service {
	s := &Service{db: cfg.Store, keys: cfg.Keyring, resend: cfg.Resend, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Remote is a domain of the organization's Resend account.
type Remote struct {
	ID     string
	Name   string
	Status Status
	Region string
}

// Name checks and normalises a domain name (field names the field in
// errors): case folded, one trailing dot dropped, international names in
// their ASCII (punycode) form. It must be a host name of at least two
// labels, not an IP address.
func Name(field, raw string) (string, error) {
	s := strings.TrimSuffix(strings.TrimSpace(raw), ".")
	if s == "" {
		return "", fault.Invalidf(field, "must be a domain name such as mail.example.com")
	}
	ascii, err := idna.Lookup.ToASCII(s)
	if err != nil {
		return "", fault.Invalidf(field, "is not a valid domain name (%q): %v", raw, err)
	}
	ascii = strings.ToLower(ascii)
	if len(ascii) > 253 {
		return "", fault.Invalidf(field, "must be at most 253 characters long")
	}
	labels := strings.Split(ascii, ".")
	if len(labels) < 2 {
		return "", fault.Invalidf(field, "must have at least two labels, such as mail.example.com (got %q)", raw)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", fault.Invalidf(field, "is not a valid domain name (%q): each label is 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen", raw)
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fault.Invalidf(field, "is not a valid domain name (%q): %q is not allowed", raw, string(c))
			}
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return "", fault.Invalidf(field, "must be a domain name, not an IP address (got %q)", raw)
	}
	return ascii, nil
}

// key opens the organization's Resend key; Invalid when it has none.
func (s *Service) key(ctx context.Context, orgID string) (string, error) {
	keys, err := s.db.BYOKKeys(ctx, orgID)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if k.Provider != "resend" {
			continue
		}
		pt, err := s.keys.Open(k.Sealed, secret.Binding{OrgID: orgID, Table: "byok_keys", Field: k.Provider})
		if err != nil {
			return "", fmt.Errorf("open the stored resend key (was the master key changed?): %w", err)
		}
		return string(pt), nil
	}
	return "", &fault.Error{Kind: fault.Invalid, Code: "resend_key_missing",
		Message: `this organization has no Resend key; add one first with POST /byok {"provider":"resend","api_key":"re_…"}`}
}

// apply copies what Resend reports of a domain onto the stored one.
func (s *Service) apply(d *store.Domain, r resend.Domain) {
	if r.ID != "" {
		d.ResendDomainID = &r.ID
	}
	if r.Name != "" {
		d.Name = r.Name
	}
	if r.Region != "" {
		d.Region = r.Region
	}
	st := statusOf(r.Status)
	d.Status = string(st)
	if r.Records != nil {
		d.Records = make([]store.DomainRecord, len(r.Records))
		for i, rec := range r.Records {
			d.Records[i] = store.DomainRecord{Record: rec.Record, Name: rec.Name, Type: rec.Type, TTL: rec.TTL, Status: rec.Status, Value: rec.Value, Priority: rec.Priority}
		}
	}
	switch {
	case st != StatusVerified:
		d.VerifiedAt = nil
	case d.VerifiedAt == nil:
		now := s.now().UTC().Truncate(time.Millisecond)
		d.VerifiedAt = &now
	}
}

// Get returns the organization's domain as last stored.
func (s *Service) Get(ctx context.Context, orgID string) (*store.Domain, error) {
	return s.db.GetDomain(ctx, orgID)
}

// VerifiedDomain reports the organization's domain name when Resend has
// verified it (as last refreshed), so e-mail may be sent from it.
func (s *Service) VerifiedDomain(ctx context.Context, orgID string) (string, bool, error) {
	d, err := s.db.GetDomain(ctx, orgID)
	if fault.KindOf(err) == fault.NotFound {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if d.Status != string(StatusVerified) || d.ResendDomainID == nil {
		return "", false, nil
	}
	return d.Name, true, nil
}

// Create adds name (already checked with Name) in region ("" for
// DefaultRegion) to the organization's Resend account and stores it. The row
// is written first, so a second create at the same time is a conflict
// before anything reaches Resend, and removed again when Resend refuses.
func (s *Service) Create(ctx context.Context, orgID, name, region string) (*store.Domain, error) {
	if region == "" {
		region = DefaultRegion
	}
	key, err := s.key(ctx, orgID)
	if err != nil {
		return nil, err
	}
	d := &store.Domain{OrgID: orgID, Name: name, Status: string(StatusNotStarted), Region: region}
	if err := s.db.CreateDomain(ctx, d); err != nil {
		return nil, err
	}
	r, err := s.resend.CreateDomain(ctx, key, resend.CreateDomain{Name: name, Region: region, IdempotencyKey: "parley-domain-" + d.ID})
	if err != nil {
		if derr := s.db.DeleteDomain(context.WithoutCancel(ctx), orgID, d.ID); derr != nil && fault.KindOf(derr) != fault.NotFound {
			s.log.Error("removing a domain Resend refused failed", "org", orgID, "err", derr)
		}
		return nil, resendError("create the domain", "domain_name", err)
	}
	s.apply(d, r)
	if err := s.db.UpdateDomain(ctx, d); err != nil {
		if fault.KindOf(err) == fault.NotFound {
			// Deleted or replaced while Resend was creating it: nobody
			// holds this Resend domain any more.
			if derr := s.resend.DeleteDomain(context.WithoutCancel(ctx), key, r.ID); derr != nil && !errors.Is(derr, resend.ErrNotFound) {
				s.log.Warn("a domain removed during its creation stays in the Resend account", "org", orgID, "resend_domain_id", r.ID, "err", derr)
			}
		}
		return nil, err
	}
	s.log.Info("e-mail domain created", "org", orgID, "domain", d.Name, "resend_domain_id", r.ID)
	return d, nil
}

// Refresh reads the domain's status and records from Resend and stores them.
func (s *Service) Refresh(ctx context.Context, orgID string) (*store.Domain, error) {
	d, key, err := s.linked(ctx, orgID)
	if err != nil {
		return nil, err
	}
	return s.refresh(ctx, d, key)
}

func (s *Service) refresh(ctx context.Context, d *store.Domain, key string) (*store.Domain, error) {
	r, err := s.resend.GetDomain(ctx, key, *d.ResendDomainID)
	if err != nil {
		return nil, resendError("read the domain", "", err)
	}
	s.apply(d, r)
	if err := s.db.UpdateDomain(ctx, d); err != nil {
		return nil, err
	}
	return d, nil
}

// Verify asks Resend to check the domain's DNS records, then reads back what
// Resend reports (checking takes Resend a while: the domain is "pending"
// until a later refresh finds it verified or failed).
func (s *Service) Verify(ctx context.Context, orgID string) (*store.Domain, error) {
	d, key, err := s.linked(ctx, orgID)
	if err != nil {
		return nil, err
	}
	if d.Status != string(StatusVerified) {
		if err := s.resend.VerifyDomain(ctx, key, *d.ResendDomainID); err != nil {
			return nil, resendError("verify the domain", "", err)
		}
	}
	return s.refresh(ctx, d, key)
}

// linked returns the organization's domain that exists at Resend, and its key.
func (s *Service) linked(ctx context.Context, orgID string) (*store.Domain, string, error) {
	d, err := s.db.GetDomain(ctx, orgID)
	if err != nil {
		return nil, "", err
	}
	if d.ResendDomainID == nil {
		return nil, "", fault.Conflictf("domain_not_at_resend", "the e-mail domain %s was never created at Resend (its creation was interrupted); delete it and add it again", d.Name)
	}
	key, err := s.key(ctx, orgID)
	if err != nil {
		return nil, "", err
	}
	return d, key, nil
}

// Delete removes the organization's domain at Resend and here. A domain
// Resend no longer has, or one that never reached it, is removed here only;
// so is one whose organization has removed its Resend key since.
func (s *Service) Delete(ctx context.Context, orgID string) error {
	d, err := s.db.GetDomain(ctx, orgID)
	if err != nil {
		return err
	}
	if d.ResendDomainID != nil {
		key, err := s.key(ctx, orgID)
		switch {
		case fault.KindOf(err) == fault.Invalid:
			s.log.Info("e-mail domain removed without a Resend key: it stays in the Resend account", "org", orgID, "resend_domain_id", *d.ResendDomainID)
		case err != nil:
			return err
		default:
			if err := s.resend.DeleteDomain(ctx, key, *d.ResendDomainID); err != nil && !errors.Is(err, resend.ErrNotFound) {
				return resendError("delete the domain", "", err)
			}
		}
	}
	return s.db.DeleteDomain(ctx, orgID, d.ID)
}

// Remotes lists the domains of the organization's Resend account and which
// of them is the organization's domain (nil when none).
func (s *Service) Remotes(ctx context.Context, orgID string) ([]Remote, *string, error) {
	key, err := s.key(ctx, orgID)
	if err != nil {
		return nil, nil, err
	}
	list, err := s.resend.ListDomains(ctx, key)
	if err != nil {
		return nil, nil, resendError("list the account's domains", "", err)
	}
	out := make([]Remote, len(list))
	for i, r := range list {
		out[i] = Remote{ID: r.ID, Name: r.Name, Status: statusOf(r.Status), Region: r.Region}
	}
	var selected *string
	if d, err := s.db.GetDomain(ctx, orgID); err == nil {
		selected = d.ResendDomainID
	} else if fault.KindOf(err) != fault.NotFound {
		return nil, nil, err
	}
	return out, selected, nil
}

// Select makes a domain of the organization's Resend account (by its
// Resend id; field names the field in errors) the organization's domain,
// replacing the one it had here (which stays in the Resend account).
func (s *Service) Select(ctx context.Context, orgID, field, resendID string) (*store.Domain, error) {
	key, err := s.key(ctx, orgID)
	if err != nil {
		return nil, err
	}
	r, err := s.resend.GetDomain(ctx, key, resendID)
	if errors.Is(err, resend.ErrNotFound) || errors.Is(err, resend.ErrInvalid) {
		return nil, fault.Invalidf(field, "names no domain of the organization's Resend account (%q); GET /domains/sync lists them", resendID)
	}
	if err != nil {
		return nil, resendError("read the domain", "", err)
	}
	d := &store.Domain{OrgID: orgID}
	if cur, err := s.db.GetDomain(ctx, orgID); err == nil && cur.ResendDomainID != nil && *cur.ResendDomainID == r.ID {
		d.VerifiedAt = cur.VerifiedAt
	}
	s.apply(d, r)
	if err := s.db.PutDomain(ctx, d); err != nil {
		return nil, err
	}
	s.log.Info("e-mail domain selected", "org", orgID, "domain", d.Name, "resend_domain_id", r.ID)
	return d, nil
}

// RetryAfter is how long Resend asked to wait, when err is its rate limit.
func RetryAfter(err error) (time.Duration, bool) {
	if e, ok := resend.AsError(err); ok && e.Kind == resend.KindRateLimited {
		return e.RetryAfter, true
	}
	return 0, false
}

// resendError turns a Resend failure while doing what into a fault error;
// field, when set, is the request field a refused request is blamed on.
func resendError(what, field string, err error) error {
	e, ok := resend.AsError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := e.Message
	if msg == "" {
		msg = e.Error()
	}
	switch e.Kind {
	case resend.KindInvalid:
		f := &fault.Error{Kind: fault.Invalid, Code: "resend_refused", Field: field, Message: fmt.Sprintf("Resend refused to %s: %s", what, msg), Err: err}
		if field != "" {
			f.Message = field + ": " + f.Message
			f.Details = []string{f.Message}
		}
		return f
	case resend.KindAuth:
		return &fault.Error{Kind: fault.Invalid, Code: "resend_key_refused", Err: err,
			Message: fmt.Sprintf("Resend refused this organization's Resend key (%s); it needs a full-access key: replace it with POST /byok", msg)}
	case resend.KindNotFound:
		return &fault.Error{Kind: fault.Conflict, Code: "resend_domain_gone", Err: err,
			Message: "the domain no longer exists in the organization's Resend account; delete it here (DELETE /domains) and add it again, or pick another with POST /domains/sync"}
	case resend.KindConflict:
		return &fault.Error{Kind: fault.Conflict, Code: "resend_conflict", Message: "Resend is still handling the same request: " + msg, Err: err}
	case resend.KindRateLimited:
		return &fault.Error{Kind: fault.RateLimited, Code: "resend_rate_limited", Message: "Resend's rate limit was reached: " + msg, Err: err}
	default:
		return &fault.Error{Kind: fault.Unavailable, Code: "resend_unavailable", Message: fmt.Sprintf("Resend did not answer a request to %s (%s); try again later", what, msg), Err: err}
	}
}
