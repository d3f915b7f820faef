package media

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pion/rtp"
)

// rxState is the receive-side bookkeeping RTCP reports need. Guarded by
// Session.mu.
type rxState struct {
	remoteSSRC uint32
	started    bool
	baseSeq    uint32
	maxSeq     uint32 // extended highest sequence number
	received   uint64
	expPrior   uint32
	recvPrior  uint64
	transit    int64 // previous relative transit, in timestamp units
	jitter     float64
	lastSR     uint32 // middle 32 bits of the last SR's NTP time
	lastSRAt   time.Time
}

// gapWait is how long the receiver holds later packets waiting for a missing one.
const gapWait = 60 * time.Millisecond

// receive reads RTP, reorders it and hands 20 ms frames to the sink.
func (s *Session) receive(ctx context.Context) error {
	buf := make([]byte, 1500)
	var plain []byte
	var hdr rtp.Header
	var pkt rtp.Packet
	jb := newReorder(s.cfg.Reorder, s.codec, s.deliver)
	lastPacket := time.Now()
	var deadline time.Time
	setDeadline := func(t time.Time) {
		if !t.Equal(deadline) {
			deadline = t
			_ = s.rtpConn.SetReadDeadline(t)
		}
	}
	var ev dtmfState
	for {
		now := time.Now()
		switch {
		case jb.pending():
			setDeadline(jb.oldest.Add(gapWait))
		case deadline.IsZero() || !now.Before(deadline) || deadline.Sub(now) < gapWait:
			setDeadline(now.Add(time.Second))
		}
		n, from, err := s.rtpConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				now = time.Now()
				if jb.pending() && !now.Before(jb.oldest.Add(gapWait)) {
					s.countLost(jb.skipGap())
				}
				if s.cfg.Timeout > 0 && now.Sub(lastPacket) > s.cfg.Timeout {
					return ErrMediaTimeout
				}
				deadline = time.Time{}
				continue
			}
			return err
		}
		from = unmapAddrPort(from)
		if !s.permitted(from) {
			s.countForeign(from, false)
			continue
		}
		data := buf[:n]
		if st := s.srtp; st != nil {
			out, err := st.rtpIn.DecryptRTP(plain[:0], data, &hdr)
			if err != nil {
				s.countInvalid() // forged, corrupted or replayed
				continue
			}
			plain, data = out, out
		}
		if pkt.Unmarshal(data) != nil || pkt.Version != 2 {
			s.countInvalid()
			continue
		}
		switch pkt.PayloadType {
		case s.codec.PayloadType:
		case s.eventPT:
			if s.eventPT != 0 {
				if d, ok := ev.event(pkt.Timestamp, pkt.Payload); ok {
					if k := s.dtmf.Load(); k != nil {
						(*k).DTMF(d)
					}
				}
				lastPacket = time.Now()
				s.latch(from)
				continue
			}
			s.countInvalid()
			continue
		default:
			s.countInvalid() // comfort noise and anything we did not negotiate
			continue
		}
		lastPacket = time.Now()
		s.latch(from)
		s.account(&pkt, lastPacket)
		s.countLost(jb.push(pkt.SequenceNumber, pkt.Timestamp, pkt.Payload, lastPacket))
	}
}

// permitted says whether RTP from this source may be looked at: once
// latched only the latched source; before, the SDP address or an allowed
// network.
func (s *Session) permitted(from netip.AddrPort) bool {
	if l := s.latched.Load(); l != nil {
		return *l == from
	}
	return s.allowedSource(from)
}

func (s *Session) allowedSource(from netip.AddrPort) bool {
	if o := s.offered.Load(); o != nil && *o == from {
		return true
	}
	for _, p := range s.allowed {
		if p.Contains(from.Addr()) {
			return true
		}
	}
	return false
}

// latch locks the stream to the source of the first valid packet from an
// allowed source (symmetric RTP through NAT): RTP is sent there and every
// other source is dropped for the rest of the call.
func (s *Session) latch(from netip.AddrPort) {
	if s.latched.Load() != nil {
		return
	}
	s.latchMu.Lock()
	defer s.latchMu.Unlock()
	if s.latched.Load() != nil {
		return
	}
	s.latched.Store(&from)
	if cur := s.remote.Load(); cur == nil || *cur != from {
		s.log.Debug("rtp latched to source address", "sdp", cur, "source", from)
		s.remote.Store(&from)
	}
}

// countForeign counts a packet from a source that is not allowed and logs
// the first one of the call.
func (s *Session) countForeign(from netip.AddrPort, isRTCP bool) {
	s.mu.Lock()
	if isRTCP {
		s.st.RTCPForeign++
	} else {
		s.st.PacketsForeign++
	}
	s.mu.Unlock()
	if s.foreignLogged.CompareAndSwap(false, true) {
		kind := "rtp"
		if isRTCP {
			kind = "rtcp"
		}
		s.log.Warn("media from a foreign source dropped", "kind", kind, "source", from, "latched", s.latched.Load(), "sdp", s.offered.Load())
	}
}

func (s *Session) deliver(frame []int16) {
	if k := s.sink.Load(); k != nil {
		(*k).WriteFrame(frame)
	}
}

func (s *Session) countInvalid() {
	s.mu.Lock()
	s.st.PacketsInvalid++
	s.mu.Unlock()
}

func (s *Session) countLost(r pushResult) {
	if r.lost == 0 && r.late == 0 {
		return
	}
	s.mu.Lock()
	s.st.PacketsLost += uint64(r.lost)
	s.st.PacketsLate += uint64(r.late)
	s.mu.Unlock()
}

// account updates the RFC 3550 receive statistics (A.1, A.8).
func (s *Session) account(p *rtp.Packet, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rx := &s.rx
	seq := uint32(p.SequenceNumber)
	if !rx.started || rx.remoteSSRC != p.SSRC {
		*rx = rxState{remoteSSRC: p.SSRC, started: true, baseSeq: seq, maxSeq: seq, lastSR: rx.lastSR, lastSRAt: rx.lastSRAt}
	} else {
		cycles := rx.maxSeq &^ 0xFFFF
		ext := cycles | seq
		// Pick the extension closest to the current maximum.
		if d := int32(ext - rx.maxSeq); d < -0x8000 {
			ext += 1 << 16
		} else if d > 0x8000 && cycles > 0 {
			ext -= 1 << 16
		}
		if ext > rx.maxSeq {
			rx.maxSeq = ext
		}
	}
	rx.received++
	arrival := at.UnixNano() * int64(s.codec.ClockRate) / int64(time.Second)
	transit := arrival - int64(p.Timestamp)
	if rx.received > 1 {
		d := transit - rx.transit
		if d < 0 {
			d = -d
		}
		rx.jitter += (float64(d) - rx.jitter) / 16
	}
	rx.transit = transit
	s.st.PacketsReceived++
	s.st.Jitter = time.Duration(rx.jitter * float64(time.Second) / float64(s.codec.ClockRate))
}
