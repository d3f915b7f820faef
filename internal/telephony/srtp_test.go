package telephony

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/parley-voice/parley/internal/media"
)

const testKey = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz" // 30 bytes, RFC 4568's example

func (p *peer) savpSDP() string {
	return fmt.Sprintf("v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:%s|2^20\r\na=sendrecv\r\n", p.rtpPort(), testKey)
}

// TestInboundSRTP: an SDES-SRTP offer over UDP is refused with 488 before
// routing unless development allows it; allowed, it is answered RTP/SAVP
// with our own key under the offered tag, the router learns the call is
// SRTP, the RTP Parley sends decrypts under that key, and a re-INVITE that
// drops SRTP is refused.
func TestInboundSRTP(t *testing.T) {
	t.Run("refused over udp", func(t *testing.T) {
		r := &fakeRouter{}
		s := startServer(t, r, nil)
		p := newPeer(t, s)
		d := &dialog{callID: "srtp-udp@test", fromTag: "ft1", branch: "z9hG4bKsrtp1", user: "+15550002222", cseq: 1}
		p.send(p.inviteText(d, p.savpSDP()))
		res := p.response(488, 2*time.Second)
		if !strings.Contains(res.Reason, "TLS") {
			t.Fatalf("reason %q does not say why", res.Reason)
		}
		if r.last() != nil {
			t.Fatal("the call was routed")
		}
	})
	t.Run("allowed in development", func(t *testing.T) {
		r := &fakeRouter{}
		s := startServer(t, r, func(c *Config) { c.SDESWithoutTLS = true })
		p := newPeer(t, s)
		d := &dialog{callID: "srtp-dev@test", fromTag: "ft2", branch: "z9hG4bKsrtp2", user: "+15550002222", cseq: 1}
		p.send(p.inviteText(d, p.savpSDP()))
		ok := p.response(200, 2*time.Second)
		ans, err := media.ParseOffer(ok.Body())
		if err != nil {
			t.Fatal(err)
		}
		if !ans.Secure || len(ans.Crypto) != 1 || ans.Crypto[0].Tag != 7 || ans.Crypto[0].Suite != media.SuiteAES128SHA1_32 {
			t.Fatalf("answer:\n%s", ok.Body())
		}
		theirs, _ := base64.StdEncoding.DecodeString(testKey)
		if string(ans.Crypto[0].Key) == string(theirs) {
			t.Fatal("the answer reuses the offer's key")
		}
		d.toTag, _ = ok.To().Params.Get("tag")
		p.send(p.inDialog(d, "ACK", 1))
		h := r.last()
		<-h.served
		if !h.in.SRTP {
			t.Fatal("Inbound.SRTP is false for an SRTP call")
		}
		dec, err := srtp.CreateContext(ans.Crypto[0].Key[:16], ans.Crypto[0].Key[16:], srtp.ProtectionProfileAes128CmHmacSha1_32)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		p.rtp.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := p.rtp.ReadFromUDP(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n != 12+160+4 {
			t.Fatalf("SRTP packet of %d bytes, want 176 (4-byte tag)", n)
		}
		plain, err := dec.DecryptRTP(nil, buf[:n], nil)
		var pkt rtp.Packet
		if err != nil || pkt.Unmarshal(plain) != nil || pkt.PayloadType != 0 {
			t.Fatalf("parley's RTP does not decrypt under its answer key: %v", err)
		}

		// A re-INVITE offering plain RTP: 488, the call goes on.
		re := strings.Replace(p.inviteText(&dialog{callID: d.callID, fromTag: d.fromTag, branch: "z9hG4bKsrtp2re", user: d.user, cseq: 2}, p.sdp()),
			"To: <sip:"+d.user+"@"+p.server.String()+">", "To: <sip:"+d.user+"@"+p.server.String()+">;tag="+d.toTag, 1)
		p.send(re)
		p.response(488, 2*time.Second)

		p.send(p.inDialog(d, "BYE", 3))
		p.response(200, time.Second)
		if err := <-h.done; !errors.Is(err, ErrRemoteHangup) {
			t.Fatalf("cause = %v", err)
		}
		waitIdle(t, s)
	})
	t.Run("plain offer", func(t *testing.T) {
		r := &fakeRouter{}
		s := startServer(t, r, func(c *Config) { c.SDESWithoutTLS = true })
		p := newPeer(t, s)
		d := p.invite("+15550002222")
		ok := p.response(200, 2*time.Second)
		if !strings.Contains(string(ok.Body()), "RTP/AVP") || strings.Contains(string(ok.Body()), "a=crypto") {
			t.Fatalf("answer to a plain offer:\n%s", ok.Body())
		}
		d.toTag, _ = ok.To().Params.Get("tag")
		p.send(p.inDialog(d, "ACK", 1))
		h := r.last()
		<-h.served
		if h.in.SRTP {
			t.Fatal("Inbound.SRTP is true for a plain call")
		}
		p.send(p.inDialog(d, "BYE", 2))
		p.response(200, time.Second)
		<-h.done
		waitIdle(t, s)
	})
}

// TestDialSRTP: a trunk that requires SRTP is offered RTP/SAVP with a key
// per suite; a plain answer fails the call with 488, a matching SAVP
// answer sets the call up encrypted; over UDP without the development
// allowance nothing is sent.
func TestDialSRTP(t *testing.T) {
	insecure := startServer(t, &fakeRouter{}, nil)
	_, err := insecure.Dial(context.Background(), Outbound{Trunk: Trunk{Address: "127.0.0.1:9", MediaEncryption: "srtp"}, From: "+1", To: "+2"}, &fakeHandler{})
	if !errors.Is(err, ErrSDESInsecure) {
		t.Fatalf("srtp over udp: err = %v, want ErrSDESInsecure", err)
	}

	srv := startServer(t, &fakeRouter{}, func(c *Config) { c.SDESWithoutTLS = true })
	for _, tc := range []struct {
		name   string
		answer func(offer *media.Offer) string
		ok     bool
	}{
		{"plain answer", func(*media.Offer) string {
			return "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
		}, false},
		{"srtp answer", func(o *media.Offer) string {
			return fmt.Sprintf("v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/SAVP 0\r\na=crypto:%d %s inline:%s\r\n", o.Crypto[1].Tag, o.Crypto[1].Suite, testKey)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trunk, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer trunk.Close()
			offers := make(chan *media.Offer, 1)
			go serveTrunk(trunk, func(msg string, from *net.UDPAddr) {
				switch {
				case strings.HasPrefix(msg, "INVITE"):
					req, err := sip.ParseMessage([]byte(msg))
					if err != nil {
						t.Error(err)
						return
					}
					o, err := media.ParseOffer(req.Body())
					if err != nil {
						t.Error(err)
						return
					}
					offers <- o
					body := tc.answer(o)
					res := strings.TrimSuffix(reply(msg, 200, "OK"), "Content-Length: 0\r\n\r\n")
					res += fmt.Sprintf("Contact: <sip:trunk@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", trunk.LocalAddr(), len(body), body)
					trunk.WriteToUDP([]byte(res), from)
				case strings.HasPrefix(msg, "BYE"):
					trunk.WriteToUDP([]byte(reply(msg, 200, "OK")), from)
				}
			})
			secure := make(chan bool, 1)
			h := &fakeHandler{served: make(chan struct{}), done: make(chan error, 1), serve: func(ctx context.Context, c *Call) { secure <- c.Media.Secure() && c.In.SRTP }}
			_, err = srv.Dial(context.Background(), Outbound{Trunk: Trunk{Address: trunk.LocalAddr().String(), MediaEncryption: "srtp"}, From: "+1", To: "+2"}, h)
			o := <-offers
			if !o.Secure || len(o.Crypto) != 2 || o.Crypto[0].Suite != media.SuiteAES128SHA1_80 || o.Crypto[1].Suite != media.SuiteAES128SHA1_32 {
				t.Fatalf("offer %+v", o)
			}
			if !tc.ok {
				var de *DialError
				if !errors.As(err, &de) || de.Code != 488 {
					t.Fatalf("err = %v, want a 488 DialError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !<-secure {
				t.Fatal("the call is not SRTP")
			}
			<-h.done
			waitIdle(t, srv)
		})
	}
}
