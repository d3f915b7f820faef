package notify_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/jobs"
	"github.com/parley-voice/parley/internal/mail"
	"github.com/parley-voice/parley/internal/mail/mailtest"
	"github.com/parley-voice/parley/internal/notify"
	"github.com/parley-voice/parley/internal/postcall"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/signedurl"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var engines = []struct {
	name string
	open func(testing.TB) *store.DB
}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}}

// domains is a DomainSource: organization id → verified domain.
type domains map[string]string

func (d domains) VerifiedDomain(_ context.Context, orgID string) (string, bool, error) {
	n, ok := d[orgID]
	return n, ok, nil
}

// resend is a ResendSenders whose sender keeps what it is given.
type resend struct {
	orgs map[string]bool
	mu   sync.Mutex
	sent []mail.Message
}

func (r *resend) ResendSenderFor(_ context.Context, orgID string) (mail.Sender, bool, error) {
	return r, r.orgs[orgID], nil
}

func (r *resend) Send(_ context.Context, m mail.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m)
	return nil
}

// logBuffer is a log sink safe for the workers' goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// node is one node's notification service and job queue.
type node struct {
	svc   *notify.Service
	queue *jobs.Queue
}

type rigConfig struct {
	smtp    *mailtest.Server // nil: no SMTP transport
	domains domains
	resend  *resend
	nodes   int
	logs    *logBuffer
	post    bool // also run the post-call report jobs
}

type rig struct {
	db    *store.DB
	org   *store.Org
	nodes []node
	post  *postcall.Service
}

func newRig(t *testing.T, db *store.DB, rc rigConfig) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{db: db, org: &store.Org{Name: "Clinic", MinutesBalance: 100}}
	if err := db.CreateOrg(ctx, r.org, nil); err != nil {
		t.Fatal(err)
	}
	master := make([]byte, secret.KeySize)
	rand.Read(master)
	keys, err := secret.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	if rc.nodes == 0 {
		rc.nodes = 1
	}
	log := slog.New(slog.DiscardHandler)
	if rc.logs != nil {
		log = slog.New(slog.NewTextHandler(rc.logs, nil))
	}
	for i := range rc.nodes {
		cfg := notify.Config{Store: db, Domains: rc.domains, From: "Parley <calls@parley.example.com>",
			PublicURL: "https://voice.example.com", Links: signedurl.Signer{Base: "https://voice.example.com", Keys: keys},
			MaxAttempts: 4, RetryBase: 20 * time.Millisecond, SendTimeout: 5 * time.Second, Logger: log}
		if rc.resend != nil {
			cfg.Resend = rc.resend
		}
		if rc.smtp != nil {
			s, err := mail.NewSMTP(mail.SMTPConfig{Host: rc.smtp.Host, Port: rc.smtp.Port, RootCAs: rc.smtp.CA, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			cfg.SMTP = s
		}
		svc, err := notify.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		workers := river.NewWorkers()
		svc.Register(workers)
		queues := svc.Queues()
		if rc.post && i == 0 {
			r.post = postcall.New(postcall.Config{NodeID: "node-0", Store: db, Followups: []postcall.Followup{svc}, RetryBase: 20 * time.Millisecond, Logger: log})
			r.post.Register(workers)
			queues[postcall.QueueReports] = 2
		}
		id := fmt.Sprintf("node-%d", i)
		q, err := jobs.Open(ctx, jobs.Config{Engine: db.Driver(), DB: db.Writer(), NodeID: id, Queues: queues, Workers: workers,
			PollInterval: 20 * time.Millisecond, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		svc.Attach(q)
		if r.post != nil && i == 0 {
			r.post.Attach(q, nil)
		}
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := q.Stop(context.Background(), 5*time.Second); err != nil {
				t.Errorf("stop queue: %v", err)
			}
		})
		r.nodes = append(r.nodes, node{svc: svc, queue: q})
	}
	return r
}

var seq int

// endCall records an ended call whose assistant notifies to.
func (r *rig) endCall(t *testing.T, gdpr bool, to ...string) *store.Call {
	t.Helper()
	ctx := context.Background()
	doc := map[string]any{"name": "Front desk", "gdpr_mode": gdpr}
	if len(to) > 0 {
		doc["notification_email"] = to[0]
		doc["notification_emails"] = to[1:]
	}
	snap, _ := json.Marshal(doc)
	seq++
	started := time.Now().Add(-75 * time.Second).UTC().Truncate(time.Millisecond)
	c := &store.Call{ID: fmt.Sprintf("call-%d-%d", time.Now().UnixNano(), seq), OrgID: r.org.ID, Direction: call.Inbound, Status: call.StatusInProgress,
		CallerPhone: ptr("+31612345678"), AssistantPhone: ptr("+31201234567"), StartedAt: &started, Assistant: snap}
	if err := r.db.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	dur := 75
	end := store.CallEnd{OrgID: r.org.ID, ID: c.ID, Status: call.StatusEnded, EndReason: call.EndUserHangup, EndedAt: time.Now().UTC(),
		Duration: &dur, Messages: json.RawMessage(`[{"role":"assistant","content":"Hello, Acme dental."},{"role":"user","content":"A cleaning on <Tuesday>."}]`)}
	if r.post != nil {
		// The report job writes the summary (the caller said nothing: a
		// summary with no model) and then queues the e-mails.
		end.Messages = json.RawMessage(`[{"role":"assistant","content":"Hello, Acme dental."}]`)
		end.InTx = func(ctx context.Context, tx *sql.Tx) error { return r.post.Schedule(ctx, tx, r.org.ID, c.ID, "") }
	}
	if err := r.db.EndCall(ctx, end); err != nil {
		t.Fatal(err)
	}
	if r.post == nil {
		if err := r.db.SaveSummary(ctx, r.org.ID, c.ID, "Booked a <cleaning> for Tuesday."); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.db.GetCall(ctx, r.org.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func ptr[T any](v T) *T { return &v }

func count(t *testing.T, q *jobs.Queue, states ...rivertype.JobState) int {
	t.Helper()
	n, err := q.Count(context.Background(), states, notify.Args{}.Kind())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDelivery: one mail per address (duplicates folded), each with both
// parts, the call's content, the HTML escaped, from the configured address,
// or from notifications@ the organization's verified domain.
func TestDelivery(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			srv := mailtest.Start(t, mailtest.Config{})
			dom := domains{}
			r := newRig(t, e.open(t), rigConfig{smtp: srv, domains: dom})
			c := r.endCall(t, false, "ops@example.org", "boss@example.org", "OPS@example.org")
			if err := r.nodes[0].svc.Queue(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			got := srv.Wait(2, 10*time.Second)
			if len(got) != 2 {
				t.Fatalf("%d messages", len(got))
			}
			seen := map[string]bool{}
			for _, m := range got {
				if len(m.To) != 1 || m.From != "calls@parley.example.com" || !m.TLS {
					t.Fatalf("envelope %+v", m)
				}
				seen[m.To[0]] = true
				h, text, html := mailtest.Parts(t, m.Data)
				if !strings.Contains(text, "Booked a <cleaning> for Tuesday.") || !strings.Contains(text, "Caller: A cleaning on <Tuesday>.") ||
					!strings.Contains(text, "Duration:    1 min 15 s") || !strings.Contains(text, "user_hangup") ||
					!strings.Contains(text, "https://voice.example.com/api/v1/calls/"+c.ID) {
					t.Errorf("text part:\n%s", text)
				}
				if !strings.Contains(html, "Booked a &lt;cleaning&gt; for Tuesday.") || strings.Contains(html, "<cleaning>") || strings.Contains(html, "<Tuesday>") {
					t.Errorf("html part:\n%s", html)
				}
				if h.Get("Auto-Submitted") != "auto-generated" || !strings.HasSuffix(h.Get("Message-Id"), "@parley.example.com>") {
					t.Errorf("headers %v", h)
				}
			}
			if !seen["ops@example.org"] || !seen["boss@example.org"] {
				t.Fatalf("recipients %v", seen)
			}
			waitFor(t, 5*time.Second, "jobs completed", func() bool { return count(t, r.nodes[0].queue, rivertype.JobStateCompleted) == 2 })

			// A verified domain: from notifications@ that domain.
			dom[r.org.ID] = "clinic.example"
			c = r.endCall(t, true, "ops@example.org")
			if err := r.nodes[0].svc.Queue(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			got = srv.Wait(3, 10*time.Second)
			if len(got) != 3 || got[2].From != "notifications@clinic.example" {
				t.Fatalf("verified domain: %d messages, %+v", len(got), got[len(got)-1].From)
			}
			h, text, html := mailtest.Parts(t, got[2].Data)
			if strings.Contains(text, "A cleaning on") || strings.Contains(html, "A cleaning on") || !strings.Contains(text, "GDPR mode") {
				t.Errorf("GDPR-mode call shows its transcript:\n%s", text)
			}
			if from, _ := netmail.ParseAddress(h.Get("From")); from == nil || from.Name != "Parley" || from.Address != "notifications@clinic.example" {
				t.Errorf("From %q", h.Get("From"))
			}
		})
	}
}

// TestRetries: a 4xx is retried with backoff until it goes through, or
// until the attempts run out; a 5xx is given up at once (the job
// cancelled, never sent again); neither holds up the other addresses.
func TestRetries(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			var mu sync.Mutex
			busy, down := 0, 0
			srv := mailtest.Start(t, mailtest.Config{Rcpt: func(to string) error {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case strings.HasPrefix(to, "busy@"):
					if busy++; busy <= 2 {
						return mailtest.Refuse(451, "greylisted, try again later")
					}
				case strings.HasPrefix(to, "gone@"):
					return mailtest.Refuse(550, "no such mailbox")
				case strings.HasPrefix(to, "down@"):
					down++
					return mailtest.Refuse(421, "service not available")
				}
				return nil
			}})
			r := newRig(t, e.open(t), rigConfig{smtp: srv})
			c := r.endCall(t, false, "busy@example.org", "gone@example.org", "down@example.org")
			if err := r.nodes[0].svc.Queue(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			got := srv.Wait(1, 10*time.Second)
			if len(got) != 1 || got[0].To[0] != "busy@example.org" {
				t.Fatalf("messages %+v", got)
			}
			q := r.nodes[0].queue
			waitFor(t, 5*time.Second, "jobs settled", func() bool {
				return count(t, q, rivertype.JobStateCompleted) == 1 && count(t, q, rivertype.JobStateCancelled) == 1 &&
					count(t, q, rivertype.JobStateDiscarded) == 1
			})
			time.Sleep(300 * time.Millisecond) // several retry periods: nothing more happens
			mu.Lock()
			attempts, gaveUp := busy, down
			mu.Unlock()
			// busy: 2 refusals and the delivery; gone: once; down: every
			// one of the 4 attempts, then given up.
			if attempts != 3 || gaveUp != 4 || srv.RcptCount() != 8 || len(srv.Messages()) != 1 {
				t.Fatalf("busy tried %d times, down %d times, %d recipients offered in all, %d messages", attempts, gaveUp, srv.RcptCount(), len(srv.Messages()))
			}
		})
	}
}

// TestExactlyOnce: two nodes working the queue, each asked to queue every
// call's mails (a report job that ran twice): each address gets one mail.
func TestExactlyOnce(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			srv := mailtest.Start(t, mailtest.Config{})
			r := newRig(t, e.open(t), rigConfig{smtp: srv, nodes: 2})
			const calls = 6
			for range calls {
				c := r.endCall(t, false, "a@example.org", "b@example.org")
				for _, n := range r.nodes {
					if err := n.svc.Queue(context.Background(), c); err != nil {
						t.Fatal(err)
					}
				}
			}
			waitFor(t, 15*time.Second, "jobs completed", func() bool {
				return count(t, r.nodes[0].queue, rivertype.JobStateCompleted) == 2*calls
			})
			time.Sleep(200 * time.Millisecond)
			got := srv.Messages()
			ids := map[string]int{}
			for _, m := range got {
				h, _, _ := mailtest.Parts(t, m.Data)
				ids[h.Get("Message-Id")+" "+m.To[0]]++
			}
			if len(got) != 2*calls || len(ids) != 2*calls {
				t.Fatalf("%d messages, %d distinct (want %d)", len(got), len(ids), 2*calls)
			}
		})
	}
}

// TestTransportChoice: the organization's Resend sender when it has a
// verified domain and a Resend key; none at all is logged once per call
// and queues nothing.
func TestTransportChoice(t *testing.T) {
	db := storetest.OpenSQLite(t)
	srv := mailtest.Start(t, mailtest.Config{})
	rs := &resend{orgs: map[string]bool{}}
	dom := domains{}
	r := newRig(t, db, rigConfig{smtp: srv, domains: dom, resend: rs})
	rs.orgs[r.org.ID] = true
	// A Resend key but no verified domain: SMTP.
	c := r.endCall(t, false, "ops@example.org")
	if err := r.nodes[0].svc.Queue(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if got := srv.Wait(1, 10*time.Second); len(got) != 1 {
		t.Fatalf("smtp: %d messages", len(got))
	}
	dom[r.org.ID] = "clinic.example"
	c = r.endCall(t, false, "ops@example.org")
	if err := r.nodes[0].svc.Queue(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "resend send", func() bool {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		return len(rs.sent) == 1
	})
	rs.mu.Lock()
	m := rs.sent[0]
	rs.mu.Unlock()
	if m.From != `"Parley" <notifications@clinic.example>` || m.To[0] != "ops@example.org" || m.HTML == "" || m.Text == "" {
		t.Fatalf("resend message %+v", m)
	}
	if len(srv.Messages()) != 1 {
		t.Fatal("sent through SMTP as well")
	}

	// No transport at all.
	logs := &logBuffer{}
	bare := newRig(t, storetest.OpenSQLite(t), rigConfig{logs: logs})
	c = bare.endCall(t, false, "ops@example.org", "boss@example.org")
	if err := bare.nodes[0].svc.Queue(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "notification e-mail not sent"); n != 1 || !strings.Contains(logs.String(), c.ID) {
		t.Fatalf("logged %d times:\n%s", n, logs.String())
	}
	if n := count(t, bare.nodes[0].queue, rivertype.JobStateAvailable, rivertype.JobStateCompleted, rivertype.JobStateRunning); n != 0 {
		t.Fatalf("%d jobs queued with no transport", n)
	}
}

// TestAfterReport: a call whose assistant only notifies still gets its
// report job (not settled at the end); the mail goes out after the summary
// is written, and carries it.
func TestAfterReport(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			srv := mailtest.Start(t, mailtest.Config{})
			r := newRig(t, e.open(t), rigConfig{smtp: srv, post: true})
			pending := &store.Call{Assistant: json.RawMessage(`{"notification_email":"ops@example.org"}`)}
			if _, settled := r.post.Settled(pending); settled {
				t.Fatal("a call with a notification address was settled without a report job")
			}
			if _, settled := r.post.Settled(&store.Call{Assistant: json.RawMessage(`{}`)}); !settled {
				t.Fatal("a call with no post-call work was not settled")
			}
			c := r.endCall(t, false, "ops@example.org")
			got := srv.Wait(1, 15*time.Second)
			if len(got) != 1 {
				t.Fatalf("%d messages", len(got))
			}
			row, err := r.db.GetCall(context.Background(), r.org.ID, c.ID)
			if err != nil || row.Summary == nil || *row.Summary == "" {
				t.Fatalf("summary %v %v", row.Summary, err)
			}
			_, text, _ := mailtest.Parts(t, got[0].Data)
			if !strings.Contains(text, *row.Summary) {
				t.Fatalf("the mail lacks the summary %q:\n%s", *row.Summary, text)
			}
		})
	}
}
