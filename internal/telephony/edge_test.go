package telephony

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/pike"
)

func TestIsScanner(t *testing.T) {
	for ua, want := range map[string]bool{
		"friendly-scanner":               true,
		"sipvicious 0.3.4":               true,
		"SIPVicious":                     true,
		"sipcli/v1.8":                    true,
		"VaxSIPUserAgent/3.1":            true,
		"pplsip":                         true,
		"Asterisk PBX 20.5.0":            false,
		"FreeSWITCH-mod_sofia/1.10":      false,
		"baresip v3.10.1 (x86_64/linux)": false,
		"":                               false,
	} {
		if got := isScanner(ua); got != want {
			t.Errorf("isScanner(%q) = %v, want %v", ua, got, want)
		}
	}
}

// newPeerAt is a raw peer bound to ip (any 127.x address works on lo).
func newPeerAt(t *testing.T, srv *Server, ip string) *peer {
	t.Helper()
	p := newPeer(t, srv)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p.conn = c
	return p
}

func (p *peer) options(ua string) {
	p.send(fmt.Sprintf("OPTIONS sip:parley@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%d\r\nMax-Forwards: 70\r\nFrom: <sip:probe@%s>;tag=o%d\r\nTo: <sip:parley@%s>\r\nCall-ID: o%d@test\r\nCSeq: 1 OPTIONS\r\nUser-Agent: %s\r\nContent-Length: 0\r\n\r\n",
		p.server, p.conn.LocalAddr(), time.Now().UnixNano(), p.conn.LocalAddr().(*net.UDPAddr).IP, time.Now().UnixNano(), p.server, time.Now().UnixNano(), ua))
}

// silence fails the test if any message arrives within d.
func (p *peer) silence(d time.Duration, what string) {
	p.t.Helper()
	if m := p.recv(d); m != nil {
		p.t.Fatalf("%s: got an answer, want none:\n%s", what, m)
	}
}

func TestScannerDropped(t *testing.T) {
	r := &fakeRouter{}
	s := startServer(t, r, nil)
	p := newPeer(t, s)
	p.options("friendly-scanner")
	p.silence(300*time.Millisecond, "OPTIONS from friendly-scanner")
	d := &dialog{callID: "scan@test", fromTag: "a", branch: "z9hG4bKscan", user: "100", cseq: 1}
	p.send(strings.Replace(p.inviteText(d, p.sdp()), "Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nUser-Agent: sipvicious\r\n", 1))
	p.silence(300*time.Millisecond, "INVITE from sipvicious")
	if r.last() != nil {
		t.Fatal("a scanner's INVITE reached the router")
	}
	p.options("Asterisk PBX 20")
	p.response(200, time.Second)
	if st := s.EdgeStats(); st.ScannersDropped != 2 {
		t.Fatalf("edge stats %+v, want 2 scanners dropped", st)
	}
}

// A source over the limit is banned: its requests go unanswered, INVITEs
// included, while other sources are served.
func TestFloodBanned(t *testing.T) {
	r := &fakeRouter{}
	lim := pike.New(pike.Config{Limit: 5, Window: 10 * time.Second, Ban: time.Hour})
	trunk := netip.MustParseAddr("127.0.0.4")
	s := startServer(t, r, func(c *Config) { c.Limiter = lim; c.Trusted = trustOnly(trunk) })
	// A trusted source (a trunk) is not limited.
	busy := newPeerAt(t, s, trunk.String())
	for i := range 12 {
		busy.options("carrier")
		if busy.response(200, time.Second) == nil {
			t.Fatalf("trusted source's request %d unanswered", i+1)
		}
	}
	flood := newPeerAt(t, s, "127.0.0.2")
	for i := range 5 {
		flood.options("flood")
		if flood.response(200, time.Second) == nil {
			t.Fatalf("request %d within the limit unanswered", i+1)
		}
	}
	flood.options("flood")
	flood.silence(300*time.Millisecond, "sixth OPTIONS")
	flood.invite("100")
	flood.silence(300*time.Millisecond, "INVITE from a banned source")
	if r.last() != nil {
		t.Fatal("a banned source's INVITE reached the router")
	}
	other := newPeerAt(t, s, "127.0.0.3")
	d := other.invite("100")
	ok := other.response(200, 2*time.Second)
	d.toTag, _ = ok.To().Params.Get("tag")
	other.send(other.inDialog(d, "ACK", 1))
	waitHandler(t, r)
	other.send(other.inDialog(d, "BYE", 2))
	other.response(200, time.Second)
	waitIdle(t, s)
	st := s.EdgeStats()
	if st.BansIssued != 1 || st.RateLimitedDropped != 2 {
		t.Fatalf("edge stats %+v, want 1 ban and 2 dropped", st)
	}
}

func TestMediaAddressRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		loopback bool
		addr     string
		want     int
		warning  string
	}{
		{"metadata", true, "169.254.169.254", 488, "metadata"},
		{"link-local", true, "169.254.10.1", 488, "link-local"},
		{"multicast", true, "239.1.1.1", 488, "multicast"},
		{"unspecified", true, "0.0.0.0", 488, "unspecified"},
		{"broadcast", true, "255.255.255.255", 488, "reserved"},
		{"loopback in production", false, "127.0.0.1", 488, "loopback"},
		{"loopback in development", true, "127.0.0.1", 404, ""},
		{"private network", false, "10.1.2.3", 404, ""},
		{"public", false, "203.0.114.7", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &fakeRouter{}
			s := startServer(t, r, func(c *Config) { c.LoopbackMedia = tc.loopback })
			p := newPeer(t, s)
			d := &dialog{callID: "m" + fmt.Sprint(time.Now().UnixNano()) + "@test", fromTag: "a", branch: "z9hG4bKm" + fmt.Sprint(time.Now().UnixNano()), user: "404x", cseq: 1}
			p.send(p.inviteText(d, strings.Replace(p.sdp(), "c=IN IP4 127.0.0.1", "c=IN IP4 "+tc.addr, 1)))
			res := p.response(tc.want, 2*time.Second)
			if tc.want != 488 {
				return
			}
			if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), tc.warning) {
				t.Fatalf("488 without a Warning naming %s: %v", tc.warning, res)
			}
			if r.last() != nil {
				t.Fatal("a refused offer reached the router")
			}
			if s.EdgeStats().MediaAddrRefused != 1 {
				t.Fatalf("edge stats %+v", s.EdgeStats())
			}
		})
	}
}

type trustOnly netip.Addr

func (t trustOnly) Trusted(ip netip.Addr) bool { return ip == netip.Addr(t) }

type routerFunc func(ctx context.Context, in Inbound) (Handler, error)

func (f routerFunc) Route(ctx context.Context, in Inbound) (Handler, error) { return f(ctx, in) }

// A router's 401 carries its challenges; the Authorization of the retried
// INVITE reaches the router.
func TestChallengeAnswered(t *testing.T) {
	var mu sync.Mutex
	var seen []Inbound
	s := startServer(t, routerFunc(func(_ context.Context, in Inbound) (Handler, error) {
		mu.Lock()
		seen = append(seen, in)
		mu.Unlock()
		return nil, &Reject{Code: 401, Reason: "Unauthorized", Challenge: []string{`Digest realm="parley", nonce="a", algorithm=SHA-256, qop="auth"`, `Digest realm="parley", nonce="a", algorithm=MD5, qop="auth"`}}
	}), nil)
	p := newPeer(t, s)
	p.invite("100")
	res := p.response(401, 2*time.Second)
	if hs := res.GetHeaders("WWW-Authenticate"); len(hs) != 2 || !strings.Contains(hs[0].Value(), "SHA-256") {
		t.Fatalf("401 challenges %v", hs)
	}
	d := &dialog{callID: "auth@test", fromTag: "a", branch: "z9hG4bKauth", user: "100", cseq: 2}
	const auth = `Digest username="pbx", realm="parley", nonce="a", uri="sip:100@x", response="00", qop=auth, nc=00000001, cnonce="c"`
	p.send(strings.Replace(p.inviteText(d, p.sdp()), "Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nAuthorization: "+auth+"\r\n", 1))
	p.response(401, 2*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[1].Authorization != auth || !strings.HasPrefix(seen[1].RequestURI, "sip:100@") {
		t.Fatalf("router saw %+v", seen)
	}
}

type registrarFunc func(ctx context.Context, r Registration) (time.Duration, error)

func (f registrarFunc) Register(ctx context.Context, r Registration) (time.Duration, error) {
	return f(ctx, r)
}

func TestRegister(t *testing.T) {
	var mu sync.Mutex
	var got []Registration
	reg := registrarFunc(func(_ context.Context, r Registration) (time.Duration, error) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		if r.Authorization == "" {
			return 0, &Reject{Code: 401, Reason: "Unauthorized", Challenge: []string{`Digest realm="parley", nonce="n", algorithm=MD5, qop="auth"`}}
		}
		return min(r.Expires, 600*time.Second), nil
	})
	s := startServer(t, &fakeRouter{}, func(c *Config) { c.Registrar = reg })
	p := newPeer(t, s)
	register := func(extra string, cseq int) {
		p.send(fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKr%d\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@%s>;tag=r1\r\nTo: <sip:+15550001111@%s>\r\nCall-ID: reg@test\r\nCSeq: %d REGISTER\r\nContact: <sip:pbx@127.0.0.1:%d>\r\n%sContent-Length: 0\r\n\r\n",
			p.server, p.port(), cseq, p.server, p.server, cseq, p.port(), extra))
	}
	register("", 1)
	if ch := p.response(401, time.Second).GetHeader("WWW-Authenticate"); ch == nil {
		t.Fatal("401 without a challenge")
	}
	register("Authorization: Digest username=\"pbx\"\r\nExpires: 3600\r\n", 2)
	ok := p.response(200, time.Second)
	if e := ok.GetHeader("Expires"); e == nil || e.Value() != "600" {
		t.Fatalf("200 Expires %v, want 600", e)
	}
	if c := ok.GetHeader("Contact"); c == nil || !strings.Contains(c.Value(), "expires=600") {
		t.Fatalf("200 Contact %v, want expires=600", c)
	}
	register("Authorization: Digest username=\"pbx\"\r\nExpires: soon\r\n", 3)
	p.response(400, time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[1].AOR != "+15550001111" || got[1].Expires != time.Hour || !strings.HasPrefix(got[1].Source, "127.0.0.1:") {
		t.Fatalf("registrar saw %+v", got)
	}
	// Without a Registrar, REGISTER is not allowed.
	s2 := startServer(t, &fakeRouter{}, nil)
	p2 := newPeer(t, s2)
	p2.send(fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKr9\r\nMax-Forwards: 70\r\nFrom: <sip:a@%s>;tag=r1\r\nTo: <sip:a@%s>\r\nCall-ID: reg2@test\r\nCSeq: 1 REGISTER\r\nContact: <sip:pbx@127.0.0.1:%d>\r\nContent-Length: 0\r\n\r\n",
		p2.server, p2.port(), p2.server, p2.server, p2.port()))
	p2.response(405, time.Second)
}

// Over TCP the guard does not see messages; the handlers drop scanners.
func TestScannerDroppedOverTCP(t *testing.T) {
	r := &fakeRouter{}
	s := startServer(t, r, nil)
	p := newPeer(t, s)
	conn, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	d := &dialog{callID: "tcpscan@test", fromTag: "ts1", branch: "z9hG4bKtcpscan", user: "100", cseq: 1}
	msg := strings.Replace(p.inviteText(d, p.sdp()), "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
	msg = strings.Replace(msg, "Max-Forwards: 70\r\n", "Max-Forwards: 70\r\nUser-Agent: friendly-scanner\r\n", 1)
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 4096)
	if n, err := conn.Read(buf); err == nil {
		t.Fatalf("scanner over TCP answered:\n%s", buf[:n])
	}
	if r.last() != nil {
		t.Fatal("a scanner's INVITE over TCP reached the router")
	}
	if st := s.EdgeStats(); st.ScannersDropped != 1 {
		t.Fatalf("edge stats %+v", st)
	}
}
