package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// FuzzOffer parses arbitrary SDP as an offer (or an answer to our offer).
// Whatever it accepts must be usable: a real port, a codec Parley speaks on
// a 7-bit RTP payload type, a telephone-event type distinct from it. The
// answer Parley builds for it, and Parley's own offer, must parse back to
// the same negotiation.
func FuzzOffer(f *testing.F) {
	for _, s := range sdpSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := ParseOffer(body)
		if err != nil {
			if o != nil {
				t.Fatalf("ParseOffer returned an offer and an error: %v", err)
			}
			return
		}
		if !o.Addr.IsValid() || o.Addr.Port() == 0 {
			t.Fatalf("accepted address %v", o.Addr)
		}
		if o.Codec != (Codec{Name: o.Codec.Name, PayloadType: o.Codec.PayloadType, ClockRate: 8000}) || (o.Codec.Name != PCMU.Name && o.Codec.Name != PCMA.Name) {
			t.Fatalf("accepted codec %v", o.Codec)
		}
		if o.Codec.PayloadType > 127 || o.EventPT > 127 {
			t.Fatalf("payload types %d/%d do not fit RTP's 7 bits", o.Codec.PayloadType, o.EventPT)
		}
		if o.EventPT != 0 && o.EventPT == o.Codec.PayloadType {
			t.Fatalf("telephone-event and audio share payload type %d", o.EventPT)
		}
		if o.Addr.Addr().IsUnspecified() && !o.OnHold {
			t.Fatalf("address %v is not on hold", o.Addr)
		}

		local := netip.AddrPortFrom(o.Addr.Addr().WithZone(""), o.Addr.Port())
		var ours *Crypto
		if o.Secure {
			if len(o.Crypto) == 0 {
				t.Fatalf("accepted an RTP/SAVP stream without a usable a=crypto")
			}
			keys, err := AnswerCrypto(o)
			if err != nil {
				t.Fatalf("AnswerCrypto: %v", err)
			}
			ours = &keys.Local
		}
		answer := Answer(local, 1, o.Codec, o.EventPT, ours)
		ans, err := ParseOffer(answer)
		if err != nil {
			t.Fatalf("our answer does not parse: %v\n%s", err, answer)
		}
		want := Offer{Addr: local, Codec: o.Codec, EventPT: o.EventPT, Ptime: 20, OnHold: local.Addr().IsUnspecified(), Secure: ours != nil}
		if !reflect.DeepEqual(ans.withoutCrypto(), want) {
			t.Fatalf("our answer parses as %+v, want %+v", *ans, want)
		}
		if ours != nil && (len(ans.Crypto) != 1 || ans.Crypto[0].Tag != ours.Tag || ans.Crypto[0].Suite != ours.Suite || !bytes.Equal(ans.Crypto[0].Key, ours.Key)) {
			t.Fatalf("our answer's a=crypto parses as %+v, want %+v", ans.Crypto, *ours)
		}
		back, err := ParseOffer(OfferSDP(local, 2, nil))
		if err != nil {
			t.Fatalf("our offer does not parse: %v", err)
		}
		if back.Addr != local || back.Codec != PCMU || back.EventPT != offerEventPT {
			t.Fatalf("our offer parses as %+v", *back)
		}
	})
}

// FuzzTelephoneEvent checks RFC 4733 both ways. Digits queued with SendDTMF
// and sent as the send loop does come back, one per key press, through the
// receive side's decoder; keys outside 0-9*#A-D are refused. Arbitrary
// event packets (a 4-byte timestamp, a length byte, the payload) decode to
// keys only, never twice for one timestamp in a row.
func FuzzTelephoneEvent(f *testing.F) {
	f.Add("123", []byte{0, 0, 0, 1, 4, 1, 10, 0, 160, 0, 0, 0, 1, 4, 1, 0x8a, 3, 32})
	f.Add("*#ABCD0", []byte{})
	f.Add("12x", []byte{0, 0, 0, 2, 3, 1, 2, 3})
	f.Add("", []byte{0xff, 0xff, 0xff, 0xff, 4, 16, 10, 0, 160})
	f.Fuzz(func(t *testing.T, digits string, packets []byte) {
		s := &Session{eventPT: 101}
		done, err := s.SendDTMF(digits)
		valid := true
		for _, r := range strings.ToUpper(digits) {
			valid = valid && strings.ContainsRune(DTMFKeys, r)
		}
		if (err == nil) != valid {
			t.Fatalf("SendDTMF(%q): %v", digits, err)
		}
		if err == nil {
			var rx dtmfState
			var got strings.Builder
			buf := make([]byte, 4)
			ts := uint32(0xfffff000) // crosses the 32-bit wrap
			slots := 0
			for open := true; open; slots++ {
				if slots > len(digits)*(dtmfToneFrames+dtmfEndRepeats+dtmfGapFrames)+2 {
					t.Fatalf("%q still sending after %d packets", digits, slots)
				}
				if p, evTS, _ := s.dtmfOut.next(ts, buf); p != nil {
					if d, ok := rx.event(evTS, p); ok {
						got.WriteRune(d)
					}
				}
				ts += FrameSamples
				select {
				case <-done:
					open = false
				default:
				}
			}
			if got.String() != strings.ToUpper(digits) {
				t.Fatalf("sent %q, received %q", digits, got.String())
			}
		}

		var rx dtmfState
		var last uint32
		delivered := false
		for len(packets) >= 5 {
			ts := binary.BigEndian.Uint32(packets)
			n := min(int(packets[4]), len(packets)-5)
			payload := packets[5 : 5+n]
			packets = packets[5+n:]
			d, ok := rx.event(ts, payload)
			if !ok {
				continue
			}
			if !strings.ContainsRune(DTMFKeys, d) || len(payload) < 4 || rune(DTMFKeys[payload[0]]) != d {
				t.Fatalf("payload %x decoded as %q", payload, d)
			}
			if delivered && ts == last {
				t.Fatalf("two key presses for timestamp %d", ts)
			}
			delivered, last = true, ts
		}
	})
}

// FuzzReorder drives the receive reorder buffer with arbitrary operations
// (8 bytes each: op, sequence number, timestamp, payload length, then the
// payload; a push of any packet, or giving up on a gap) and checks its invariants after each: the held count matches
// the used slots, held packets are ahead of the next expected one within
// the depth, the oldest arrival is right, only whole 20 ms frames go out,
// and one operation emits a bounded amount of audio.
func FuzzReorder(f *testing.F) {
	// op: bits 0-1 = 3 gives up on a gap, else push; bit 2 moves the clock
	// back; bits 3-7 are milliseconds.
	push := func(ops []byte, op byte, seq uint16, ts uint32, n byte) []byte {
		ops = append(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(append(ops, op), seq), ts), n)
		return append(ops, make([]byte, n)...)
	}
	var inOrder, shuffled, jumps []byte
	for i := range 5 {
		inOrder = push(inOrder, 20<<3, uint16(65534+i), uint32(i*160), 160)
	}
	for _, i := range []int{1, 3, 2, 5, 4, 9, -1, 8, 7, 7, 6} {
		if i < 0 {
			shuffled = push(shuffled, 3|30<<3, 0, 0, 0)
			continue
		}
		shuffled = push(shuffled, 5<<3, uint16(i), uint32(i*160), 160)
	}
	for _, p := range [][2]uint32{{1, 0}, {2, 8000}, {200, 8160}, {201, 9000}, {100, 0}, {30000, 1}, {30001, 0xffffff00}} {
		jumps = push(jumps, 4|3<<3, uint16(p[0]), p[1], 80)
	}
	f.Add(byte(3), false, inOrder)
	f.Add(byte(3), true, shuffled)
	f.Add(byte(7), false, shuffled)
	f.Add(byte(1), false, jumps)
	f.Fuzz(func(t *testing.T, depth byte, alaw bool, ops []byte) {
		d := int(depth%8) + 1
		c := PCMU
		if alaw {
			c = PCMA
		}
		emitted := 0
		r := newReorder(d, c, func(frame []int16) {
			if len(frame) != FrameSamples {
				t.Fatalf("frame of %d samples", len(frame))
			}
			emitted += len(frame)
		})
		at := time.Unix(1_700_000_000, 0)
		// One op can conceal up to maxConceal+depth packets of the longest
		// payload seen, fill a silence gap of up to maxConceal frames, and
		// play what was held.
		maxLen := FrameSamples
		for len(ops) >= 8 {
			op, seq, ts, n := ops[0], binary.BigEndian.Uint16(ops[1:]), binary.BigEndian.Uint32(ops[3:]), int(ops[7])
			ops = ops[8:]
			n = min(n, len(ops))
			payload := ops[:n]
			ops = ops[n:]
			maxLen = max(maxLen, n)
			if op&4 == 0 {
				at = at.Add(time.Duration(op>>3) * time.Millisecond)
			} else {
				at = at.Add(-time.Duration(op>>3) * time.Millisecond)
			}
			emitted = 0
			var res pushResult
			if op&3 == 3 {
				res = r.skipGap()
			} else {
				res = r.push(seq, ts, payload, at)
			}
			if res.lost < 0 || res.late < 0 || res.late > 1 {
				t.Fatalf("push result %+v", res)
			}
			if limit := (maxConceal+d+2)*maxLen + maxConceal*FrameSamples + (d+1)*maxLen + FrameSamples; emitted > limit {
				t.Fatalf("one operation emitted %d samples (limit %d)", emitted, limit)
			}
			checkReorder(t, r)
		}
	})
}

func checkReorder(t *testing.T, r *reorder) {
	t.Helper()
	used := 0
	var oldest time.Time
	for i, sl := range r.slots {
		if !sl.used {
			continue
		}
		used++
		if int(sl.seq)%len(r.slots) != i {
			t.Fatalf("seq %d held in slot %d of %d", sl.seq, i, len(r.slots))
		}
		if ahead := int16(sl.seq - r.next); ahead < 1 || int(ahead) >= r.depth {
			t.Fatalf("held seq %d is %d ahead of next %d (depth %d)", sl.seq, ahead, r.next, r.depth)
		}
		if oldest.IsZero() || sl.at.Before(oldest) {
			oldest = sl.at
		}
	}
	if used != r.count || r.pending() != (used > 0) {
		t.Fatalf("count %d, %d slots used", r.count, used)
	}
	if used > 0 && !r.oldest.Equal(oldest) {
		t.Fatalf("oldest %v, want %v", r.oldest, oldest)
	}
	if len(r.pcm) >= FrameSamples {
		t.Fatalf("%d samples left undelivered", len(r.pcm))
	}
}

// FuzzReceive sends arbitrary datagrams to a running session's RTP and RTCP
// sockets and checks, after each input, that the session is still running
// and that every RTP datagram was accounted for exactly once (received or
// invalid). Input records are a flags byte (bit 0: RTCP), a 2-byte length
// and the datagram (at most 64 records are sent). The session negotiates PCMA without telephone-event, so
// every RTP datagram lands in one of those two counters.
func FuzzReceive(f *testing.F) {
	for _, seed := range receiveSeeds() {
		f.Add(seed)
	}
	cfg := Config{BindIP: netip.MustParseAddr("127.0.0.1"), Ports: PortRange{Min: 43000, Max: 43999}}
	s, err := Listen(cfg)
	if err != nil {
		f.Fatal(err)
	}
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	s.Negotiated(peer.LocalAddr().(*net.UDPAddr).AddrPort(), PCMA, 0)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	f.Cleanup(func() {
		cancel()
		<-ran
		peer.Close()
	})
	rtpAddr := netip.AddrPortFrom(cfg.BindIP, uint16(s.LocalPort()))
	rtcpAddr := netip.AddrPortFrom(cfg.BindIP, uint16(s.LocalPort()+1))
	var round uint32

	f.Fuzz(func(t *testing.T, data []byte) {
		before := s.Stats()
		sentRTP := uint64(0)
		// At most 64 datagrams, so the socket buffers never overflow.
		for sent := 0; len(data) >= 3 && sent < 64; sent++ {
			flags, n := data[0], int(binary.BigEndian.Uint16(data[1:]))
			data = data[3:]
			n = min(n, len(data), 1500)
			dst := rtpAddr
			if flags&1 == 1 {
				dst = rtcpAddr
			} else {
				sentRTP++
			}
			if _, err := peer.WriteToUDPAddrPort(data[:n], dst); err != nil {
				t.Fatal(err)
			}
			data = data[n:]
		}
		// A report for our stream with a jitter unique to this round marks
		// the end of the RTCP datagrams.
		round++
		jitter := round & 0xFFFFFF
		mark, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: s.ssrc, Jitter: jitter}}}})
		if _, err := peer.WriteToUDPAddrPort(mark, rtcpAddr); err != nil {
			t.Fatal(err)
		}
		wantJitter := time.Duration(float64(jitter) * float64(time.Second) / float64(PCMA.ClockRate))
		deadline := time.Now().Add(5 * time.Second)
		for {
			select {
			case err := <-ran:
				t.Fatalf("session stopped: %v", err)
			default:
			}
			st := s.Stats()
			if st.PacketsReceived+st.PacketsInvalid-before.PacketsReceived-before.PacketsInvalid > sentRTP {
				t.Fatalf("%d RTP datagrams sent, %d counted", sentRTP, st.PacketsReceived+st.PacketsInvalid-before.PacketsReceived-before.PacketsInvalid)
			}
			if st.PacketsReceived+st.PacketsInvalid-before.PacketsReceived-before.PacketsInvalid == sentRTP && st.RemoteJitter == wantJitter {
				if st.RemoteFractionLost < 0 || st.RemoteFractionLost >= 1 || st.Jitter < 0 || st.PacketsLost < before.PacketsLost || st.PacketsLate < before.PacketsLate {
					t.Fatalf("stats %+v after %+v", st, before)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 5 s: %d RTP datagrams sent, stats %+v (before %+v), want remote jitter %v", sentRTP, st, before, wantJitter)
			}
			time.Sleep(20 * time.Microsecond)
		}
	})
}

// receiveSeeds are datagram sequences in FuzzReceive's record format:
// in-order, reordered, lost and duplicated PCMA packets, a new SSRC, padding,
// an extension and CSRCs, then RTCP sender/receiver reports, SDES and BYE.
func receiveSeeds() [][]byte {
	pkt := func(seq uint16, ts uint32, ssrc uint32, mod func(*rtp.Packet)) []byte {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: PCMA.PayloadType, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}, Payload: make([]byte, 160)}
		if mod != nil {
			mod(p)
		}
		b, _ := p.Marshal()
		return b
	}
	record := func(out []byte, rtcpPort bool, b []byte) []byte {
		flags := byte(0)
		if rtcpPort {
			flags = 1
		}
		return append(binary.BigEndian.AppendUint16(append(out, flags), uint16(len(b))), b...)
	}
	var inOrder, shuffled, odd, reports []byte
	for i := range 6 {
		inOrder = record(inOrder, false, pkt(uint16(65533+i), uint32(i*160), 7, nil))
	}
	for _, i := range []int{0, 2, 1, 1, 5, 4, 40, 3} {
		shuffled = record(shuffled, false, pkt(uint16(100+i), uint32(i*160), 7, nil))
	}
	odd = record(odd, false, pkt(1, 0, 8, func(p *rtp.Packet) { p.Padding, p.PaddingSize = true, 4 }))
	odd = record(odd, false, pkt(2, 160, 8, func(p *rtp.Packet) { _ = p.SetExtension(1, []byte{1, 2}); p.Extension = true }))
	odd = record(odd, false, pkt(3, 320, 9, func(p *rtp.Packet) { p.CSRC = []uint32{1, 2}; p.Marker = true }))
	odd = record(odd, false, pkt(4, 480, 9, func(p *rtp.Packet) { p.PayloadType = 13 }))
	odd = record(odd, false, []byte{0x80})
	odd = record(odd, false, nil)
	sr, _ := rtcp.Marshal([]rtcp.Packet{
		&rtcp.SenderReport{SSRC: 7, NTPTime: 0xe0000000_80000000, RTPTime: 160, PacketCount: 5, OctetCount: 800, Reports: []rtcp.ReceptionReport{{SSRC: 1, FractionLost: 25, TotalLost: 3, Jitter: 12}}},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 7, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "peer"}}}}},
	})
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 7, Reports: []rtcp.ReceptionReport{{SSRC: 1, FractionLost: 255, Jitter: 0xffffffff}}}})
	bye, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.Goodbye{Sources: []uint32{7}, Reason: "done"}})
	reports = record(record(record(record(reports, true, sr), true, rr), true, bye), true, []byte{0x81, 0xc9, 0, 0})
	return [][]byte{inOrder, shuffled, odd, reports, append(append([]byte{}, inOrder...), reports...)}
}

// sdpSeeds are offers as SIPp, baresip and trunks send them, plus edge
// cases; more are in testdata/fuzz/FuzzOffer.
var sdpSeeds = []string{
	// SIPp's built-in uac scenario.
	"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
	// baresip-shaped offer (real captures are in testdata/fuzz/FuzzOffer).
	"v=0\r\no=- 1180408432 3428473562 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 10000 RTP/AVP 0 8 101\r\nb=AS:64\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\na=label:1\r\na=ssrc:2311455245 cname:sip:alice@127.0.0.1\r\na=rtcp-rsize\r\na=ptime:20\r\n",
	// A trunk offering wideband first, dynamic PCMA, IPv6, on hold.
	"v=0\r\no=trunk 1 2 IN IP6 ::1\r\ns=call\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 9 96 97\r\na=rtpmap:9 G722/8000\r\na=rtpmap:96 pcma/8000/1\r\na=rtpmap:97 telephone-event/8000\r\na=ptime:30\r\na=sendonly\r\n",
	"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 3000 RTP/AVP 31\r\nc=IN IP4 192.0.2.1\r\nm=audio 0 RTP/AVP 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\nm=audio 4002 RTP/AVP 8\r\nc=IN IP4 0.0.0.0\r\na=inactive\r\n",
	"v=0\r\no=- 0 0 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 169.254.169.254\r\nt=0 0\r\nm=audio 65535 RTP/AVP 18 4 3\r\n",
}

// withoutCrypto is the offer without its keys (compared on their own).
func (o Offer) withoutCrypto() Offer {
	o.Crypto = nil
	return o
}
