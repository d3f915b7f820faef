// Package inbound decides who may call in. An INVITE to a number whose
// trunk lists inbound addresses is admitted only from those addresses
// (IPs, CIDR prefixes, host names), from an address the trunk registered
// from, or, for a trunk set up for digest authentication, with valid
// credentials; numbers without such a trunk follow the server's policy
// (open, or trunks-only). A refusal is a 403 decided before the call has a
// row or uses a provider. The Gate also answers trunks' REGISTER requests.
package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/sipacl"
	"github.com/parley-voice/parley/internal/sipauth"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/telephony"
)

// Policy is what happens to calls for numbers that have no trunk with
// inbound addresses or authentication.
type Policy string

// Policies.
const (
	// TrunksOnly refuses them: only trunks' calls are answered.
	TrunksOnly Policy = "trunks-only"
	// Open answers them from anywhere (local development).
	Open Policy = "open"
)

// ParsePolicy reads a policy name.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case TrunksOnly, Open:
		return p, nil
	}
	return "", fmt.Errorf("must be %s or %s (got %q)", TrunksOnly, Open, s)
}

// Trunk authentication modes (a trunk's inbound_auth).
const (
	AuthAddresses = "addresses"
	AuthDigest    = "digest"
)

// Store is what the gate reads: the number's trunk.
type Store interface {
	GetDoc(ctx context.Context, k store.Kind, orgID, id string) (*store.Doc, error)
}

// Config configures a Gate.
type Config struct {
	Policy Policy
	// Auth checks digest credentials; nil: trunks set to digest admit
	// only from their addresses.
	Auth *sipauth.Authenticator
	// Hosts resolves host names in inbound addresses.
	Hosts *sipacl.Cache
	// MinExpiry and MaxExpiry bound a registration's lifetime (defaults
	// 60 s and 3600 s).
	MinExpiry, MaxExpiry time.Duration
	// MaxBindings caps the addresses one trunk has registered from at once
	// (default 16); the one expiring first gives way.
	MaxBindings int
	Now         func() time.Time
	Logger      *slog.Logger
}

// Refusal reasons, as counted in Stats.
const (
	ReasonUnknownNumber = "unknown_number"
	ReasonNoTrunk       = "no_trunk"
	ReasonAddress       = "address"
	ReasonCredentials   = "credentials"
)

// Gate admits inbound calls and registrations. It is safe for concurrent
// use.
type Gate struct {
	db   Store
	keys *secret.Keyring
	cfg  Config
	log  *slog.Logger

	mu       sync.Mutex
	bindings map[string]map[netip.Addr]time.Time // trunk id → source → expiry
	trusted  map[netip.Addr]time.Time            // trunk sources → last admitted
	refused  map[string]uint64                   // by reason
	counts   map[string]uint64                   // challenged, stale, registered, admitted_digest
}

// New returns a gate.
func New(db Store, keys *secret.Keyring, cfg Config) *Gate {
	if cfg.Policy == "" {
		cfg.Policy = TrunksOnly
	}
	if cfg.Hosts == nil {
		cfg.Hosts = sipacl.NewCache(sipacl.CacheConfig{Logger: cfg.Logger})
	}
	if cfg.MinExpiry <= 0 {
		cfg.MinExpiry = time.Minute
	}
	if cfg.MaxExpiry <= 0 {
		cfg.MaxExpiry = time.Hour
	}
	if cfg.MaxBindings <= 0 {
		cfg.MaxBindings = 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Gate{db: db, keys: keys, cfg: cfg, log: cfg.Logger, bindings: map[string]map[netip.Addr]time.Time{}, trusted: map[netip.Addr]time.Time{},
		refused: map[string]uint64{}, counts: map[string]uint64{}}
}

// trunk is what the gate needs of a trunk.
type trunk struct {
	id, orgID string
	entries   []sipacl.Entry
	auth      string
	username  string
	password  string // "" when none is set
}

// forbidden is the one answer to every refused call or registration, so
// a caller cannot tell an unknown number from a refused address or an
// unknown user from a wrong password.
func forbidden() *telephony.Reject { return &telephony.Reject{Code: 403, Reason: "Forbidden"} }

// Admit decides whether an INVITE for num (nil: no such number) may go
// on. It returns nil, a *telephony.Reject, or an error when the trunk
// could not be read.
func (g *Gate) Admit(ctx context.Context, num *store.Number, in telephony.Inbound) error {
	var doc *store.Doc
	if num != nil {
		var err error
		if doc, err = g.readTrunk(ctx, num); err != nil {
			return err
		}
	}
	return g.AdmitTrunk(ctx, num, doc, in)
}

// AdmitTrunk is Admit for a caller that has read num's trunk already
// (nil: none), so the call path reads it once.
func (g *Gate) AdmitTrunk(ctx context.Context, num *store.Number, trunkDoc *store.Doc, in telephony.Inbound) error {
	src, err := netip.ParseAddrPort(in.Source)
	if err != nil {
		return fmt.Errorf("inbound call from %q: source is not ip:port", in.Source)
	}
	ip := src.Addr().Unmap()
	if num == nil {
		if g.cfg.Policy == Open {
			return nil
		}
		return g.refuse(ReasonUnknownNumber, in, ip)
	}
	t, err := g.parseTrunk(trunkDoc)
	if err != nil {
		return err
	}
	if t == nil || (len(t.entries) == 0 && t.auth != AuthDigest) {
		if g.cfg.Policy == Open {
			return nil
		}
		return g.refuse(ReasonNoTrunk, in, ip)
	}
	if listed := g.cfg.Hosts.Allows(ctx, t.entries, ip); listed || g.registered(t.id, ip) {
		if !listed || g.names(ctx, t.entries, ip) {
			// Only a source named on its own (one IP, a host name, a
			// registration) is exempt from the rate limit: a tenant's
			// wide prefix must not lift it for everyone inside.
			g.trust(ip)
		}
		return nil
	}
	if t.auth != AuthDigest || g.cfg.Auth == nil {
		return g.refuse(ReasonAddress, in, ip)
	}
	if err := g.checkDigest(t, "INVITE", in.RequestURI, in.Authorization, ip); err != nil {
		if rj, ok := err.(*telephony.Reject); ok && rj.Code == 403 {
			return g.refuse(ReasonCredentials, in, ip)
		}
		return err
	}
	g.count("admitted_digest")
	g.trust(ip)
	return nil
}

// names reports whether ip is named on its own among entries: a single
// IP, or an address a host name resolves to.
func (g *Gate) names(ctx context.Context, entries []sipacl.Entry, ip netip.Addr) bool {
	var hosts []sipacl.Entry
	for _, e := range entries {
		switch {
		case e.Host != "":
			hosts = append(hosts, e)
		case e.Prefix.IsSingleIP() && e.Prefix.Addr().Unmap() == ip:
			return true
		}
	}
	return len(hosts) > 0 && g.cfg.Hosts.Allows(ctx, hosts, ip)
}

// Trust: a source that was admitted as a trunk (by address, registration
// or credentials) in the last trustFor is exempt from the per-source
// request limit (telephony.TrustedSources), so a busy carrier is not
// banned for its own call rate. At most maxTrusted sources are kept.
const (
	trustFor   = 10 * time.Minute
	maxTrusted = 4096
)

func (g *Gate) trust(ip netip.Addr) {
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.trusted[ip]; !ok && len(g.trusted) >= maxTrusted {
		for a, at := range g.trusted {
			if now.Sub(at) >= trustFor {
				delete(g.trusted, a)
			}
		}
		if len(g.trusted) >= maxTrusted {
			return
		}
	}
	g.trusted[ip] = now
}

// Trusted reports whether ip was admitted as a trunk source recently.
func (g *Gate) Trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.trusted[ip]
	return ok && g.cfg.Now().Sub(at) < trustFor
}

// Register answers a trunk's REGISTER for the number num (nil: unknown).
// With valid credentials the source address counts as one of the trunk's
// inbound addresses until the registration expires.
func (g *Gate) Register(ctx context.Context, num *store.Number, r telephony.Registration) (time.Duration, error) {
	src, err := netip.ParseAddrPort(r.Source)
	if err != nil {
		return 0, fmt.Errorf("register from %q: source is not ip:port", r.Source)
	}
	ip := src.Addr().Unmap()
	if g.cfg.Auth == nil {
		return 0, forbidden() // no authenticator: no trunk can register
	}
	var t *trunk
	if num != nil {
		if t, err = g.trunkOf(ctx, num); err != nil {
			return 0, err
		}
	}
	if t == nil || t.auth != AuthDigest || g.cfg.Auth == nil {
		// Challenged like a real trunk, refused once credentials come:
		// a REGISTER does not tell which numbers exist.
		t = &trunk{}
	}
	if err := g.checkDigest(t, "REGISTER", r.RequestURI, r.Authorization, ip); err != nil {
		if rj, ok := err.(*telephony.Reject); ok && rj.Code == 403 {
			g.countRefused(ReasonCredentials)
			g.log.Debug("sip registration refused", "reason", ReasonCredentials, "source", ip.String(), "aor", r.AOR)
		}
		return 0, err
	}
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case r.Expires < 0: // a query
		if exp, ok := g.bindings[t.id][ip]; ok && exp.After(now) {
			return exp.Sub(now).Round(time.Second), nil
		}
		return -1, nil
	case r.Expires == 0:
		delete(g.bindings[t.id], ip)
		g.log.Info("sip trunk unregistered", "trunk_id", t.id, "org_id", t.orgID, "source", ip.String())
		return 0, nil
	}
	exp := min(max(r.Expires, g.cfg.MinExpiry), g.cfg.MaxExpiry)
	b := g.bindings[t.id]
	if b == nil {
		b = map[netip.Addr]time.Time{}
		g.bindings[t.id] = b
	}
	for a, until := range b {
		if !until.After(now) {
			delete(b, a)
		}
	}
	if _, ok := b[ip]; !ok && len(b) >= g.cfg.MaxBindings {
		var first netip.Addr
		for a, until := range b {
			if !first.IsValid() || until.Before(b[first]) {
				first = a
			}
		}
		delete(b, first)
	}
	b[ip] = now.Add(exp)
	g.trusted[ip] = now
	g.counts["registered"]++
	g.log.Info("sip trunk registered", "trunk_id", t.id, "org_id", t.orgID, "source", ip.String(), "expires", exp)
	return exp, nil
}

// checkDigest returns nil for valid credentials, 401 with a challenge when
// there are none or the nonce is stale, and 403 otherwise.
func (g *Gate) checkDigest(t *trunk, method, requestURI, authorization string, ip netip.Addr) error {
	source := ip.String()
	if authorization == "" {
		g.count("challenged")
		return &telephony.Reject{Code: 401, Reason: "Unauthorized", Challenge: g.cfg.Auth.Challenges(source, false)}
	}
	creds, err := sipauth.Parse(authorization)
	if err != nil || !sipauth.SameURI(creds.URI, requestURI) {
		return forbidden()
	}
	if t.username == "" || t.password == "" {
		// Verify anyway, so the answer takes as long as for a real trunk.
		err = g.cfg.Auth.Verify(creds, method, source, "\x00", "\x00")
		if errors.Is(err, sipauth.ErrStale) {
			g.count("stale")
			return &telephony.Reject{Code: 401, Reason: "Unauthorized", Challenge: g.cfg.Auth.Challenges(source, true)}
		}
		return forbidden()
	}
	switch err := g.cfg.Auth.Verify(creds, method, source, t.username, t.password); {
	case err == nil:
		return nil
	case errors.Is(err, sipauth.ErrStale):
		g.count("stale")
		return &telephony.Reject{Code: 401, Reason: "Unauthorized", Challenge: g.cfg.Auth.Challenges(source, true)}
	default:
		return forbidden()
	}
}

// registered reports whether trunk id has a live registration from ip.
func (g *Gate) registered(id string, ip netip.Addr) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.bindings[id][ip]
	return ok && until.After(g.cfg.Now())
}

// trunkOf reads num's trunk; nil when it has none.
func (g *Gate) trunkOf(ctx context.Context, num *store.Number) (*trunk, error) {
	doc, err := g.readTrunk(ctx, num)
	if err != nil {
		return nil, err
	}
	return g.parseTrunk(doc)
}

// readTrunk reads num's trunk row; nil when it has none.
func (g *Gate) readTrunk(ctx context.Context, num *store.Number) (*store.Doc, error) {
	if num.TransferTrunkID == nil {
		return nil, nil
	}
	doc, err := g.db.GetDoc(ctx, store.SIPTrunks, num.OrgID, *num.TransferTrunkID)
	if fault.KindOf(err) == fault.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the number's trunk: %w", err)
	}
	return doc, nil
}

// parseTrunk reads what admission needs from a trunk row (nil: none).
func (g *Gate) parseTrunk(doc *store.Doc) (*trunk, error) {
	if doc == nil {
		return nil, nil
	}
	var body struct {
		InboundAddresses []string `json:"inbound_addresses"`
		InboundAuth      string   `json:"inbound_auth"`
		AuthUsername     *string  `json:"auth_username"`
	}
	if err := json.Unmarshal(doc.Body, &body); err != nil {
		return nil, fmt.Errorf("read trunk %s: %w", doc.ID, err)
	}
	t := &trunk{id: doc.ID, orgID: doc.OrgID, auth: body.InboundAuth}
	if t.auth == "" {
		t.auth = AuthAddresses
	}
	for _, a := range body.InboundAddresses {
		e, err := sipacl.ParseEntry(a)
		if err != nil {
			// Stored before addresses were checked this strictly: it
			// admits nobody, and says so.
			g.log.Warn("trunk inbound address ignored", "trunk_id", doc.ID, "address", a, "error", err)
			continue
		}
		t.entries = append(t.entries, e)
	}
	if t.auth == AuthDigest {
		if body.AuthUsername != nil {
			t.username = *body.AuthUsername
		}
		if doc.Secret != nil {
			pw, err := g.keys.Open(*doc.Secret, secret.Binding{OrgID: doc.OrgID, Table: "sip_trunks", Field: "auth_password", RowID: doc.ID})
			if err != nil {
				return nil, fmt.Errorf("open trunk %s password: %w", doc.ID, err)
			}
			t.password = string(pw)
		}
		if t.username == "" || t.password == "" {
			g.log.Warn("trunk set to digest authentication has no username or password: its calls are refused", "trunk_id", doc.ID)
		}
	}
	return t, nil
}

func (g *Gate) refuse(reason string, in telephony.Inbound, ip netip.Addr) error {
	g.countRefused(reason)
	g.log.Debug("sip call refused", "reason", reason, "source", ip.String(), "dialled", in.Dialled, "sip_call_id", in.SIPCallID)
	return forbidden()
}

func (g *Gate) countRefused(reason string) {
	g.mu.Lock()
	g.refused[reason]++
	g.mu.Unlock()
}

func (g *Gate) count(what string) {
	g.mu.Lock()
	g.counts[what]++
	g.mu.Unlock()
}

// Stats are the gate's counters since New.
type Stats struct {
	// Refused counts 403 answers by reason (unknown_number, no_trunk,
	// address, credentials).
	Refused map[string]uint64 `json:"refused"`
	// Challenged counts 401 answers without credentials, Stale those to
	// expired nonces; Registered accepted REGISTERs; AdmittedDigest
	// calls let in by their credentials.
	Challenged     uint64 `json:"challenged"`
	Stale          uint64 `json:"stale"`
	Registered     uint64 `json:"registered"`
	AdmittedDigest uint64 `json:"admitted_digest"`
	// Bindings is the number of live registrations.
	Bindings int `json:"bindings"`
}

// Stats returns a snapshot of the counters.
func (g *Gate) Stats() Stats {
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	st := Stats{Refused: map[string]uint64{}, Challenged: g.counts["challenged"], Stale: g.counts["stale"],
		Registered: g.counts["registered"], AdmittedDigest: g.counts["admitted_digest"]}
	for k, v := range g.refused {
		st.Refused[k] = v
	}
	for _, b := range g.bindings {
		for _, until := range b {
			if until.After(now) {
				st.Bindings++
			}
		}
	}
	return st
}

// Run expires registrations and logs the counters every interval while
// they change, until ctx ends.
func (g *Gate) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.expire()
		st := g.Stats()
		b, _ := json.Marshal(st)
		if string(b) == last {
			continue
		}
		last = string(b)
		reasons := make([]string, 0, len(st.Refused))
		for k := range st.Refused {
			reasons = append(reasons, k)
		}
		sort.Strings(reasons)
		attrs := []any{"challenged", st.Challenged, "stale", st.Stale, "registered", st.Registered, "admitted_digest", st.AdmittedDigest, "bindings", st.Bindings}
		for _, k := range reasons {
			attrs = append(attrs, "refused_"+k, st.Refused[k])
		}
		g.log.Info("sip admission counters", attrs...)
	}
}

// expire forgets registrations that ran out.
func (g *Gate) expire() {
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, b := range g.bindings {
		for a, until := range b {
			if !until.After(now) {
				delete(b, a)
			}
		}
		if len(b) == 0 {
			delete(g.bindings, id)
		}
	}
	for a, at := range g.trusted {
		if now.Sub(at) >= trustFor {
			delete(g.trusted, a)
		}
	}
}
