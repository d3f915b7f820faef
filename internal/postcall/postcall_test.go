package postcall_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/analysis"
	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/blob"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/jobs"
	"github.com/parley-voice/parley/internal/postcall"
	"github.com/parley-voice/parley/internal/provider/openai"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/recording"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/signedurl"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
	"github.com/parley-voice/parley/internal/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var engines = []struct {
	name string
	open func(testing.TB) *store.DB
}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}}

// schema is the analysis plan's schema in these tests.
const schema = `{"type":"object","properties":{"intent":{"type":"string"},"booked":{"type":"boolean"}},"required":["intent","booked"],"additionalProperties":false}`

type options struct {
	respond       func(openaifake.Request) openaifake.Reply
	concurrency   int
	maxAttempts   int
	recordingWait time.Duration
	expiry        time.Duration
}

// rig is a node's post-call work against a real store and job queue, a fake
// OpenAI-compatible model and a recordings directory.
type rig struct {
	db       *store.DB
	org      *store.Org
	keys     *secret.Keyring
	svc      *postcall.Service
	queue    *jobs.Queue
	fake     *openaifake.Server
	blobs    *blob.Dir
	links    signedurl.Signer
	dir      string
	notified atomic.Int32
	inflight atomic.Int32
	peak     atomic.Int32
}

type models struct{ m analysis.Model }

func (f models) PostcallModel(context.Context, string, json.RawMessage) (analysis.Model, error) {
	return f.m, nil
}

func (r *rig) Notify() { r.notified.Add(1) }

// defaultModel answers summaries with a sentence and analyses with a valid object.
func defaultModel(req openaifake.Request) openaifake.Reply {
	if req.ResponseFormat != nil {
		return openaifake.Reply{Text: `{"intent":"book","booked":true}`}
	}
	return openaifake.Reply{Text: "The caller booked a cleaning for Tuesday."}
}

// countingTransport counts model requests in flight and their peak.
type countingTransport struct {
	base http.RoundTripper
	r    *rig
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	n := t.r.inflight.Add(1)
	for p := t.r.peak.Load(); n > p && !t.r.peak.CompareAndSwap(p, n); p = t.r.peak.Load() {
	}
	res, err := t.base.RoundTrip(req)
	if err != nil {
		t.r.inflight.Add(-1)
		return nil, err
	}
	res.Body = &countedBody{ReadCloser: res.Body, done: sync.OnceFunc(func() { t.r.inflight.Add(-1) })}
	return res, nil
}

type countedBody struct {
	io.ReadCloser
	done func()
}

func (b *countedBody) Close() error {
	b.done()
	return b.ReadCloser.Close()
}

func newRig(t *testing.T, db *store.DB, o options) *rig {
	t.Helper()
	if o.respond == nil {
		o.respond = defaultModel
	}
	r := &rig{db: db, dir: t.TempDir()}
	master := make([]byte, secret.KeySize)
	rand.Read(master)
	var err error
	if r.keys, err = secret.NewKeyring(master); err != nil {
		t.Fatal(err)
	}
	r.org = &store.Org{Name: "Clinic", MinutesBalance: 100}
	if err := db.CreateOrg(context.Background(), r.org, nil); err != nil {
		t.Fatal(err)
	}
	r.fake = openaifake.New(openaifake.Config{Respond: o.respond})
	srv := httptest.NewServer(r.fake)
	t.Cleanup(srv.Close)
	if r.blobs, err = blob.NewDir(filepath.Join(r.dir, "recordings")); err != nil {
		t.Fatal(err)
	}
	r.links = signedurl.Signer{Base: "https://parley.example.com", Keys: r.keys}
	r.svc = postcall.New(postcall.Config{
		NodeID: "node-1", Store: db, Blobs: r.blobs, Links: r.links, Outbox: r,
		ModelConcurrency: o.concurrency, ModelTimeout: 5 * time.Second, MaxAttempts: o.maxAttempts,
		RetryBase: 20 * time.Millisecond, RecordingWait: o.recordingWait, ExpiryInterval: o.expiry,
	})
	workers := river.NewWorkers()
	r.svc.Register(workers)
	var periodic []*river.PeriodicJob
	if o.expiry > 0 {
		periodic = r.svc.Periodic()
	}
	r.queue, err = jobs.Open(context.Background(), jobs.Config{Engine: db.Driver(), DB: db.Writer(), NodeID: "node-1",
		Queues: r.svc.Queues(), Workers: workers, Periodic: periodic, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Requests in flight are counted on the client side, from the request
	// to the close of its response body: the server's handler may still be
	// returning after the client has read the whole answer.
	client := srv.Client()
	client.Transport = &countingTransport{base: client.Transport, r: r}
	chat := openai.NewChat(openai.Config{BaseURL: srv.URL + "/v1", HTTPClient: client})
	r.svc.Attach(r.queue, models{analysis.Model{Provider: chat, Name: "gpt-5.4-mini", APIKey: "k"}})
	if err := r.queue.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.queue.Stop(context.Background(), 5*time.Second); err != nil {
			t.Errorf("stop queue: %v", err)
		}
	})
	return r
}

// callSpec shapes a call that ends.
type callSpec struct {
	events    []string // the webhook subscription (nil: all)
	plan      string   // analysis_plan JSON ("" none)
	messages  string   // transcript JSON
	recording string   // a WAV file left by the call
	gdpr      *time.Time
}

const transcript = `[{"role":"assistant","content":"Hello, Acme dental."},{"role":"user","content":"I would like a cleaning on Tuesday."},{"role":"assistant","content":"Booked for Tuesday at nine."}]`

// endCall records a call as the voice engine does: row with the resolved
// assistant and webhook target, then its end with the post-call work
// scheduled in the same transaction.
func (r *rig) endCall(t *testing.T, s callSpec) *store.Call {
	t.Helper()
	ctx := context.Background()
	doc := map[string]any{"name": "Front desk", "metadata": map[string]any{"crm_id": "c-42"}, "stt_config": map[string]any{"language": "nl"},
		"llm_config": map[string]any{"provider": "openai", "model": "gpt-4.1"}}
	if s.plan != "" {
		doc["analysis_plan"] = json.RawMessage(s.plan)
	}
	snap, _ := json.Marshal(doc)
	target, _ := json.Marshal(webhook.Target{URL: "https://hooks.example.com/parley", Secret: r.keys.Seal([]byte("whsec"), webhook.SecretBinding(r.org.ID)), Events: s.events})
	num := &store.Number{OrgID: r.org.ID, PhoneNumber: "+3120" + randDigits(7), Name: ptr("Main line"), IsActive: true}
	if err := r.db.CreateNumber(ctx, num); err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-42 * time.Second).UTC().Truncate(time.Millisecond)
	c := &store.Call{ID: "call-_+31612345678_" + randDigits(12), OrgID: r.org.ID, Direction: call.Inbound, Status: call.StatusInProgress,
		CallerPhone: ptr("+31612345678"), NumberID: &num.ID, PhoneNumber: &num.PhoneNumber, StartedAt: &started,
		Assistant: snap, Webhook: target}
	if err := r.db.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	dur := 42
	end := store.CallEnd{OrgID: r.org.ID, ID: c.ID, Status: call.StatusEnded, EndReason: call.EndUserHangup, EndedAt: time.Now().UTC(),
		Duration: &dur, Messages: json.RawMessage(s.messages), ContentExpiresAt: s.gdpr,
		InTx: func(ctx context.Context, tx *sql.Tx) error {
			return r.svc.Schedule(ctx, tx, r.org.ID, c.ID, s.recording)
		}}
	if s.recording != "" {
		end.Recording = store.RecordingPending
	}
	if s.messages == "" {
		end.Messages = nil
	}
	if err := r.db.EndCall(ctx, end); err != nil {
		t.Fatal(err)
	}
	return c
}

func randDigits(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }

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

// reports returns the call's end-of-call-report events.
func (r *rig) reports(t *testing.T, callID string) []store.OutboxEvent {
	t.Helper()
	evs, _, err := r.db.ListEvents(context.Background(), r.org.ID, store.EventFilter{CallID: callID, EventType: webhook.EventEndOfCallReport, Page: store.Page{Limit: 10}})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// report waits for the call's one report and returns its message.
func (r *rig) report(t *testing.T, callID string) (store.OutboxEvent, map[string]any) {
	t.Helper()
	waitFor(t, 15*time.Second, "the end-of-call report", func() bool { return len(r.reports(t, callID)) > 0 })
	r.idle(t)
	evs := r.reports(t, callID)
	if len(evs) != 1 {
		t.Fatalf("%d reports queued, want exactly 1", len(evs))
	}
	var body struct {
		Message map[string]any `json:"message"`
	}
	if err := json.Unmarshal(evs[0].Payload, &body); err != nil {
		t.Fatal(err)
	}
	return evs[0], body.Message
}

// idle waits until no post-call job is pending.
func (r *rig) idle(t *testing.T) {
	t.Helper()
	waitFor(t, 15*time.Second, "the post-call jobs to finish", func() bool {
		n, err := r.queue.Count(context.Background(), jobs.Pending, "postcall_report", "postcall_upload")
		return err == nil && n == 0
	})
}

// TestReport: a call ends; its summary and schema-valid analysis are saved
// on the call and the end-of-call report carries them with the transcript,
// times, end reason and the resolved assistant, to the call's webhook with
// its sealed secret.
func TestReport(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			r := newRig(t, e.open(t), options{})
			plan := `{"structured_data_plan":{"enabled":true,"schema":` + schema + `,"messages":[{"role":"system","content":"Extract {{schema}} from {{transcript}} (ended: {{ended_reason}})"}]},"min_messages_threshold":2}`
			c := r.endCall(t, callSpec{plan: plan, messages: transcript})
			ev, msg := r.report(t, c.ID)

			row, err := r.db.GetCall(context.Background(), r.org.ID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if row.Summary == nil || *row.Summary != "The caller booked a cleaning for Tuesday." {
				t.Fatalf("summary on the call = %v", row.Summary)
			}
			if !sameJSON(row.AnalysisResult, `{"intent":"book","booked":true}`) || row.AnalysisError != nil {
				t.Fatalf("analysis on the call = %s (error %v)", row.AnalysisResult, row.AnalysisError)
			}
			if ev.Secret == nil || ev.URL != "https://hooks.example.com/parley" || ev.Seq != 1 {
				t.Fatalf("report event url %q seq %d secret %v", ev.URL, ev.Seq, ev.Secret)
			}
			if ev.ID != webhook.EventID(c.ID, webhook.EventEndOfCallReport) {
				t.Fatalf("report id %s is not derived from the call", ev.ID)
			}
			if pt, err := r.keys.Open(*ev.Secret, webhook.SecretBinding(r.org.ID)); err != nil || string(pt) != "whsec" {
				t.Fatalf("report secret opens to %q, %v", pt, err)
			}
			want := map[string]any{"type": "end-of-call-report", "summary": "The caller booked a cleaning for Tuesday.", "end_reason": "user_hangup", "duration_seconds": 42.0}
			for k, v := range want {
				if msg[k] != v {
					t.Errorf("report %s = %v, want %v", k, msg[k], v)
				}
			}
			if a, _ := msg["analysis"].(map[string]any); a["intent"] != "book" || a["booked"] != true {
				t.Errorf("report analysis = %v", msg["analysis"])
			}
			if m, _ := msg["messages"].([]any); len(m) != 3 {
				t.Errorf("report messages = %v", msg["messages"])
			}
			if callObj, _ := msg["call"].(map[string]any); callObj["id"] != c.ID || callObj["status"] != "ended" || callObj["type"] != "inbound_phone_call" {
				t.Errorf("report call = %v", msg["call"])
			}
			if pn, _ := msg["phone_number"].(map[string]any); pn["name"] != "Main line" || pn["number"] != *c.PhoneNumber {
				t.Errorf("report phone_number = %v", msg["phone_number"])
			}
			if a, _ := msg["assistant"].(map[string]any); a["name"] != "Front desk" || a["metadata"].(map[string]any)["crm_id"] != "c-42" {
				t.Errorf("report assistant = %v", msg["assistant"])
			}
			for _, k := range []string{"started_at", "ended_at", "timestamp"} {
				if s, _ := msg[k].(string); !strings.HasSuffix(s, "Z") {
					t.Errorf("report %s = %v", k, msg[k])
				}
			}
			if _, ok := msg["recording_url"]; ok {
				t.Errorf("report of an unrecorded call has recording_url %v", msg["recording_url"])
			}
			if r.notified.Load() == 0 {
				t.Error("the outbox was not woken")
			}
			// The model saw the plan's prompt with its placeholders filled.
			var analysisReq *openaifake.Request
			for _, q := range r.fake.Requests() {
				if q.ResponseFormat != nil {
					analysisReq = &q
				}
			}
			if analysisReq == nil || !strings.Contains(analysisReq.Messages[0].Content, "ended: user_hangup") || !strings.Contains(analysisReq.Messages[0].Content, "Tuesday at nine") {
				t.Fatalf("analysis request %+v", analysisReq)
			}
		})
	}
}

// TestRecordingUploadedThenReported: the call's WAV is moved into the
// object store by the node's upload job, and the report waits for it and
// links it with a signed URL.
func TestRecordingUploadedThenReported(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), options{})
	wav := filepath.Join(r.dir, "done", "call.wav")
	os.MkdirAll(filepath.Dir(wav), 0o700)
	var buf bytes.Buffer
	audio.WriteWAV(&buf, audio.Tone(300, 8000, 8000, 5000), 8000)
	os.WriteFile(wav, buf.Bytes(), 0o600)
	c := r.endCall(t, callSpec{messages: transcript, recording: wav})
	_, msg := r.report(t, c.ID)
	link, _ := msg["recording_url"].(string)
	u, err := url.Parse(link)
	if err != nil || link == "" {
		t.Fatalf("recording_url = %q", link)
	}
	if u.EscapedPath() != recording.Path(c.ID) || u.Query().Get(recording.LinkOrgParam) != r.org.ID {
		t.Fatalf("recording_url %q does not point at the call's recording", link)
	}
	if err := r.links.Check(recording.Path(c.ID), u.Query()); err != nil {
		t.Fatalf("recording_url signature: %v", err)
	}
	row, _ := r.db.GetCall(context.Background(), r.org.ID, c.ID)
	if row.RecordingState != store.RecordingReady || row.RecordingKey == nil || *row.RecordingKey != postcall.RecordingKey(r.org.ID, c.ID) {
		t.Fatalf("recording %q %v", row.RecordingState, row.RecordingKey)
	}
	obj, err := r.blobs.Open(context.Background(), *row.RecordingKey)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if obj.Size() != int64(buf.Len()) {
		t.Fatalf("stored %d bytes, want %d", obj.Size(), buf.Len())
	}
	if _, err := os.Stat(wav); !os.IsNotExist(err) {
		t.Fatalf("the uploaded file is still on disk: %v", err)
	}
}

// TestRecordingLost: a recording whose file is gone is marked failed and the
// report goes without it.
func TestRecordingLost(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), options{})
	c := r.endCall(t, callSpec{messages: transcript, recording: filepath.Join(r.dir, "done", "missing.wav")})
	_, msg := r.report(t, c.ID)
	if _, ok := msg["recording_url"]; ok {
		t.Fatalf("report links a recording that does not exist: %v", msg["recording_url"])
	}
	row, _ := r.db.GetCall(context.Background(), r.org.ID, c.ID)
	if row.RecordingState != store.RecordingFailed {
		t.Fatalf("recording state %q, want failed", row.RecordingState)
	}
}

// TestModelDown: the model fails every time; after the last attempt the
// report goes anyway, with what could be had, and says why the analysis is
// missing.
func TestModelDown(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), options{maxAttempts: 3, respond: func(openaifake.Request) openaifake.Reply {
		return openaifake.Reply{Status: 503}
	}})
	plan := `{"structured_data_plan":{"enabled":true,"schema":` + schema + `},"min_messages_threshold":2}`
	c := r.endCall(t, callSpec{plan: plan, messages: transcript})
	_, msg := r.report(t, c.ID)
	if msg["summary"] != "" {
		t.Fatalf("summary = %v, want empty when the model never answered", msg["summary"])
	}
	if msg["analysis_error"] == nil || msg["analysis"] != nil {
		t.Fatalf("analysis %v, analysis_error %v", msg["analysis"], msg["analysis_error"])
	}
	// Three attempts of the summary (one request each); the analysis gets
	// its one request on the last attempt.
	if n := len(r.fake.Requests()); n != 4 {
		t.Fatalf("%d model requests, want 4 (summary ×3, analysis ×1)", n)
	}
}

// TestAnalysisStillInvalid: an answer that does not match the schema even
// after the one repair is recorded as an error, never stored half-valid.
func TestAnalysisStillInvalid(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), options{respond: func(req openaifake.Request) openaifake.Reply {
		if req.ResponseFormat != nil {
			return openaifake.Reply{Text: `{"intent":"book","booked":"yes"}`}
		}
		return openaifake.Reply{Text: "Summary."}
	}})
	plan := `{"structured_data_plan":{"enabled":true,"schema":` + schema + `},"min_messages_threshold":2}`
	c := r.endCall(t, callSpec{plan: plan, messages: transcript})
	_, msg := r.report(t, c.ID)
	row, _ := r.db.GetCall(context.Background(), r.org.ID, c.ID)
	if row.AnalysisResult != nil || row.AnalysisError == nil || !strings.Contains(*row.AnalysisError, "booked") {
		t.Fatalf("analysis %s error %v", row.AnalysisResult, row.AnalysisError)
	}
	if msg["analysis"] != nil || msg["analysis_error"] != *row.AnalysisError {
		t.Fatalf("report analysis %v error %v", msg["analysis"], msg["analysis_error"])
	}
}

// TestAnalysisFromTemplateAndThreshold: a plan that names an analysis
// template runs with the template's prompts and schema; a call with fewer
// messages than the threshold gets no analysis (and no request for one).
func TestAnalysisFromTemplateAndThreshold(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), options{})
	tmpl := &store.Doc{Kind: store.AnalysisTemplates, OrgID: r.org.ID, Name: "Booking", Active: true,
		Body: json.RawMessage(`{"name":"Booking","description":null,"schema":` + schema + `,"system_prompt":"Caller {caller_number} spoke {duration}s.","user_prompt":"{transcript}","messages":null,"min_messages_threshold":null}`)}
	if err := r.db.CreateDoc(context.Background(), tmpl); err != nil {
		t.Fatal(err)
	}
	plan := `{"structured_data_plan":{"enabled":true,"template_id":"` + tmpl.ID + `"},"min_messages_threshold":3}`
	c := r.endCall(t, callSpec{plan: plan, messages: transcript})
	_, msg := r.report(t, c.ID)
	if a, _ := msg["analysis"].(map[string]any); a["booked"] != true {
		t.Fatalf("analysis = %v (error %v)", msg["analysis"], msg["analysis_error"])
	}
	found := false
	for _, q := range r.fake.Requests() {
		if q.ResponseFormat != nil && strings.Contains(q.Messages[0].Content, "Caller +31612345678 spoke 42s.") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no analysis request with the template's prompt: %+v", r.fake.Requests())
	}

	before := len(r.fake.Requests())
	short := r.endCall(t, callSpec{plan: plan, messages: `[{"role":"assistant","content":"Hello?"},{"role":"user","content":"Bye."}]`})
	_, msg = r.report(t, short.ID)
	if _, ok := msg["analysis"]; ok {
		t.Fatalf("a 2-message call got an analysis with threshold 3: %v", msg["analysis"])
	}
	if n := len(r.fake.Requests()) - before; n != 1 {
		t.Fatalf("%d model requests for the short call, want 1 (the summary)", n)
	}
}

// TestSubscription: a webhook that does not subscribe to the report gets
// none, though the summary is still made and saved; a call without any
// conversation gets a fixed summary without a model request.
func TestSubscription(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), options{})
	c := r.endCall(t, callSpec{events: []string{"status-update"}, messages: transcript})
	waitFor(t, 10*time.Second, "the summary", func() bool {
		row, _ := r.db.GetCall(context.Background(), r.org.ID, c.ID)
		return row.Summary != nil
	})
	r.idle(t)
	if evs := r.reports(t, c.ID); len(evs) != 0 {
		t.Fatalf("%d reports for a webhook that did not subscribe", len(evs))
	}
	before := len(r.fake.Requests())
	silent := r.endCall(t, callSpec{})
	_, msg := r.report(t, silent.ID)
	if s, _ := msg["summary"].(string); !strings.HasPrefix(s, "No conversation took place") {
		t.Fatalf("summary of a call without conversation = %q", s)
	}
	if len(r.fake.Requests()) != before {
		t.Fatal("the model was asked to summarise a call without conversation")
	}
}

// TestModelConcurrencyBound: 40 calls end at once; the node never has more
// model requests in flight than its bound, and every call is reported.
func TestModelConcurrencyBound(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), options{concurrency: 3, respond: func(req openaifake.Request) openaifake.Reply {
		rep := defaultModel(req)
		rep.FirstTokenDelay = 30 * time.Millisecond
		return rep
	}})
	var ids []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := r.endCall(t, callSpec{messages: transcript})
			mu.Lock()
			ids = append(ids, c.ID)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, id := range ids {
		r.report(t, id)
	}
	if p := r.peak.Load(); p > 3 || p < 2 {
		t.Fatalf("peak model requests in flight = %d, want at most 3 (and the bound used)", p)
	}
}

// TestGDPRContentExpires: the periodic expiry job deletes the transcript,
// summary and recording of calls whose content retention has passed.
func TestGDPRContentExpires(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), options{expiry: 200 * time.Millisecond})
	past := time.Now().Add(-time.Minute)
	c := r.endCall(t, callSpec{messages: transcript, gdpr: &past})
	r.report(t, c.ID)
	key := postcall.RecordingKey(r.org.ID, c.ID)
	if err := r.blobs.Put(context.Background(), key, strings.NewReader("RIFF"), 4, "audio/wav"); err != nil {
		t.Fatal(err)
	}
	if err := r.db.FinishRecording(context.Background(), r.org.ID, c.ID, store.RecordingReady, &key, nil); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	kept := r.endCall(t, callSpec{messages: transcript, gdpr: &future})
	r.report(t, kept.ID)
	waitFor(t, 10*time.Second, "the expired content to go", func() bool {
		row, _ := r.db.GetCall(context.Background(), r.org.ID, c.ID)
		return row.Messages == nil && row.Summary == nil && row.RecordingKey == nil
	})
	if _, err := r.blobs.Open(context.Background(), key); err == nil {
		t.Fatal("the expired recording is still stored")
	}
	row, _ := r.db.GetCall(context.Background(), r.org.ID, kept.ID)
	if row.Messages == nil || row.Summary == nil {
		t.Fatal("content of a call within its retention was deleted")
	}
}

func sameJSON(a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// TestSettled: an ending call needs no post-call job only when nothing is
// recorded, nobody takes its report, it has no analysis plan and its
// summary needs no model.
func TestSettled(t *testing.T) {
	s := postcall.New(postcall.Config{})
	talk := json.RawMessage(`[{"role":"assistant","content":"Hello."},{"role":"user","content":"I need an appointment."}]`)
	greeting := json.RawMessage(`[{"role":"assistant","content":"Hello."}]`)
	hook := func(events string) json.RawMessage {
		return json.RawMessage(`{"url":"https://hooks.example.com/h","events":` + events + `}`)
	}
	reason := "user_hangup"
	vm := "voicemail"
	for _, tc := range []struct {
		name string
		c    store.Call
		want bool
	}{
		{"greeting only, no webhook", store.Call{Messages: greeting, Assistant: json.RawMessage(`{"name":"A"}`)}, true},
		{"status updates only", store.Call{Messages: greeting, Assistant: json.RawMessage(`{}`), Webhook: hook(`["status-update"]`)}, true},
		{"voicemail", store.Call{Messages: talk, EndReason: &vm, Assistant: json.RawMessage(`{"voicemail_message":"Call us back."}`)}, true},
		{"a conversation", store.Call{Messages: talk, EndReason: &reason, Assistant: json.RawMessage(`{}`)}, false},
		{"report subscriber", store.Call{Messages: greeting, Assistant: json.RawMessage(`{}`), Webhook: hook(`null`)}, false},
		{"analysis plan", store.Call{Messages: greeting, Assistant: json.RawMessage(`{"analysis_plan":{"structured_data_schema":{"type":"object"}}}`)}, false},
		{"recording to upload", store.Call{Messages: greeting, Assistant: json.RawMessage(`{}`), RecordingState: store.RecordingPending}, false},
		{"unreadable snapshot", store.Call{Messages: greeting, Assistant: json.RawMessage(`{`)}, false},
	} {
		sum, ok := s.Settled(&tc.c)
		if ok != tc.want || ok && sum == "" {
			t.Errorf("%s: Settled = %q, %v; want settled %v", tc.name, sum, ok, tc.want)
		}
	}
}
