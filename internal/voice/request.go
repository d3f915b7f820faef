package voice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/parley-voice/parley/internal/assistant"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/docsecret"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// assistantRequestTimeout is the assistant-request webhook's budget (spec §9.4).
const assistantRequestTimeout = 5 * time.Second

// routing is how an inbound call will be answered.
type routing struct {
	plan *plan
	// speakOnly: say this and hang up (the webhook's error).
	speakOnly string
	// why the call cannot be answered at all, when non-empty, and the
	// end reason saying so.
	why    string
	reason call.EndReason
	// doc is the assistant the routing got as far as (a rejected call's
	// status-update goes to its webhook, else to the organization's).
	doc json.RawMessage
	// agent is the saved assistant the webhook chose instead of the
	// number's (assistant_id), recorded on the call.
	agent *store.Doc
	// err, when set, is a failure to read the store: the call is refused
	// with 503 (try again), not recorded as a configuration problem.
	err error
}

// storeError marks a failure to read the store (a timeout under load, a
// lost connection), as opposed to a configuration the call cannot run with.
type storeError struct{ err error }

func (e storeError) Error() string { return e.err.Error() }
func (e storeError) Unwrap() error { return e.err }

// assistant loads a stored assistant with its sealed secrets (webhook_secret,
// tools' server.secret) back in its body, which the call's webhooks and tool
// calls are signed with. A failure to open them is a store error.
func (e *Engine) assistant(ctx context.Context, orgID, id string) (*store.Doc, error) {
	d, err := e.db.GetDoc(ctx, store.Assistants, orgID, id)
	if err != nil {
		return nil, err
	}
	if d.Body, err = docsecret.Reveal(e.keys, d); err != nil {
		return nil, fmt.Errorf("assistant %s: %w", id, err)
	}
	return d, nil
}

// resolve picks the call's assistant: the number's, adjusted or replaced
// by the assistant-request webhook when one is configured (spec §9.4) —
// the assistant's webhook when it subscribes to assistant-request, or the
// organization's for numbers without an assistant.
func (e *Engine) resolve(ctx context.Context, num *store.Number, row *store.Call, log *slog.Logger) routing {
	if !num.IsActive {
		return routing{why: "number " + num.PhoneNumber + " is inactive", reason: call.EndNumberInactive}
	}
	var base json.RawMessage
	if num.AssistantID != nil {
		doc, err := e.assistant(ctx, num.OrgID, *num.AssistantID)
		if err != nil {
			if fault.KindOf(err) != fault.NotFound {
				return routing{err: storeError{fmt.Errorf("load assistant: %w", err)}}
			}
			log.Error("load assistant", "error", err)
			return routing{why: "assistant " + *num.AssistantID + " could not be loaded", reason: call.EndAssistantUnavailable}
		}
		if !doc.Active {
			return routing{why: "assistant " + doc.Name + " is inactive", reason: call.EndAssistantInactive, doc: doc.Body}
		}
		base = doc.Body
	}
	var target *hookTarget
	if base != nil {
		if t := assistantHook(base); t.wants(evAssistantRequest) && t.events != nil {
			target = t // only when asked for explicitly (spec §9.1)
		}
	} else {
		t, err := e.orgHook(ctx, num.OrgID)
		if err != nil {
			log.Error("load organization webhook", "error", err)
		}
		target = t
	}
	if target == nil {
		if base == nil {
			return routing{why: "number " + num.PhoneNumber + " has no assistant and the organization has no webhook for assistant-request", reason: call.EndNoAssistant}
		}
		return e.planRouting(ctx, num.OrgID, base, 0)
	}

	ans, err := e.assistantRequest(ctx, num, row, target, base)
	switch {
	case err != nil && base == nil:
		return routing{why: "assistant-request webhook failed and the number has no assistant: " + err.Error(), reason: call.EndAssistantRequestFailed}
	case err != nil:
		log.Warn("assistant-request failed; using the number's assistant", "error", err)
		return e.planRouting(ctx, num.OrgID, base, 0)
	case ans.refusal != "":
		if base == nil {
			return routing{why: "assistant-request refused the call: " + ans.refusal, reason: call.EndWebhookRejected}
		}
		r := e.planRouting(ctx, num.OrgID, base, 0)
		if r.why == "" {
			r.speakOnly = ans.refusal
		}
		return r
	}
	r := e.planRouting(ctx, num.OrgID, ans.doc, ans.maxDur)
	r.agent = ans.agent
	return r
}

func (e *Engine) planRouting(ctx context.Context, orgID string, doc json.RawMessage, maxDur int) routing {
	p, err := e.plan(ctx, orgID, doc)
	var se storeError
	if errors.As(err, &se) {
		return routing{err: err}
	}
	if err != nil {
		return routing{why: err.Error(), reason: call.EndAssistantUnavailable, doc: doc}
	}
	if maxDur > 0 {
		p.cfg.MaxDuration = time.Duration(maxDur) * time.Second
	}
	return routing{plan: p}
}

// requestAnswer is what an assistant-request webhook decided.
type requestAnswer struct {
	doc    json.RawMessage // the resolved assistant document
	agent  *store.Doc      // the saved assistant it came from, when the answer named one
	maxDur int             // a duration cap in seconds (0: none)
	// refusal is the error to speak before hanging up, when set.
	refusal string
}

// assistantRequest asks the webhook which assistant answers.
func (e *Engine) assistantRequest(ctx context.Context, num *store.Number, row *store.Call, t *hookTarget, base json.RawMessage) (requestAnswer, error) {
	hooks := e.newCallHooks(t, row, num, nil)
	payload := hooks.payload(evAssistantRequest, call.StatusRinging, nil)
	rctx, cancel := context.WithTimeout(ctx, assistantRequestTimeout)
	defer cancel()
	res, err := e.post(rctx, num.OrgID, &row.ID, t, evAssistantRequest, payload)
	if err != nil {
		return requestAnswer{}, fmt.Errorf("assistant-request: %w", err)
	}
	var ans struct {
		Assistant   map[string]json.RawMessage `json:"assistant"`
		AssistantID *string                    `json:"assistant_id"`
		Override    map[string]json.RawMessage `json:"assistant_override"`
		MaxDuration *int                       `json:"max_duration_seconds"`
		Error       *string                    `json:"error"`
	}
	if len(res.Body) > 0 {
		if err := json.Unmarshal(res.Body, &ans); err != nil {
			return requestAnswer{}, fmt.Errorf("assistant-request answer is not the documented JSON: %w", err)
		}
	}
	if ans.Error != nil && *ans.Error != "" {
		return requestAnswer{refusal: *ans.Error}, nil
	}
	var out requestAnswer
	if ans.MaxDuration != nil && *ans.MaxDuration > 0 {
		out.maxDur = *ans.MaxDuration
	}
	doc, over := base, ans.Assistant
	if ans.AssistantID != nil {
		d, err := e.assistant(ctx, num.OrgID, *ans.AssistantID)
		if err != nil {
			return requestAnswer{}, fmt.Errorf("assistant-request named assistant %s: %w", *ans.AssistantID, err)
		}
		if !d.Active {
			return requestAnswer{}, fmt.Errorf("assistant-request named assistant %s (%s), which is inactive", d.ID, d.Name)
		}
		doc, over, out.agent = d.Body, ans.Override, d
	}
	if len(over) == 0 {
		if doc == nil {
			return requestAnswer{}, errors.New("assistant-request answered without an assistant or assistant_id")
		}
		out.doc = doc
		return out, nil
	}
	merged := map[string]json.RawMessage{}
	if doc != nil {
		if err := json.Unmarshal(doc, &merged); err != nil {
			return requestAnswer{}, fmt.Errorf("read assistant: %w", err)
		}
	}
	for k, v := range over {
		merged[k] = v
	}
	if e.cfg.Validator == nil {
		return requestAnswer{}, errors.New("no assistant validator configured")
	}
	norm, err := e.cfg.Validator.Normalize(merged, assistant.Options{Transient: true})
	if err != nil {
		return requestAnswer{}, fmt.Errorf("assistant-request returned an invalid assistant: %w", err)
	}
	if out.doc, err = json.Marshal(norm); err != nil {
		return requestAnswer{}, fmt.Errorf("encode assistant: %w", err)
	}
	return out, nil
}
