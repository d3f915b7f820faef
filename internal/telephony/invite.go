package telephony

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parley-voice/parley/internal/media"
)

// routeTimeout bounds the Router (a database lookup and a call row).
const routeTimeout = 10 * time.Second

func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if s.dropStream(req) {
		return
	}
	if tag, _ := req.To().Params.Get("tag"); tag != "" {
		s.onReInvite(req, tx)
		return
	}
	s.respond(tx, sip.NewResponseFromRequest(req, 100, "Trying", nil))
	if s.draining.Load() {
		s.reject(tx, req, &Reject{Code: 503, Reason: "Service Unavailable", RetryAfter: s.cfg.RetryAfter})
		return
	}
	setupDone := func() {}
	if s.cfg.Admission != nil {
		done, why := s.cfg.Admission.Admit()
		if why != "" {
			s.log.Debug("sip call refused: over capacity", "sip_call_id", req.CallID().Value(), "reason", why)
			s.reject(tx, req, &Reject{Code: 503, Reason: "Service Unavailable", RetryAfter: s.cfg.RetryAfter})
			return
		}
		setupDone = done
	}
	defer setupDone()
	if n := s.active.Add(1); s.cfg.MaxCalls > 0 && n > int64(s.cfg.MaxCalls) {
		s.active.Add(-1)
		s.reject(tx, req, &Reject{Code: 503, Reason: "Service Unavailable", RetryAfter: s.cfg.RetryAfter})
		return
	}
	// The slot is given back before any refusal is sent, so a caller
	// that retries at once finds it free.
	release := sync.OnceFunc(func() { s.active.Add(-1) })
	started := false
	defer func() {
		if !started {
			release()
		}
	}()
	refuse := func(rj *Reject) {
		release()
		s.reject(tx, req, rj)
	}

	offer, rej := s.readOffer(req)
	if rej == nil {
		rej = s.checkMediaAddr(offer.Addr)
	}
	if rej != nil {
		refuse(rej)
		return
	}
	in := inboundFrom(req)
	if in.Dialled == "" {
		refuse(&Reject{Code: 404, Reason: "Not Found"})
		return
	}
	if offer.Secure && !s.sdesAllowed(in.Transport) {
		refuse(&Reject{Code: 488, Reason: "Not Acceptable Here (SDES-SRTP keys need SIP over TLS)"})
		return
	}
	in.SRTP = offer.Secure
	var cancelOnce sync.Once
	canceled := make(chan struct{})
	markCanceled := func() { cancelOnce.Do(func() { close(canceled) }) }
	if !tx.OnCancel(func(*sip.Request) { markCanceled() }) {
		// The CANCEL came before the callback could be registered (sipgo
		// has already answered 487 and never calls it).
		markCanceled()
	}

	rctx, stop := context.WithTimeout(s.callsCtx, routeTimeout)
	h, err := s.router.Route(rctx, in)
	stop()
	if err != nil {
		var rj *Reject
		if !errors.As(err, &rj) {
			// The router could not decide (its database did not answer in
			// time, say): temporary, so the caller may try again.
			s.log.Error("sip route failed", "sip_call_id", in.SIPCallID, "error", err)
			rj = &Reject{Code: 503, Reason: "Service Unavailable", RetryAfter: s.cfg.RetryAfter}
		}
		refuse(rj)
		return
	}

	sess, sdes, err := s.answerMedia(in, offer, h)
	if err != nil {
		s.log.Error("sip media setup failed", "sip_call_id", in.SIPCallID, "error", err)
		refuse(&Reject{Code: 503, Reason: "Service Unavailable", RetryAfter: s.cfg.RetryAfter})
		h.NotAnswered(s.callsCtx, err)
		return
	}
	local := netip.AddrPortFrom(s.publicIP, uint16(sess.LocalPort()))
	var key *media.Crypto
	if sdes != nil {
		key = &sdes.Local
	}
	body := media.Answer(local, rand.Uint64()>>2, offer.Codec, offer.EventPT, key)

	localTag := sip.GenerateTagN(16)
	res := sip.NewSDPResponseFromRequest(req, body)
	res.To().Params.Add("tag", localTag)
	contact := s.contactFor(req.Transport(), req.Recipient.Scheme)
	res.AppendHeader(&contact)
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))

	ctx, cancel := context.WithCancelCause(s.callsCtx)
	c := &Call{
		In: in, Media: sess, srv: s, sdes: sdes, key: dialogKey(in.SIPCallID, localTag),
		inv: req, res: res, localTag: localTag, contact: contact,
		acked: make(chan struct{}), ended: make(chan struct{}), cancel: cancel,
		notify: make(chan int, 8),
	}
	c.cseq.Store(rand.Uint32N(1 << 16))

	select {
	case <-canceled:
		cancel(ErrCanceled)
		sess.Close()
		h.NotAnswered(s.callsCtx, ErrCanceled)
		return
	default:
	}
	s.register(c)
	if err := tx.Respond(res); err != nil {
		s.unregister(c)
		if errors.Is(err, sip.ErrTransactionCanceled) {
			err = ErrCanceled // cancelled while we answered
		}
		cancel(err)
		sess.Close()
		h.NotAnswered(s.callsCtx, err)
		return
	}
	c.AnsweredAt = time.Now()
	started = true
	s.wg.Add(1)
	go s.runCall(ctx, c, h)
	setupDone()
	s.awaitACK(c, tx)
}

// MediaSourcer is a Handler that knows further networks the call's media
// may come from besides the SDP and signalling addresses: its trunk's media
// servers, say.
type MediaSourcer interface {
	MediaSources() []netip.Prefix
}

// answerMedia opens the call's RTP session for an offer: RTP accepted from
// the offer's address, the signalling source's IP (NAT) or the handler's
// media sources; SRTP with our own key when the offer is SRTP.
func (s *Server) answerMedia(in Inbound, offer *media.Offer, h Handler) (*media.Session, *media.SDES, error) {
	sess, err := s.openMedia(in.SIPCallID)
	if err != nil {
		return nil, nil, err
	}
	sess.Negotiated(offer.Addr, offer.Codec, offer.EventPT)
	allowSignalSource(sess, in.Source)
	if ms, ok := h.(MediaSourcer); ok {
		sess.AllowSources(ms.MediaSources()...)
	}
	if !offer.Secure {
		return sess, nil, nil
	}
	sdes, err := media.AnswerCrypto(offer)
	if err == nil {
		err = sess.UseSRTP(*sdes)
	}
	if err != nil {
		sess.Close()
		return nil, nil, fmt.Errorf("set up srtp: %w", err)
	}
	return sess, sdes, nil
}

// openMedia binds a call's RTP session, logging with its SIP Call-ID when
// it is known.
func (s *Server) openMedia(sipCallID string) (*media.Session, error) {
	cfg := s.cfg.Media
	if sipCallID != "" {
		cfg.Logger = cfg.Logger.With("sip_call_id", sipCallID)
	}
	return media.Listen(cfg)
}

// allowSignalSource lets media come from the signalling peer's IP too: a
// peer behind NAT writes its private address into the SDP.
func allowSignalSource(sess *media.Session, source string) {
	if ap, err := netip.ParseAddrPort(source); err == nil {
		sess.AllowSources(netip.PrefixFrom(ap.Addr(), ap.Addr().BitLen()))
	}
}

// sdesAllowed says whether SDES keys may travel over this transport: only
// TLS protects them, unless development allows it.
func (s *Server) sdesAllowed(transport string) bool {
	return strings.EqualFold(transport, "tls") || s.cfg.SDESWithoutTLS
}

// readOffer checks the INVITE's body; a non-nil Reject refuses the call.
func (s *Server) readOffer(req *sip.Request) (*media.Offer, *Reject) {
	body := req.Body()
	if len(body) == 0 {
		return nil, &Reject{Code: 488, Reason: "Not Acceptable Here (an SDP offer is required)"}
	}
	if ct := req.ContentType(); ct != nil && !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), "application/sdp") {
		return nil, &Reject{Code: 415, Reason: "Unsupported Media Type"}
	}
	offer, err := media.ParseOffer(body)
	if errors.Is(err, media.ErrNotAcceptable) {
		return nil, &Reject{Code: 488, Reason: "Not Acceptable Here"}
	}
	if err != nil {
		return nil, &Reject{Code: 400, Reason: "Bad Request (malformed SDP)"}
	}
	return offer, nil
}

func (s *Server) reject(tx sip.ServerTransaction, req *sip.Request, r *Reject) {
	res := sip.NewResponseFromRequest(req, r.Code, r.Reason, nil)
	if r.RetryAfter > 0 {
		res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(int(r.RetryAfter.Seconds()))))
	}
	if r.Code == 415 {
		res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	}
	for _, c := range r.Challenge {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", c))
	}
	if r.Warning != "" {
		res.AppendHeader(sip.NewHeader("Warning", r.Warning))
	}
	s.respond(tx, res)
}

func inboundFrom(req *sip.Request) Inbound {
	in := Inbound{SIPCallID: req.CallID().Value(), Source: req.Source(), Transport: strings.ToLower(req.Transport()),
		RequestURI: req.Recipient.String()}
	if h := req.GetHeader("authorization"); h != nil {
		in.Authorization = h.Value()
	}
	in.Dialled = req.Recipient.User
	if in.Dialled == "" {
		in.Dialled = req.To().Address.User
	}
	if f := req.From(); f != nil {
		in.Caller, in.CallerName = f.Address.User, f.DisplayName
	}
	return in
}

func (s *Server) onAck(req *sip.Request, _ sip.ServerTransaction) {
	if c := s.lookup(req); c != nil {
		c.ack()
	}
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		s.respond(tx, sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	c.remoteHungUp.Store(true)
	c.ack() // a BYE confirms the dialog as well as an ACK would
	s.respond(tx, sip.NewResponseFromRequest(req, 200, "OK", nil))
	c.cancel(ErrRemoteHangup)
}

// onReInvite answers a session refresh or hold inside a dialog with the
// same media description; a new peer address is followed.
func (s *Server) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		s.respond(tx, sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	if len(req.Body()) > 0 {
		offer, rej := s.readOffer(req)
		if rej != nil {
			s.reject(tx, req, rej)
			return
		}
		if !sameKeys(c.sdes, offer) {
			// The stream keeps its keys for the whole call: a re-INVITE
			// that drops SRTP, adds it or re-keys is refused.
			s.reject(tx, req, &Reject{Code: 488, Reason: "Not Acceptable Here (SRTP keys cannot change during a call)"})
			return
		}
		if !offer.OnHold {
			if rej := s.checkMediaAddr(offer.Addr); rej != nil {
				s.reject(tx, req, rej)
				return
			}
			c.Media.SetRemote(offer.Addr)
		}
	}
	res := sip.NewSDPResponseFromRequest(req, c.res.Body())
	res.AppendHeader(&c.contact)
	s.respond(tx, res)
}

// sameKeys says whether a re-INVITE's offer keeps the call's SRTP (or
// plain RTP) as it was negotiated.
func sameKeys(k *media.SDES, o *media.Offer) bool {
	if k == nil || !o.Secure {
		return k == nil && !o.Secure
	}
	for _, c := range o.Crypto {
		if c.Tag == k.Remote.Tag && c.Suite == k.Remote.Suite && bytes.Equal(c.Key, k.Remote.Key) {
			return true
		}
	}
	return false
}
