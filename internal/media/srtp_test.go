package media

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

func TestParseCrypto(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, keyLen))
	tests := []struct {
		name, in string
		suite    Suite
		tag      int
		ok       bool
	}{
		{"80", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key, SuiteAES128SHA1_80, 1, true},
		{"32 lower case", "2 aes_cm_128_hmac_sha1_32 inline:" + key, SuiteAES128SHA1_32, 2, true},
		{"lifetime", "3 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^20", SuiteAES128SHA1_80, 3, true},
		{"unpadded base64", "1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.TrimRight(key, "="), SuiteAES128SHA1_80, 1, true},
		{"mki", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^20|1:4", "", 0, false},
		{"two keys", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key + ";inline:" + key, "", 0, false},
		{"unknown suite", "1 AES_256_CM_HMAC_SHA1_80 inline:" + key, "", 0, false},
		{"short key", "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA", "", 0, false},
		{"not inline", "1 AES_CM_128_HMAC_SHA1_80 uri:" + key, "", 0, false},
		{"session params", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " UNENCRYPTED_SRTP", "", 0, false},
		{"bad tag", "x AES_CM_128_HMAC_SHA1_80 inline:" + key, "", 0, false},
		{"too few fields", "1 AES_CM_128_HMAC_SHA1_80", "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseCrypto(tc.in)
			if !tc.ok {
				if !errors.Is(err, ErrCrypto) {
					t.Fatalf("err = %v, want ErrCrypto", err)
				}
				return
			}
			if err != nil || c.Suite != tc.suite || c.Tag != tc.tag || !bytes.Equal(c.Key, bytes.Repeat([]byte{7}, keyLen)) {
				t.Fatalf("got %+v, %v", c, err)
			}
		})
	}
}

// TestSDESOfferAnswer runs our offer through our answer and back: the
// keys pair up by tag, each side's key is its own, and a plain answer or
// an SAVP offer without a usable key is not acceptable.
func TestSDESOfferAnswer(t *testing.T) {
	offered, err := OfferCrypto()
	if err != nil {
		t.Fatal(err)
	}
	sdp := OfferSDP(netip.MustParseAddrPort("192.0.2.7:4444"), 7, offered)
	if !bytes.Contains(sdp, []byte("m=audio 4444 RTP/SAVP 0 8 101\r\n")) || bytes.Count(sdp, []byte("a=crypto:")) != 2 {
		t.Fatalf("offer:\n%s", sdp)
	}
	o, err := ParseOffer(sdp)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Secure || len(o.Crypto) != 2 || o.Crypto[0].Suite != SuiteAES128SHA1_80 || !bytes.Equal(o.Crypto[1].Key, offered[1].Key) {
		t.Fatalf("offer read back as %+v", o)
	}
	k, err := AnswerCrypto(o)
	if err != nil {
		t.Fatal(err)
	}
	if k.Local.Tag != 1 || k.Local.Suite != SuiteAES128SHA1_80 || bytes.Equal(k.Local.Key, offered[0].Key) {
		t.Fatalf("answer key %v must be our own, under tag 1", k.Local)
	}
	ans, err := ParseOffer(Answer(netip.MustParseAddrPort("198.51.100.7:12000"), 42, o.Codec, o.EventPT, &k.Local))
	if err != nil {
		t.Fatal(err)
	}
	m, err := MatchAnswer(offered, ans)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Local.Key, offered[0].Key) || !bytes.Equal(m.Remote.Key, k.Local.Key) {
		t.Fatal("keys paired wrongly")
	}

	plain, _ := ParseOffer(Answer(netip.MustParseAddrPort("198.51.100.7:12000"), 42, PCMU, 0, nil))
	if _, err := MatchAnswer(offered, plain); !errors.Is(err, ErrNotAcceptable) {
		t.Fatalf("plain answer to an SRTP offer: %v", err)
	}
	other := *ans
	other.Crypto = []Crypto{{Tag: 9, Suite: SuiteAES128SHA1_80, Key: k.Local.Key}}
	if _, err := MatchAnswer(offered, &other); !errors.Is(err, ErrNotAcceptable) {
		t.Fatalf("answer with an unknown tag: %v", err)
	}
	bad := strings.Replace(string(sdp), "AES_CM_128_HMAC_SHA1", "F8_128_HMAC_SHA1", -1)
	if _, err := ParseOffer([]byte(bad)); !errors.Is(err, ErrNotAcceptable) {
		t.Fatalf("SAVP offer without a usable suite: %v", err)
	}
}

// TestSRTPSession: a session with SDES keys and a peer using pion/srtp on
// its own over real UDP. Audio flows both ways; the wire carries no plain
// PCMU; replayed, forged and wrongly keyed packets are refused; SRTCP is
// read and sent.
func TestSRTPSession(t *testing.T) {
	for _, suite := range suites {
		t.Run(string(suite), func(t *testing.T) {
			ours, _ := NewCrypto(1, suite)
			theirs, _ := NewCrypto(1, suite)
			s, err := Listen(testMediaConfig)
			if err != nil {
				t.Fatal(err)
			}
			local := netip.AddrPortFrom(testMediaConfig.BindIP, uint16(s.LocalPort()))
			peer := newRawPeer(t, "127.0.0.1", local)
			if peer.ctx, err = srtp.CreateContext(theirs.Key[:16], theirs.Key[16:], suite.profile()); err != nil {
				t.Fatal(err)
			}
			dec, err := srtp.CreateContext(ours.Key[:16], ours.Key[16:], suite.profile())
			if err != nil {
				t.Fatal(err)
			}
			s.Negotiated(peer.addr(), PCMU, 0)
			if err := s.UseSRTP(SDES{Local: ours, Remote: theirs}); err != nil {
				t.Fatal(err)
			}
			sink := &collector{}
			s.SetSink(sink)
			s.SetSource(&counter{})
			stop := runSession(t, s)

			var sent [][]byte
			for i := range 20 {
				sent = append(sent, peer.frame(int16(i+1)))
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(80 * time.Millisecond)
			// A replay, a plain RTP packet and one under another key.
			peer.send(sent[19])
			keyless := &rawPeer{t: t, conn: peer.conn, to: local, ssrc: peer.ssrc, seq: peer.seq, ts: peer.ts}
			keyless.frame(-20)
			stranger, _ := NewCrypto(1, suite)
			peer.ctx, _ = srtp.CreateContext(stranger.Key[:16], stranger.Key[16:], suite.profile())
			peer.frame(-20)
			// SRTCP from the peer: a receiver report.
			enc, _ := srtp.CreateContext(theirs.Key[:16], theirs.Key[16:], suite.profile())
			rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: peer.ssrc}})
			srr, err := enc.EncryptRTCP(nil, rr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := peer.conn.WriteToUDPAddrPort(srr, netip.AddrPortFrom(local.Addr(), local.Port()+1)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			stop()

			wantFrames(t, sink, 20, func(i int) int { return i + 1 })
			st := s.Stats()
			if st.PacketsInvalid != 3 || st.PacketsReceived != 20 || st.RTCPReceived != 1 {
				t.Fatalf("stats %+v: want 3 invalid (replay, plain, wrong key), 20 received, 1 RTCP", st)
			}

			// What the session sent: SRTP that decrypts to our PCMU, and
			// whose payload on the wire is not that PCMU.
			buf := make([]byte, 1500)
			var decrypted, plainOnWire int
			for {
				_ = peer.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				n, _, err := peer.conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					break
				}
				var wire rtp.Packet
				if err := wire.Unmarshal(buf[:n]); err != nil {
					t.Fatal(err)
				}
				pt, err := dec.DecryptRTP(nil, buf[:n], nil)
				if err != nil {
					t.Fatalf("the session's packet does not decrypt with its key: %v", err)
				}
				var p rtp.Packet
				if err := p.Unmarshal(pt); err != nil || p.PayloadType != 0 || len(p.Payload) != FrameSamples {
					t.Fatalf("decrypted packet: %v %+v", err, p.Header)
				}
				decrypted++
				if bytes.Equal(wire.Payload[:FrameSamples], p.Payload) {
					plainOnWire++
				}
			}
			if decrypted < 5 || plainOnWire != 0 {
				t.Fatalf("%d packets decrypted, %d carried their PCMU in clear", decrypted, plainOnWire)
			}
			// The closing BYE is SRTCP.
			_ = peer.rtcp.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, _, err := peer.rtcp.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("no RTCP BYE: %v", err)
			}
			pt, err := dec.DecryptRTCP(nil, buf[:n], nil)
			if err != nil {
				t.Fatalf("the BYE does not decrypt: %v", err)
			}
			pkts, err := rtcp.Unmarshal(pt)
			if err != nil || len(pkts) != 1 {
				t.Fatalf("decrypted BYE: %v %v", pkts, err)
			}
			if _, ok := pkts[0].(*rtcp.Goodbye); !ok {
				t.Fatalf("decrypted RTCP is %T, want a BYE", pkts[0])
			}
		})
	}
}
