package voice

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// ---------------------------------------------------------------------------
// assistant-request: every documented answer (spec §9.4) besides error,
// which TestE2EAssistantRequestError covers.

// The number's assistant and another saved one, each with a greeting that
// says which answered.
const (
	frontGreeting = "Welcome to the clinic!"
	nightGreeting = "Night line, how can I help?"
)

// requestRig is a rig whose number's assistant ("Front desk") subscribes
// to assistant-request; "Night line" is a second saved assistant the
// webhook may pick.
type requestRig struct {
	*e2e
	front, night string
}

// newRequestRig answers assistant-request with answer(ev, rig).
func newRequestRig(t *testing.T, answer func(hookEvent, *requestRig) any) *requestRig {
	t.Helper()
	r := &requestRig{}
	r.e2e = newE2E(t, e2eOptions{answer: func(ev hookEvent) any {
		if ev.event == "assistant-request" {
			return answer(ev, r)
		}
		return nil
	}})
	r.front, _ = r.assistant(t, map[string]any{
		"name": "Front desk", "first_message": frontGreeting,
		"webhook_events": []string{"assistant-request", "status-update"},
	})
	r.night, _ = r.assistant(t, map[string]any{"name": "Night line", "first_message": nightGreeting})
	return r
}

// greeted calls number, waits for the greeting to be said and returns the
// call's row after the caller hung up.
func (r *requestRig) greeted(t *testing.T, number, greeting string) *store.Call {
	t.Helper()
	c := dialRaw(t, r.srv, number)
	id := r.onlyCall(t)
	r.waitSaid(t, id, greeting, 10*time.Second)
	c.hangup(t)
	row := r.waitFinal(t, id, 10*time.Second)
	if !r.ttsSaid(greeting) {
		t.Fatalf("greeting %q not spoken: %v", greeting, r.el.Texts())
	}
	if n := countEntries(transcript(t, row), "assistant"); n != 1 {
		t.Fatalf("%d assistant turns, want only the greeting: %s", n, row.Messages)
	}
	return row
}

// assistantInHooks returns message.assistant of the call's last
// status-update webhook (after n of them arrived).
func (r *requestRig) assistantInHooks(t *testing.T, id string, n int) map[string]any {
	t.Helper()
	got := r.waitStatuses(t, id, n, 10*time.Second)
	a, _ := got[len(got)-1].msg["assistant"].(map[string]any)
	return a
}

func TestE2EAssistantRequestEmptyAnswer(t *testing.T) {
	r := newRequestRig(t, func(hookEvent, *requestRig) any { return map[string]any{} })
	num := r.number(t, "+31201230101", &r.front, nil)
	row := r.greeted(t, num.PhoneNumber, frontGreeting)
	if row.Status != call.StatusEnded || deref(row.AgentID) != r.front {
		t.Fatalf("call %s answered by %s, want ended and the number's assistant", row.Status, deref(row.AgentID))
	}
	if reqs := r.hooks.find(func(ev hookEvent) bool { return ev.event == "assistant-request" }); len(reqs) != 1 {
		t.Fatalf("%d assistant-request webhooks, want 1", len(reqs))
	}
}

// A partial assistant overrides those fields of the number's assistant for
// this call; its metadata travels in message.assistant of later webhooks.
func TestE2EAssistantRequestPartialOverride(t *testing.T) {
	const hello = "Welcome back, Ada."
	r := newRequestRig(t, func(hookEvent, *requestRig) any {
		return map[string]any{"assistant": map[string]any{"first_message": hello, "metadata": map[string]any{"crm_id": "c-42"}}}
	})
	num := r.number(t, "+31201230102", &r.front, nil)
	row := r.greeted(t, num.PhoneNumber, hello)
	if r.ttsSaid(frontGreeting) {
		t.Fatal("the number's own first message was spoken as well")
	}
	a := r.assistantInHooks(t, row.ID, 3)
	meta, _ := a["metadata"].(map[string]any)
	if a["name"] != "Front desk" || a["first_message"] != hello || meta["crm_id"] != "c-42" {
		t.Fatalf("message.assistant in the status webhook: %v", a)
	}
	if _, leaked := a["webhook_secret"]; leaked {
		t.Fatal("webhook_secret echoed in a webhook")
	}
	// The override is for this call: the saved assistant is unchanged.
	d, err := r.db.GetDoc(context.Background(), store.Assistants, r.org.ID, r.front)
	if err != nil || strings.Contains(string(d.Body), hello) || strings.Contains(string(d.Body), "c-42") {
		t.Fatalf("saved assistant changed by the override (%v): %s", err, d.Body)
	}
}

// assistant_id picks another saved assistant, with assistant_override
// shallow-merged; the call row records the assistant that answered.
func TestE2EAssistantRequestOtherAssistant(t *testing.T) {
	const hello = "Night line, tonight's override."
	r := newRequestRig(t, func(_ hookEvent, r *requestRig) any {
		return map[string]any{"assistant_id": r.night, "assistant_override": map[string]any{"first_message": hello}}
	})
	num := r.number(t, "+31201230103", &r.front, nil)
	row := r.greeted(t, num.PhoneNumber, hello)
	if deref(row.AgentID) != r.night || deref(row.AgentName) != "Night line" {
		t.Fatalf("call row names assistant %s (%s), want Night line", deref(row.AgentID), deref(row.AgentName))
	}
	if r.ttsSaid(nightGreeting) || r.ttsSaid(frontGreeting) {
		t.Fatal("a saved first message was spoken instead of the override")
	}
	if a := r.assistantInHooks(t, row.ID, 3); a["name"] != "Night line" {
		t.Fatalf("message.assistant in the status webhook: %v", a)
	}
}

func TestE2EAssistantRequestOtherAssistantAsSaved(t *testing.T) {
	r := newRequestRig(t, func(_ hookEvent, r *requestRig) any { return map[string]any{"assistant_id": r.night} })
	num := r.number(t, "+31201230104", &r.front, nil)
	row := r.greeted(t, num.PhoneNumber, nightGreeting)
	if deref(row.AgentID) != r.night {
		t.Fatalf("call answered by %s, want Night line", deref(row.AgentID))
	}
}

// max_duration_seconds caps the call: Parley hangs up by itself.
func TestE2EAssistantRequestMaxDuration(t *testing.T) {
	r := newRequestRig(t, func(hookEvent, *requestRig) any { return map[string]any{"max_duration_seconds": 2} })
	num := r.number(t, "+31201230105", &r.front, nil)
	c := dialRaw(t, r.srv, num.PhoneNumber)
	select {
	case <-c.bye:
	case <-time.After(10 * time.Second):
		t.Fatal("Parley did not end the call at its max duration")
	}
	row := r.waitFinal(t, r.onlyCall(t), 10*time.Second)
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndMaxDuration) {
		t.Fatalf("call ended as %s / %s, want ended / max_duration", row.Status, deref(row.EndReason))
	}
	if row.DurationSeconds == nil || *row.DurationSeconds < 2 || *row.DurationSeconds > 4 {
		t.Fatalf("duration %v s, want about 2", row.DurationSeconds)
	}
	if !hasEntry(transcript(t, row), "assistant", frontGreeting) {
		t.Fatalf("the number's assistant did not answer: %s", row.Messages)
	}
}

// A webhook that does not answer within 5 s leaves the call to the
// number's assistant; the attempt is in the delivery log.
func TestE2EAssistantRequestTimeout(t *testing.T) {
	r := newRequestRig(t, func(ev hookEvent, _ *requestRig) any {
		select {
		case <-ev.ctx.Done(): // Parley gave up
		case <-time.After(15 * time.Second):
		}
		return map[string]any{"error": "too late"}
	})
	num := r.number(t, "+31201230106", &r.front, nil)
	start := time.Now()
	row := r.greeted(t, num.PhoneNumber, frontGreeting)
	if row.StartedAt == nil {
		t.Fatal("call has no start time")
	}
	if waited := row.StartedAt.Sub(start); waited < assistantRequestTimeout || waited > assistantRequestTimeout+3*time.Second {
		t.Fatalf("answered after %s, want just after the %s webhook timeout", waited, assistantRequestTimeout)
	}
	ds, _, err := r.db.ListDeliveries(context.Background(), r.org.ID, store.DeliveryFilter{Page: store.Page{Limit: 50}})
	if err != nil {
		t.Fatal(err)
	}
	var logged bool
	for _, d := range ds {
		if d.EventType == "assistant-request" && d.StatusCode == nil && d.Error != nil {
			logged = true
		}
	}
	if !logged {
		t.Fatalf("the timed-out assistant-request is not in the delivery log: %+v", ds)
	}
}

// Answers that cannot be used are errors: the number's assistant answers.
func TestE2EAssistantRequestUnusableAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(*requestRig) any
	}{
		{"invalid assistant", func(*requestRig) any {
			return map[string]any{"assistant": map[string]any{"llm_config": map[string]any{"provider": "no-such-llm", "model": "x"}}}
		}},
		{"unknown assistant_id", func(*requestRig) any { return map[string]any{"assistant_id": store.NewID()} }},
		{"not a JSON object", func(*requestRig) any { return []string{"night"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRequestRig(t, func(_ hookEvent, r *requestRig) any { return tc.answer(r) })
			num := r.number(t, "+31201230107", &r.front, nil)
			row := r.greeted(t, num.PhoneNumber, frontGreeting)
			if deref(row.AgentID) != r.front {
				t.Fatalf("call answered by %s, want the number's assistant", deref(row.AgentID))
			}
		})
	}
}

// A number without an assistant asks the organization's webhook, which
// answers with a whole transient assistant.
func TestE2EAssistantRequestOrganizationWebhook(t *testing.T) {
	const hello = "Routed by the organization."
	r := newRequestRig(t, func(ev hookEvent, r *requestRig) any {
		if ev.path != "/org" {
			return map[string]any{"error": "asked the wrong webhook"}
		}
		return map[string]any{"assistant": r.assistantDoc(map[string]any{"name": "Transient router", "first_message": hello})}
	})
	r.orgWebhook(t)
	num := r.number(t, "+31201230108", nil, nil)
	row := r.greeted(t, num.PhoneNumber, hello)
	if row.AgentID != nil {
		t.Fatalf("call names saved assistant %s, but a transient one answered", *row.AgentID)
	}
	reqs := r.hooks.find(func(ev hookEvent) bool { return ev.event == "assistant-request" })
	if len(reqs) != 1 || reqs[0].path != "/org" {
		t.Fatalf("assistant-request webhooks %+v, want one to the organization's URL", reqs)
	}
}

// With no assistant on the number, an answer that names none leaves
// nothing to answer the call with: it is refused, saying why.
func TestE2EAssistantRequestOrganizationWebhookNoAssistant(t *testing.T) {
	r := newRequestRig(t, func(hookEvent, *requestRig) any { return map[string]any{} })
	r.orgWebhook(t)
	num := r.number(t, "+31201230109", nil, nil)
	_, res := inviteRaw(t, r.srv, num.PhoneNumber)
	if res.StatusCode != 480 {
		t.Fatalf("INVITE answered %d %s, want 480", res.StatusCode, res.Reason)
	}
	row := r.waitFinal(t, r.onlyCall(t), 5*time.Second)
	if row.Status != call.StatusRejected || !strings.Contains(deref(row.Error), "without an assistant") {
		t.Fatalf("call recorded as %s with error %q", row.Status, deref(row.Error))
	}
}

// orgWebhook points the organization's webhook at the receiver's /org.
func (r *requestRig) orgWebhook(t *testing.T) {
	t.Helper()
	url := r.hooks.url("/org")
	sealed := r.keys.Seal([]byte(hookSecret), secret.Binding{OrgID: r.org.ID, Table: "organizations", Field: "webhook_secret"})
	if err := r.db.SetWebhook(context.Background(), r.org.ID, &url, &sealed); err != nil {
		t.Fatal(err)
	}
}
