// Package notify e-mails a call's end-of-call report to the notification
// addresses of its assistant (notification_email, notification_emails; spec
// §12.17): the summary, the structured analysis, duration, end reason, the
// numbers, a link to the call and to its recording, and the transcript
// unless the assistant is in GDPR mode, as a plain-text and an HTML part
// (text/template and html/template, embedded).
//
// The post-call report job (package postcall) queues the mails once it has
// built the report: one durable job per recipient, unique by call and
// address, so a report job that runs twice queues them once, several nodes
// on one database send each once, a recipient that is refused for good
// (5xx) is given up without holding up the others, and a temporary failure
// (4xx, a server down) is retried with backoff.
//
// The transport is chosen per organization: the organization's own Resend
// account from its verified domain when it has both, else the server's SMTP
// transport (from notifications@<verified domain>, or the configured
// address), else none: then no mail is sent and that is logged once per
// call.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/jobs"
	"github.com/parley-voice/parley/internal/mail"
	"github.com/parley-voice/parley/internal/recording"
	"github.com/parley-voice/parley/internal/signedurl"
	"github.com/parley-voice/parley/internal/store"
)

// Store is what the notification reads.
type Store interface {
	GetCall(ctx context.Context, orgID, id string) (*store.Call, error)
}

// DomainSource knows an organization's verified sending domain (/domains).
type DomainSource interface {
	VerifiedDomain(ctx context.Context, orgID string) (name string, ok bool, err error)
}

// ResendSenders gives the sender that uses an organization's own Resend
// account, when it has a Resend key. Its Send wraps a refusal that will not
// change (a 4xx other than 429) with mail.Permanent, so it is not retried.
type ResendSenders interface {
	ResendSenderFor(ctx context.Context, orgID string) (mail.Sender, bool, error)
}

// Inserter queues jobs (jobs.Queue).
type Inserter interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error
}

// Config configures the notification e-mails of a node.
type Config struct {
	Store Store
	// Domains and Resend may be nil: no organization has a verified domain
	// or a Resend sender.
	Domains DomainSource
	Resend  ResendSenders
	// SMTP is the server's own transport (nil: none) and From its sender
	// address ("Name <addr>" or "addr"; required with SMTP). An organization
	// with a verified domain sends from notifications@<domain> with From's
	// display name.
	SMTP mail.Sender
	From string
	// PublicURL is where clients reach the API (links to the call).
	PublicURL string
	// Links signs recording links, valid for LinkTTL (default 24 hours).
	Links   signedurl.Signer
	LinkTTL time.Duration
	// Workers is how many mails this node sends at once (default 4).
	Workers int
	// MaxAttempts bounds the sends of one mail that keeps failing for a
	// reason worth retrying (default 8); RetryBase is the wait before the
	// second attempt, each later one four times longer, up to 10 minutes
	// (default 5 s).
	MaxAttempts int
	RetryBase   time.Duration
	// SendTimeout bounds one attempt (default 1 minute).
	SendTimeout time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
}

// Service queues and sends the notification e-mails.
type Service struct {
	cfg   Config
	log   *slog.Logger
	tmpl  templates
	queue Inserter
}

// QueueNotify is the queue of notification e-mails (any node).
const QueueNotify = "notify"

// New builds the service. Register its worker, then Attach the queue.
func New(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 5 * time.Second
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = time.Minute
	}
	if cfg.LinkTTL <= 0 {
		cfg.LinkTTL = 24 * time.Hour
	}
	if cfg.SMTP != nil {
		if _, err := netmail.ParseAddress(cfg.From); err != nil {
			return nil, fmt.Errorf("notification sender address %q: %w", cfg.From, err)
		}
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, log: cfg.Logger, tmpl: t}, nil
}

// Queues are the queues this node works, with their worker counts.
func (s *Service) Queues() map[string]int { return map[string]int{QueueNotify: s.cfg.Workers} }

// Register adds the job kind to workers.
func (s *Service) Register(w *river.Workers) { river.AddWorker(w, &worker{s: s}) }

// Periodic: none.
func (s *Service) Periodic() []*river.PeriodicJob { return nil }

// Attach gives the service the queue that Queue inserts into.
func (s *Service) Attach(q Inserter) { s.queue = q }

// Wants reports whether the call's assistant has notification addresses.
func (s *Service) Wants(c *store.Call) bool { return len(Recipients(c.Assistant)) > 0 }

// Args is one notification e-mail: a call's report to one address.
type Args struct {
	OrgID  string `json:"org_id"`
	CallID string `json:"call_id"`
	To     string `json:"to"`
}

// Kind names the job.
func (Args) Kind() string { return "call_notification" }

// Queue queues the notification e-mails of an ended call whose report is
// built: a job per address, each once however often this runs. With no
// transport for the organization nothing is queued and that is logged.
func (s *Service) Queue(ctx context.Context, c *store.Call) error {
	to := Recipients(c.Assistant)
	if len(to) == 0 {
		return nil
	}
	if s.queue == nil {
		return errors.New("notification e-mails: no job queue attached")
	}
	t, err := s.transport(ctx, c.OrgID)
	if err != nil {
		return err
	}
	if t.sender == nil {
		s.log.Warn("notification e-mail not sent: no mail transport for this organization (set PARLEY_SMTP_HOST, or give it a verified domain and a Resend key)",
			"call_id", c.ID, "org_id", c.OrgID, "recipients", len(to))
		return nil
	}
	for _, addr := range to {
		args := Args{OrgID: c.OrgID, CallID: c.ID, To: addr}
		err := s.queue.Insert(ctx, args, &river.InsertOpts{Queue: QueueNotify, MaxAttempts: s.cfg.MaxAttempts,
			UniqueOpts: river.UniqueOpts{ByArgs: true}})
		if err != nil {
			return fmt.Errorf("queue the notification e-mail of call %s: %w", c.ID, err)
		}
	}
	return nil
}

// transport is how an organization's mail goes out.
type transport struct {
	sender mail.Sender // nil: none
	from   string
	name   string // "resend" or "smtp", for logs
}

func (s *Service) transport(ctx context.Context, orgID string) (transport, error) {
	domain, verified := "", false
	if s.cfg.Domains != nil {
		d, ok, err := s.cfg.Domains.VerifiedDomain(ctx, orgID)
		if err != nil {
			return transport{}, fmt.Errorf("look up the organization's verified domain: %w", err)
		}
		domain, verified = d, ok && d != ""
	}
	if verified && s.cfg.Resend != nil {
		snd, ok, err := s.cfg.Resend.ResendSenderFor(ctx, orgID)
		if err != nil {
			return transport{}, fmt.Errorf("look up the organization's Resend sender: %w", err)
		}
		if ok {
			return transport{sender: snd, from: s.fromDomain(domain), name: "resend"}, nil
		}
	}
	if s.cfg.SMTP != nil {
		from := s.cfg.From
		if verified {
			from = s.fromDomain(domain)
		}
		return transport{sender: s.cfg.SMTP, from: from, name: "smtp"}, nil
	}
	return transport{}, nil
}

// fromDomain is notifications@domain with the configured display name.
func (s *Service) fromDomain(domain string) string {
	a := netmail.Address{Address: "notifications@" + domain}
	if c, err := netmail.ParseAddress(s.cfg.From); err == nil {
		a.Name = c.Name
	}
	if a.Name == "" {
		a.Name = "Parley"
	}
	return a.String()
}

// Message is the notification e-mail of a call to one address.
func (s *Service) Message(c *store.Call, from, to string) (mail.Message, error) {
	l := links{Base: s.cfg.PublicURL}
	if c.RecordingState == store.RecordingReady {
		l.Recording = recording.Link(s.cfg.Links, c.OrgID, c.ID, s.cfg.LinkTTL)
		l.RecordingExpires = s.cfg.Now().Add(s.cfg.LinkTTL)
	}
	v := newView(c, l)
	text, html, err := s.tmpl.render(v)
	if err != nil {
		return mail.Message{}, err
	}
	sum := sha256.Sum256([]byte(c.OrgID + "\x00" + c.ID + "\x00" + strings.ToLower(to)))
	host := mail.Domain(from)
	if host == "" {
		host = "parley.invalid"
	}
	return mail.Message{
		From: from, To: []string{to}, Subject: v.subject(), Text: text, HTML: html,
		MessageID: "notify-" + hex.EncodeToString(sum[:12]) + "@" + host, Date: s.cfg.Now(),
		Headers: map[string]string{"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
	}, nil
}

type worker struct {
	river.WorkerDefaults[Args]
	s *Service
}

func (w *worker) Timeout(*river.Job[Args]) time.Duration { return w.s.cfg.SendTimeout + 10*time.Second }

// NextRetry: base, 4×base, 16×base, …, at most 10 minutes.
func (w *worker) NextRetry(j *river.Job[Args]) time.Time {
	return w.s.cfg.Now().Add(jobs.Backoff(w.s.cfg.RetryBase, j.Attempt))
}

func (w *worker) Work(ctx context.Context, j *river.Job[Args]) error {
	err := w.work(ctx, j)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// The node is stopping: again soon, not counted as a failure.
		return river.JobSnooze(0)
	}
	return err
}

func (w *worker) work(ctx context.Context, j *river.Job[Args]) error {
	s, a := w.s, j.Args
	log := s.log.With("call_id", a.CallID, "org_id", a.OrgID, "job", "call_notification", "attempt", j.Attempt)
	c, err := s.cfg.Store.GetCall(ctx, a.OrgID, a.CallID)
	if fault.KindOf(err) == fault.NotFound {
		log.Warn("call gone before its notification e-mail; nothing to send")
		return nil
	}
	if err != nil {
		return fmt.Errorf("load call: %w", err)
	}
	t, err := s.transport(ctx, a.OrgID)
	if err != nil {
		return err
	}
	if t.sender == nil {
		err := errors.New("no mail transport for this organization")
		log.Warn("notification e-mail not sent", "error", err)
		return river.JobCancel(err)
	}
	m, err := s.Message(c, t.from, a.To)
	if err != nil {
		return river.JobCancel(err)
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	err = t.sender.Send(sctx, m)
	switch {
	case err == nil:
		log.Info("notification e-mail sent", "transport", t.name, "recipient_domain", mail.Domain(a.To))
		return nil
	case mail.IsPermanent(err):
		log.Error("notification e-mail refused; not retried", "transport", t.name, "recipient_domain", mail.Domain(a.To), "error", err)
		return river.JobCancel(err)
	case j.Attempt >= j.MaxAttempts:
		log.Error("notification e-mail failed; giving up", "transport", t.name, "recipient_domain", mail.Domain(a.To), "error", err)
		return err
	default:
		log.Warn("notification e-mail failed; will retry", "transport", t.name, "recipient_domain", mail.Domain(a.To), "error", err)
		return err
	}
}
