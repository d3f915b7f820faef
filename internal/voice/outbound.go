package voice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/telephony"
)

// Dial places an outbound call (POST /calls/outbound): it prepares the
// conversation, records the call as dialing and dials through the number's
// SIP trunk in the background. Progress and the outcome land on the call
// row and in status-update webhooks.
func (e *Engine) Dial(ctx context.Context, d call.Dial) (string, error) {
	if e.dialer == nil || e.base == nil {
		return "", fault.New(fault.Unavailable, "telephony_off", "outbound calls need the SIP server (PARLEY_SIP_ADDR is off)")
	}
	num, err := e.db.GetNumber(ctx, d.OrgID, d.NumberID)
	if err != nil {
		return "", err
	}
	if num.TransferTrunkID == nil {
		return "", fault.Invalidf("number_id", "number %s has no SIP trunk for outbound dialing: PATCH /api/v1/numbers/{id} with transfer_trunk_id", num.PhoneNumber)
	}
	doc, tb, err := e.loadTrunk(ctx, d.OrgID, *num.TransferTrunkID)
	if err != nil {
		return "", fault.Invalidf("number_id", "%v", err)
	}
	if err := e.checkTrunkLimit(ctx, doc, tb); err != nil {
		return "", err
	}
	trunk, err := e.dialTrunk(d.OrgID, doc, tb)
	if err != nil {
		return "", fault.Invalidf("number_id", "%v", err)
	}
	p, err := e.plan(ctx, d.OrgID, d.Assistant)
	if err != nil {
		return "", fault.Invalidf("assistant", "the assistant cannot run: %v", err)
	}
	if p.firstOutbound != "" {
		p.cfg.FirstMessage = p.firstOutbound
	}
	p.cfg.Voicemail = planVoicemail(p.doc) // voicemailplan.go: outbound calls only
	if d.ID == "" {
		d.ID = call.OutboundID()
	}
	row := &store.Call{
		ID: d.ID, OrgID: d.OrgID, Direction: call.Outbound, Status: call.StatusDialing,
		CallerPhone: strPtr(d.Destination), AssistantPhone: strPtr(num.PhoneNumber), NumberID: &num.ID,
		PhoneNumber: strPtr(num.PhoneNumber), BusinessName: num.BusinessName, BootID: strPtr(e.cfg.BootID),
	}
	if d.AssistantID != "" {
		row.AgentID = &d.AssistantID
		var a struct {
			Name *string `json:"name"`
		}
		_ = json.Unmarshal(d.Assistant, &a)
		row.AgentName = a.Name
	}
	log := e.log.With("call_id", row.ID, "org_id", d.OrgID)
	h := &handler{e: e, row: row, plan: p, log: log, number: num}
	h.hooks = e.newCallHooks(p.hook, row, num, p.doc)
	row.Assistant, row.Webhook = h.hooks.env.Assistant, p.hook.stored(e.keys, d.OrgID)
	evs := h.hooks.status(call.StatusDialing, "", "")
	if err := e.db.CreateCall(ctx, row, evs...); err != nil {
		p.close()
		return "", fmt.Errorf("create call row: %w", err)
	}
	e.committed(evs)
	dest := d.Destination
	if p.gdpr {
		dest = maskNumber(dest)
	}
	log.Info("outbound call dialing", "destination", dest, "number", num.PhoneNumber, "trunk", trunk.Address)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.dialOut(h, *trunk, d.Destination)
	}()
	return row.ID, nil
}

// dialOut runs the dialling; on answer the call belongs to the SIP server
// and the handler, on failure the call is recorded as failed.
func (e *Engine) dialOut(h *handler, trunk telephony.Trunk, dest string) {
	ctx := e.base
	progress := func(code int) {
		if code != 180 && code != 183 {
			return
		}
		evs := h.hooks.status(call.StatusRinging, "", "")
		if err := e.db.SetCallStatus(ctx, h.row.OrgID, h.row.ID, call.StatusRinging, evs...); err != nil {
			h.log.Warn("record ringing", "error", err)
			return
		}
		e.committed(evs)
	}
	_, err := e.dialer.Dial(ctx, telephony.Outbound{Trunk: trunk, From: *h.row.PhoneNumber, To: dest, RingTimeout: e.ringTimeout(), Progress: onceRinging(progress)}, h)
	if err == nil {
		return
	}
	reason, msg := dialOutcome(err)
	h.log.Info("outbound call not answered", "end_reason", string(reason), "error", err)
	h.failed(ctx, reason, msg)
}

// onceRinging reports ringing once (180 and 183 may both come).
func onceRinging(f func(int)) func(int) {
	done := false
	return func(code int) {
		if !done {
			done = true
			f(code)
		}
	}
}

// failed records a call that never connected (outbound not answered,
// inbound cancelled or failed before the answer).
func (h *handler) failed(ctx context.Context, reason call.EndReason, msg string) {
	defer h.plan.close()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	end := store.CallEnd{OrgID: h.row.OrgID, ID: h.row.ID, Status: call.StatusFailed, EndReason: reason, Error: msg, EndedAt: h.e.now()}
	end.Events = h.hooks.status(end.Status, reason, msg)
	if err := h.e.recordEnd(fctx, end, h.log); err == nil {
		h.e.committed(end.Events)
	}
}

// dialOutcome maps a dial failure to an end reason and a message a user can act on.
func dialOutcome(err error) (call.EndReason, string) {
	var de *telephony.DialError
	if errors.As(err, &de) {
		code := fmt.Sprintf("(SIP %d %s)", de.Code, de.Reason)
		switch de.Code {
		case 486, 600:
			return call.EndBusy, "the callee is busy " + code
		case 503:
			return call.EndTrunkCongested, "the SIP trunk has no room for the call now " + code
		case 408, 480, 487:
			return call.EndNoAnswer, "the callee did not answer " + code
		case 401, 407:
			return call.EndTrunkAuth, "the SIP trunk refused our credentials " + code + ": check the trunk's auth_username and auth_password"
		case 403:
			return call.EndDeclined, "the SIP trunk refused the call " + code + ": check the trunk's credentials and that it allows this destination"
		case 404, 484, 604:
			return call.EndDeclined, "the destination does not exist " + code
		case 603:
			return call.EndDeclined, "the callee declined the call " + code
		case 488, 606:
			return call.EndDeclined, "no common audio codec with the far end " + code
		}
		return call.EndDeclined, "the call was refused " + code
	}
	var te *telephony.TLSError
	if errors.As(err, &te) {
		return call.EndUnreachable, "TLS with the SIP trunk failed, no call was placed: " + te.Err.Error() +
			" (its certificate must be valid for the trunk's host name and issued by a system root or PARLEY_SIP_TLS_CA)"
	}
	switch {
	case errors.Is(err, telephony.ErrNoTLSListener):
		return call.EndError, "the SIP trunk uses TLS but this server has no TLS listener: set PARLEY_SIP_TLS_ADDR, PARLEY_SIP_TLS_CERT and PARLEY_SIP_TLS_KEY"
	case errors.Is(err, telephony.ErrNoAnswer):
		return call.EndNoAnswer, "the callee did not answer before the ring timeout"
	case errors.Is(err, telephony.ErrUnreachable):
		return call.EndUnreachable, "the SIP trunk did not respond: check its address and transport (" + err.Error() + ")"
	case errors.Is(err, telephony.ErrCapacity):
		return call.EndError, "the server is at its concurrent call limit; try again later"
	case errors.Is(err, telephony.ErrShutdown), errors.Is(err, context.Canceled):
		return call.EndShutdown, "the server is shutting down"
	}
	return call.EndError, err.Error()
}
