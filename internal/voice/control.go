package voice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/media"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/sipacl"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/telephony"
)

// liveCall is a call in progress on this server.
type liveCall struct {
	orgID string
	conv  conversation
}

func (e *Engine) track(id string, l *liveCall) {
	e.mu.Lock()
	e.live[id] = l
	e.mu.Unlock()
}

func (e *Engine) untrack(id string) {
	e.mu.Lock()
	delete(e.live, id)
	e.mu.Unlock()
}

// Control applies a live call-control command (spec §7.6) to a call in
// progress on this server.
func (e *Engine) Control(ctx context.Context, orgID, callID string, cmd call.Command) error {
	e.mu.Lock()
	l := e.live[callID]
	e.mu.Unlock()
	if l == nil || l.orgID != orgID {
		return fault.Invalidf("id", "call %s is not in progress on this server", callID)
	}
	if err := l.conv.Control(ctx, cmd); err != nil {
		if errors.Is(err, pipeline.ErrEnding) {
			return fault.Invalidf("type", "call %s is ending; %s cannot apply", callID, cmd.Type)
		}
		return fault.New(fault.Unavailable, "call_busy", "call %s did not take the command: %v", callID, err)
	}
	return nil
}

// transferTimeout bounds a blind transfer's wait for the peer's NOTIFY.
const transferTimeout = 30 * time.Second

// transfer hands the caller to dest once the conversation has ended:
// a blind transfer with REFER first; when the peer refuses it and the
// number has a transfer trunk, Parley dials dest through that trunk and
// bridges the two calls until either side hangs up.
func (h *handler) transfer(ctx context.Context, c *telephony.Call, dest string) error {
	trunk, err := h.transferTrunk(ctx)
	if err != nil {
		return err
	}
	target := dest
	if !strings.HasPrefix(dest, "sip:") && !strings.HasPrefix(dest, "sips:") {
		host := ""
		if trunk != nil {
			host = trunk.Address
		} else if src := c.In.Source; src != "" {
			host = src
		}
		target = "sip:" + dest + "@" + host
	}
	rctx, cancel := context.WithTimeout(ctx, transferTimeout)
	err = c.Transfer(rctx, target)
	cancel()
	if err == nil {
		h.log.Info("call transferred by REFER", "target", target)
		return nil
	}
	var te *telephony.TransferError
	if !errors.As(err, &te) || !te.Refused {
		return fmt.Errorf("REFER to %s: %w", target, err)
	}
	if trunk == nil {
		return fmt.Errorf("the peer refused REFER (%w) and number %s has no transfer trunk to bridge through (PATCH /api/v1/numbers/{id} with transfer_trunk_id)", err, h.number.PhoneNumber)
	}
	h.log.Info("REFER refused; bridging through the transfer trunk", "code", te.Code, "destination", dest)
	return h.bridge(ctx, c, *trunk, dest)
}

// transferTrunk loads the number's transfer trunk, if it has one.
func (h *handler) transferTrunk(ctx context.Context) (*telephony.Trunk, error) {
	if h.number == nil || h.number.TransferTrunkID == nil {
		return nil, nil
	}
	return h.e.trunk(ctx, h.row.OrgID, *h.number.TransferTrunkID)
}

// bridge dials dest and connects the two calls' audio until either ends.
func (h *handler) bridge(ctx context.Context, c *telephony.Call, trunk telephony.Trunk, dest string) error {
	from := ""
	if h.number != nil {
		from = h.number.PhoneNumber
	}
	leg := &bridgeLeg{peer: c.Ended()}
	dctx, cancel := context.WithTimeout(ctx, h.e.ringTimeout())
	other, err := h.e.dialer.Dial(dctx, telephony.Outbound{Trunk: trunk, From: from, To: dest, RingTimeout: h.e.ringTimeout()}, leg)
	cancel()
	if err != nil {
		return fmt.Errorf("bridged transfer: dial %s: %w", dest, err)
	}
	media.Bridge(c.Media, other.Media)
	h.log.Info("call bridged", "destination", dest)
	select {
	case <-ctx.Done():
	case <-other.Ended():
	}
	return nil
}

// bridgeLeg is the handler of the second call of a bridged transfer: it
// holds the call until the first call ends.
type bridgeLeg struct {
	peer <-chan struct{}
}

func (b *bridgeLeg) ServeCall(ctx context.Context, _ *telephony.Call) {
	select {
	case <-ctx.Done():
	case <-b.peer:
	}
}

func (b *bridgeLeg) NotAnswered(context.Context, error) {}

// trunkBody is what the call path reads from a stored SIP trunk.
type trunkBody struct {
	Address         string  `json:"address"`
	Transport       string  `json:"transport"`
	MediaEncryption string  `json:"media_encryption"`
	AuthUsername    *string `json:"auth_username"`
	// InboundAddresses are where the trunk's calls come from (IPs, CIDR
	// prefixes, host names); the IPs and prefixes may also send media.
	InboundAddresses []string `json:"inbound_addresses"`
	// MaxConcurrentCalls is the trunk's channel limit for outbound calls.
	MaxConcurrentCalls *int `json:"max_concurrent_calls"`
}

// checkTrunkLimit refuses an outbound call over the trunk's channel limit
// (503: try again later) rather than have the trunk refuse it.
func (e *Engine) checkTrunkLimit(ctx context.Context, doc *store.Doc, b *trunkBody) error {
	if b.MaxConcurrentCalls == nil {
		return nil
	}
	live, err := e.db.LiveCallsOnTrunk(ctx, doc.OrgID, doc.ID)
	if err != nil {
		return err
	}
	if live >= *b.MaxConcurrentCalls {
		return fault.New(fault.Unavailable, "trunk_at_limit", "SIP trunk %s has %d calls in progress, its max_concurrent_calls; try again when one has ended", doc.Name, live)
	}
	return nil
}

// mediaSources are the IPs and CIDR prefixes of the trunk's
// inbound_addresses: networks its RTP may also come from (a carrier's
// media servers; host names admit signalling only).
func (b *trunkBody) mediaSources() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range b.InboundAddresses {
		if en, err := sipacl.ParseEntry(a); err == nil && en.Host == "" {
			out = append(out, en.Prefix)
		}
	}
	return out
}

// loadTrunk reads a SIP trunk's row and body.
func (e *Engine) loadTrunk(ctx context.Context, orgID, id string) (*store.Doc, *trunkBody, error) {
	doc, err := e.db.GetDoc(ctx, store.SIPTrunks, orgID, id)
	if err != nil {
		return nil, nil, fmt.Errorf("load SIP trunk %s: %w", id, err)
	}
	b, err := trunkBodyOf(doc)
	if err != nil {
		return nil, nil, err
	}
	return doc, b, nil
}

// trunkBodyOf reads a SIP trunk row's body.
func trunkBodyOf(doc *store.Doc) (*trunkBody, error) {
	var b trunkBody
	if err := json.Unmarshal(doc.Body, &b); err != nil {
		return nil, fmt.Errorf("SIP trunk %s is unreadable: %w", doc.Name, err)
	}
	return &b, nil
}

// trunk loads a SIP trunk with its opened password.
func (e *Engine) trunk(ctx context.Context, orgID, id string) (*telephony.Trunk, error) {
	doc, b, err := e.loadTrunk(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	return e.dialTrunk(orgID, doc, b)
}

// dialTrunk is a loaded SIP trunk as the SIP server dials through it, its
// password opened.
func (e *Engine) dialTrunk(orgID string, doc *store.Doc, b *trunkBody) (*telephony.Trunk, error) {
	t := &telephony.Trunk{Address: b.Address, Transport: b.Transport, MediaEncryption: b.MediaEncryption, MediaSources: b.mediaSources()}
	if b.AuthUsername != nil {
		t.Username = *b.AuthUsername
	}
	if doc.Secret != nil {
		pt, err := e.keys.Open(*doc.Secret, secret.Binding{OrgID: orgID, Table: "sip_trunks", Field: "auth_password", RowID: doc.ID})
		if err != nil {
			return nil, fmt.Errorf("SIP trunk %s: its password cannot be decrypted", doc.Name)
		}
		t.Password = string(pt)
	}
	return t, nil
}

func (e *Engine) ringTimeout() time.Duration {
	if e.cfg.RingTimeout > 0 {
		return e.cfg.RingTimeout
	}
	return 60 * time.Second
}
