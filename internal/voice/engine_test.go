package voice

import (
	"context"
	"errors"
	"fmt"
	"github.com/parley-voice/parley/internal/announce"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
	"github.com/parley-voice/parley/internal/stt"
	"github.com/parley-voice/parley/internal/telephony"
	"github.com/parley-voice/parley/internal/tts"
)

func TestNumberCandidates(t *testing.T) {
	for in, want := range map[string][]string{
		"+31201234567":  {"+31201234567"},
		"31201234567":   {"31201234567", "+31201234567"},
		"0031201234567": {"0031201234567", "+31201234567", "+0031201234567"},
		"+1 (555) 010":  {"+1 (555) 010", "+1555010"},
		"agent":         {"agent"},
	} {
		if got := numberCandidates(in); !reflect.DeepEqual(got, want) {
			t.Errorf("numberCandidates(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCallID(t *testing.T) {
	id := callID("+31623731537")
	if !strings.HasPrefix(id, "call-_+31623731537_") || len(id) != len("call-_+31623731537_")+12 {
		t.Fatalf("callID = %q", id)
	}
	if id := callID("<script>"); !strings.HasPrefix(id, "call-_script_") {
		t.Fatalf("callID of junk = %q", id)
	}
}

// nopProviders stand in where only routing is tested.
type nopSTT struct{}

func (nopSTT) Open(context.Context, stt.Config) (stt.Stream, error) { return nil, errors.New("unused") }

type nopLLM struct{}

func (nopLLM) Stream(context.Context, llm.Request) (llm.Stream, error) {
	return nil, errors.New("unused")
}

type nopTTS struct{}

func (nopTTS) Open(context.Context, tts.Config) (tts.Stream, error) { return nil, errors.New("unused") }

type fixture struct {
	db     *store.DB
	keys   *secret.Keyring
	org    *store.Org
	engine *Engine
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := storetest.OpenSQLite(t)
	keys, err := secret.NewKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	org := &store.Org{Name: "Dental", MinutesBalance: 100}
	if err := db.CreateOrg(context.Background(), org, nil); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	e := New(db, keys, Config{Catalog: cat, Providers: Providers{
		STT:        map[string]stt.Provider{"deepgram": nopSTT{}, "local": nopSTT{}},
		LLM:        map[string]llm.Provider{"openai": nopLLM{}},
		TTS:        map[string]tts.Provider{"elevenlabs": nopTTS{}, "local": nopTTS{}},
		ServerKeys: map[string]string{"openai": "server-openai-key"},
	}})
	return &fixture{db: db, keys: keys, org: org, engine: e}
}

func (f *fixture) assistant(t *testing.T, body string, active bool) string {
	t.Helper()
	d := &store.Doc{Kind: store.Assistants, OrgID: f.org.ID, Name: "A", Active: active, Body: []byte(body)}
	if err := f.db.CreateDoc(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func (f *fixture) number(t *testing.T, phone string, assistant *string, active bool) {
	t.Helper()
	n := &store.Number{OrgID: f.org.ID, PhoneNumber: phone, AssistantID: assistant, IsActive: active}
	if err := f.db.CreateNumber(context.Background(), n); err != nil {
		t.Fatal(err)
	}
}

const localBody = `{"first_message":"Hi","max_duration_seconds":60,
	"llm_config":{"provider":"openai","model":"gpt-4.1","temperature":0.2,"messages":[{"role":"system","content":"Be kind."}],"tools":[{"type":"end_call"}]},
	"stt_config":{"provider":"local","model":"pocketsphinx","language":"en","keyterms":["yes please"],"endpointing":250},
	"tts_config":{"provider":"local","model":"espeak-ng","voice_id":"en-us","speed":1.2},
	"speech_config":{"turn_taking":{"endpointing_min_delay":0.2,"interruption_min_words":2,"false_interruption_timeout":null},"pronunciation":[{"from":"Dr.","to":"Doctor"}],"end_call_message":"Bye."}}`

func TestRoute(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	good := f.assistant(t, localBody, true)
	keyless := f.assistant(t, strings.Replace(localBody, `"provider":"local","model":"pocketsphinx"`, `"provider":"deepgram","model":"nova-3"`, 1), true)
	idle := f.assistant(t, localBody, false)
	f.number(t, "+31200000001", &good, true)
	f.number(t, "+31200000002", &good, false)
	f.number(t, "+31200000003", nil, true)
	f.number(t, "+31200000004", &keyless, true)
	f.number(t, "+31200000005", &idle, true)

	for _, tc := range []struct {
		dialled string
		code    int
		why     string
	}{
		{"+31299999999", 404, ""},
		{"31200000002", 480, "inactive"},
		{"+31200000003", 480, "has no assistant"},
		{"+31200000004", 480, "no API key for deepgram"},
		{"+31200000005", 480, "is inactive"},
	} {
		_, err := f.engine.Route(ctx, telephony.Inbound{Dialled: tc.dialled, Caller: "+15550001111", SIPCallID: "x"})
		var rj *telephony.Reject
		if !errors.As(err, &rj) || rj.Code != tc.code {
			t.Fatalf("Route(%s) = %v, want %d", tc.dialled, err, tc.code)
		}
	}
	calls, _, err := f.db.ListCalls(ctx, f.org.ID, store.CallFilter{Page: store.Page{Limit: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 4 {
		t.Fatalf("%d rejected calls recorded, want 4 (unknown numbers have no owner)", len(calls))
	}
	for _, c := range calls {
		if c.Status != call.StatusRejected || c.Error == nil || c.EndReason == nil {
			t.Fatalf("rejected call row %+v (status, error and end_reason)", c)
		}
	}

	// The good number: a ringing row and a fully resolved plan.
	h, err := f.engine.Route(ctx, telephony.Inbound{Dialled: "31200000001", Caller: "+15550001111", SIPCallID: "sip-1"})
	if err != nil {
		t.Fatal(err)
	}
	hd := h.(*handler)
	row, err := f.db.GetCall(ctx, f.org.ID, hd.row.ID)
	if err != nil || row.Status != call.StatusRinging || *row.SIPCallID != "sip-1" || *row.AssistantPhone != "+31200000001" {
		t.Fatalf("ringing row %+v, %v", row, err)
	}
	c := hd.plan.cfg
	if c.FirstMessage != "Hi" || c.MaxDuration != time.Minute || !c.EndCallTool || c.EndCallMessage != "Bye." ||
		c.LLM.APIKey != "server-openai-key" || c.LLM.Model != "gpt-4.1" || *c.LLM.Temperature != 0.2 ||
		c.STT.Keyterms[0] != "yes please" || c.STT.Endpointing != 250*time.Millisecond || c.STT.SampleRate != 8000 ||
		c.TTS.Voice != "en-us" || c.TTS.Speed != 1.2 ||
		c.Turn.EndpointingMinDelay != 200*time.Millisecond || c.Turn.EndpointingMaxDelay != 2*time.Second ||
		c.Turn.InterruptionMinWords != 2 || c.Turn.FalseInterruptTimeout != 0 ||
		len(c.Pronunciation) != 1 || c.System[0].Content != "Be kind." {
		t.Fatalf("plan = %+v", c)
	}
	if hd.plan.byok.llm {
		t.Fatal("server key counted as BYOK")
	}

	// An organization key wins over the server's and is billed as BYOK.
	sealed := f.keys.Seal([]byte("org-openai-key"), secret.Binding{OrgID: f.org.ID, Table: "byok_keys", Field: "openai"})
	if err := f.db.PutBYOKKey(ctx, &store.BYOKKey{OrgID: f.org.ID, Provider: "openai", SecretID: "s1", Sealed: sealed}); err != nil {
		t.Fatal(err)
	}
	h, err = f.engine.Route(ctx, telephony.Inbound{Dialled: "+31200000001", Caller: "+15550001111"})
	if err != nil {
		t.Fatal(err)
	}
	if p := h.(*handler).plan; p.cfg.LLM.APIKey != "org-openai-key" || !p.byok.llm {
		t.Fatalf("BYOK key not used: %+v", p.byok)
	}
}

func TestCauseReason(t *testing.T) {
	for cause, want := range map[error]call.EndReason{
		telephony.ErrRemoteHangup: call.EndUserHangup,
		telephony.ErrNoACK:        call.EndNoACK,
		telephony.ErrShutdown:     call.EndShutdown,
		errors.New("other"):       call.EndError,
	} {
		if got := causeReason(cause); got != want {
			t.Errorf("causeReason(%v) = %q, want %q", cause, got, want)
		}
	}
}

// TestInsufficientCredits: an inbound call to an organization whose paying
// organization (itself, or its parent) is at or below zero minutes is
// recorded as rejected (insufficient-credits) and answered only to play the
// unavailable message; no conversation is planned, so no model runs.
func TestInsufficientCredits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	clip, err := announce.Unavailable()
	if err != nil {
		t.Fatal(err)
	}
	f.engine.cfg.Unavailable = clip
	f.engine.cfg.BalanceCache = -1 // the test changes balances between calls
	good := f.assistant(t, localBody, true)
	f.number(t, "+31200000001", &good, true)

	for _, balance := range []float64{0, -2.5} {
		if err := f.db.SetMinutesBalance(ctx, f.org.ID, balance); err != nil {
			t.Fatal(err)
		}
		h, err := f.engine.Route(ctx, telephony.Inbound{Dialled: "+31200000001", Caller: "+15550001111", SIPCallID: "sip-c"})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := h.(*announcement); !ok {
			t.Fatalf("balance %v: handler %T, want the announcement", balance, h)
		}
	}
	calls, _, _ := f.db.ListCalls(ctx, f.org.ID, store.CallFilter{Page: store.Page{Limit: 10}})
	if len(calls) != 2 {
		t.Fatalf("%d calls recorded, want 2", len(calls))
	}
	for _, c := range calls {
		if c.Status != call.StatusRejected || c.EndReason == nil || *c.EndReason != "insufficient-credits" || c.EndedAt == nil {
			t.Fatalf("call row: status %s, reason %v", c.Status, c.EndReason)
		}
	}
	if _, _, sum, _ := f.db.ListUsage(ctx, f.org.ID, store.UsageFilter{Page: store.Page{Limit: 1}}); sum.TotalCalls != 0 {
		t.Fatal("a refused call was billed")
	}

	// Without a message configured the call is refused in SIP.
	f.engine.cfg.Unavailable = nil
	_, err = f.engine.Route(ctx, telephony.Inbound{Dialled: "+31200000001", Caller: "+15550001111"})
	var rj *telephony.Reject
	if !errors.As(err, &rj) || rj.Code != 480 {
		t.Fatalf("Route without a message = %v, want 480", err)
	}

	// A child organization bills against its parent: minutes of its own
	// do not help when the parent has none.
	f.engine.cfg.Unavailable = clip
	child := &store.Org{Name: "Client", ParentID: &f.org.ID, MinutesBalance: 50}
	if err := f.db.CreateOrg(ctx, child, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.db.CreateNumber(ctx, &store.Number{OrgID: child.ID, PhoneNumber: "+31200000009", IsActive: true}); err != nil {
		t.Fatal(err)
	}
	if h, err := f.engine.Route(ctx, telephony.Inbound{Dialled: "+31200000009", Caller: "+15550001111"}); err != nil {
		t.Fatal(err)
	} else if _, ok := h.(*announcement); !ok {
		t.Fatalf("child of a parent without minutes: handler %T", h)
	}
	// Balances are reused for a second by default: a top-up shows within it.
	f.engine.cfg.BalanceCache = 0
	// Minutes added to the parent: calls go ahead again.
	if _, err := f.db.AddMinutes(ctx, f.org.ID, 10); err != nil {
		t.Fatal(err)
	}
	h, err := f.engine.Route(ctx, telephony.Inbound{Dialled: "+31200000001", Caller: "+15550001111"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.(*handler); !ok {
		t.Fatalf("after a top-up: handler %T, want a conversation", h)
	}
}

// slowDocs is a store whose document reads time out (a database under load).
type slowDocs struct{ *store.DB }

func (slowDocs) GetDoc(context.Context, store.Kind, string, string) (*store.Doc, error) {
	return nil, fmt.Errorf("get document: %w", context.DeadlineExceeded)
}

// TestRouteStoreFailure: when the store does not answer, the call is
// refused as temporarily unavailable (503 from the SIP server) and no
// "rejected" row blames the configuration.
func TestRouteStoreFailure(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	good := f.assistant(t, localBody, true)
	f.number(t, "+31200000001", &good, true)
	e := New(slowDocs{f.db}, f.keys, f.engine.cfg)
	_, err := e.Route(ctx, telephony.Inbound{Dialled: "+31200000001", Caller: "+15550001111"})
	var rj *telephony.Reject
	if err == nil || errors.As(err, &rj) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Route with a timing-out store = %v, want a plain error (503)", err)
	}
	if calls, _, _ := f.db.ListCalls(ctx, f.org.ID, store.CallFilter{Page: store.Page{Limit: 10}}); len(calls) != 0 {
		t.Fatalf("%d call rows for a call the store could not route", len(calls))
	}
}

// flakyEnds is a store whose first call ends fail (a database that is
// briefly unreachable).
type flakyEnds struct {
	*store.DB
	fails int
}

func (f *flakyEnds) EndCall(ctx context.Context, e store.CallEnd) error {
	if f.fails > 0 {
		f.fails--
		return fmt.Errorf("end call: %w", context.DeadlineExceeded)
	}
	return f.DB.EndCall(ctx, e)
}

// TestRecordEndRetries: a call's end that fails to write is retried until
// it is written, and a second end of the same call is recognised as done.
func TestRecordEndRetries(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := &store.Call{OrgID: f.org.ID, Direction: call.Inbound, Status: call.StatusInProgress}
	if err := f.db.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	flaky := &flakyEnds{DB: f.db, fails: 2}
	e := New(flaky, f.keys, f.engine.cfg)
	secs := 5
	end := store.CallEnd{OrgID: f.org.ID, ID: c.ID, Status: call.StatusEnded, EndReason: call.EndUserHangup, EndedAt: time.Now(), Duration: &secs,
		Usage: &store.UsageLog{OrgID: f.org.ID, CallID: &c.ID, DurationSec: secs, CallType: "phone"}}
	if err := e.recordEnd(ctx, end, e.log); err != nil || flaky.fails != 0 {
		t.Fatalf("recordEnd = %v with %d failures left", err, flaky.fails)
	}
	if got, _ := f.db.GetCall(ctx, f.org.ID, c.ID); got.Status != call.StatusEnded {
		t.Fatalf("call %s after the retried end", got.Status)
	}
	if err := e.recordEnd(ctx, end, e.log); !endSettled(err) {
		t.Fatalf("second end = %v, want it settled (already ended)", err)
	}
	if _, _, sum, _ := f.db.ListUsage(ctx, f.org.ID, store.UsageFilter{Page: store.Page{Limit: 1}}); sum.TotalCalls != 1 {
		t.Fatalf("%d usage logs, want 1", sum.TotalCalls)
	}
}
