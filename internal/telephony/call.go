package telephony

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parley-voice/parley/internal/media"
)

// Inbound describes an INVITE being routed.
type Inbound struct {
	SIPCallID  string
	Dialled    string // the number called: Request-URI user, else To user
	Caller     string // From user
	CallerName string // From display name
	Source     string // address the INVITE came from
	Transport  string // udp, tcp or tls
	// SRTP is true when the offer's audio is SDES-SRTP (RTP/SAVP with a
	// usable key) and will be answered so; a Router whose trunk requires
	// SRTP refuses a call without it with 488.
	SRTP bool
	// RequestURI is the INVITE's Request-URI, and Authorization its
	// Authorization header ("" when absent): digest credentials of a
	// trunk that authenticates its calls.
	RequestURI    string
	Authorization string
}

// Call is an answered call, inbound or outbound.
type Call struct {
	In    Inbound
	Media *media.Session
	// AnsweredAt is when the 200 OK was first sent (inbound) or received (outbound).
	AnsweredAt time.Time
	// Outbound is true for calls Parley placed (Dial).
	Outbound bool

	srv      *Server
	sdes     *media.SDES // the SRTP keys, nil for plain RTP
	key      string
	inv      *sip.Request  // inbound: the peer's INVITE
	res      *sip.Response // inbound: our 200 OK
	uac      *sipgo.DialogClientSession
	localTag string
	contact  sip.ContactHeader // ours, for the call's transport
	cseq     atomic.Uint32
	// notify carries the status codes of REFER progress (NOTIFY sipfrag).
	notify chan int

	acked   chan struct{}
	ackOnce sync.Once
	ended   chan struct{}
	cancel  context.CancelCauseFunc

	remoteHungUp atomic.Bool
}

// errHandlerReturned cancels a call's context when its handler returned.
var errHandlerReturned = errors.New("handler returned")

func dialogKey(callID, localTag string) string { return callID + "\x00" + localTag }

func (s *Server) register(c *Call) {
	s.mu.Lock()
	s.calls[c.key] = c
	s.mu.Unlock()
}

func (s *Server) unregister(c *Call) {
	s.mu.Lock()
	delete(s.calls, c.key)
	s.mu.Unlock()
}

// lookup finds the dialog an in-dialog request belongs to: our tag is in To.
func (s *Server) lookup(req *sip.Request) *Call {
	to := req.To()
	cid := req.CallID()
	if to == nil || cid == nil {
		return nil
	}
	tag, _ := to.Params.Get("tag")
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[dialogKey(cid.Value(), tag)]
}

// runCall owns an answered call: media, the handler, and the hang-up.
func (s *Server) runCall(ctx context.Context, c *Call, h Handler) {
	defer s.wg.Done()
	defer s.active.Add(-1)
	defer close(c.ended)
	defer s.unregister(c)
	mediaDone := make(chan struct{})
	go func() {
		defer close(mediaDone)
		if err := c.Media.Run(ctx); err != nil {
			c.cancel(err)
		}
	}()
	h.ServeCall(ctx, c)
	c.cancel(errHandlerReturned)
	if !c.remoteHungUp.Load() {
		byeCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 8*s.cfg.T1)
		if err := c.bye(byeCtx); err != nil {
			s.log.Info("sip bye failed", "sip_call_id", c.In.SIPCallID, "error", err)
		}
		stop()
	}
	<-mediaDone
}

// awaitACK retransmits the 200 OK at T1, 2·T1, … capped at T2 until the ACK
// arrives (RFC 3261 §13.3.1.4). Without an ACK after 64·T1 the call is
// ended with BYE.
func (s *Server) awaitACK(c *Call, tx sip.ServerTransaction) {
	t1 := s.cfg.T1
	t2 := 8 * t1
	reliable := sip.IsReliable(c.inv.Transport())
	give := time.NewTimer(64 * t1)
	defer give.Stop()
	interval := t1
	retx := time.NewTimer(interval)
	defer retx.Stop()
	for {
		select {
		case <-c.acked:
			return
		case <-c.ended:
			return
		case <-retx.C:
			if !reliable {
				if err := tx.Respond(c.res); err != nil {
					s.log.Debug("sip 200 retransmission failed", "sip_call_id", c.In.SIPCallID, "error", err)
				}
			}
			interval = min(2*interval, t2)
			retx.Reset(interval)
		case <-give.C:
			s.log.Warn("sip call got no ACK; hanging up", "sip_call_id", c.In.SIPCallID)
			c.cancel(ErrNoACK)
			return
		}
	}
}

func (c *Call) ack() { c.ackOnce.Do(func() { close(c.acked) }) }

// bye ends the dialog from our side (RFC 3261 §15.1.1).
func (c *Call) bye(ctx context.Context) error {
	res, err := c.do(ctx, c.request(sip.BYE))
	if err != nil {
		return fmt.Errorf("send bye: %w", err)
	}
	if res.StatusCode >= 300 && res.StatusCode != 481 {
		return fmt.Errorf("bye answered %d %s", res.StatusCode, res.Reason)
	}
	return nil
}

// request starts an in-dialog request; do sends it.
func (c *Call) request(method sip.RequestMethod) *sip.Request {
	if c.uac != nil {
		// The dialog session fills From, To, Call-ID, CSeq and Route.
		target := c.uac.InviteResponse.Contact()
		if target == nil {
			return sip.NewRequest(method, c.uac.InviteRequest.Recipient)
		}
		return sip.NewRequest(method, target.Address)
	}
	remote := c.inv.Contact().Address
	req := sip.NewRequest(method, remote)
	from := c.res.To().AsFrom()
	to := c.inv.From().AsTo()
	cid := sip.CallIDHeader(c.inv.CallID().Value())
	cseq := sip.CSeqHeader{SeqNo: c.cseq.Add(1), MethodName: method}
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&cid)
	req.AppendHeader(&cseq)
	req.AppendHeader(&maxFwd)
	// The route set is the INVITE's Record-Route, in order (§12.1.1).
	for _, rr := range c.inv.GetHeaders("Record-Route") {
		req.AppendHeader(sip.NewHeader("Route", rr.Value()))
	}
	req.AppendHeader(sip.NewHeader("User-Agent", c.srv.cfg.UserAgent))
	req.SetTransport(c.inv.Transport())
	if r := req.Route(); r != nil {
		req.SetDestination(r.Address.HostPort())
	} else if src := c.inv.Source(); src != "" && (!routable(remote) || c.srv.openTLS(req.Transport(), src)) {
		// Over TLS the caller's connection is used while it is open: a
		// caller behind NAT, or without a certificate of its own, cannot
		// be reached at its Contact (RFC 5923's connection reuse).
		req.SetDestination(src)
	}
	return req
}

func (c *Call) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	c.srv.fromListener(req)
	if c.uac != nil {
		return c.uac.Do(ctx, req)
	}
	return c.srv.clientFor(req.Transport()).Do(ctx, req)
}

// openTLS reports whether transport is TLS and a connection to addr is open.
func (s *Server) openTLS(transport, addr string) bool {
	if !strings.EqualFold(transport, "tls") {
		return false
	}
	conn, err := s.ua.TransportLayer().GetConnection("tls", addr)
	return err == nil && conn != nil
}

// fromListener makes a UDP request leave from the listening socket, the
// address peers send to: a NAT or firewall in front of a peer lets back in
// only what comes from there, and a peer that answers to the source port
// instead of Via (rport) answers a port we read. sipgo would otherwise
// open an ephemeral socket per destination.
func (s *Server) fromListener(req *sip.Request) {
	if t := req.Transport(); t != "" && !strings.EqualFold(t, "udp") {
		return
	}
	a := s.udp.LocalAddr().(*net.UDPAddr)
	req.Laddr = sip.Addr{IP: a.IP, Port: a.Port}
}

// routable reports whether a Contact host can be dialled directly.
func routable(u sip.Uri) bool {
	ip, err := netip.ParseAddr(u.Host)
	if err != nil {
		return u.Host != ""
	}
	return !ip.IsUnspecified()
}
