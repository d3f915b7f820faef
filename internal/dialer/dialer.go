// Package dialer calls the leads of outbound campaigns (spec §7.15, §12.4).
//
// Every node runs one Dialer. Each step it
//
//  1. settles the attempts that are over: a lead whose call ended becomes
//     completed, failed or pending again for a retry (campaign.Decide); a
//     lead claimed by a process life that died before its call existed goes
//     back to pending uncounted — nothing was dialled;
//  2. marks completed the scheduled campaigns with nothing left to call;
//  3. for each scheduled campaign whose calling window is open (in its own
//     time zone), whose organization has minutes left and whose trunk is not
//     backing off, claims as many due leads as its caps allow and dials them
//     through the voice engine with the lead's variables filled in.
//
// The claim (store.ClaimLeads) decides the dial and moves the lead to
// calling with its call id in one transaction, and the settlement only moves
// a lead still calling with that call id, so nodes sharing one PostgreSQL
// never dial a lead twice for one attempt and a crash loses none.
package dialer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/docsecret"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// Store is what the dialer needs of the store.
type Store interface {
	ScheduledCampaigns(ctx context.Context) ([]store.Campaign, error)
	ClaimLeads(ctx context.Context, r store.ClaimRequest) ([]store.Lead, error)
	EndedAttempts(ctx context.Context, staleAfter time.Duration, limit int) ([]store.EndedAttempt, error)
	SettleLead(ctx context.Context, s store.Settlement) (bool, error)
	PauseCampaign(ctx context.Context, id, reason string) (bool, error)
	BackoffCampaign(ctx context.Context, id string, until time.Time) error
	CompleteFinished(ctx context.Context) (int, error)
	PayerBalance(ctx context.Context, orgID string) (float64, error)
	GetDoc(ctx context.Context, k store.Kind, orgID, id string) (*store.Doc, error)
	ListNumbers(ctx context.Context, orgID string) ([]store.Number, error)
}

// Caller places outbound calls (the voice engine).
type Caller interface {
	Dial(ctx context.Context, d call.Dial) (string, error)
}

// Config configures a Dialer.
type Config struct {
	Store Store
	Calls Caller
	// Keys open the assistants' sealed secrets.
	Keys docsecret.Keys
	// BootID is this process life (recovery), stamped on claimed leads.
	BootID string
	// Tick is the time between steps (default 250 ms).
	Tick time.Duration
	// Free returns how many more calls this node can take now; nil means
	// no limit beyond the campaigns' own.
	Free func() int
	// OrgMaxConcurrent caps an organization's campaign calls at once when
	// it has no cap of its own (default campaign.DefaultOrgMaxConcurrent).
	OrgMaxConcurrent int
	// StaleAfter is how old a process life's heartbeat may be before its
	// claims are taken as abandoned (default 30 s; recovery's setting).
	StaleAfter time.Duration
	// Backoff is how long a campaign waits after its trunk was congested
	// (default 30 s).
	Backoff time.Duration
	Now     func() time.Time
	Logger  *slog.Logger
}

// Dialer dials campaign leads.
type Dialer struct {
	cfg   Config
	log   *slog.Logger
	stats counters
}

// Stats are a dialer's counters since it started, for harnesses and the
// debug endpoint.
type Stats struct {
	Steps    int64 `json:"steps"`
	Claimed  int64 `json:"claimed"`  // leads moved to calling
	Dialled  int64 `json:"dialled"`  // calls the engine accepted
	Settled  int64 `json:"settled"`  // attempts settled by this node
	Released int64 `json:"released"` // claims handed back uncounted
	// Time spent, in nanoseconds: whole steps, settling, claiming (the
	// transaction), and in the engine's Dial (plan + call row).
	StepNanos   int64 `json:"step_ns"`
	SettleNanos int64 `json:"settle_ns"`
	ClaimNanos  int64 `json:"claim_ns"`
	DialNanos   int64 `json:"dial_ns"`
}

type counters struct {
	steps, claimed, dialled, settled, released atomic.Int64
	step, settle, claim, dial                  atomic.Int64
}

// Stats returns the dialer's counters.
func (d *Dialer) Stats() Stats {
	c := &d.stats
	return Stats{Steps: c.steps.Load(), Claimed: c.claimed.Load(), Dialled: c.dialled.Load(), Settled: c.settled.Load(), Released: c.released.Load(),
		StepNanos: c.step.Load(), SettleNanos: c.settle.Load(), ClaimNanos: c.claim.Load(), DialNanos: c.dial.Load()}
}

// since adds the time since t to a counter.
func since(c *atomic.Int64, t time.Time) { c.Add(int64(time.Since(t))) }

// New returns a Dialer.
func New(cfg Config) *Dialer {
	if cfg.Tick <= 0 {
		cfg.Tick = 250 * time.Millisecond
	}
	if cfg.OrgMaxConcurrent <= 0 {
		cfg.OrgMaxConcurrent = campaign.DefaultOrgMaxConcurrent
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 30 * time.Second
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Dialer{cfg: cfg, log: cfg.Logger}
}

// Run steps until ctx is done. A failed step is logged and the next one
// runs a tick later.
func (d *Dialer) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Tick)
	defer t.Stop()
	for {
		if err := d.Step(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("campaign dialer step", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Step runs one pass: settle, complete, dial.
func (d *Dialer) Step(ctx context.Context) error {
	defer since(&d.stats.step, time.Now())
	d.stats.steps.Add(1)
	s := &step{d: d, now: d.cfg.Now(), assistants: map[string]*assistantDoc{}, lines: map[string]*line{}, balance: map[string]float64{}}
	if err := s.settle(ctx); err != nil {
		return err
	}
	if n, err := d.cfg.Store.CompleteFinished(ctx); err != nil {
		return err
	} else if n > 0 {
		d.log.Info("campaigns completed", "count", n)
	}
	return s.dial(ctx)
}

// step is one pass's state: what it looked up once for all campaigns.
type step struct {
	d          *Dialer
	now        time.Time
	assistants map[string]*assistantDoc // by org/agent id
	lines      map[string]*line         // by org; nil when it has none
	balance    map[string]float64
}

// settle settles every attempt that is over.
func (s *step) settle(ctx context.Context) error {
	defer since(&s.d.stats.settle, time.Now())
	for {
		ended, err := s.d.cfg.Store.EndedAttempts(ctx, s.d.cfg.StaleAfter, 500)
		if err != nil {
			return err
		}
		before := s.d.stats.settled.Load() + s.d.stats.released.Load()
		for i := range ended {
			if err := s.settleOne(ctx, &ended[i]); err != nil {
				return err
			}
		}
		if len(ended) < 500 || s.d.stats.settled.Load()+s.d.stats.released.Load() == before {
			return nil // all done, or what is left is another node's to settle
		}
	}
}

func (s *step) settleOne(ctx context.Context, a *store.EndedAttempt) error {
	callID := ""
	if a.CallID != nil {
		callID = *a.CallID
	}
	log := s.d.log.With("campaign_id", a.CampaignID, "lead_id", a.ID, "call_id", callID)
	if a.CallMissing {
		// The life that claimed it died before the call existed: nothing
		// was dialled, so the attempt is taken back.
		ok, err := s.handBack(ctx, a.ID, callID)
		if ok {
			log.Info("lead handed back: its dial never started")
		}
		return err
	}
	p := (&store.Campaign{MaxAttempts: a.MaxAttempts, RetryDelaySeconds: a.RetryDelaySeconds}).Pacing()
	pol := campaign.Policy{MaxAttempts: p.MaxAttempts, RetryDelay: p.RetryDelay}
	if doc, err := s.assistant(ctx, a.OrgID, a.AgentID); err == nil {
		pol.LeaveVoicemail = doc.leavesVoicemail
	}
	dec := campaign.Decide(campaign.Attempt{EndReason: a.EndReason, Answered: a.Answered, Attempts: a.Attempts}, pol, s.now)
	set := store.Settlement{LeadID: a.ID, CallID: callID, Status: dec.Status, Uncounted: dec.Uncounted, Outcome: dec.Outcome}
	if dec.Status == campaign.LeadPending {
		at := dec.RetryAt
		set.NextAttemptAt = &at
	}
	ok, err := s.d.cfg.Store.SettleLead(ctx, set)
	if err != nil || !ok {
		return err
	}
	s.d.stats.settled.Add(1)
	log.Info("lead attempt settled", "end_reason", a.EndReason, "answered", a.Answered, "attempts", a.Attempts, "lead_status", dec.Status.String(), "outcome", dec.Outcome)
	if dec.Backoff {
		if err := s.d.cfg.Store.BackoffCampaign(ctx, a.CampaignID, s.now.Add(s.d.cfg.Backoff)); err != nil {
			return err
		}
		log.Warn("campaign backs off: the trunk or the server is congested", "until", s.now.Add(s.d.cfg.Backoff))
	}
	if dec.Pause != "" {
		return s.pause(ctx, a.CampaignID, dec.Pause)
	}
	return nil
}

func (s *step) pause(ctx context.Context, campaignID, reason string) error {
	ok, err := s.d.cfg.Store.PauseCampaign(ctx, campaignID, reason)
	if ok {
		s.d.log.Warn("campaign paused", "campaign_id", campaignID, "reason", reason)
	}
	return err
}

// dial claims and dials the due leads of every scheduled campaign.
func (s *step) dial(ctx context.Context) error {
	campaigns, err := s.d.cfg.Store.ScheduledCampaigns(ctx)
	if err != nil {
		return err
	}
	for i := range campaigns {
		c := &campaigns[i]
		if c.PendingLeads == 0 || (c.BackoffUntil != nil && c.BackoffUntil.After(s.now)) {
			continue
		}
		if c.NextRetryAt != nil && c.NextRetryAt.After(s.now) && c.PendingLeads == c.RetriesScheduled {
			continue // only retries, none due yet
		}
		if open, err := s.windowOpen(c); err != nil {
			if perr := s.pause(ctx, c.ID, "the calling window cannot be read: "+err.Error()); perr != nil {
				return perr
			}
			continue
		} else if !open {
			continue
		}
		free := math.MaxInt32
		if s.d.cfg.Free != nil {
			if free = s.d.cfg.Free(); free <= 0 {
				return nil
			}
		}
		if err := s.dialCampaign(ctx, c, free); err != nil {
			return err
		}
	}
	return nil
}

func (s *step) windowOpen(c *store.Campaign) (bool, error) {
	days, err := campaign.ParseDays(c.DaysOfWeek)
	if err != nil {
		return false, err
	}
	w, err := campaign.NewWindow(c.ScheduleStartTime, c.ScheduleEndTime, c.Timezone, days)
	if err != nil {
		return false, err
	}
	return w.Open(s.now), nil
}

func (s *step) dialCampaign(ctx context.Context, c *store.Campaign, free int) error {
	log := s.d.log.With("campaign_id", c.ID, "org_id", c.OrgID)
	if ok, err := s.hasMinutes(ctx, c.OrgID); err != nil {
		return err
	} else if !ok {
		return s.pause(ctx, c.ID, fmt.Sprintf("insufficient_credits: organization %s has no minutes left; add minutes (parley org balance --org %s --add 60), then set the campaign to scheduled", c.OrgID, c.OrgID))
	}
	doc, err := s.assistant(ctx, c.OrgID, c.AgentID)
	if err != nil {
		if fault.KindOf(err) == fault.Internal {
			return err
		}
		return s.pause(ctx, c.ID, err.Error())
	}
	ln, err := s.line(ctx, c.OrgID)
	if err != nil {
		return err
	}
	if ln == nil {
		return s.pause(ctx, c.ID, "no active phone number with a SIP trunk to dial from: register one with a transfer_trunk_id, then set the campaign to scheduled")
	}
	p := c.Pacing()
	// Spread a campaign's dials over the ticks of a second rather than
	// starting a second's worth at once.
	perTick := max(1, int(math.Ceil(p.CallsPerSecond*s.d.cfg.Tick.Seconds())))
	claimStart := time.Now()
	leads, err := s.d.cfg.Store.ClaimLeads(ctx, store.ClaimRequest{
		OrgID: c.OrgID, CampaignID: c.ID, Now: s.now,
		Limit: min(free, perTick), MaxConcurrent: p.MaxConcurrent, OrgMaxConcurrent: s.d.cfg.OrgMaxConcurrent,
		RateWindow: rateWindow(p.RateWindow(), s.d.cfg.Tick), RateMax: p.RateAllowance(0),
		TrunkID: *ln.num.TransferTrunkID, TrunkMax: ln.trunkMax,
		BootID: s.d.cfg.BootID, NewCallID: call.OutboundID,
	})
	since(&s.d.stats.claim, claimStart)
	if err != nil {
		return err
	}
	s.d.stats.claimed.Add(int64(len(leads)))
	// The engine's Dial writes the call row (a commit each): the claimed
	// leads are dialled side by side so a step's batch is not a queue of
	// commits. Each dialLead hands its own lead back when it fails.
	var g errgroup.Group
	g.SetLimit(dialParallel)
	for i := range leads {
		g.Go(func() error { return s.dialLead(ctx, log, c, doc, ln.num, &leads[i]) })
	}
	return g.Wait()
}

// dialParallel is how many of a step's claimed leads are dialled at once.
const dialParallel = 8

// dialLead dials one claimed lead. A refusal by the engine hands the lead
// back uncounted: a full server backs the campaign off, a configuration
// problem every lead would hit pauses it.
func (s *step) dialLead(ctx context.Context, log *slog.Logger, c *store.Campaign, doc *assistantDoc, num *store.Number, l *store.Lead) error {
	body, missing, err := doc.forLead(c, l)
	if err != nil {
		s.release(ctx, l)
		return err
	}
	log = log.With("lead_id", l.ID, "call_id", *l.CallID)
	if len(missing) > 0 {
		log.Warn("campaign call placed with unfilled placeholders", "placeholders", missing)
	}
	dialStart := time.Now()
	_, err = s.d.cfg.Calls.Dial(ctx, call.Dial{ID: *l.CallID, OrgID: c.OrgID, Destination: l.PhoneNumber, NumberID: num.ID, AssistantID: c.AgentID, Assistant: body})
	since(&s.d.stats.dial, dialStart)
	if err == nil {
		s.d.stats.dialled.Add(1)
		log.Info("campaign lead dialled", "attempt", l.Attempts)
		return nil
	}
	s.release(ctx, l)
	switch fault.KindOf(err) {
	case fault.Invalid, fault.NotFound:
		return s.pause(ctx, c.ID, "the campaign's calls cannot be placed: "+err.Error())
	case fault.Unavailable:
		log.Warn("campaign dial refused by the voice engine; backing off", "error", err)
		return s.d.cfg.Store.BackoffCampaign(ctx, c.ID, s.now.Add(s.d.cfg.Backoff))
	}
	return fmt.Errorf("dial lead %s: %w", l.ID, err)
}

// release hands back a lead this step claimed and could not dial.
func (s *step) release(ctx context.Context, l *store.Lead) {
	if _, err := s.handBack(context.WithoutCancel(ctx), l.ID, *l.CallID); err != nil {
		// Left calling: the next life of this node hands it back.
		s.d.log.Warn("hand back a claimed lead", "lead_id", l.ID, "error", err)
	}
}

// handBack returns a claimed lead to pending uncounted, naming no call: its
// dial never started. It reports whether the lead was still so claimed.
func (s *step) handBack(ctx context.Context, leadID, callID string) (bool, error) {
	ok, err := s.d.cfg.Store.SettleLead(ctx, store.Settlement{LeadID: leadID, CallID: callID, Status: campaign.LeadPending, Uncounted: true, Released: true})
	if ok {
		s.d.stats.released.Add(1)
	}
	return ok, err
}

func (s *step) hasMinutes(ctx context.Context, org string) (bool, error) {
	b, ok := s.balance[org]
	if !ok {
		var err error
		if b, err = s.d.cfg.Store.PayerBalance(ctx, org); err != nil {
			return false, err
		}
		s.balance[org] = b
	}
	return b > 0, nil
}

// line is what an organization's campaign calls go out through: its
// calling number and the channel limit of that number's trunk (0: none).
type line struct {
	num      *store.Number
	trunkMax int
}

// line finds the organization's calling number, its oldest active number
// with an outbound trunk as for outbound calls without number_id, and the
// trunk's channel limit.
func (s *step) line(ctx context.Context, org string) (*line, error) {
	if l, ok := s.lines[org]; ok {
		return l, nil
	}
	nums, err := s.d.cfg.Store.ListNumbers(ctx, org)
	if err != nil {
		return nil, err
	}
	s.lines[org] = nil
	for i := range nums {
		if !nums[i].IsActive || nums[i].TransferTrunkID == nil {
			continue
		}
		l := &line{num: &nums[i]}
		trunk, err := s.d.cfg.Store.GetDoc(ctx, store.SIPTrunks, org, *nums[i].TransferTrunkID)
		if err != nil && fault.KindOf(err) != fault.NotFound {
			return nil, err
		}
		if trunk != nil {
			var b struct {
				Max *int `json:"max_concurrent_calls"`
			}
			if json.Unmarshal(trunk.Body, &b) == nil && b.Max != nil {
				l.trunkMax = *b.Max
			}
		}
		s.lines[org] = l
		break
	}
	return s.lines[org], nil
}

// The claim counts a campaign's starts over its rate window less half a
// tick. Steps run a tick apart, each starting up to cps*tick leads, so a
// window holds window/tick batches; a step that starts even a millisecond
// earlier, relative to the batch one window before, than that batch did
// would still count it and claim nothing for a whole tick (measured: 40
// calls per second configured, one step in eleven empty, 36 achieved; a
// fixed 50 ms slack leaves steps that start later than that exposed). The
// slack is at most half the window (a tick longer than the window). One node stays
// within the rate through its per-step batch; with several nodes' steps
// interleaving, starts can exceed the rate by at most window/(window -
// tick/2) (14 % for a 1 s window and 250 ms ticks).
func rateWindow(window, tick time.Duration) time.Duration {
	return window - min(tick, window)/2
}

// assistantDoc is a campaign's saved assistant, secrets in place.
type assistantDoc struct {
	doc             map[string]json.RawMessage
	leavesVoicemail bool
}

func (s *step) assistant(ctx context.Context, org, id string) (*assistantDoc, error) {
	key := org + "/" + id
	if a, ok := s.assistants[key]; ok {
		return a, nil
	}
	a, err := s.loadAssistant(ctx, org, id)
	if err != nil {
		return nil, err
	}
	s.assistants[key] = a
	return a, nil
}

func (s *step) loadAssistant(ctx context.Context, org, id string) (*assistantDoc, error) {
	d, err := s.d.cfg.Store.GetDoc(ctx, store.Assistants, org, id)
	if fault.KindOf(err) == fault.NotFound {
		return nil, fault.Invalidf("agent_id", "the campaign's assistant %s no longer exists", id)
	}
	if err != nil {
		return nil, err
	}
	if !d.Active {
		return nil, fault.Invalidf("agent_id", "the campaign's assistant %s is inactive; activate it, then set the campaign to scheduled", id)
	}
	body, err := docsecret.Reveal(s.d.cfg.Keys, d)
	if err != nil {
		return nil, fmt.Errorf("open assistant %s: %w", id, err)
	}
	a := &assistantDoc{}
	if err := json.Unmarshal(body, &a.doc); err != nil {
		return nil, fmt.Errorf("decode assistant %s: %w", id, err)
	}
	var vm struct {
		Detection bool    `json:"voicemail_detection"`
		Message   *string `json:"voicemail_message"`
	}
	_ = json.Unmarshal(body, &vm)
	a.leavesVoicemail = vm.Detection && vm.Message != nil && *vm.Message != ""
	return a, nil
}

// forLead returns the assistant document of one lead's call: the lead's
// variables filled into the first messages and the system messages, the
// campaign's system_message_template rendered and added as a system message
// after the assistant's own, and the campaign and lead named in metadata
// (echoed in every webhook of the call). It also returns the placeholders
// no variable filled, which are left visible.
func (a *assistantDoc) forLead(c *store.Campaign, l *store.Lead) (json.RawMessage, []string, error) {
	vars := map[string]string{"phone_number": l.PhoneNumber}
	if l.Name != nil {
		vars["name"] = *l.Name
	}
	maps.Copy(vars, l.Variables)
	missing := map[string]bool{}
	render := func(s string) string {
		out, miss := campaign.Render(s, vars)
		for _, m := range miss {
			missing[m] = true
		}
		return out
	}
	doc := maps.Clone(a.doc)
	if err := renderString(doc, "first_message", render); err != nil {
		return nil, nil, err
	}
	if raw, ok := doc["speech_config"]; ok && given(raw) {
		var speech map[string]json.RawMessage
		if err := json.Unmarshal(raw, &speech); err == nil {
			if err := renderString(speech, "first_message_outbound", render); err != nil {
				return nil, nil, err
			}
			doc["speech_config"], _ = json.Marshal(speech)
		}
	}
	var llmCfg map[string]json.RawMessage
	if err := json.Unmarshal(doc["llm_config"], &llmCfg); err != nil {
		return nil, nil, fmt.Errorf("decode llm_config: %w", err)
	}
	var msgs []map[string]any
	if raw, ok := llmCfg["messages"]; ok && given(raw) {
		if err := json.Unmarshal(raw, &msgs); err != nil {
			return nil, nil, fmt.Errorf("decode llm_config.messages: %w", err)
		}
	}
	for _, m := range msgs {
		if content, ok := m["content"].(string); ok {
			m["content"] = render(content)
		}
	}
	if c.SystemMessageTemplate != nil && *c.SystemMessageTemplate != "" {
		msgs = append(msgs, map[string]any{"role": "system", "content": render(*c.SystemMessageTemplate)})
	}
	llmCfg["messages"], _ = json.Marshal(msgs)
	doc["llm_config"], _ = json.Marshal(llmCfg)

	meta := map[string]any{}
	if raw, ok := doc["metadata"]; ok && given(raw) {
		_ = json.Unmarshal(raw, &meta)
	}
	meta["campaign_id"], meta["lead_id"], meta["lead_attempt"] = c.ID, l.ID, l.Attempts
	miss := sortedKeys(missing)
	if len(miss) > 0 {
		meta["unfilled_variables"] = miss
	}
	doc["metadata"], _ = json.Marshal(meta)
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("encode the lead's assistant: %w", err)
	}
	return body, miss, nil
}

func renderString(doc map[string]json.RawMessage, key string, render func(string) string) error {
	raw, ok := doc[key]
	if !ok || !given(raw) {
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	doc[key], _ = json.Marshal(render(s))
	return nil
}

func given(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
