// Command reportbench measures the post-call work under a burst: N calls end
// within one second, and it reports how long until every end-of-call report
// has been delivered to a webhook receiver, and how many model requests were
// in flight at most.
//
//	go run ./cmd/reportbench -calls 500
//	go run ./cmd/reportbench -calls 500 -database-url postgres://…
//
// Everything is real but the model: the store (SQLite file or a fresh schema
// on PostgreSQL), the River job queue, the post-call jobs (summary, structured
// analysis, report), the webhook outbox dispatcher and an HTTP receiver that
// verifies signatures. The model is the in-repo OpenAI-compatible fake with
// a fixed latency per request, counted in flight where it is served. It is a
// development harness, not part of the product binary.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river"

	"github.com/parley-voice/parley/internal/analysis"
	"github.com/parley-voice/parley/internal/blob"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/jobs"
	"github.com/parley-voice/parley/internal/netguard"
	"github.com/parley-voice/parley/internal/postcall"
	"github.com/parley-voice/parley/internal/provider/openai"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/signedurl"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/postgres"
	"github.com/parley-voice/parley/internal/store/sqlite"
	"github.com/parley-voice/parley/internal/webhook"
)

type options struct {
	calls       int
	spread      time.Duration
	latency     time.Duration
	concurrency int
	analysis    bool
	databaseURL string
	timeout     time.Duration
	progress    bool
}

func main() {
	var o options
	flag.IntVar(&o.calls, "calls", 500, "calls that end")
	flag.DurationVar(&o.spread, "spread", time.Second, "the calls end within this long")
	flag.DurationVar(&o.latency, "model-latency", 300*time.Millisecond, "time the fake model takes per request")
	flag.IntVar(&o.concurrency, "concurrency", 8, "model requests in flight per node (PARLEY_POSTCALL_CONCURRENCY)")
	flag.BoolVar(&o.analysis, "analysis", true, "give every call a structured analysis plan (a second model request)")
	flag.StringVar(&o.databaseURL, "database-url", "", "postgres:// URL to run on (a fresh schema is made and dropped); empty: a SQLite file")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.BoolVar(&o.progress, "progress", false, "print every 250 ms how many calls have a summary, a queued report and a delivered report")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "reportbench:", err)
		os.Exit(1)
	}
}

const secretValue = "whsec_bench"

// receiver is the webhook endpoint: it checks signatures and notes when each
// call's report arrived.
type receiver struct {
	mu      sync.Mutex
	arrived map[string]time.Time
	bad     int
	dupes   int
	done    chan struct{}
	want    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	now := time.Now()
	var p struct {
		Message struct {
			Type string `json:"type"`
			Call struct {
				ID string `json:"id"`
			} `json:"call"`
		} `json:"message"`
	}
	json.Unmarshal(body, &p)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if webhook.Verify(secretValue, r.Header, body, now, 0) != nil {
		rc.bad++
	}
	if p.Message.Type == webhook.EventEndOfCallReport {
		if _, seen := rc.arrived[p.Message.Call.ID]; seen {
			rc.dupes++
		} else {
			rc.arrived[p.Message.Call.ID] = now
			if len(rc.arrived) == rc.want {
				close(rc.done)
			}
		}
	}
	w.WriteHeader(http.StatusOK)
}

type models struct{ m analysis.Model }

func (f models) PostcallModel(context.Context, string, json.RawMessage) (analysis.Model, error) {
	return f.m, nil
}

func run(o options) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "reportbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	db, cleanup, err := openDB(ctx, o.databaseURL, tmp)
	if err != nil {
		return err
	}
	defer cleanup()
	master := make([]byte, secret.KeySize)
	rand.Read(master)
	keys, err := secret.NewKeyring(master)
	if err != nil {
		return err
	}
	org := &store.Org{Name: "Bench", MinutesBalance: 1e6}
	if err := db.CreateOrg(ctx, org, nil); err != nil {
		return err
	}

	// The model, counted in flight where it is served and where it is asked
	// (from the request to the reply's body closed: what the node's bound
	// limits; the server's count can be one higher for the instant a
	// handler takes to return after its last byte).
	var inflight, peak, requests atomic.Int64
	client := &countingTransport{next: http.DefaultTransport}
	fake := openaifake.New(openaifake.Config{Respond: func(req openaifake.Request) openaifake.Reply {
		if req.ResponseFormat != nil {
			return openaifake.Reply{Text: `{"intent":"book","booked":true}`, FirstTokenDelay: o.latency}
		}
		return openaifake.Reply{Text: "The caller booked an appointment.", FirstTokenDelay: o.latency}
	}})
	modelSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		n := inflight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		defer inflight.Add(-1)
		fake.ServeHTTP(w, r)
	}))
	defer modelSrv.Close()
	chat := openai.NewChat(openai.Config{BaseURL: modelSrv.URL + "/v1", HTTPClient: &http.Client{Transport: client}})

	rc := &receiver{arrived: map[string]time.Time{}, done: make(chan struct{}), want: o.calls}
	recv := httptest.NewServer(rc)
	defer recv.Close()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	guard := netguard.New(netguard.Config{AllowLoopback: true})
	sender := &webhook.Sender{HTTP: guard.Client(10 * time.Second)}
	disp := webhook.NewDispatcher(db, keys, sender, webhook.DispatcherConfig{Logger: log})
	dctx, stopDisp := context.WithCancel(ctx)
	dispDone := make(chan error, 1)
	go func() { dispDone <- disp.Run(dctx) }()
	defer func() { stopDisp(); <-dispDone }()

	blobs, err := blob.NewDir(filepath.Join(tmp, "recordings"))
	if err != nil {
		return err
	}
	svc := postcall.New(postcall.Config{NodeID: "bench", Store: db, Blobs: blobs, Links: signedurl.Signer{Base: "http://bench", Keys: keys},
		Outbox: disp, ModelConcurrency: o.concurrency, Logger: log})
	workers := river.NewWorkers()
	svc.Register(workers)
	q, err := jobs.Open(ctx, jobs.Config{Engine: db.Driver(), DB: db.Writer(), NodeID: "bench", Queues: svc.Queues(), Workers: workers, Logger: log})
	if err != nil {
		return err
	}
	svc.Attach(q, models{analysis.Model{Provider: chat, Name: "gpt-5.4-mini", APIKey: "fake"}})
	if err := q.Start(ctx); err != nil {
		return err
	}
	defer q.Stop(ctx, 10*time.Second)

	// The calls, in progress.
	doc := map[string]any{"name": "Desk", "llm_config": map[string]any{"provider": "openai", "model": "gpt-4.1"}}
	if o.analysis {
		doc["analysis_plan"] = json.RawMessage(`{"structured_data_plan":{"enabled":true,"schema":{"type":"object","properties":{"intent":{"type":"string"},"booked":{"type":"boolean"}},"required":["intent","booked"]}},"min_messages_threshold":2}`)
	}
	snap, _ := json.Marshal(doc)
	target, _ := json.Marshal(webhook.Target{URL: recv.URL + "/hooks", Secret: keys.Seal([]byte(secretValue), webhook.SecretBinding(org.ID))})
	ids := make([]string, o.calls)
	for i := range ids {
		started := time.Now().Add(-time.Minute)
		c := &store.Call{ID: fmt.Sprintf("call-_+3161%07d_bench%05d", i, i), OrgID: org.ID, Direction: call.Inbound, Status: call.StatusInProgress,
			CallerPhone: strPtr("+31612345678"), StartedAt: &started, Assistant: snap, Webhook: target}
		if err := db.CreateCall(ctx, c); err != nil {
			return err
		}
		ids[i] = c.ID
	}

	// They end within the spread, each end with its jobs in one transaction.
	msgs := json.RawMessage(`[{"role":"assistant","content":"Hello, Acme dental."},{"role":"user","content":"A cleaning on Tuesday, please."},{"role":"assistant","content":"Booked for Tuesday at nine."}]`)
	endedAt := make([]time.Time, o.calls)
	var wg sync.WaitGroup
	var endErr atomic.Pointer[error]
	start := time.Now()
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * o.spread / time.Duration(o.calls))
			dur := 60
			end := store.CallEnd{OrgID: org.ID, ID: id, Status: call.StatusEnded, EndReason: call.EndUserHangup, EndedAt: time.Now(), Duration: &dur, Messages: msgs,
				InTx: func(ctx context.Context, tx *sql.Tx) error { return svc.Schedule(ctx, tx, org.ID, id, "") }}
			if err := db.EndCall(ctx, end); err != nil {
				endErr.Store(&err)
			}
			endedAt[i] = time.Now()
		}()
	}
	wg.Wait()
	endsTook := time.Since(start)
	if p := endErr.Load(); p != nil {
		return fmt.Errorf("end call: %w", *p)
	}
	if o.progress {
		stop := make(chan struct{})
		defer close(stop)
		go progress(ctx, db, org.ID, start, stop)
	}
	select {
	case <-rc.done:
	case <-time.After(o.timeout):
		rc.mu.Lock()
		n := len(rc.arrived)
		rc.mu.Unlock()
		return fmt.Errorf("only %d of %d reports after %v", n, o.calls, o.timeout)
	}
	total := time.Since(start)

	rc.mu.Lock()
	defer rc.mu.Unlock()
	var lat []time.Duration
	var last time.Time
	for i, id := range ids {
		at := rc.arrived[id]
		lat = append(lat, at.Sub(endedAt[i]))
		if at.After(last) {
			last = at
		}
	}
	slices.Sort(lat)
	engine := "sqlite"
	if o.databaseURL != "" {
		engine = "postgres"
	}
	perCall := 1
	if o.analysis {
		perCall = 2
	}
	fmt.Printf("engine %s; %d calls ended in %v; model latency %v, %d request(s) per call, model concurrency %d\n",
		engine, o.calls, endsTook.Round(time.Millisecond), o.latency, perCall, o.concurrency)
	fmt.Printf("all reports delivered %v after the first call ended (%.1f reports/s); end → report p50 %v p95 %v max %v\n",
		total.Round(time.Millisecond), float64(o.calls)/total.Seconds(), pct(lat, 50), pct(lat, 95), lat[len(lat)-1].Round(time.Millisecond))
	fmt.Printf("model requests: %d in all, peak in flight %d as the node asked them (%d as the model served them); bad signatures %d; reports received twice %d\n",
		requests.Load(), client.peak.Load(), peak.Load(), rc.bad, rc.dupes)
	if rc.bad > 0 {
		return errors.New("bad signatures")
	}
	return nil
}

// countingTransport counts requests in flight until their bodies are closed.
type countingTransport struct {
	next           http.RoundTripper
	inflight, peak atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.inflight.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	resp, err := c.next.RoundTrip(r)
	if err != nil {
		c.inflight.Add(-1)
		return nil, err
	}
	resp.Body = &countedBody{ReadCloser: resp.Body, done: func() { c.inflight.Add(-1) }}
	return resp, nil
}

type countedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *countedBody) Close() error {
	b.once.Do(b.done)
	return b.ReadCloser.Close()
}

// progress prints the post-call work's progress until stop.
func progress(ctx context.Context, db *store.DB, orgID string, start time.Time, stop <-chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		calls, _, err := db.ListCalls(ctx, orgID, store.CallFilter{Page: store.Page{Limit: 100000}})
		if err != nil {
			continue
		}
		summarised := 0
		for _, c := range calls {
			if c.Summary != nil {
				summarised++
			}
		}
		evs, _, err := db.ListEvents(ctx, orgID, store.EventFilter{EventType: webhook.EventEndOfCallReport, Page: store.Page{Limit: 100000}})
		if err != nil {
			continue
		}
		delivered := 0
		for _, e := range evs {
			if e.DeliveredAt != nil {
				delivered++
			}
		}
		fmt.Fprintf(os.Stderr, "%6.2fs: %d summarised, %d reports queued, %d delivered\n", time.Since(start).Seconds(), summarised, len(evs), delivered)
	}
}

func pct(d []time.Duration, p int) time.Duration {
	return d[(len(d)-1)*p/100].Round(time.Millisecond)
}

func strPtr(s string) *string { return &s }

// openDB opens a migrated store: a SQLite file in dir, or a fresh schema on
// the PostgreSQL server at u (dropped by cleanup).
func openDB(ctx context.Context, u, dir string) (*store.DB, func(), error) {
	if u == "" {
		db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "bench.db")})
		if err != nil {
			return nil, nil, err
		}
		if _, err := db.Migrate(ctx); err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	}
	admin, err := sql.Open("pgx", u)
	if err != nil {
		return nil, nil, err
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := fmt.Sprintf("reportbench_%x", b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return nil, nil, err
	}
	drop := func() {
		admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	}
	pu, err := url.Parse(u)
	if err != nil {
		drop()
		return nil, nil, err
	}
	qv := pu.Query()
	qv.Set("search_path", schema)
	pu.RawQuery = qv.Encode()
	db, err := postgres.Open(ctx, postgres.Config{URL: pu.String(), MaxConns: 32})
	if err != nil {
		drop()
		return nil, nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		drop()
		return nil, nil, err
	}
	return db, func() { db.Close(); drop() }, nil
}
