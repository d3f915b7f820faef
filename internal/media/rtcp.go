package media

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pion/rtcp"
)

// ntpEpochOffset is the seconds between 1900 (NTP) and 1970 (Unix).
const ntpEpochOffset = 2208988800

func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) * (1 << 32) / uint64(time.Second)
	return secs<<32 | frac
}

// rtcpAddr is where RTCP goes: the port above the peer's RTP port.
func (s *Session) rtcpAddr() netip.AddrPort {
	r := *s.remote.Load()
	return netip.AddrPortFrom(r.Addr(), r.Port()+1)
}

// sendRTCPReport sends a sender report with one reception report block for
// the peer's stream (RFC 3550 §6.4.1).
func (s *Session) sendRTCPReport(rtpTS uint32) {
	now := time.Now()
	s.mu.Lock()
	sr := &rtcp.SenderReport{
		SSRC:        s.ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     rtpTS,
		PacketCount: uint32(s.st.PacketsSent),
		OctetCount:  uint32(s.st.OctetsSent),
	}
	if rx := &s.rx; rx.started {
		expected := rx.maxSeq - rx.baseSeq + 1
		lost := int64(expected) - int64(rx.received)
		expInterval := expected - rx.expPrior
		recvInterval := rx.received - rx.recvPrior
		rx.expPrior, rx.recvPrior = expected, rx.received
		var fraction uint8
		if lostInterval := int64(expInterval) - int64(recvInterval); expInterval > 0 && lostInterval > 0 {
			fraction = uint8(lostInterval << 8 / int64(expInterval))
		}
		var dlsr uint32
		if !rx.lastSRAt.IsZero() {
			dlsr = uint32(now.Sub(rx.lastSRAt).Seconds() * 65536)
		}
		sr.Reports = []rtcp.ReceptionReport{{
			SSRC:               rx.remoteSSRC,
			FractionLost:       fraction,
			TotalLost:          uint32(max(lost, 0)) & 0xFFFFFF,
			LastSequenceNumber: rx.maxSeq,
			Jitter:             uint32(rx.jitter),
			LastSenderReport:   rx.lastSR,
			Delay:              dlsr,
		}}
	}
	s.mu.Unlock()
	s.writeRTCP(sr, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: s.ssrc,
		Items:  []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "parley"}},
	}}})
}

func (s *Session) sendRTCPBye() {
	if s.remote.Load() == nil {
		return
	}
	s.writeRTCP(&rtcp.Goodbye{Sources: []uint32{s.ssrc}})
}

func (s *Session) writeRTCP(pkts ...rtcp.Packet) {
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		s.log.Debug("rtcp marshal failed", "error", err)
		return
	}
	if st := s.srtp; st != nil {
		if b, err = st.sealRTCP(b); err != nil {
			s.log.Debug("srtcp encrypt failed", "error", err)
			return
		}
	}
	if _, err := s.rtcpConn.WriteToUDPAddrPort(b, s.rtcpAddr()); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("rtcp send failed", "error", err)
	}
}

// receiveRTCP reads the peer's reports until the socket closes. Like RTP,
// RTCP latches: the first valid report from the latched RTP source's IP
// (any port: NAT may map RTCP elsewhere) or, before RTP latched, from an
// allowed source fixes the one address reports are taken from.
func (s *Session) receiveRTCP() {
	buf := make([]byte, 1500)
	var plain []byte
	var hdr rtcp.Header
	var latchedFrom netip.AddrPort
	var latchedFor *netip.AddrPort // the RTP latch it belongs to; a new one re-opens it
	for {
		n, from, err := s.rtcpConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		from = unmapAddrPort(from)
		rtpLatch := s.latched.Load()
		if latchedFor != rtpLatch || !latchedFrom.IsValid() {
			latchedFrom, latchedFor = netip.AddrPort{}, nil
		}
		if !s.permittedRTCP(from, latchedFrom, rtpLatch) {
			s.countForeign(from, true)
			continue
		}
		data := buf[:n]
		if st := s.srtp; st != nil {
			out, err := st.rtcpIn.DecryptRTCP(plain[:0], data, &hdr)
			if err != nil {
				continue
			}
			plain, data = out, out
		}
		pkts, err := rtcp.Unmarshal(data)
		if err != nil {
			continue
		}
		if !latchedFrom.IsValid() {
			latchedFrom, latchedFor = from, rtpLatch
		}
		now := time.Now()
		s.mu.Lock()
		s.st.RTCPReceived++
		for _, p := range pkts {
			var reports []rtcp.ReceptionReport
			switch p := p.(type) {
			case *rtcp.SenderReport:
				s.rx.lastSR = uint32(p.NTPTime >> 16)
				s.rx.lastSRAt = now
				reports = p.Reports
			case *rtcp.ReceiverReport:
				reports = p.Reports
			}
			for _, r := range reports {
				if r.SSRC == s.ssrc {
					s.st.RemoteFractionLost = float64(r.FractionLost) / 256
					s.st.RemoteJitter = time.Duration(float64(r.Jitter) * float64(time.Second) / float64(s.codec.ClockRate))
				}
			}
		}
		s.mu.Unlock()
	}
}

func (s *Session) permittedRTCP(from, latchedFrom netip.AddrPort, rtpLatch *netip.AddrPort) bool {
	if latchedFrom.IsValid() {
		return from == latchedFrom
	}
	if rtpLatch != nil {
		return rtpLatch.Addr() == from.Addr()
	}
	if o := s.offered.Load(); o != nil && o.Addr() == from.Addr() {
		return true
	}
	return s.allowedSource(from)
}

// dtmfState turns RFC 4733 telephone-event packets into one digit per key
// press: an event is repeated with the same timestamp while the key is held
// and its end packet is sent three times.
type dtmfState struct {
	seen   bool
	lastTS uint32
}

// DTMFKeys are the keys in RFC 4733 event-code order (0-9, *, #, A-D).
const DTMFKeys = "0123456789*#ABCD"

func (d *dtmfState) event(ts uint32, payload []byte) (rune, bool) {
	if len(payload) < 4 || int(payload[0]) >= len(DTMFKeys) {
		return 0, false
	}
	if d.seen && d.lastTS == ts {
		return 0, false
	}
	d.seen, d.lastTS = true, ts
	return rune(DTMFKeys[payload[0]]), true
}
