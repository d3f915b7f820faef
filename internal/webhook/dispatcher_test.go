package webhook_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/netguard"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
	"github.com/parley-voice/parley/internal/webhook"
)

// received is one request the test receiver got.
type received struct {
	h    http.Header
	body []byte
}

// receiver is an httptest server that answers the n-th request (1-based)
// with respond(n, r) and remembers every request.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
}

func newReceiver(t *testing.T, respond func(n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{r.Header.Clone(), b})
		n := len(rc.got)
		rc.mu.Unlock()
		w.WriteHeader(respond(n, r))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

type env struct {
	db  *store.DB
	org *store.Org
	kr  *secret.Keyring
	rc  *receiver
}

func newEnv(t *testing.T, respond func(n int, r *http.Request) int) *env {
	t.Helper()
	db := storetest.OpenSQLite(t)
	org := &store.Org{Name: "Acme"}
	if err := db.CreateOrg(context.Background(), org, nil); err != nil {
		t.Fatal(err)
	}
	master := make([]byte, secret.KeySize)
	rand.Read(master)
	kr, err := secret.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	return &env{db: db, org: org, kr: kr, rc: newReceiver(t, respond)}
}

// enqueue adds an event for the receiver, signed with plain when it is not empty.
func (e *env) enqueue(t *testing.T, plain string) store.OutboxEvent {
	t.Helper()
	callID := "call-" + store.NewID()
	ev := store.OutboxEvent{OrgID: e.org.ID, CallID: &callID, Seq: 1, EventType: "status-update", URL: e.rc.srv.URL + "/hook?k=v",
		Payload: []byte(`{"message":{"type":"status-update","call":{"id":"` + callID + `","status":"ended"}}}`)}
	if plain != "" {
		sealed := e.kr.Seal([]byte(plain), webhook.SecretBinding(e.org.ID))
		ev.Secret = &sealed
	}
	if err := e.db.EnqueueEvents(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	evs, _, err := e.db.ListEvents(context.Background(), e.org.ID, store.EventFilter{CallID: callID, Page: store.Page{Limit: 1}})
	if err != nil || len(evs) != 1 {
		t.Fatalf("ListEvents = %v, %v", evs, err)
	}
	return evs[0]
}

// run starts a dispatcher and returns a stop function that cancels it and
// reports how long Run took to return. Cleanup stops it too.
func (e *env) run(t *testing.T, out webhook.Outbox, cfg webhook.DispatcherConfig) (*webhook.Dispatcher, func() time.Duration) {
	t.Helper()
	if out == nil {
		out = e.db
	}
	d := webhook.NewDispatcher(out, e.kr, &webhook.Sender{HTTP: e.rc.srv.Client()}, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	var took time.Duration
	stop := func() time.Duration {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
			took = time.Since(start)
		})
		return took
	}
	t.Cleanup(func() { stop() })
	return d, stop
}

// wait polls the event until done reports true.
func (e *env) wait(t *testing.T, id string, within time.Duration, done func(*store.OutboxEvent) bool) *store.OutboxEvent {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ev, err := e.db.GetEvent(context.Background(), e.org.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if done(ev) {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("event not in the expected state after %v: %+v", within, ev)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func finished(ev *store.OutboxEvent) bool { return ev.DeliveredAt != nil || ev.FailedAt != nil }

func (e *env) deliveries(t *testing.T, eventID string) []store.Delivery {
	t.Helper()
	ds, total, err := e.db.ListDeliveries(context.Background(), e.org.ID, store.DeliveryFilter{EventID: eventID, Page: store.Page{Limit: 100}})
	if err != nil || total != len(ds) {
		t.Fatalf("ListDeliveries = %d/%d, %v", len(ds), total, err)
	}
	return ds
}

func fast(cfg webhook.DispatcherConfig) webhook.DispatcherConfig {
	if cfg.Poll == 0 {
		cfg.Poll = 10 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
	}
	return cfg
}

func TestDispatcherRetriesUntilDelivered(t *testing.T) {
	e := newEnv(t, func(n int, _ *http.Request) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	const key = "whsec_dispatcher"
	ev := e.enqueue(t, key)
	var mu sync.Mutex
	var backoffs []int
	e.run(t, nil, fast(webhook.DispatcherConfig{Backoff: func(n int) time.Duration {
		mu.Lock()
		backoffs = append(backoffs, n)
		mu.Unlock()
		return 10 * time.Millisecond
	}}))
	got := e.wait(t, ev.ID, 5*time.Second, finished)
	if got.DeliveredAt == nil || got.FailedAt != nil || got.Attempts != 3 || got.LastError != nil {
		t.Fatalf("event = %+v", got)
	}
	reqs := e.rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if id := r.h.Get("X-Webhook-Id"); id != ev.ID {
			t.Errorf("request %d: X-Webhook-Id = %q, want %q", i+1, id, ev.ID)
		}
		if a := r.h.Get("X-Webhook-Attempt"); a != string(rune('1'+i)) {
			t.Errorf("request %d: X-Webhook-Attempt = %q", i+1, a)
		}
		if string(r.body) != string(ev.Payload) {
			t.Errorf("request %d: body %q, want %q", i+1, r.body, ev.Payload)
		}
		if err := webhook.Verify(key, r.h, r.body, time.Now(), 0); err != nil {
			t.Errorf("request %d: Verify: %v", i+1, err)
		}
	}
	ds := e.deliveries(t, ev.ID)
	if len(ds) != 3 {
		t.Fatalf("%d deliveries logged, want 3", len(ds))
	}
	for i, want := range []struct{ attempt, status int }{{3, 204}, {2, 500}, {1, 500}} {
		d := ds[i]
		if d.Attempt != want.attempt || d.StatusCode == nil || *d.StatusCode != want.status || (d.Error == nil) != (want.status == 204) ||
			d.CallID == nil || *d.CallID != *ev.CallID || d.URL != ev.URL || d.EventType != "status-update" {
			t.Errorf("delivery %d = %+v, want attempt %d status %d", i, d, want.attempt, want.status)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(backoffs) != 2 || backoffs[0] != 1 || backoffs[1] != 2 {
		t.Fatalf("Backoff called with %v, want [1 2]", backoffs)
	}
}

func TestDispatcherGoneFailsWithoutRetry(t *testing.T) {
	e := newEnv(t, func(int, *http.Request) int { return http.StatusGone })
	ev := e.enqueue(t, "")
	e.run(t, nil, fast(webhook.DispatcherConfig{Backoff: func(int) time.Duration { return 0 }}))
	got := e.wait(t, ev.ID, 5*time.Second, finished)
	if got.FailedAt == nil || got.DeliveredAt != nil || got.LastError == nil || !strings.Contains(*got.LastError, "410") {
		t.Fatalf("event = %+v", got)
	}
	time.Sleep(100 * time.Millisecond) // ten polls
	if n := len(e.rc.requests()); n != 1 {
		t.Fatalf("receiver got %d requests, want 1", n)
	}
	if ds := e.deliveries(t, ev.ID); len(ds) != 1 || *ds[0].StatusCode != 410 {
		t.Fatalf("deliveries = %+v", ds)
	}
}

func TestDispatcherMaxAttempts(t *testing.T) {
	e := newEnv(t, func(int, *http.Request) int { return http.StatusServiceUnavailable })
	ev := e.enqueue(t, "")
	e.run(t, nil, fast(webhook.DispatcherConfig{MaxAttempts: 3}))
	got := e.wait(t, ev.ID, 5*time.Second, finished)
	if got.FailedAt == nil || got.DeliveredAt != nil || got.Attempts != 3 || got.LastError == nil || !strings.Contains(*got.LastError, "gave up after 3 attempts") {
		t.Fatalf("event = %+v", got)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(e.rc.requests()); n != 3 {
		t.Fatalf("receiver got %d requests, want 3", n)
	}
	if ds := e.deliveries(t, ev.ID); len(ds) != 3 {
		t.Fatalf("%d deliveries logged, want 3", len(ds))
	}
}

func TestDispatcherSecretCannotBeOpened(t *testing.T) {
	e := newEnv(t, func(int, *http.Request) int { return http.StatusOK })
	ev := e.enqueue(t, "")
	// Sealed for another organization: the binding does not match.
	sealed := e.kr.Seal([]byte("whsec_x"), webhook.SecretBinding("another-org"))
	ev2 := store.OutboxEvent{OrgID: e.org.ID, EventType: "status-update", URL: e.rc.srv.URL, Secret: &sealed, Payload: []byte(`{}`)}
	if err := e.db.EnqueueEvents(context.Background(), ev2); err != nil {
		t.Fatal(err)
	}
	all, _, _ := e.db.ListEvents(context.Background(), e.org.ID, store.EventFilter{Page: store.Page{Limit: 10}})
	var badID string
	for _, x := range all {
		if x.ID != ev.ID {
			badID = x.ID
		}
	}
	e.run(t, nil, fast(webhook.DispatcherConfig{}))
	got := e.wait(t, badID, 5*time.Second, finished)
	if got.FailedAt == nil || got.Attempts != 1 || got.LastError == nil || !strings.Contains(*got.LastError, "secret cannot be opened") {
		t.Fatalf("event = %+v", got)
	}
	e.wait(t, ev.ID, 5*time.Second, func(ev *store.OutboxEvent) bool { return ev.DeliveredAt != nil })
	for _, r := range e.rc.requests() {
		if r.h.Get("X-Webhook-Id") == badID {
			t.Fatal("an event whose secret cannot be opened was sent")
		}
		if r.h.Get("X-Webhook-Signature") != "" {
			t.Fatal("an event without a secret was signed")
		}
	}
	if ds := e.deliveries(t, badID); len(ds) != 1 || ds[0].StatusCode != nil || ds[0].Error == nil {
		t.Fatalf("deliveries = %+v", ds)
	}
}

func TestDispatcherDeliversEachEventOnce(t *testing.T) {
	e := newEnv(t, func(int, *http.Request) int { return http.StatusOK })
	const n = 30
	ids := map[string]bool{}
	for range n {
		ids[e.enqueue(t, "k").ID] = true
	}
	e.run(t, nil, fast(webhook.DispatcherConfig{Workers: 4}))
	for id := range ids {
		e.wait(t, id, 10*time.Second, func(ev *store.OutboxEvent) bool { return ev.DeliveredAt != nil })
	}
	seen := map[string]int{}
	for _, r := range e.rc.requests() {
		seen[r.h.Get("X-Webhook-Id")]++
	}
	if len(seen) != n {
		t.Fatalf("receiver saw %d distinct events, want %d", len(seen), n)
	}
	for id, c := range seen {
		if !ids[id] || c != 1 {
			t.Fatalf("event %s delivered %d times", id, c)
		}
	}
}

// countingOutbox reports every claim.
type countingOutbox struct {
	*store.DB
	claims chan int
}

func (c countingOutbox) ClaimEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]store.OutboxEvent, error) {
	evs, err := c.DB.ClaimEvents(ctx, now, limit, lease)
	select {
	case c.claims <- len(evs):
	default:
	}
	return evs, err
}

func TestDispatcherNotify(t *testing.T) {
	e := newEnv(t, func(int, *http.Request) int { return http.StatusOK })
	out := countingOutbox{DB: e.db, claims: make(chan int, 1)}
	d, _ := e.run(t, out, webhook.DispatcherConfig{Poll: time.Minute})
	select {
	case n := <-out.claims:
		if n != 0 {
			t.Fatalf("first claim found %d events", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no first claim")
	}
	ev := e.enqueue(t, "")
	time.Sleep(50 * time.Millisecond)
	if n := len(e.rc.requests()); n != 0 {
		t.Fatalf("delivered %d before Notify with a one-minute poll", n)
	}
	start := time.Now()
	d.Notify()
	d.Notify() // never blocks, even with a wake-up pending
	e.wait(t, ev.ID, 5*time.Second, func(ev *store.OutboxEvent) bool { return ev.DeliveredAt != nil })
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("delivery took %v after Notify", took)
	}
}

func TestDispatcherStopsPromptlyWhenIdle(t *testing.T) {
	e := newEnv(t, func(int, *http.Request) int { return http.StatusOK })
	_, stop := e.run(t, nil, webhook.DispatcherConfig{Poll: time.Minute, Timeout: 5 * time.Second})
	time.Sleep(20 * time.Millisecond)
	if took := stop(); took > time.Second {
		t.Fatalf("Run took %v to return after cancel", took)
	}
}

func TestDispatcherStopFinishesInFlightAttempt(t *testing.T) {
	started := make(chan struct{}, 1)
	e := newEnv(t, func(int, *http.Request) int {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		return http.StatusOK
	})
	ev := e.enqueue(t, "")
	_, stop := e.run(t, nil, fast(webhook.DispatcherConfig{Timeout: 5 * time.Second}))
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery started")
	}
	if took := stop(); took > 3*time.Second {
		t.Fatalf("Run took %v to return", took)
	}
	// Marked as soon as Run has returned: the outcome survived the cancel.
	got, err := e.db.GetEvent(context.Background(), e.org.ID, ev.ID)
	if err != nil || got.DeliveredAt == nil {
		t.Fatalf("event after a graceful stop = %+v, %v", got, err)
	}
	if ds := e.deliveries(t, ev.ID); len(ds) != 1 || *ds[0].StatusCode != 200 {
		t.Fatalf("deliveries = %+v", ds)
	}
}

func TestDispatcherStopBoundedByTimeout(t *testing.T) {
	started := make(chan struct{}, 1)
	e := newEnv(t, func(_ int, r *http.Request) int {
		started <- struct{}{}
		<-r.Context().Done() // never answers
		return http.StatusOK
	})
	ev := e.enqueue(t, "")
	const timeout = 300 * time.Millisecond
	_, stop := e.run(t, nil, fast(webhook.DispatcherConfig{Timeout: timeout, Backoff: func(int) time.Duration { return time.Hour }}))
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery started")
	}
	if took := stop(); took > timeout+2*time.Second {
		t.Fatalf("Run took %v to return with a %v attempt timeout", took, timeout)
	}
	got, err := e.db.GetEvent(context.Background(), e.org.ID, ev.ID)
	if err != nil || got.DeliveredAt != nil || got.FailedAt != nil || got.LastError == nil ||
		!strings.Contains(*got.LastError, "deadline exceeded") || got.NextAttemptAt.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("event after a timed-out attempt = %+v, %v", got, err)
	}
	if strings.Contains(*got.LastError, "k=v") {
		t.Fatalf("last error repeats the URL query: %q", *got.LastError)
	}
	if ds := e.deliveries(t, ev.ID); len(ds) != 1 || ds[0].StatusCode != nil || ds[0].Error == nil || ds[0].Duration < timeout/2 {
		t.Fatalf("deliveries = %+v", ds)
	}
}

// TestDispatcherKeepsCallOrder: several calls' events enqueued at once, 4
// workers, a receiver that is slow by a random few milliseconds. Each
// call's events must arrive in seq order, even when some attempts fail
// and are retried; and a call's next event goes as soon as the one before
// it is delivered, not at the next poll.
func TestDispatcherKeepsCallOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		calls int
		cfg   webhook.DispatcherConfig
		fail  func(n int) bool
	}{
		// Fewer calls than workers: no claim comes back full, so only the
		// end of a delivery can prompt the next claim.
		{"next event without waiting for a poll", 2, webhook.DispatcherConfig{Workers: 4, Poll: time.Minute, Timeout: 2 * time.Second}, func(int) bool { return false }},
		{"retries keep the order", 6, fast(webhook.DispatcherConfig{Workers: 4}), func(n int) bool { return n%5 == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(n int, _ *http.Request) int {
				time.Sleep(time.Duration(mrand.IntN(3000)) * time.Microsecond)
				if tc.fail(n) {
					return http.StatusInternalServerError
				}
				return http.StatusOK
			})
			calls, perCall := tc.calls, 8
			var evs []store.OutboxEvent
			for c := range calls {
				callID := fmt.Sprintf("call-%d", c)
				for seq := 1; seq <= perCall; seq++ {
					evs = append(evs, store.OutboxEvent{OrgID: e.org.ID, CallID: &callID, Seq: seq, EventType: "status-update", URL: e.rc.srv.URL + "/hook",
						Payload: []byte(fmt.Sprintf(`{"message":{"call":{"id":%q},"seq":%d}}`, callID, seq))})
				}
			}
			if err := e.db.EnqueueEvents(context.Background(), evs...); err != nil {
				t.Fatal(err)
			}
			e.run(t, nil, tc.cfg)
			for _, ev := range evs {
				e.wait(t, ev.ID, 10*time.Second, func(ev *store.OutboxEvent) bool { return ev.DeliveredAt != nil })
			}
			// What each call's receiver saw, successful attempts only.
			got := map[string][]int{}
			var n int
			for _, r := range e.rc.requests() {
				n++
				if tc.fail(n) {
					continue
				}
				var m struct {
					Message struct {
						Call struct {
							ID string `json:"id"`
						} `json:"call"`
						Seq int `json:"seq"`
					} `json:"message"`
				}
				if err := json.Unmarshal(r.body, &m); err != nil {
					t.Fatal(err)
				}
				got[m.Message.Call.ID] = append(got[m.Message.Call.ID], m.Message.Seq)
			}
			for c := range calls {
				id := fmt.Sprintf("call-%d", c)
				if want := []int{1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(got[id], want) {
					t.Fatalf("%s delivered as seq %v, want %v", id, got[id], want)
				}
			}
		})
	}
}

// A destination the SSRF guard refuses is a permanent failure: one attempt,
// logged with the guard's reason, the event failed, the receiver never hit.
func TestDispatcherGuardRefusalIsPermanent(t *testing.T) {
	e := newEnv(t, func(int, *http.Request) int { return http.StatusOK })
	ev := e.enqueue(t, "whsec_guarded") // to the receiver on 127.0.0.1
	guard := netguard.New(netguard.Config{})
	client := guard.Client(2 * time.Second)
	t.Cleanup(client.CloseIdleConnections)
	var mu sync.Mutex
	var backoffs int
	d := webhook.NewDispatcher(e.db, e.kr, &webhook.Sender{HTTP: client}, fast(webhook.DispatcherConfig{MaxAttempts: 5, Backoff: func(int) time.Duration {
		mu.Lock()
		backoffs++
		mu.Unlock()
		return time.Millisecond
	}}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	got := e.wait(t, ev.ID, 5*time.Second, finished)
	if got.FailedAt == nil || got.DeliveredAt != nil || got.Attempts != 1 || got.LastError == nil ||
		!strings.Contains(*got.LastError, "refused by the URL guard") || !strings.Contains(*got.LastError, "loopback") ||
		strings.Contains(*got.LastError, "gave up") {
		t.Fatalf("event = %+v (last error %v)", got, deref(got.LastError))
	}
	time.Sleep(100 * time.Millisecond) // ten polls: nothing claims it again
	ds := e.deliveries(t, ev.ID)
	if len(ds) != 1 || ds[0].StatusCode != nil || ds[0].Error == nil || !strings.Contains(*ds[0].Error, "refused by the URL guard") ||
		strings.Contains(*ds[0].Error, "/hook?k=v") {
		t.Fatalf("deliveries = %+v", ds)
	}
	if n := len(e.rc.requests()); n != 0 {
		t.Fatalf("receiver got %d requests, want 0", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if backoffs != 0 {
		t.Fatalf("Backoff called %d times: the refusal was scheduled for a retry", backoffs)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
