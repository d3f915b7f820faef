package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/sync/errgroup"
)

// ErrMediaTimeout ends a session whose peer stopped sending RTP.
var ErrMediaTimeout = errors.New("no RTP received within the media timeout")

// framePeriod is the send interval: one 20 ms frame per packet.
const framePeriod = 20 * time.Millisecond

// Source supplies outgoing audio. ReadFrame fills frame (FrameSamples
// samples) and reports whether it holds audio; false sends silence. It is
// called from the pacing goroutine every 20 ms and must not block.
type Source interface {
	ReadFrame(frame []int16) bool
}

// Sink receives the caller's audio in order, FrameSamples at a time, after
// reordering. Lost packets arrive as silence so that time keeps its pace. It
// is called from the receive goroutine and must not block.
type Sink interface {
	WriteFrame(frame []int16)
}

// Waker is a Source that can say its first audio is ready, so the sender
// sends it at once instead of at the next tick; the 20 ms grid then
// restarts from that packet.
type Waker interface {
	Wake() <-chan struct{}
}

// DTMFSink receives RFC 4733 telephone-events, once per key press.
type DTMFSink interface {
	DTMF(digit rune)
}

// Config is shared by all sessions of a server.
type Config struct {
	// BindIP is the local address RTP sockets listen on.
	BindIP netip.Addr
	// Ports is the range RTP/RTCP port pairs are taken from.
	Ports PortRange
	// Timeout ends a session after this long without RTP from the peer;
	// 0 disables it.
	Timeout time.Duration
	// Reorder is how many packets the receive buffer holds while waiting for
	// a missing one (default 3, i.e. 60 ms).
	Reorder int
	Logger  *slog.Logger
}

// Session is one call's RTP stream pair.
type Session struct {
	cfg      Config
	log      *slog.Logger
	rtpConn  *net.UDPConn
	rtcpConn *net.UDPConn

	codec   Codec
	eventPT uint8
	// remote is where RTP is sent: the SDP address until the peer's RTP
	// latches it.
	remote atomic.Pointer[netip.AddrPort]
	// offered is the SDP address (c= and m= port), an allowed source.
	offered atomic.Pointer[netip.AddrPort]
	// allowed are further allowed source networks (the signalling source
	// for NAT, a trunk's media addresses); set before Run.
	allowed []netip.Prefix
	// latched is the one source RTP is accepted from once a valid packet
	// came from an allowed source; nil until then.
	latched atomic.Pointer[netip.AddrPort]
	// latchMu orders latching against SetRemote, so a re-INVITE's new
	// address is never overwritten by a latch of the old source.
	latchMu       sync.Mutex
	foreignLogged atomic.Bool
	srtp          *srtpState

	source atomic.Pointer[Source]
	sink   atomic.Pointer[Sink]
	dtmf   atomic.Pointer[DTMFSink]

	dtmfOut dtmfSender

	ssrc uint32
	mu   sync.Mutex
	st   Stats
	rx   rxState

	closeOnce sync.Once
}

// Stats counts a session's traffic.
type Stats struct {
	PacketsSent     uint64
	OctetsSent      uint64
	PacketsReceived uint64
	PacketsLost     uint64 // concealed with silence
	PacketsLate     uint64 // arrived after their slot was played, or duplicates
	PacketsInvalid  uint64 // not RTP, an unexpected payload type, or failing SRTP authentication or replay checks
	// PacketsForeign counts RTP packets dropped because they came from a
	// source other than the latched one (or, before latching, from outside
	// the allowed set); RTCPForeign the same for RTCP.
	PacketsForeign uint64
	RTCPForeign    uint64
	Jitter         time.Duration
	// RemoteFractionLost and RemoteJitter come from the peer's RTCP reports.
	RemoteFractionLost float64
	RemoteJitter       time.Duration
	RTCPReceived       uint64
}

// Listen binds a port pair for a new session.
func Listen(cfg Config) (*Session, error) {
	if cfg.Reorder <= 0 {
		cfg.Reorder = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a, b, err := listenPair(cfg.BindIP, cfg.Ports)
	if err != nil {
		return nil, fmt.Errorf("bind rtp in %s: %w", cfg.Ports, err)
	}
	for _, c := range []*net.UDPConn{a, b} {
		_ = c.SetReadBuffer(256 << 10)
	}
	return &Session{cfg: cfg, log: cfg.Logger, rtpConn: a, rtcpConn: b, ssrc: rand.Uint32()}, nil
}

// LocalPort is the RTP port (RTCP is the next one).
func (s *Session) LocalPort() int { return s.rtpConn.LocalAddr().(*net.UDPAddr).Port }

// Negotiated fixes the peer's address and the codec before Run.
func (s *Session) Negotiated(remote netip.AddrPort, c Codec, eventPT uint8) {
	remote = unmapAddrPort(remote)
	s.remote.Store(&remote)
	s.offered.Store(&remote)
	s.codec, s.eventPT = c, eventPT
}

// AllowSources adds networks RTP and RTCP may come from besides the SDP
// address: the signalling source (a peer behind NAT sends from its public
// address) or a trunk's media addresses. Call it before Run.
func (s *Session) AllowSources(p ...netip.Prefix) {
	for _, q := range p {
		if !q.IsValid() {
			continue
		}
		bits := q.Bits()
		if q.Addr().Is4In6() { // ::ffff:a.b.c.d/n covers a.b.c.d/(n-96)
			bits = max(bits-96, 0)
		}
		s.allowed = append(s.allowed, netip.PrefixFrom(q.Addr().Unmap(), bits).Masked())
	}
}

// UseSRTP encrypts the stream with SDES-SRTP (RFC 4568, 3711): RTP and
// RTCP are sent under k.Local and accepted only when they authenticate
// under k.Remote and are not replays. Call it before Run.
func (s *Session) UseSRTP(k SDES) error {
	st, err := newSRTPState(k.Local, k.Remote)
	if err != nil {
		return err
	}
	s.srtp = st
	return nil
}

// Secure reports whether the stream is SRTP.
func (s *Session) Secure() bool { return s.srtp != nil }

// Codec is the negotiated codec.
func (s *Session) Codec() Codec { return s.codec }

// SetSource sets (or with nil, clears) what is sent; silence is sent meanwhile.
func (s *Session) SetSource(src Source) {
	if src == nil {
		s.source.Store(nil)
		return
	}
	s.source.Store(&src)
}

// SetSink sets where received audio goes; without one it is discarded.
func (s *Session) SetSink(k Sink) {
	if k == nil {
		s.sink.Store(nil)
		return
	}
	s.sink.Store(&k)
}

// SetDTMFSink sets where received telephone-events go.
func (s *Session) SetDTMFSink(d DTMFSink) {
	if d == nil {
		s.dtmf.Store(nil)
		return
	}
	s.dtmf.Store(&d)
}

// Stats returns a snapshot of the counters.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// Run sends and receives until ctx ends (nil), the media timeout fires
// (ErrMediaTimeout) or a socket fails. It closes the sockets on return.
func (s *Session) Run(ctx context.Context) error {
	if s.remote.Load() == nil {
		return errors.New("media session run before negotiation")
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.send(gctx) })
	g.Go(func() error { return s.receive(gctx) })
	g.Go(func() error { s.receiveRTCP(); return nil })
	g.Go(func() error {
		<-gctx.Done()
		s.sendRTCPBye()
		s.Close()
		return nil
	})
	err := g.Wait()
	if ctx.Err() != nil && !errors.Is(err, ErrMediaTimeout) {
		return nil
	}
	return err
}

// Close releases the sockets; Run returns soon after.
func (s *Session) Close() {
	s.closeOnce.Do(func() {
		s.rtpConn.Close()
		s.rtcpConn.Close()
	})
}

// send paces one packet every 20 ms against a deadline, so timer jitter
// never accumulates into drift.
func (s *Session) send(ctx context.Context) error {
	frame := make([]int16, FrameSamples)
	buf := make([]byte, 12+FrameSamples)
	hdr := rtp.Header{Version: 2, PayloadType: s.codec.PayloadType, SSRC: s.ssrc, SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32()}
	var evBuf [4]byte
	silence := make([]byte, FrameSamples)
	for i := range silence {
		silence[i] = s.codec.silence()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	next := time.Now()
	prevAudio := false
	var sinceReport int
	var wake <-chan struct{}
	var waker *Source
	for {
		if src := s.source.Load(); src != waker {
			waker, wake = src, nil
			if src != nil {
				if w, ok := (*src).(Waker); ok {
					wake = w.Wake()
				}
			}
		}
		next = next.Add(framePeriod)
		wait := time.Until(next)
		if wait < -5*framePeriod {
			// A stall (suspend, GC, overload): resynchronise instead of bursting.
			next = time.Now()
		} else if wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			case <-wake:
				timer.Stop() // Go ≥ 1.23: no stale tick can follow
				next = time.Now()
			}
		} else if ctx.Err() != nil {
			return nil
		}
		isAudio := false
		if src := s.source.Load(); src != nil {
			isAudio = (*src).ReadFrame(frame)
		}
		if ev, evTS, marker := s.dtmfOut.next(hdr.Timestamp, evBuf[:]); ev != nil {
			// A key press replaces this slot's audio (RFC 4733 §2.5).
			eh := hdr
			eh.PayloadType, eh.Timestamp, eh.Marker = s.eventPT, evTS, marker
			n, err := eh.MarshalTo(buf)
			if err != nil {
				return fmt.Errorf("marshal rtp header: %w", err)
			}
			n += copy(buf[n:], ev)
			s.write(ctx, buf[:n])
			hdr.SequenceNumber++
			hdr.Timestamp += FrameSamples
			prevAudio = false
			continue
		}
		n, err := hdr.MarshalTo(buf)
		if err != nil {
			return fmt.Errorf("marshal rtp header: %w", err)
		}
		payload := buf[n:n]
		if isAudio {
			payload = s.codec.encode(payload, frame)
		} else {
			payload = append(payload, silence...)
		}
		// Marker on the first packet of a talkspurt (RFC 3551 §4.1).
		if isAudio && !prevAudio {
			buf[1] |= 0x80
		}
		prevAudio = isAudio
		if !s.write(ctx, buf[:n+len(payload)]) {
			return nil
		}
		hdr.SequenceNumber++
		hdr.Timestamp += FrameSamples
		s.mu.Lock()
		s.st.PacketsSent++
		s.st.OctetsSent += uint64(len(payload))
		s.mu.Unlock()
		if sinceReport++; sinceReport == 250 { // every 5 s
			sinceReport = 0
			s.sendRTCPReport(hdr.Timestamp)
		}
	}
}

// write sends one RTP packet, SRTP-encrypted when negotiated; false means
// the session is closing.
func (s *Session) write(ctx context.Context, pkt []byte) bool {
	if st := s.srtp; st != nil {
		var h rtp.Header
		out, err := st.rtpOut.EncryptRTP(st.sealed[:0], pkt, &h)
		if err != nil {
			s.log.Debug("srtp encrypt failed", "error", err)
			return true
		}
		st.sealed, pkt = out, out
	}
	if _, err := s.rtpConn.WriteToUDPAddrPort(pkt, *s.remote.Load()); err != nil {
		if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
			return false
		}
		s.log.Debug("rtp send failed", "error", err)
	}
	return true
}

// SetRemote moves the stream to a new peer address (a re-INVITE): RTP is
// sent there and, when it changed, the latch is released so the new
// address can be latched again.
func (s *Session) SetRemote(addr netip.AddrPort) {
	addr = unmapAddrPort(addr)
	if cur := s.offered.Load(); cur != nil && *cur == addr {
		return
	}
	s.latchMu.Lock()
	defer s.latchMu.Unlock()
	s.offered.Store(&addr)
	s.remote.Store(&addr)
	s.latched.Store(nil)
}

func unmapAddrPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
