package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/httpapi"
)

// fakeCalls is a voice engine that records what the API hands it.
type fakeCalls struct {
	mu      sync.Mutex
	dials   []call.Dial
	cmds    []sentCommand
	dialErr error
	ctlErr  error
}

type sentCommand struct {
	org, callID string
	cmd         call.Command
}

func (f *fakeCalls) Dial(_ context.Context, d call.Dial) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dialErr != nil {
		return "", f.dialErr
	}
	f.dials = append(f.dials, d)
	return fmt.Sprintf("call-outbound-%d", len(f.dials)), nil
}

func (f *fakeCalls) Control(_ context.Context, org, callID string, cmd call.Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctlErr != nil {
		return f.ctlErr
	}
	f.cmds = append(f.cmds, sentCommand{org, callID, cmd})
	return nil
}

// lastDial returns the last dial and how many there were.
func (f *fakeCalls) lastDial(t testing.TB) (call.Dial, int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.dials) == 0 {
		t.Fatal("the engine was not asked to dial")
	}
	return f.dials[len(f.dials)-1], len(f.dials)
}

func (f *fakeCalls) dialCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dials)
}

// assistantDoc decodes the assistant document of a dial.
func assistantDoc(t testing.TB, d call.Dial) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(d.Assistant, &m); err != nil {
		t.Fatalf("dial assistant is not a JSON object: %v\n%s", err, d.Assistant)
	}
	return m
}

// dig follows a dotted path through decoded JSON objects.
func dig(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = o[k]
	}
	return cur
}

var (
	pipelineAssistant = map[string]any{
		"llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4", "messages": []any{map[string]any{"role": "system", "content": "You call customers."}}},
		"stt_config": map[string]any{"provider": "deepgram", "model": "nova-3", "language": "nl"},
		"tts_config": map[string]any{"provider": "elevenlabs", "voice_id": "ukiwGs47sHyibruHJ1vg"},
		"metadata":   map[string]any{"crm_id": "42"},
	}
	realtimeLLM = map[string]any{"provider": "xai_realtime", "model": "grok-voice-think-fast-2.0"}
)

// outboundSetup gives organization A a saved assistant and a number with a
// SIP trunk, and returns their ids.
func outboundSetup(t *testing.T, e *env) (asst, number string) {
	t.Helper()
	asst = e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "Sales", "first_message": "Hello from Sales",
		"speech_config": map[string]any{"first_message_outbound": "Hi, Sales calling"}}).obj(t, "assistant")["id"].(string)
	trunk := e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "Carrier", "provider": "telnyx", "address": "sip.telnyx.com"}).obj(t, "trunk")["id"].(string)
	number = e.must(201, "POST", "/api/v1/numbers", map[string]any{"phone_number": "+31201234567", "transfer_trunk_id": trunk}).obj(t, "number")["id"].(string)
	return asst, number
}

func TestOutboundModes(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		eng := &fakeCalls{}
		e.with(func(d *httpapi.Deps) { d.Calls = eng })
		asst, number := outboundSetup(t, e)
		const dest = "+31612345678"

		// Reference mode.
		r := e.must(200, "POST", "/api/v1/calls/outbound", map[string]any{"destination": "+31 6-1234 5678", "assistant_id": asst})
		if r.Body["success"] != true || r.Body["status"] != "dialing" || r.Body["call_id"] != "call-outbound-1" || len(r.Body) != 3 {
			t.Fatalf("outbound response = %s", r.Raw)
		}
		d, _ := eng.lastDial(t)
		doc := assistantDoc(t, d)
		if d.OrgID != e.orgA || d.Destination != dest || d.NumberID != number || d.AssistantID != asst {
			t.Fatalf("reference dial = %+v", d)
		}
		if doc["name"] != "Sales" || doc["first_message"] != "Hello from Sales" || dig(doc, "speech_config.first_message_outbound") != "Hi, Sales calling" ||
			dig(doc, "llm_config.provider") != "openai" || doc["id"] != nil || doc["org_id"] != nil {
			t.Fatalf("reference assistant = %s", d.Assistant)
		}

		// first_message overrides the saved opening lines, outbound one included.
		e.must(200, "POST", "/api/v1/calls/outbound", map[string]any{"destination": dest, "assistant_id": asst, "first_message": "Good morning!"})
		d, _ = eng.lastDial(t)
		doc = assistantDoc(t, d)
		if doc["first_message"] != "Good morning!" || dig(doc, "speech_config.first_message_outbound") != nil || d.AssistantID != asst {
			t.Fatalf("first_message override: %s", d.Assistant)
		}

		// Hybrid mode: the override's top-level members replace the saved ones.
		override := map[string]any{"llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4", "temperature": 0.2}, "max_duration_seconds": 120, "metadata": map[string]any{"lead": "7"}}
		e.must(200, "POST", "/api/v1/calls/outbound", map[string]any{"destination": dest, "assistant_id": asst, "number_id": number, "assistant_override": override, "first_message": "Top-level wins"})
		d, _ = eng.lastDial(t)
		doc = assistantDoc(t, d)
		if d.AssistantID != asst || doc["name"] != "Sales" || dig(doc, "llm_config.temperature") != 0.2 || doc["max_duration_seconds"] != float64(120) ||
			dig(doc, "metadata.lead") != "7" || doc["first_message"] != "Top-level wins" || dig(doc, "stt_config.provider") != "deepgram" {
			t.Fatalf("hybrid assistant = %s", d.Assistant)
		}
		r = e.do("POST", "/api/v1/calls/outbound", e.keyA, map[string]any{"destination": dest, "assistant_id": asst,
			"assistant_override": map[string]any{"llm_config": map[string]any{"provider": "openai", "model": "gpt-9"}, "max_duration_seconds": 5}})
		r.wantError(t, 400, "", "assistant_override.llm_config.model")
		if r.Body["param"] != "assistant_override.max_duration_seconds" || !strings.Contains(fmt.Sprint(r.Body["details"]), "assistant_override.llm_config.model \"gpt-9\"") {
			t.Fatalf("hybrid error = %s", r.Raw)
		}
		e.do("POST", "/api/v1/calls/outbound", e.keyA, map[string]any{"destination": dest, "assistant_id": asst,
			"assistant_override": map[string]any{"colour": "red"}}).wantError(t, 400, "unknown_field", "assistant_override.colour")
		// Switching a pipeline assistant to a realtime model needs stt/tts cleared.
		e.do("POST", "/api/v1/calls/outbound", e.keyA, map[string]any{"destination": dest, "assistant_id": asst,
			"assistant_override": map[string]any{"llm_config": realtimeLLM}}).wantError(t, 400, "", "assistant_override.tts_config")
		e.do("POST", "/api/v1/calls/outbound", e.keyA, map[string]any{"destination": dest, "assistant_id": asst,
			"assistant_override": map[string]any{"llm_config": realtimeLLM, "tts_config": nil, "stt_config": map[string]any{"provider": "deepgram", "model": "nova-3", "language": "en"}}}).
			wantError(t, 400, "", "assistant_override.stt_config")
		e.must(200, "POST", "/api/v1/calls/outbound", map[string]any{"destination": dest, "assistant_id": asst,
			"assistant_override": map[string]any{"llm_config": realtimeLLM, "tts_config": nil, "stt_config": nil}})
		if d, _ = eng.lastDial(t); dig(assistantDoc(t, d), "llm_config.provider") != "xai_realtime" || assistantDoc(t, d)["tts_config"] != nil {
			t.Fatalf("hybrid realtime assistant = %s", d.Assistant)
		}

		// Transient mode.
		e.must(200, "POST", "/api/v1/calls/outbound", map[string]any{"destination": dest, "assistant": pipelineAssistant})
		d, _ = eng.lastDial(t)
		doc = assistantDoc(t, d)
		if d.AssistantID != "" || d.NumberID != number || dig(doc, "stt_config.language") != "nl" || dig(doc, "metadata.crm_id") != "42" || doc["name"] != nil && doc["name"] != "" {
			t.Fatalf("transient dial = %+v\n%s", d, d.Assistant)
		}
		if doc["is_active"] != true || doc["silence_timeout_seconds"] != float64(8) {
			t.Fatalf("transient assistant lacks defaults: %s", d.Assistant)
		}
		rt := map[string]any{"llm_config": realtimeLLM}
		e.must(200, "POST", "/api/v1/calls/outbound", map[string]any{"destination": dest, "assistant": rt, "first_message": "Hoi"})
		d, _ = eng.lastDial(t)
		if doc = assistantDoc(t, d); doc["tts_config"] != nil || doc["stt_config"] != nil || doc["first_message"] != "Hoi" {
			t.Fatalf("realtime transient assistant = %s", d.Assistant)
		}
	})
}

func TestOutboundValidation(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		eng := &fakeCalls{}
		e.with(func(d *httpapi.Deps) { d.Calls = eng })
		asst, _ := outboundSetup(t, e)
		const dest = "+31612345678"
		with := func(extra map[string]any) map[string]any {
			m := map[string]any{"destination": dest}
			for k, v := range extra {
				m[k] = v
			}
			return m
		}
		withTTS := map[string]any{"llm_config": realtimeLLM, "tts_config": map[string]any{"provider": "elevenlabs", "voice_id": "v"}}
		withSTT := map[string]any{"llm_config": realtimeLLM, "stt_config": map[string]any{"provider": "deepgram", "model": "nova-3", "language": "en"}}
		noSTT := map[string]any{"llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4"}, "tts_config": map[string]any{"provider": "elevenlabs", "voice_id": "v"}}
		noTTS := map[string]any{"llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4"}, "stt_config": map[string]any{"provider": "deepgram", "model": "nova-3", "language": "en"}}
		badModel := map[string]any{"llm_config": map[string]any{"provider": "openai", "model": "gpt-9"}, "stt_config": noTTS["stt_config"], "tts_config": noSTT["tts_config"]}
		foreign := e.do("POST", "/api/v1/assistants", e.keyB, map[string]any{"name": "B"}).obj(t, "assistant")["id"].(string)
		for _, c := range []struct {
			name   string
			body   any
			status int
			code   string
			field  string
		}{
			{"missing destination", map[string]any{"assistant_id": asst}, 400, "missing_field", "destination"},
			{"bad E.164", with(map[string]any{"assistant_id": asst, "destination": "0612345678"}), 400, "invalid_field", "destination"},
			{"short E.164", with(map[string]any{"assistant_id": asst, "destination": "+12"}), 400, "invalid_field", "destination"},
			{"neither assistant form", with(nil), 400, "missing_field", "assistant_id or assistant"},
			{"both assistant forms", with(map[string]any{"assistant_id": asst, "assistant": pipelineAssistant}), 400, "invalid_field", "assistant"},
			{"both via aliases", with(map[string]any{"agent_id": asst, "agent": pipelineAssistant}), 400, "invalid_field", "assistant"},
			{"override without assistant_id", with(map[string]any{"assistant": pipelineAssistant, "assistant_override": map[string]any{"first_message": "x"}}), 400, "invalid_field", "assistant_override"},
			{"override alone", with(map[string]any{"agent_override": map[string]any{"first_message": "x"}}), 400, "missing_field", "assistant_override"},
			{"alias conflict", with(map[string]any{"assistant_id": asst, "agent_id": foreign}), 400, "invalid_field", "agent_id"},
			{"alias conflict transient", with(map[string]any{"assistant": pipelineAssistant, "agent_config": rtOnly()}), 400, "invalid_field", "agent_config"},
			{"assistant not an object", with(map[string]any{"assistant": "Sales"}), 400, "invalid_field", "assistant"},
			{"assistant_id not a UUID", with(map[string]any{"assistant_id": "sales"}), 400, "invalid_field", "assistant_id"},
			{"unknown key", with(map[string]any{"assistant_id": asst, "caller_id": "+31201234567"}), 400, "unknown_field", "caller_id"},
			{"first_message null", with(map[string]any{"assistant_id": asst, "first_message": nil}), 400, "invalid_field", "first_message"},
			{"transient realtime with tts_config", with(map[string]any{"assistant": withTTS}), 400, "invalid_field", "assistant.tts_config"},
			{"transient realtime with stt_config", with(map[string]any{"assistant": withSTT}), 400, "invalid_field", "assistant.stt_config"},
			{"transient pipeline without stt_config", with(map[string]any{"assistant": noSTT}), 400, "missing_field", "assistant.stt_config"},
			{"transient pipeline without tts_config", with(map[string]any{"agent": noTTS}), 400, "missing_field", "assistant.tts_config"},
			{"transient without llm_config", with(map[string]any{"assistant": map[string]any{"first_message": "x"}}), 400, "missing_field", "assistant.llm_config"},
			{"transient bad model", with(map[string]any{"assistant": badModel}), 400, "", "assistant.llm_config.model"},
			{"transient foreign MCP server", with(map[string]any{"assistant": map[string]any{"llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4",
				"tools": []any{map[string]any{"type": "mcp", "mcp_server_id": "4f4c3c57-7a0e-4d3c-9d3c-6f0d5f1c2b3a"}}}, "stt_config": noTTS["stt_config"], "tts_config": noSTT["tts_config"]}}), 400, "invalid_reference", "assistant.llm_config.tools"},
			{"unknown assistant", with(map[string]any{"assistant_id": "4f4c3c57-7a0e-4d3c-9d3c-6f0d5f1c2b3a"}), 404, "not_found", "assistant_id"},
			{"foreign assistant", with(map[string]any{"assistant_id": foreign}), 404, "not_found", "assistant_id"},
			{"foreign assistant via alias", with(map[string]any{"agent_id": foreign}), 404, "not_found", "assistant_id"},
			{"unknown number", with(map[string]any{"assistant_id": asst, "number_id": "4f4c3c57-7a0e-4d3c-9d3c-6f0d5f1c2b3a"}), 404, "not_found", "number_id"},
		} {
			before := eng.dialCount()
			r := e.do("POST", "/api/v1/calls/outbound", e.keyA, c.body)
			if r.Status != c.status {
				t.Errorf("%s: status %d, want %d: %s", c.name, r.Status, c.status, r.Raw)
				continue
			}
			r.wantError(t, c.status, c.code, c.field)
			if eng.dialCount() != before {
				t.Errorf("%s: the engine dialled", c.name)
			}
		}
		// The alias conflict names both spellings.
		r := e.do("POST", "/api/v1/calls/outbound", e.keyA, with(map[string]any{"assistant_id": asst, "agent_id": foreign}))
		if msg := r.Body["error"].(string); !strings.Contains(msg, "agent_id") || !strings.Contains(msg, "assistant_id") {
			t.Fatalf("alias conflict = %s", r.Raw)
		}
		// Several problems in one answer.
		r = e.do("POST", "/api/v1/calls/outbound", e.keyA, map[string]any{"destination": "x", "assistant": noSTT, "colour": 1})
		if d := fmt.Sprint(r.Body["details"]); r.Status != 400 || !strings.Contains(d, "destination") || !strings.Contains(d, "assistant.stt_config") || !strings.Contains(d, "colour") {
			t.Fatalf("combined errors = %s", r.Raw)
		}
		// Every alias reaches the engine as its new spelling.
		for _, body := range []map[string]any{
			{"agent_id": asst},
			{"agent_id": asst, "assistant_id": asst},
			{"agent_id": asst, "agent_override": map[string]any{"max_duration_seconds": 99}},
			{"agent": pipelineAssistant},
			{"agent_config": pipelineAssistant},
		} {
			r := e.do("POST", "/api/v1/calls/outbound", e.keyA, with(body))
			if r.Status != 200 {
				t.Fatalf("alias body %v = %d %s", body, r.Status, r.Raw)
			}
			d, _ := eng.lastDial(t)
			doc := assistantDoc(t, d)
			_, ref := body["agent_id"]
			switch {
			case ref && d.AssistantID != asst:
				t.Errorf("%v: assistant id = %q", body, d.AssistantID)
			case !ref && (d.AssistantID != "" || dig(doc, "metadata.crm_id") != "42"):
				t.Errorf("%v: transient dial = %+v %s", body, d, d.Assistant)
			}
			if _, o := body["agent_override"]; o && doc["max_duration_seconds"] != float64(99) {
				t.Errorf("agent_override not applied: %s", d.Assistant)
			}
		}
		// An inactive assistant cannot call.
		e.must(200, "PATCH", "/api/v1/assistants/"+asst, map[string]any{"is_active": false})
		e.do("POST", "/api/v1/calls/outbound", e.keyA, with(map[string]any{"assistant_id": asst})).wantError(t, 400, "assistant_inactive", "assistant_id")
	})
}

func rtOnly() map[string]any { return map[string]any{"llm_config": realtimeLLM} }

func TestOutboundNumbers(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		eng := &fakeCalls{}
		e.with(func(d *httpapi.Deps) { d.Calls = eng })
		asst := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "Sales"}).obj(t, "assistant")["id"].(string)
		body := func(extra ...any) map[string]any {
			m := map[string]any{"destination": "+31612345678", "assistant_id": asst}
			for i := 0; i+1 < len(extra); i += 2 {
				m[extra[i].(string)] = extra[i+1]
			}
			return m
		}
		// No number at all.
		e.do("POST", "/api/v1/calls/outbound", e.keyA, body()).wantError(t, 400, "no_outbound_number", "POST /api/v1/numbers")
		trunk := e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "T", "provider": "p", "address": "sip.example.com"}).obj(t, "trunk")["id"].(string)
		bare := e.must(201, "POST", "/api/v1/numbers", map[string]any{"phone_number": "+31201111111"}).obj(t, "number")["id"].(string)
		off := e.must(201, "POST", "/api/v1/numbers", map[string]any{"phone_number": "+31202222222", "transfer_trunk_id": trunk, "is_active": false}).obj(t, "number")["id"].(string)
		// Numbers exist, but none is active with a trunk.
		e.do("POST", "/api/v1/calls/outbound", e.keyA, body()).wantError(t, 400, "no_outbound_number", "transfer_trunk_id")
		r := e.do("POST", "/api/v1/calls/outbound", e.keyA, body("number_id", bare))
		r.wantError(t, 400, "number_without_trunk", "+31201111111 has no SIP trunk for outbound dialing: PATCH /api/v1/numbers/"+bare+" with transfer_trunk_id")
		if r.Body["param"] != "number_id" {
			t.Fatalf("no-trunk error = %s", r.Raw)
		}
		e.do("POST", "/api/v1/calls/outbound", e.keyA, body("number_id", off)).wantError(t, 400, "number_inactive", "number_id")
		foreignTrunk := e.do("POST", "/api/v1/sip-trunks", e.keyB, map[string]any{"name": "T", "provider": "p", "address": "sip.example.com"}).obj(t, "trunk")["id"].(string)
		foreignNum := e.do("POST", "/api/v1/numbers", e.keyB, map[string]any{"phone_number": "+31203333333", "transfer_trunk_id": foreignTrunk}).obj(t, "number")["id"].(string)
		e.do("POST", "/api/v1/calls/outbound", e.keyA, body("number_id", foreignNum)).wantError(t, 404, "not_found", "number_id")
		if eng.dialCount() != 0 {
			t.Fatal("the engine dialled")
		}
		// The automatic choice skips numbers without a trunk and inactive ones.
		good := e.must(201, "POST", "/api/v1/numbers", map[string]any{"phone_number": "+31204444444", "transfer_trunk_id": trunk}).obj(t, "number")["id"].(string)
		e.must(200, "POST", "/api/v1/calls/outbound", body())
		if d, _ := eng.lastDial(t); d.NumberID != good {
			t.Fatalf("chose number %s, want %s", d.NumberID, good)
		}
		e.must(200, "PATCH", "/api/v1/numbers/"+bare, map[string]any{"transfer_trunk_id": trunk})
		e.must(200, "POST", "/api/v1/calls/outbound", body("number_id", bare))
		if d, _ := eng.lastDial(t); d.NumberID != bare {
			t.Fatalf("number_id ignored: %s", d.NumberID)
		}
	})
}

func TestOutboundBillingAndEngine(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		asst, _ := outboundSetup(t, e)
		body := map[string]any{"destination": "+31612345678", "assistant_id": asst}

		// Telephony off: 503 before anything else.
		r := e.do("POST", "/api/v1/calls/outbound", e.keyA, body)
		r.wantError(t, 503, "telephony_disabled", "PARLEY_SIP_ADDR=off")
		e.do("POST", "/api/v1/calls/outbound", e.keyA, map[string]any{}).wantError(t, 503, "telephony_disabled", "")

		eng := &fakeCalls{}
		e.with(func(d *httpapi.Deps) { d.Calls = eng })
		if err := e.db.SetMinutesBalance(ctx, e.orgA, 0); err != nil {
			t.Fatal(err)
		}
		r = e.do("POST", "/api/v1/calls/outbound", e.keyA, body)
		r.wantError(t, 402, "insufficient_credits", "Insufficient credits")
		// It says how to add minutes on a self-hosted server.
		r.wantError(t, 402, "insufficient_credits", "parley org balance --org "+e.orgA+" --add ")
		if _, nested := r.Body["error"].(map[string]any); nested || r.Body["message"] != "Insufficient credits" {
			t.Fatalf("402 body = %s", r.Raw)
		}
		if err := e.db.SetMinutesBalance(ctx, e.orgA, -2.5); err != nil {
			t.Fatal(err)
		}
		e.do("POST", "/api/v1/calls/outbound", e.keyA, body).wantError(t, 402, "insufficient_credits", "")
		if eng.dialCount() != 0 {
			t.Fatal("dialled without credits")
		}
		if err := e.db.SetMinutesBalance(ctx, e.orgA, 0.5); err != nil {
			t.Fatal(err)
		}
		e.must(200, "POST", "/api/v1/calls/outbound", body)

		// A child organization (balance 0) bills against its parent.
		childKey := e.must(201, "POST", "/api/v1/organizations", map[string]any{"name": "Client"}).Body["api_key"].(string)
		casst := e.do("POST", "/api/v1/assistants", childKey, map[string]any{"name": "C"}).obj(t, "assistant")["id"].(string)
		ctrunk := e.do("POST", "/api/v1/sip-trunks", childKey, map[string]any{"name": "T", "provider": "p", "address": "sip.example.com"}).obj(t, "trunk")["id"].(string)
		e.do("POST", "/api/v1/numbers", childKey, map[string]any{"phone_number": "+31205555555", "transfer_trunk_id": ctrunk})
		cbody := map[string]any{"destination": "+31612345678", "assistant_id": casst}
		if r := e.do("POST", "/api/v1/calls/outbound", childKey, cbody); r.Status != 200 {
			t.Fatalf("child with a funded parent = %d %s", r.Status, r.Raw)
		}
		if err := e.db.SetMinutesBalance(ctx, e.orgA, 0); err != nil {
			t.Fatal(err)
		}
		// The parent pays, so the minutes are to be added to the parent.
		e.do("POST", "/api/v1/calls/outbound", childKey, cbody).wantError(t, 402, "insufficient_credits", "parley org balance --org "+e.orgA+" --add ")

		// Engine errors pass through as they are.
		if err := e.db.SetMinutesBalance(ctx, e.orgA, 10); err != nil {
			t.Fatal(err)
		}
		eng.dialErr = fault.New(fault.Unavailable, "trunk_down", "the SIP trunk did not answer")
		e.do("POST", "/api/v1/calls/outbound", e.keyA, body).wantError(t, 503, "trunk_down", "SIP trunk")
		eng.dialErr = fmt.Errorf("socket closed")
		e.do("POST", "/api/v1/calls/outbound", e.keyA, body).wantError(t, 500, "internal_error", "")
	})
}
