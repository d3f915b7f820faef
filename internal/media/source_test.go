package media

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/parley-voice/parley/internal/audio"
)

// rawPeer is a hand-driven RTP endpoint on a real UDP socket; with ctx set
// it encrypts what it sends with pion/srtp.
type rawPeer struct {
	t    *testing.T
	conn *net.UDPConn
	rtcp *net.UDPConn // the port above conn
	to   netip.AddrPort
	ssrc uint32
	seq  uint16
	ts   uint32
	ctx  *srtp.Context
}

func newRawPeer(t *testing.T, ip string, to netip.AddrPort) *rawPeer {
	t.Helper()
	c, rc, err := listenPair(netip.MustParseAddr(ip), PortRange{Min: 44000, Max: 44999})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); rc.Close() })
	return &rawPeer{t: t, conn: c, rtcp: rc, to: to, ssrc: 0x5eed0000 | uint32(len(ip)), seq: 1000, ts: 5000}
}

func (p *rawPeer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// frame sends one 20 ms PCMU frame whose first sample is v*64 (what
// collector reads back as v, exactly for |v| ≤ 25) and returns the wire
// bytes.
func (p *rawPeer) frame(v int16) []byte {
	pcm := make([]int16, FrameSamples)
	pcm[0] = v * 64
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: p.ssrc}, Payload: audio.EncodeUlaw(nil, pcm)}
	p.seq++
	p.ts += FrameSamples
	b, err := pkt.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	if p.ctx != nil {
		if b, err = p.ctx.EncryptRTP(nil, b, nil); err != nil {
			p.t.Fatal(err)
		}
	}
	p.send(b)
	return b
}

func (p *rawPeer) send(b []byte) {
	if _, err := p.conn.WriteToUDPAddrPort(b, p.to); err != nil {
		p.t.Fatal(err)
	}
}

// received counts the datagrams waiting on the peer's socket.
func (p *rawPeer) received() int {
	buf := make([]byte, 1500)
	n := 0
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, err := p.conn.ReadFromUDPAddrPort(buf); err != nil {
			return n
		}
		n++
	}
}

func runSession(t *testing.T, s *Session) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	return func() { cancel(); wg.Wait() }
}

var testMediaConfig = Config{BindIP: netip.MustParseAddr("127.0.0.1"), Ports: PortRange{Min: 43000, Max: 43999}}

// TestInjectedRTPIsDropped: during a live call a second source sends RTP
// (and RTCP) to the call's port, starting before the caller's first packet
// and interleaved with it afterwards. The caller's audio arrives intact and
// in order, nothing is sent to the injector, and the counters show every
// dropped packet.
func TestInjectedRTPIsDropped(t *testing.T) {
	for _, tc := range []struct {
		name       string
		sdp        func(caller *rawPeer) netip.AddrPort
		allow      []netip.Prefix
		injectorIP string
	}{
		// The caller sends from the address its SDP names.
		{"sdp address", func(c *rawPeer) netip.AddrPort { return c.addr() }, nil, "127.0.0.1"},
		// Behind NAT: the SDP names a private address; RTP comes from the
		// signalling source's IP, a port the SDP never named.
		{"nat via signalling source", func(*rawPeer) netip.AddrPort { return netip.MustParseAddrPort("10.9.8.7:4000") },
			[]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, "127.0.0.2"},
		// The injector sits inside the allowed network but the caller
		// latched first: it is still dropped.
		{"injector inside the allowed network", func(*rawPeer) netip.AddrPort { return netip.MustParseAddrPort("10.9.8.7:4000") },
			[]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Listen(testMediaConfig)
			if err != nil {
				t.Fatal(err)
			}
			local := netip.AddrPortFrom(testMediaConfig.BindIP, uint16(s.LocalPort()))
			caller := newRawPeer(t, "127.0.0.1", local)
			injector := newRawPeer(t, tc.injectorIP, local)
			injector.ssrc, injector.seq = 0xbad, 1003 // sequence numbers that collide with the caller's
			s.Negotiated(tc.sdp(caller), PCMU, 0)
			s.AllowSources(tc.allow...)
			sink := &collector{}
			s.SetSink(sink)
			stop := runSession(t, s)

			injected := 0
			if tc.allow == nil || !tc.allow[0].Contains(injector.addr().Addr()) {
				// An outsider may even come first: it must not latch.
				for range 5 {
					injector.frame(-20)
					injected++
				}
				time.Sleep(20 * time.Millisecond)
			}
			for i := range 40 {
				caller.frame(int16(i%25 + 1))
				injector.frame(-20)
				injected++
				time.Sleep(5 * time.Millisecond)
			}
			// RTCP: the caller's report latches, the injector's is dropped.
			rtcpTo := netip.AddrPortFrom(local.Addr(), local.Port()+1)
			rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: caller.ssrc}})
			if _, err := caller.conn.WriteToUDPAddrPort(rr, rtcpTo); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			bye, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.Goodbye{Sources: []uint32{injector.ssrc}}})
			if _, err := injector.conn.WriteToUDPAddrPort(bye, rtcpTo); err != nil {
				t.Fatal(err)
			}
			time.Sleep(150 * time.Millisecond)
			stop()

			wantFrames(t, sink, 40, func(i int) int { return i%25 + 1 })
			st := s.Stats()
			if st.PacketsForeign != uint64(injected) || st.RTCPForeign != 1 || st.RTCPReceived != 1 || st.PacketsReceived != 40 {
				t.Fatalf("stats %+v; want %d foreign RTP, 1 foreign RTCP, 40 received", st, injected)
			}
			if n := injector.received(); n != 0 {
				t.Fatalf("the session sent %d packets to the injector", n)
			}
			if n := caller.received(); n == 0 {
				t.Fatal("the session sent nothing to the caller it latched to")
			}
		})
	}
}

// TestReInviteMovesLatch: a re-INVITE naming a new address releases the
// latch; the old source is then foreign.
func TestReInviteMovesLatch(t *testing.T) {
	s, err := Listen(testMediaConfig)
	if err != nil {
		t.Fatal(err)
	}
	local := netip.AddrPortFrom(testMediaConfig.BindIP, uint16(s.LocalPort()))
	first := newRawPeer(t, "127.0.0.1", local)
	second := newRawPeer(t, "127.0.0.3", local)
	second.ssrc, second.seq, second.ts = first.ssrc, 1010, 5000+10*FrameSamples
	s.Negotiated(first.addr(), PCMU, 0)
	sink := &collector{}
	s.SetSink(sink)
	stop := runSession(t, s)
	for i := range 10 {
		first.frame(int16(i + 1))
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(30 * time.Millisecond)
	s.SetRemote(second.addr())
	for i := range 10 {
		second.frame(int16(i + 11))
		first.frame(-20)
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	stop()
	got := sink.values()
	if len(got) != 20 || got[19] != 20 {
		t.Fatalf("frames %v", got)
	}
	if st := s.Stats(); st.PacketsForeign != 10 {
		t.Fatalf("foreign = %d, want 10 (the old address after the move)", st.PacketsForeign)
	}
}

// wantFrames checks the sink got exactly n frames, the i-th reading want(i).
func wantFrames(t *testing.T, sink *collector, n int, want func(i int) int) {
	t.Helper()
	got := sink.values()
	if len(got) != n {
		t.Fatalf("sink got %d frames, want %d: %v", len(got), n, got)
	}
	for i, v := range got {
		if v != want(i) {
			t.Fatalf("frame %d = %d, want %d (audio from elsewhere reached the call): %v", i, v, want(i), got)
		}
	}
}

func TestAllowSourcesUnmaps(t *testing.T) {
	s := &Session{}
	s.AllowSources(netip.MustParsePrefix("::ffff:10.1.2.0/120"), netip.MustParsePrefix("192.0.2.0/24"), netip.Prefix{})
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"10.1.2.77:5000", true}, {"10.1.3.1:5000", false}, {"192.0.2.9:4000", true}, {"198.51.100.1:4000", false},
	} {
		if got := s.allowedSource(netip.MustParseAddrPort(tc.addr)); got != tc.ok {
			t.Errorf("%s allowed = %v, want %v", tc.addr, got, tc.ok)
		}
	}
}
