package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/parley-voice/parley/internal/assistant"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/docsecret"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// Outbound calls (spec §7.5). A request names its assistant in one of three
// modes — reference (assistant_id), hybrid (assistant_id with
// assistant_override laid over the saved document, top-level keys replaced)
// or transient (a complete assistant) — and is resolved here to one number
// and one canonical assistant document before the voice engine dials.

var errVoiceOff = &fault.Error{Kind: fault.Unavailable, Code: "telephony_disabled",
	Message: "the voice engine is off on this server (PARLEY_SIP_ADDR=off), so it cannot place or control calls"}

// noCredits is the 402 of an outbound call whose paying organization has
// no minutes left; it says how to add minutes on a self-hosted server.
func noCredits(payer string) error {
	return &fault.Error{Kind: fault.PaymentRequired, Code: "insufficient_credits",
		Message: fmt.Sprintf("Insufficient credits to make outbound call: organization %s has no minutes left. "+
			"On a self-hosted Parley server add minutes with: parley org balance --org %s --add 60", payer, payer)}
}

// outboundRequest is a decoded POST /calls/outbound body.
type outboundRequest struct {
	destination  string
	assistantID  string        // reference and hybrid modes
	override     object        // hybrid mode; nil otherwise
	transient    object        // transient mode; nil otherwise
	numberID     string        // empty: choose one
	firstMessage *string       // overrides the assistant's first_message
	f            *fault.Fields // problems found so far
}

// outboundCall answers, in order: 503 when the engine is off; 400 for the
// body and an invalid transient assistant; 404/400 for the saved assistant
// and its override; 404/400 for the number; 402 without credits; then dials.
func (s *Server) outboundCall(w http.ResponseWriter, r *http.Request) error {
	if s.calls == nil {
		return errVoiceOff
	}
	obj, err := s.readObject(w, r, false)
	if err != nil {
		return err
	}
	ctx, org := r.Context(), orgID(r)
	req := decodeOutbound(obj)
	var canon json.RawMessage
	if req.transient != nil {
		// Validated together with the body's own fields, so one 400 lists every problem.
		doc := s.transientAssistant(req)
		if canon, err = s.resolveAssistant(ctx, org, req, doc); fault.KindOf(err) == fault.Invalid {
			req.f.Merge(err)
		} else if err != nil {
			return err
		}
	}
	if err := req.f.Err(); err != nil {
		return err
	}
	if req.transient == nil {
		doc, err := s.savedAssistant(ctx, org, req)
		if err != nil {
			return err
		}
		if canon, err = s.resolveAssistant(ctx, org, req, doc); err != nil {
			return err
		}
	}
	num, err := s.outboundNumber(ctx, org, req.numberID)
	if err != nil {
		return err
	}
	if err := s.checkCredits(ctx, org); err != nil {
		return err
	}
	id, err := s.calls.Dial(ctx, call.Dial{OrgID: org, Destination: req.destination, NumberID: num.ID, AssistantID: req.assistantID, Assistant: canon})
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"success": true, "call_id": id, "status": "dialing"})
}

// decodeOutbound reads the body's own fields and records their problems in
// req.f; the embedded assistant documents are validated later.
func decodeOutbound(obj object) *outboundRequest {
	fs := newFields(obj)
	fs.alias("agent_id", "assistant_id")
	fs.alias("agent", "assistant")
	// agent_config (SEED-1) is the one-off assistant on its own, but beside
	// a saved assistant it can only be the override (spec §15 row 3: the
	// lenient reading; the strict one refuses the request).
	if given(obj["assistant_id"]) && !given(obj["assistant_override"]) && !given(obj["agent_override"]) {
		fs.alias("agent_config", "assistant_override")
	} else {
		fs.alias("agent_config", "assistant")
	}
	fs.alias("agent_override", "assistant_override")
	req := &outboundRequest{f: &fs.f}
	if v, ok := fs.str("destination", true); ok {
		v = strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(v), " ", ""), "-", "")
		if !validE164(v) {
			fs.f.Invalidf("destination", "must be an E.164 number such as +31612345678 (got %q)", v)
		}
		req.destination = v
	}
	if id, _ := fs.refID("assistant_id"); id != nil {
		req.assistantID = *id
	}
	req.transient = fs.object("assistant")
	req.override = fs.object("assistant_override")
	if id, _ := fs.refID("number_id"); id != nil {
		req.numberID = *id
	}
	if v, ok := fs.str("first_message", false); ok {
		req.firstMessage = &v
	}
	sentAssistant, sentID, sentOverride := given(obj["assistant"]), given(obj["assistant_id"]), given(obj["assistant_override"])
	if sentID && sentAssistant {
		fs.f.Invalidf("assistant", "cannot be combined with assistant_id: send assistant_id (optionally with assistant_override) for a saved assistant, or assistant for a one-off one")
	}
	if !sentID && !sentAssistant {
		fs.f.Add("assistant_id", "missing_field", "or assistant is required: assistant_id names a saved assistant, assistant is a one-off assistant configuration")
	}
	if sentOverride && !sentID {
		fs.f.Invalidf("assistant_override", "needs assistant_id: it changes a saved assistant for this call; put a one-off configuration in assistant instead")
	}
	fs.unknown()
	return req
}

// object reads a JSON object member; null counts as not sent.
func (fs *fields) object(key string) object {
	v, ok := fs.raw(key)
	if !ok || isNull(v) {
		return nil
	}
	var o object
	if err := json.Unmarshal(v, &o); err != nil || o == nil {
		fs.f.Invalidf(key, "must be an object")
		return nil
	}
	return o
}

// transientAssistant checks a transient assistant's providers (spec §7.5):
// llm_config is required; a realtime provider listens and speaks by itself,
// so stt_config and tts_config must be null or left out; a pipeline provider
// needs both. It returns a copy of the document to resolve.
func (s *Server) transientAssistant(req *outboundRequest) object {
	doc := cloneObject(req.transient)
	if !given(doc["llm_config"]) {
		req.f.Missing("assistant.llm_config")
		return doc
	}
	s.providerRules(req.f, "assistant", doc, doc, true)
	return doc
}

// providerRules applies the provider consistency rules to sent, the
// assistant or override the client sent (named path), given the
// llm_config of the document the call will run with (full). A realtime
// provider refuses stt_config (tts_config is refused by the validator); a
// pipeline provider needs stt_config and tts_config when requireBoth is set
// (transient mode; a saved assistant already has both).
func (s *Server) providerRules(f *fault.Fields, path string, sent, full object, requireBoth bool) {
	var llm struct {
		Provider string `json:"provider"`
	}
	if json.Unmarshal(full["llm_config"], &llm) != nil {
		return // the validator names the problem
	}
	p := s.cat.Provider(catalog.LLM, llm.Provider)
	switch {
	case p == nil: // unknown provider: the validator names it
	case p.Realtime():
		// tts_config: the validator refuses it for every realtime assistant.
		if given(sent["stt_config"]) {
			f.Invalidf(path+".stt_config", "must be null or left out: llm_config.provider %q is a realtime model that listens and speaks by itself", p.ID)
		}
	case requireBoth:
		for _, k := range []string{"stt_config", "tts_config"} {
			if !given(sent[k]) {
				f.Add(path+"."+k, "missing_field", fmt.Sprintf("is required with llm_config.provider %q, which needs separate speech-to-text and text-to-speech", p.ID))
			}
		}
	}
}

// given reports whether a member was sent with a value other than null.
func given(v json.RawMessage) bool { return v != nil && !isNull(v) }

// savedAssistant loads the assistant of reference and hybrid modes and lays
// the override's top-level keys over it.
func (s *Server) savedAssistant(ctx context.Context, org string, req *outboundRequest) (object, error) {
	d, err := s.db.GetDoc(ctx, store.Assistants, org, req.assistantID)
	if fault.KindOf(err) == fault.NotFound {
		return nil, &fault.Error{Kind: fault.NotFound, Code: "not_found", Field: "assistant_id", Message: "assistant_id " + req.assistantID + " not found"}
	}
	if err != nil {
		return nil, err
	}
	if !d.Active {
		return nil, &fault.Error{Kind: fault.Invalid, Code: "assistant_inactive", Field: "assistant_id",
			Message: fmt.Sprintf("assistant_id %s names an inactive assistant; activate it with PATCH /api/v1/assistants/%s {\"is_active\": true}", d.ID, d.ID)}
	}
	body, err := docsecret.Reveal(s.keys, d) // validated again as a transient assistant, secrets in clear
	if err != nil {
		return nil, err
	}
	var doc object
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode stored assistant %s: %w", d.ID, err)
	}
	if req.override != nil {
		for k, v := range req.override {
			doc[k] = v
		}
		var f fault.Fields
		if given(req.override["llm_config"]) || given(req.override["stt_config"]) {
			s.providerRules(&f, "assistant_override", req.override, doc, false)
		}
		if err := f.Err(); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// resolveAssistant applies the first_message override, validates the
// document as a transient assistant and checks its MCP servers belong to
// the organization. It returns the canonical document as JSON.
func (s *Server) resolveAssistant(ctx context.Context, org string, req *outboundRequest, doc object) (json.RawMessage, error) {
	path := "assistant"
	if req.transient == nil {
		path = "assistant_override"
	}
	if req.firstMessage != nil {
		fm, _ := json.Marshal(*req.firstMessage)
		doc["first_message"] = fm
		// speech_config.first_message_outbound would win over first_message
		// on an outbound call: clear it so the override is what is said.
		var speech object
		if json.Unmarshal(doc["speech_config"], &speech) == nil && given(speech["first_message_outbound"]) {
			speech["first_message_outbound"] = jsonNull
			doc["speech_config"], _ = json.Marshal(speech)
		}
	}
	canon, err := s.valid.Normalize(doc, assistant.Options{Transient: true})
	if err != nil {
		if req.transient == nil && req.override == nil {
			return nil, err // the saved assistant itself no longer validates
		}
		return nil, under(path, err)
	}
	if err := s.checkMCPRefs(ctx, org, canon, path+".llm_config.tools"); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(canon); err != nil {
		return nil, fmt.Errorf("encode assistant: %w", err)
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

// under moves a validation error of an embedded document below its field in
// the request, so a problem in an override names
// assistant_override.llm_config.model. Every problem the assistant validator
// reports starts with its field's dotted path (fault.Fields writes
// "<path> <message>"), which is what the prefix extends.
func under(prefix string, err error) error {
	e, ok := fault.As(err)
	if !ok || e.Kind != fault.Invalid {
		return err
	}
	nest := func(field string) string {
		if field == "" {
			return prefix
		}
		return prefix + "." + field
	}
	details := e.Details
	if len(details) == 0 {
		details = []string{e.Message}
	}
	out := &fault.Error{Kind: e.Kind, Code: e.Code, Field: nest(e.Field), Details: make([]string, len(details)), Err: e.Err}
	for i, d := range details {
		if i == 0 && e.Field == "" {
			out.Details[i] = prefix + " " + d
			continue
		}
		out.Details[i] = prefix + "." + d
	}
	out.Message = out.Details[0]
	if len(out.Details) > 1 {
		out.Message = fmt.Sprintf("%s (and %d more: %s)", out.Details[0], len(out.Details)-1, strings.Join(out.Details[1:], "; "))
	}
	return out
}

// outboundNumber returns the number to dial from: the one named (it must be
// the organization's, active and have a SIP trunk) or else the oldest active
// number with a trunk.
func (s *Server) outboundNumber(ctx context.Context, org, id string) (*store.Number, error) {
	if id != "" {
		n, err := s.db.GetNumber(ctx, org, id)
		if fault.KindOf(err) == fault.NotFound {
			return nil, &fault.Error{Kind: fault.NotFound, Code: "not_found", Field: "number_id", Message: "number_id " + id + " not found"}
		}
		if err != nil {
			return nil, err
		}
		if !n.IsActive {
			return nil, &fault.Error{Kind: fault.Invalid, Code: "number_inactive", Field: "number_id",
				Message: fmt.Sprintf("number %s (number_id %s) is inactive; activate it with PATCH /api/v1/numbers/%s {\"is_active\": true}", n.PhoneNumber, n.ID, n.ID)}
		}
		if n.TransferTrunkID == nil {
			return nil, &fault.Error{Kind: fault.Invalid, Code: "number_without_trunk", Field: "number_id",
				Message: fmt.Sprintf("number %s has no SIP trunk for outbound dialing: PATCH /api/v1/numbers/%s with transfer_trunk_id", n.PhoneNumber, n.ID)}
		}
		return n, nil
	}
	nums, err := s.db.ListNumbers(ctx, org) // oldest first
	if err != nil {
		return nil, err
	}
	for i := range nums {
		if nums[i].IsActive && nums[i].TransferTrunkID != nil {
			return &nums[i], nil
		}
	}
	return nil, &fault.Error{Kind: fault.Invalid, Code: "no_outbound_number", Field: "number_id",
		Message: "no active phone number with a SIP trunk to dial from: create a trunk with POST /api/v1/sip-trunks, then register a number with POST /api/v1/numbers (or PATCH /api/v1/numbers/{id}) with its transfer_trunk_id"}
}

// checkCredits refuses the call when the paying organization (itself, or
// its parent for a child organization) has no minutes left.
func (s *Server) checkCredits(ctx context.Context, org string) error {
	balance, err := s.db.PayerBalance(ctx, org)
	if err != nil {
		return err
	}
	if balance <= 0 {
		payer := org
		if o, err := s.db.GetOrg(ctx, org); err == nil && o.ParentID != nil {
			payer = *o.ParentID // a child organization's parent pays
		}
		return noCredits(payer)
	}
	return nil
}
