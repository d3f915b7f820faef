// Package voice runs live phone calls: it routes an inbound call to its
// number's assistant, turns the assistant's configuration into a
// conversation pipeline with the organization's providers and keys, and keeps
// the call record current from ringing to its end.
package voice

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/ambience"
	"github.com/parley-voice/parley/internal/announce"
	"github.com/parley-voice/parley/internal/assistant"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/realtime"
	"github.com/parley-voice/parley/internal/recording"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/stt"
	"github.com/parley-voice/parley/internal/telephony"
	"github.com/parley-voice/parley/internal/tts"
	"github.com/parley-voice/parley/internal/webhook"
)

// Store is what the engine needs from storage.
type Store interface {
	NumberByPhone(ctx context.Context, phone string) (*store.Number, error)
	GetDoc(ctx context.Context, k store.Kind, orgID, id string) (*store.Doc, error)
	BYOKKeys(ctx context.Context, orgID string) ([]store.BYOKKey, error)
	CreateCall(ctx context.Context, c *store.Call, evs ...store.OutboxEvent) error
	StartCall(ctx context.Context, orgID, id string, at time.Time, evs ...store.OutboxEvent) error
	SaveTranscript(ctx context.Context, orgID, id string, messages, metrics json.RawMessage) error
	EndCall(ctx context.Context, e store.CallEnd) error
	SetCallStatus(ctx context.Context, orgID, id string, st call.Status, evs ...store.OutboxEvent) error
	GetOrg(ctx context.Context, id string) (*store.Org, error)
	OrgWebhook(ctx context.Context, orgID string) (url, sealedSecret *string, err error)
	PayerBalance(ctx context.Context, orgID string) (float64, error)
	GetNumber(ctx context.Context, orgID, id string) (*store.Number, error)
	LogDelivery(ctx context.Context, d *store.Delivery) error
	LiveCallsOnTrunk(ctx context.Context, orgID, trunkID string) (int, error)
}

// Dialer places outbound calls (the SIP server).
type Dialer interface {
	Dial(ctx context.Context, o telephony.Outbound, h telephony.Handler) (*telephony.Call, error)
}

// Gate decides who may call in (package inbound). AdmitTrunk runs before
// the call has a row; num is nil for a number that does not exist, trunk
// is the number's trunk row (nil: none).
type Gate interface {
	AdmitTrunk(ctx context.Context, num *store.Number, trunk *store.Doc, in telephony.Inbound) error
	Register(ctx context.Context, num *store.Number, r telephony.Registration) (time.Duration, error)
}

// Notifier wakes the webhook outbox dispatcher.
type Notifier interface{ Notify() }

// Providers are the provider clients the server runs with, by catalog id.
type Providers struct {
	STT map[string]stt.Provider
	LLM map[string]llm.Provider
	TTS map[string]tts.Provider
	// ServerKeys are the server's own keys by provider id
	// (PARLEY_<PROVIDER>_API_KEY), used when an organization has none.
	ServerKeys map[string]string
	// Keyless marks providers that work without a key (a self-hosted
	// OpenAI-compatible server behind a configured base URL, say).
	Keyless map[string]bool
	// Realtime are the speech-to-speech providers by llm_config.provider.
	Realtime map[string]realtime.Provider
	// Fallback is the server's own voice. A realtime call speaks through
	// its model, so when that model is unavailable (the apology) or not
	// yet listening (the recording-consent prompt) this voice speaks
	// instead; zero: such calls end without a word and skip consent.
	Fallback FallbackVoice
}

// FallbackVoice is a text-to-speech provider and voice the server speaks
// with when an assistant's own voice cannot.
type FallbackVoice struct {
	TTS   tts.Provider
	Voice tts.Config
}

// Config configures the engine.
type Config struct {
	// Catalog says which providers are realtime and which BYOK secrets
	// unlock each one.
	Catalog   *catalog.Catalog
	Providers Providers
	// Validator checks assistants returned by assistant-request webhooks.
	Validator *assistant.Validator
	// Webhooks sends synchronous webhooks (assistant-request, tool-calls);
	// its HTTP client is the SSRF-guarded one.
	Webhooks *webhook.Sender
	// Outbox is woken after status events are committed.
	Outbox Notifier
	// HTTP is the SSRF-guarded client MCP servers are reached with.
	HTTP *http.Client
	// RingTimeout bounds outbound ringing (default 60 s).
	RingTimeout time.Duration
	// AfterCall queues each answered call's post-call work; nil: none.
	AfterCall AfterCall
	// Recordings configures call recordings (the spool; finished files go
	// to its done/ directory until uploaded); nil: calls are not recorded.
	Recordings *recording.Config
	// PostcallModels overrides the catalog's post-call model per text
	// provider (a self-hosted OpenAI-compatible server has other models).
	PostcallModels map[string]string
	// BootID is this process life of the node (package recovery); every
	// call row names it, so a later life can end the calls a crash left.
	BootID string
	// Unavailable is what a caller hears when the organization has no
	// minutes left; nil refuses such calls with SIP 480 instead.
	Unavailable *announce.Clip
	// BalanceCache is how long a paying organization's balance, read to
	// decide whether an inbound call may run, is reused (default 1 s;
	// negative: read for every call).
	BalanceCache time.Duration
	// MaxCallDuration caps calls whose assistant sets no
	// max_duration_seconds (default DefaultMaxCallDuration, 1 h; negative:
	// no cap), so no call runs for ever.
	MaxCallDuration time.Duration
	// ConsentWait is how long the consent prompt waits for a key (default
	// 10 s, spec §12.8).
	ConsentWait time.Duration
	// Gate admits inbound calls and answers REGISTER; nil admits every
	// call and refuses REGISTER.
	Gate Gate
	// NewVAD makes each call's voice-activity detector for turn-taking (for
	// example Silero's); nil, or an error, gives the call the pipeline's
	// energy VAD.
	NewVAD func() (VAD, error)
	Logger *slog.Logger
	Now    func() time.Time
}

// Engine routes and runs calls. It implements telephony.Router.
type Engine struct {
	db   Store
	keys *secret.Keyring
	cfg  Config
	log  *slog.Logger
	now  func() time.Time

	dialer Dialer
	base   context.Context // outbound calls' dialling goroutines hang off it
	wg     sync.WaitGroup

	mu   sync.Mutex
	live map[string]*liveCall // by call id

	balances balanceCache
	clips    *ambience.Library // background audio, generated on first use
}

// New builds an engine.
func New(db Store, keys *secret.Keyring, cfg Config) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Engine{db: db, keys: keys, cfg: cfg, log: cfg.Logger, now: cfg.Now, live: map[string]*liveCall{},
		clips: ambience.NewLibrary()}
}

// Attach gives the engine the SIP server to dial out through, and the
// context its outbound dialling lives in. Wait waits for dialling to end.
func (e *Engine) Attach(ctx context.Context, d Dialer) {
	e.base, e.dialer = ctx, d
}

// Wait returns once no outbound dial is in progress.
func (e *Engine) Wait() { e.wg.Wait() }

// Route finds the number's assistant, prepares the conversation and creates
// the call row. Unknown numbers get 404; inactive numbers, numbers without an
// assistant and assistants that cannot run get 480 (with a rejected call row
// saying why, so the owner can see it).
func (e *Engine) Route(ctx context.Context, in telephony.Inbound) (telephony.Handler, error) {
	num, err := e.findNumber(ctx, in.Dialled)
	var rj *telephony.Reject
	unknown := errors.As(err, &rj) && rj.Code == 404
	if err != nil && (!unknown || e.cfg.Gate == nil) {
		return nil, err
	}
	var trunk *store.Doc
	if !unknown {
		if trunk, err = e.numberTrunk(ctx, num); err != nil {
			return nil, fmt.Errorf("route the call: %w", err)
		}
	}
	if e.cfg.Gate != nil {
		known := num
		if unknown {
			known = nil
		}
		if err := e.cfg.Gate.AdmitTrunk(ctx, known, trunk, in); err != nil {
			return nil, err
		}
		if unknown {
			return nil, rj
		}
	}
	sources, err := e.trunkMedia(num, trunk, in)
	if err != nil {
		return nil, err
	}
	row := &store.Call{
		ID: callID(in.Caller), OrgID: num.OrgID, Direction: call.Inbound, Status: call.StatusRinging,
		CallerPhone: strPtr(in.Caller), AssistantPhone: strPtr(num.PhoneNumber), NumberID: &num.ID,
		PhoneNumber: strPtr(num.PhoneNumber), AgentID: num.AssistantID, AgentName: num.AssistantName,
		BusinessName: num.BusinessName, SIPCallID: strPtr(in.SIPCallID), BootID: strPtr(e.cfg.BootID),
	}
	log := e.log.With("call_id", row.ID, "org_id", num.OrgID, "sip_call_id", in.SIPCallID)
	if h, err := e.checkCredits(ctx, num, row, log); h != nil || err != nil {
		return h, err
	}
	rt := e.resolve(ctx, num, row, log)
	if rt.err != nil {
		return nil, fmt.Errorf("route the call: %w", rt.err)
	}
	if rt.why != "" {
		e.reject(ctx, row, num, rt, log)
		return nil, &telephony.Reject{Code: 480, Reason: "Temporarily Unavailable"}
	}
	if rt.agent != nil {
		row.AgentID, row.AgentName = &rt.agent.ID, &rt.agent.Name
	}
	caller := in.Caller
	if rt.plan.gdpr {
		// GDPR mode: the caller's number stays out of the call id and
		// the logs (the call row keeps it for the customer).
		caller = maskNumber(caller)
		row.ID = callID(caller)
		log = e.log.With("call_id", row.ID, "org_id", num.OrgID, "sip_call_id", in.SIPCallID)
	}
	h := &handler{e: e, row: row, plan: rt.plan, log: log, number: num, speakOnly: rt.speakOnly, mediaSources: sources}
	h.hooks = e.newCallHooks(rt.plan.hook, row, num, rt.plan.doc)
	row.Assistant, row.Webhook = h.hooks.env.Assistant, rt.plan.hook.stored(e.keys, num.OrgID)
	evs := h.hooks.status(call.StatusRinging, "", "")
	if err := e.db.CreateCall(ctx, row, evs...); err != nil {
		rt.plan.close()
		return nil, fmt.Errorf("create call row: %w", err)
	}
	e.committed(evs)
	log.Info("inbound call ringing", "caller", caller, "number", num.PhoneNumber)
	return h, nil
}

// numberTrunk reads the number's trunk row; nil when it has none (or it
// is gone).
func (e *Engine) numberTrunk(ctx context.Context, num *store.Number) (*store.Doc, error) {
	if num.TransferTrunkID == nil {
		return nil, nil
	}
	doc, err := e.db.GetDoc(ctx, store.SIPTrunks, num.OrgID, *num.TransferTrunkID)
	if fault.KindOf(err) == fault.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load SIP trunk %s: %w", *num.TransferTrunkID, err)
	}
	return doc, nil
}

// trunkMedia applies the number's trunk (its row, read once by Route) to
// the call's media, before anything is recorded: a plain-RTP call to a
// trunk that requires SRTP is refused with 488 (a *telephony.Reject), and
// the IPs and CIDR prefixes of the trunk's inbound_addresses are returned
// as networks RTP may also come from (a carrier's media servers; host
// names admit signalling only).
func (e *Engine) trunkMedia(num *store.Number, trunk *store.Doc, in telephony.Inbound) ([]netip.Prefix, error) {
	if num.TransferTrunkID == nil {
		return nil, nil
	}
	if trunk == nil {
		return nil, fmt.Errorf("route the call: SIP trunk %s not found", *num.TransferTrunkID)
	}
	b, err := trunkBodyOf(trunk)
	if err != nil {
		return nil, fmt.Errorf("route the call: %w", err)
	}
	if !in.SRTP && strings.EqualFold(b.MediaEncryption, "srtp") {
		e.log.Info("inbound call refused: the number's trunk requires SRTP", "sip_call_id", in.SIPCallID, "number", num.PhoneNumber)
		return nil, &telephony.Reject{Code: 488, Reason: "Not Acceptable Here (SRTP required)"}
	}
	return b.mediaSources(), nil
}

// Register answers a trunk's REGISTER for the number r.AOR (telephony.Registrar).
func (e *Engine) Register(ctx context.Context, r telephony.Registration) (time.Duration, error) {
	if e.cfg.Gate == nil {
		return 0, &telephony.Reject{Code: 405, Reason: "Method Not Allowed"}
	}
	num, err := e.findNumber(ctx, r.AOR)
	var rj *telephony.Reject
	if errors.As(err, &rj) && rj.Code == 404 {
		num = nil
	} else if err != nil {
		return 0, err
	}
	return e.cfg.Gate.Register(ctx, num, r)
}

// reject records an inbound call Parley cannot answer: a rejected row with
// the reason, and its status-update to the assistant's webhook when the
// routing got as far as an assistant, else to the organization's.
func (e *Engine) reject(ctx context.Context, row *store.Call, num *store.Number, rt routing, log *slog.Logger) {
	log.Info("inbound call rejected", "reason", rt.why, "end_reason", string(rt.reason))
	now := e.now()
	reason := string(rt.reason)
	row.Status, row.Error, row.EndedAt, row.EndReason = call.StatusRejected, &rt.why, &now, &reason
	target := assistantHook(rt.doc)
	if target == nil {
		t, err := e.orgHook(ctx, num.OrgID)
		if err != nil {
			log.Warn("load organization webhook", "error", err)
		}
		target = t
	}
	hooks := e.newCallHooks(target, row, num, rt.doc)
	row.Assistant, row.Webhook = hooks.env.Assistant, target.stored(e.keys, num.OrgID)
	evs := hooks.status(call.StatusRejected, rt.reason, rt.why)
	if err := e.db.CreateCall(ctx, row, evs...); err != nil {
		log.Error("record rejected call", "error", err)
		return
	}
	e.committed(evs)
}

// checkCredits refuses a call to an organization whose paying organization
// has no minutes left (spec §12.11): the call is recorded as rejected
// (insufficient-credits) and the caller hears a short message; no model
// runs. It returns nil, nil when the call may go ahead.
func (e *Engine) checkCredits(ctx context.Context, num *store.Number, row *store.Call, log *slog.Logger) (telephony.Handler, error) {
	balance, err := e.balance(ctx, num.OrgID)
	if err != nil {
		return nil, fmt.Errorf("read the organization's balance: %w", err)
	}
	if balance > 0 {
		return nil, nil
	}
	rt := routing{why: "the organization has no minutes left", reason: call.EndInsufficientCredits}
	if num.AssistantID != nil {
		if doc, err := e.assistant(ctx, num.OrgID, *num.AssistantID); err == nil {
			rt.doc = doc.Body // its webhook hears of the refusal
		}
	}
	e.reject(ctx, row, num, rt, log)
	if e.cfg.Unavailable == nil {
		return nil, &telephony.Reject{Code: 480, Reason: "Temporarily Unavailable"}
	}
	return &announcement{clip: e.cfg.Unavailable, log: log}, nil
}

// balanceCache remembers paying balances briefly: checking the balance
// before every inbound call then costs one query per organization per
// second rather than one per call. A balance that crosses zero is seen
// within that time; a call let in meanwhile is billed in full (the balance
// goes below zero and the next calls are refused).
type balanceCache struct {
	mu sync.Mutex
	m  map[string]cachedBalance
}

type cachedBalance struct {
	minutes float64
	at      time.Time
}

// balance is the paying balance of an organization's calls.
func (e *Engine) balance(ctx context.Context, orgID string) (float64, error) {
	ttl := e.cfg.BalanceCache
	if ttl == 0 {
		ttl = time.Second
	}
	now := e.now()
	if ttl > 0 {
		e.balances.mu.Lock()
		c, ok := e.balances.m[orgID]
		e.balances.mu.Unlock()
		if ok && now.Sub(c.at) < ttl {
			return c.minutes, nil
		}
	}
	b, err := e.db.PayerBalance(ctx, orgID)
	if err != nil || ttl < 0 {
		return b, err
	}
	e.balances.mu.Lock()
	defer e.balances.mu.Unlock()
	if e.balances.m == nil {
		e.balances.m = map[string]cachedBalance{}
	}
	e.balances.m[orgID] = cachedBalance{minutes: b, at: now}
	return b, nil
}

// maskNumber keeps the first four and last two characters of a number:
// +31612345678 → +316xxxxxx78.
func maskNumber(n string) string {
	if len(n) <= 6 {
		return strings.Repeat("x", len(n))
	}
	return n[:4] + strings.Repeat("x", len(n)-6) + n[len(n)-2:]
}

// findNumber looks the dialled user part up as given and as E.164.
func (e *Engine) findNumber(ctx context.Context, dialled string) (*store.Number, error) {
	for _, cand := range numberCandidates(dialled) {
		n, err := e.db.NumberByPhone(ctx, cand)
		if err == nil {
			return n, nil
		}
		if fault.KindOf(err) != fault.NotFound {
			return nil, fmt.Errorf("look up number: %w", err)
		}
	}
	return nil, &telephony.Reject{Code: 404, Reason: "Not Found"}
}

// numberCandidates spells a dialled number the ways it may be stored:
// as sent, without visual separators, with a leading + and with 00 → +.
func numberCandidates(d string) []string {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')':
			return -1
		}
		return r
	}, d)
	out := []string{d}
	add := func(s string) {
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	add(clean)
	digits := strings.TrimPrefix(clean, "+")
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		if strings.HasPrefix(digits, "00") {
			add("+" + digits[2:])
		}
		add("+" + digits)
	}
	return out
}

// callID makes an inbound id in the documented shape:
// call-_<caller>_<12 alphanumerics>.
func callID(caller string) string {
	who := strings.Map(func(r rune) rune {
		if r == '+' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return -1
	}, caller)
	if who == "" {
		who = "anonymous"
	}
	if len(who) > 32 {
		who = who[:32]
	}
	return "call-_" + who + "_" + randomAlnum(12)
}

// randomAlnum returns n random letters and digits.
func randomAlnum(n int) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// errNoKey explains a missing provider key.
func errNoKey(provider, vendor string) error {
	return fmt.Errorf("no API key for %s: add one with POST /api/v1/byok or set PARLEY_%s_API_KEY on the server", provider, strings.ToUpper(vendor))
}
