package telephony

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parley-voice/parley/internal/media"
)

// Trunk is a SIP trunk outbound calls leave through.
type Trunk struct {
	// Address is host or host:port (port 5060 when absent).
	Address string
	// Transport is "udp" (default), "tcp" or "tls". Over TLS the trunk's
	// certificate must verify for its host name (sent as SNI), and the
	// default port is 5061.
	Transport string
	// Username and Password answer the trunk's digest challenge (401/407).
	Username, Password string
	// MediaEncryption is "none" (or empty) for RTP, "srtp" to offer only
	// SDES-SRTP and fail calls whose answer is not SRTP.
	MediaEncryption string
	// MediaSources are networks besides the answer's SDP address and the
	// trunk's signalling address that its RTP may come from (its media
	// servers).
	MediaSources []netip.Prefix
}

// ErrSDESInsecure refuses an SRTP call whose keys would cross plain SIP.
var ErrSDESInsecure = errors.New("the trunk requires SRTP, whose SDES keys need transport tls")

// Outbound describes a call to place.
type Outbound struct {
	Trunk Trunk
	// From is the caller ID: the organization's number, sent as the From user.
	From string
	// To is the destination: a number (sent to the trunk) or a SIP URI.
	To string
	// RingTimeout cancels the call when it is not answered in time (default 60 s).
	RingTimeout time.Duration
	// Progress is told about provisional answers (180 Ringing, 183 Session Progress).
	Progress func(code int)
}

// DialError is the far end's final refusal of an outbound INVITE.
type DialError struct {
	Code   int
	Reason string
}

func (e *DialError) Error() string { return fmt.Sprintf("sip %d %s", e.Code, e.Reason) }

// Dial failures that are not a SIP answer.
var (
	ErrNoAnswer    = errors.New("not answered before the ring timeout")
	ErrUnreachable = errors.New("trunk unreachable: no SIP response")
	ErrCapacity    = errors.New("server at its call limit")
	ErrNotServing  = errors.New("sip server is not serving")
)

// Dial places a call through a trunk and waits until it is answered or
// fails. Once answered, the call runs like an inbound one: h.ServeCall gets
// it on its own goroutine, and Dial returns it. Dial's ctx bounds only the
// dialling; cancelling it before the answer sends CANCEL.
func (s *Server) Dial(ctx context.Context, o Outbound, h Handler) (*Call, error) {
	select {
	case <-s.serving:
	case <-ctx.Done():
		return nil, ErrNotServing
	}
	if s.draining.Load() {
		return nil, ErrShutdown
	}
	if n := s.active.Add(1); s.cfg.MaxCalls > 0 && n > int64(s.cfg.MaxCalls) {
		s.active.Add(-1)
		return nil, ErrCapacity
	}
	started := false
	defer func() {
		if !started {
			s.active.Add(-1)
		}
	}()
	transport := strings.ToLower(o.Trunk.Transport)
	switch transport {
	case "", "udp", "tcp":
	case "tls":
		if s.tls == nil {
			return nil, ErrNoTLSListener
		}
	default:
		return nil, fmt.Errorf("trunk transport %q: must be udp, tcp or tls", o.Trunk.Transport)
	}
	recipient, err := o.recipient()
	if err != nil {
		return nil, err
	}
	var offered []media.Crypto
	if strings.EqualFold(o.Trunk.MediaEncryption, "srtp") {
		if !s.sdesAllowed(o.Trunk.Transport) {
			return nil, ErrSDESInsecure
		}
		if offered, err = media.OfferCrypto(); err != nil {
			return nil, err
		}
	}
	sess, err := s.openMedia("")
	if err != nil {
		return nil, fmt.Errorf("allocate media: %w", err)
	}
	local := netip.AddrPortFrom(s.publicIP, uint16(sess.LocalPort()))
	offer := media.OfferSDP(local, rand.Uint64()>>2, offered)

	req := sip.NewRequest(sip.INVITE, recipient)
	req.SetBody(offer)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	fromTag := sip.GenerateTagN(16)
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: o.From, Host: recipient.Host}, Params: sip.NewParams()}
	from.Params.Add("tag", fromTag)
	to := sip.ToHeader{Address: sip.Uri{Scheme: recipient.Scheme, User: recipient.User, Host: recipient.Host, Port: recipient.Port}, Params: sip.NewParams()}
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(sip.NewHeader("Allow", allowed))
	req.AppendHeader(sip.NewHeader("User-Agent", s.cfg.UserAgent))
	if transport == "tcp" || transport == "tls" {
		req.SetTransport(strings.ToUpper(transport))
	}
	contact := s.contactFor(req.Transport(), recipient.Scheme)
	req.AppendHeader(&contact)

	// Over TLS, requests inside the dialog go over the verified connection
	// to the trunk rather than to whatever its Contact names.
	ua := &sipgo.DialogUA{Client: s.clientFor(req.Transport()), ContactHDR: contact, RewriteContact: transport == "tls"}
	ring := o.RingTimeout
	if ring <= 0 {
		ring = 60 * time.Second
	}
	// At the ring timeout, a trunk that answered at all gets a CANCEL; one
	// that never answered cannot be cancelled (RFC 3261 §9.1), so the wait
	// is abandoned at once instead of running into Timer B.
	dctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var reached atomic.Bool
	ringTimer := time.AfterFunc(ring, func() {
		if reached.Load() {
			stop(ErrNoAnswer)
		} else {
			stop(sipgo.WaitAnswerForceCancelErr)
		}
	})
	defer ringTimer.Stop()
	s.fromListener(req)
	dlg, err := ua.WriteInvite(dctx, req)
	if err != nil {
		sess.Close()
		if te := tlsFailure(recipient.Host, err); te != nil && transport == "tls" {
			return nil, te
		}
		return nil, fmt.Errorf("send invite: %w", err)
	}
	err = dlg.WaitAnswer(dctx, sipgo.AnswerOptions{
		Username: o.Trunk.Username, Password: o.Trunk.Password,
		OnResponse: func(r *sip.Response) error {
			reached.Store(true)
			if r.IsProvisional() && r.StatusCode > 100 && o.Progress != nil {
				o.Progress(int(r.StatusCode))
			}
			return nil
		},
	})
	if err != nil {
		sess.Close()
		dlg.Close()
		return nil, dialFailure(err, dctx, ctx)
	}
	answer, err := media.ParseOffer(dlg.InviteResponse.Body())
	if err != nil {
		s.abandon(ctx, dlg, sess)
		return nil, &DialError{Code: 488, Reason: "answer without a usable audio stream: " + err.Error()}
	}
	if rj := s.checkMediaAddr(answer.Addr); rj != nil {
		// The same rule as for offers: never send RTP to metadata,
		// link-local, multicast or reserved addresses.
		s.abandon(ctx, dlg, sess)
		return nil, &DialError{Code: 488, Reason: "answer names a media address Parley does not send to: " + answer.Addr.Addr().String()}
	}
	var sdes *media.SDES
	switch {
	case offered != nil:
		if sdes, err = media.MatchAnswer(offered, answer); err == nil {
			err = sess.UseSRTP(*sdes)
		}
	case answer.Secure:
		err = errors.New("RTP/SAVP answer to an RTP/AVP offer")
	}
	if err != nil {
		s.abandon(ctx, dlg, sess)
		return nil, &DialError{Code: 488, Reason: "answer without the agreed media encryption: " + err.Error()}
	}
	if err := dlg.Ack(ctx); err != nil {
		sess.Close()
		return nil, fmt.Errorf("send ack: %w", err)
	}
	sess.Negotiated(answer.Addr, answer.Codec, answer.EventPT)
	allowSignalSource(sess, dlg.InviteResponse.Source())
	sess.AllowSources(o.Trunk.MediaSources...)

	cctx, cancel := context.WithCancelCause(s.callsCtx)
	in := Inbound{SIPCallID: req.CallID().Value(), Dialled: o.To, Caller: o.From, Source: dlg.InviteResponse.Source(), Transport: strings.ToLower(req.Transport()), SRTP: sdes != nil}
	c := &Call{
		In: in, Media: sess, AnsweredAt: time.Now(), Outbound: true,
		srv: s, sdes: sdes, key: dialogKey(in.SIPCallID, fromTag), uac: dlg, localTag: fromTag, contact: contact,
		acked: make(chan struct{}), ended: make(chan struct{}), cancel: cancel,
		notify: make(chan int, 8),
	}
	c.ack()
	s.register(c)
	started = true
	s.wg.Add(1)
	go s.runCall(cctx, c, h)
	return c, nil
}

// abandon confirms an answer Parley cannot use and hangs up at once.
func (s *Server) abandon(ctx context.Context, dlg *sipgo.DialogClientSession, sess *media.Session) {
	_ = dlg.Ack(ctx)
	byeCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 8*s.cfg.T1)
	_ = dlg.Bye(byeCtx)
	done()
	sess.Close()
}

// recipient is the Request-URI: a SIP URI as given, or the number at the trunk.
func (o Outbound) recipient() (sip.Uri, error) {
	var u sip.Uri
	if strings.HasPrefix(o.To, "sip:") || strings.HasPrefix(o.To, "sips:") {
		if err := sip.ParseUri(o.To, &u); err != nil {
			return u, fmt.Errorf("destination %q: %w", o.To, err)
		}
		return u, nil
	}
	defaultPort := 5060
	if strings.EqualFold(o.Trunk.Transport, "tls") {
		defaultPort = 5061
	}
	host, port, err := splitHostPort(o.Trunk.Address, defaultPort)
	if err != nil {
		return u, err
	}
	u = sip.Uri{Scheme: "sip", User: o.To, Host: host, Port: port}
	if strings.EqualFold(o.Trunk.Transport, "tls") {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tls")
	}
	return u, nil
}

func splitHostPort(addr string, defaultPort int) (string, int, error) {
	if addr == "" {
		return "", 0, errors.New("trunk has no address")
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return strings.Trim(addr, "[]"), defaultPort, nil
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("trunk address %q: bad port", addr)
	}
	return host, port, nil
}

// dialFailure explains why an INVITE did not lead to a call.
func dialFailure(err error, dctx, parent context.Context) error {
	var de *sipgo.ErrDialogResponse
	var dv sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &de):
		return &DialError{Code: int(de.Res.StatusCode), Reason: de.Res.Reason}
	case errors.As(err, &dv):
		return &DialError{Code: int(dv.Res.StatusCode), Reason: dv.Res.Reason}
	case parent.Err() != nil:
		return context.Cause(parent)
	case errors.Is(context.Cause(dctx), sipgo.WaitAnswerForceCancelErr):
		return ErrUnreachable
	case dctx.Err() != nil:
		return ErrNoAnswer
	case errors.Is(err, sip.ErrTransactionTimeout):
		return ErrUnreachable
	}
	return fmt.Errorf("%w: %v", ErrUnreachable, err)
}
