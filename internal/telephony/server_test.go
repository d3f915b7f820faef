package telephony

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// sipgo keeps package-level timers for transactions it terminated;
		// they fire and exit on their own.
		goleak.IgnoreTopFunction("time.Sleep"),
	)
}

func TestAnswerAndCallerHangsUp(t *testing.T) {
	r := &fakeRouter{}
	s := startServer(t, r, nil)
	p := newPeer(t, s)
	d := p.invite("+15550002222")
	p.response(100, time.Second)
	ok := p.response(200, 2*time.Second)
	if ct := ok.ContentType(); ct == nil || ct.Value() != "application/sdp" {
		t.Fatalf("200 without SDP: %v", ok)
	}
	body := string(ok.Body())
	if !strings.Contains(body, "RTP/AVP 0 101") || !strings.Contains(body, "telephone-event/8000") {
		t.Fatalf("answer does not pick PCMU and telephone-event:\n%s", body)
	}
	d.toTag, _ = ok.To().Params.Get("tag")
	p.send(p.inDialog(d, "ACK", 1))
	h := r.last()
	select {
	case <-h.served:
	case <-time.After(2 * time.Second):
		t.Fatal("handler not started")
	}
	if h.in.Dialled != "+15550002222" || h.in.Caller != "+15550001111" {
		t.Fatalf("inbound = %+v", h.in)
	}
	// RTP arrives, paced.
	buf := make([]byte, 1500)
	p.rtp.SetReadDeadline(time.Now().Add(time.Second))
	var stamps []time.Time
	for len(stamps) < 10 {
		n, _, err := p.rtp.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("rtp: %v", err)
		}
		if n != 12+160 || buf[1]&0x7f != 0 {
			t.Fatalf("rtp packet of %d bytes, pt %d", n, buf[1]&0x7f)
		}
		stamps = append(stamps, time.Now())
	}
	if span := stamps[9].Sub(stamps[0]); span < 150*time.Millisecond || span > 260*time.Millisecond {
		t.Errorf("9 intervals took %s, want about 180ms", span)
	}
	p.send(p.inDialog(d, "BYE", 2))
	p.response(200, time.Second)
	if err := <-h.done; !errors.Is(err, ErrRemoteHangup) {
		t.Fatalf("cause = %v, want ErrRemoteHangup", err)
	}
	waitIdle(t, s)
}

func TestHandlerHangsUpWithBye(t *testing.T) {
	r := &fakeRouter{serve: func(ctx context.Context, c *Call) { time.Sleep(100 * time.Millisecond) }}
	s := startServer(t, r, nil)
	p := newPeer(t, s)
	d := p.invite("100")
	ok := p.response(200, 2*time.Second)
	d.toTag, _ = ok.To().Params.Get("tag")
	p.send(p.inDialog(d, "ACK", 1))
	for {
		m := p.recv(2 * time.Second)
		if m == nil {
			t.Fatal("no BYE from the server")
		}
		if req, ok := m.(*sip.Request); ok && req.Method == sip.BYE {
			if got := req.CallID().Value(); got != d.callID {
				t.Fatalf("BYE Call-ID %q", got)
			}
			if tag, _ := req.From().Params.Get("tag"); tag != d.toTag {
				t.Fatalf("BYE From tag %q, want our To tag %q", tag, d.toTag)
			}
			if tag, _ := req.To().Params.Get("tag"); tag != d.fromTag {
				t.Fatalf("BYE To tag %q, want %q", tag, d.fromTag)
			}
			// From the port the caller sends to, which a NAT in front
			// of the caller lets back in.
			if got := p.from.AddrPort(); got != s.UDPAddr() {
				t.Fatalf("BYE sent from %s, want the listening socket %s", got, s.UDPAddr())
			}
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			p.send(res.String())
			break
		}
	}
	waitIdle(t, s)
}

// Without an ACK the 200 OK is retransmitted at T1, 2T1, 4T1, capped at
// T2 = 8·T1, and after 64·T1 the call is ended with a BYE (RFC 3261 §13.3.1.4).
func TestOKRetransmittedUntilACK(t *testing.T) {
	r := &fakeRouter{}
	s := startServer(t, r, nil) // T1 = 50 ms
	p := newPeer(t, s)
	p.invite("100")
	start := time.Now()
	var oks []time.Duration
	var bye *sip.Request
	for bye == nil {
		m := p.recv(5 * time.Second)
		if m == nil {
			t.Fatal("no BYE after the ACK timeout")
		}
		switch m := m.(type) {
		case *sip.Response:
			if m.StatusCode == 200 {
				oks = append(oks, time.Since(start))
			}
		case *sip.Request:
			if m.Method == sip.BYE {
				bye = m
				p.send(sip.NewResponseFromRequest(m, 200, "OK", nil).String())
			}
		}
	}
	elapsed := time.Since(start)
	// 0, 50, 150, 350, 750, 1150, … 3150 → about 10 copies in 64·T1 = 3.2 s.
	if len(oks) < 8 || len(oks) > 12 {
		t.Errorf("%d copies of the 200 OK: %v", len(oks), oks)
	}
	if gap := oks[2] - oks[1]; gap < 70*time.Millisecond || gap > 160*time.Millisecond {
		t.Errorf("second retransmission gap %s, want ≈ 2·T1", gap)
	}
	if last := oks[len(oks)-1] - oks[len(oks)-2]; last < 350*time.Millisecond || last > 520*time.Millisecond {
		t.Errorf("late retransmission gap %s, want T2 = 400ms", last)
	}
	if elapsed < 3*time.Second || elapsed > 4*time.Second {
		t.Errorf("BYE after %s, want ≈ 64·T1 = 3.2s", elapsed)
	}
	if err := <-r.last().done; !errors.Is(err, ErrNoACK) {
		t.Fatalf("cause = %v", err)
	}
	waitIdle(t, s)
}

func TestRejections(t *testing.T) {
	r := &fakeRouter{}
	s := startServer(t, r, func(c *Config) { c.MaxCalls = 1 })
	p := newPeer(t, s)
	for _, tc := range []struct {
		user string
		code int
	}{{"404x", 404}, {"480x", 480}, {"failx", 503}} {
		p.invite(tc.user)
		res := p.response(tc.code, 2*time.Second)
		if tc.code == 503 && res.GetHeader("Retry-After") == nil {
			t.Fatalf("503 for a routing failure without Retry-After: %v", res)
		}
	}
	// An offer without G.711.
	d := &dialog{callID: "nocodec@test", fromTag: "a", branch: "z9hG4bKnocodec", user: "100", cseq: 1}
	p.send(p.inviteText(d, strings.Replace(p.sdp(), "RTP/AVP 0 8 101", "RTP/AVP 9", 1)))
	p.response(488, 2*time.Second)
	// No SDP at all.
	d = &dialog{callID: "nosdp@test", fromTag: "a", branch: "z9hG4bKnosdp", user: "100", cseq: 1}
	p.send(p.inviteText(d, ""))
	p.response(488, 2*time.Second)
	// Over capacity: the first call holds the only slot.
	first := p.invite("100")
	ok := p.response(200, 2*time.Second)
	first.toTag, _ = ok.To().Params.Get("tag")
	p.send(p.inDialog(first, "ACK", 1))
	p.invite("100")
	busy := p.response(503, 2*time.Second)
	if h := busy.GetHeader("Retry-After"); h == nil || h.Value() != "30" {
		t.Fatalf("503 without Retry-After: %v", busy)
	}
	p.send(p.inDialog(first, "BYE", 2))
	p.response(200, time.Second)
	waitIdle(t, s)
}

func TestCancelBeforeAnswer(t *testing.T) {
	r := &fakeRouter{release: make(chan struct{})}
	s := startServer(t, r, nil)
	p := newPeer(t, s)
	d := p.invite("slow")
	p.response(100, time.Second)
	p.send(p.cancelText(d))
	p.response(487, 2*time.Second)
	close(r.release)
	h := waitHandler(t, r)
	if err := <-h.done; !errors.Is(err, ErrCanceled) {
		t.Fatalf("NotAnswered(%v), want ErrCanceled", err)
	}
	waitIdle(t, s)
}

// cancelText is the CANCEL of d's INVITE.
func (p *peer) cancelText(d *dialog) string {
	cancel := strings.Replace(p.inviteText(d, ""), "INVITE sip:", "CANCEL sip:", 1)
	cancel = strings.Replace(cancel, "CSeq: 1 INVITE", "CSeq: 1 CANCEL", 1)
	return strings.Replace(cancel, "Content-Type: application/sdp\r\n", "", 1)
}

// holdAdmission admits each setup only once release is closed, so a test
// can land a CANCEL before the server has registered for it.
type holdAdmission struct{ release chan struct{} }

func (h holdAdmission) Admit() (func(), string) {
	<-h.release
	return func() {}, ""
}

// TestCancelBeforeRegistered: the CANCEL arrives (and sipgo answers 487)
// before the server has asked to hear of it, which sipgo then never tells;
// the handler still learns ErrCanceled, not the transaction's own error.
func TestCancelBeforeRegistered(t *testing.T) {
	r := &fakeRouter{}
	hold := holdAdmission{release: make(chan struct{})}
	s := startServer(t, r, func(c *Config) { c.Admission = hold })
	p := newPeer(t, s)
	d := p.invite("early")
	p.response(100, time.Second)
	p.send(p.cancelText(d))
	p.response(487, 2*time.Second)
	close(hold.release)
	h := waitHandler(t, r)
	if err := <-h.done; !errors.Is(err, ErrCanceled) {
		t.Fatalf("NotAnswered(%v), want ErrCanceled", err)
	}
	waitIdle(t, s)
}

func TestByeForUnknownDialog(t *testing.T) {
	s := startServer(t, &fakeRouter{}, nil)
	p := newPeer(t, s)
	d := &dialog{callID: "nobody@test", fromTag: "x", toTag: "y", user: "100"}
	p.send(p.inDialog(d, "BYE", 5))
	p.response(481, time.Second)
	p.send(p.inDialog(d, "OPTIONS", 6))
	p.response(200, time.Second)
}

// TestTorture sends every RFC 4475 message shipped with sipgo over UDP.
// Nothing may crash the server; malformed requests get 4xx/5xx; afterwards
// the server still answers OPTIONS.
func TestTorture(t *testing.T) {
	dir := tortureDir(t)
	s := startServer(t, &fakeRouter{}, nil)
	counts := map[string]map[int]int{}
	for _, kind := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join(dir, kind, "*.dat"))
		if len(files) == 0 {
			t.Fatalf("no torture files in %s", dir)
		}
		sort.Strings(files)
		counts[kind] = map[int]int{}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p := newPeer(t, s) // a fresh port per message: no stray retransmissions
			p.send(viaToPeer(string(raw), p.port()))
			code := 0
			for code == 0 {
				c, id, ok := p.recvStatus(300 * time.Millisecond)
				if !ok {
					break
				}
				if c >= 200 && strings.Contains(string(raw), id) {
					code = c
				}
			}
			name := strings.TrimSuffix(filepath.Base(f), ".dat")
			counts[kind][code]++
			t.Logf("%-8s %-10s → %d", kind, name, code)
			if want, ok := tortureWant[name]; ok && !slices.Contains(want, code) {
				t.Errorf("%s: answered %d, want one of %v", name, code, want)
			}
		}
	}
	t.Logf("responses by status (0 = no answer): valid %v, invalid %v", counts["valid"], counts["invalid"])
	p := newPeer(t, s)
	d := &dialog{callID: "alive@test", fromTag: "x", toTag: "", user: "100"}
	p.send(strings.Replace(p.inDialog(d, "OPTIONS", 1), ";tag=\r\n", "\r\n", 1))
	p.response(200, 2*time.Second)
}

// tortureWant is the RFC 4475 reaction for the messages a UAS must refuse
// (§3.1.2 syntax, §3.3 application layer); 0 means no answer (responses
// and messages too broken to address an answer to). Messages not listed
// are well formed or their handling is a policy choice; they are reported.
var tortureWant = map[string][]int{
	"badinv01": {400}, "clerr": {400}, "scalar02": {400}, "quotbal": {400}, "ltgtruri": {400},
	"lwsruri": {400}, "lwsstart": {400}, "trws": {400}, "escruri": {400}, "baddate": {400},
	"regbadct": {400, 405}, "badaspec": {400}, "baddn": {400}, "badvers": {505}, "mismatch01": {400},
	"mismatch02": {400, 501}, "insuf": {400}, "unkscm": {416}, "bext01": {420}, "invut": {415},
	"multi01": {400}, "mcl01": {400}, "ncl": {400}, "sdp01": {406},
	"bigcode": {0}, "scalarlg": {0}, "bcast": {0}, "test": {0, 400},
}

// viaToPeer points the top Via at the test peer, so answers come back to it.
func viaToPeer(msg string, port int) string {
	lines := strings.Split(msg, "\r\n")
	for i, l := range lines {
		low := strings.ToLower(l)
		if strings.HasPrefix(low, "via:") || strings.HasPrefix(low, "v:") {
			name, rest, _ := strings.Cut(l, ":")
			f := strings.Fields(rest)
			if len(f) >= 2 {
				sentBy := f[1]
				params := ""
				if j := strings.IndexByte(sentBy, ';'); j >= 0 {
					params = sentBy[j:]
				}
				f[1] = "127.0.0.1:" + strconv.Itoa(port) + params
				lines[i] = name + ": " + strings.Join(f, " ")
			}
			break
		}
	}
	return strings.Join(lines, "\r\n")
}

func tortureDir(t *testing.T) string {
	t.Helper()
	out, err := exec("go", "env", "GOMODCACHE")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(strings.TrimSpace(out), "github.com", "emiago", "sipgo@v1.7.2", "sip", "testdata", "torture")
}

func waitHandler(t *testing.T, r *fakeRouter) *fakeHandler {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if h := r.last(); h != nil {
			return h
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("router never called")
	return nil
}

func waitIdle(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for s.ActiveCalls() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.ActiveCalls(); n != 0 {
		t.Fatalf("%d calls still active", n)
	}
}

func TestInviteOverTCP(t *testing.T) {
	r := &fakeRouter{}
	s := startServer(t, r, nil)
	p := newPeer(t, s) // for its RTP socket and message builder
	conn, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	d := &dialog{callID: "tcp@test", fromTag: "tcp1", branch: "z9hG4bKtcp1", user: "100", cseq: 1}
	msg := strings.Replace(p.inviteText(d, p.sdp()), "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
	msg = strings.Replace(msg, "Contact: <sip:caller@127.0.0.1:"+strconv.Itoa(p.port())+">", "Contact: <sip:caller@"+conn.LocalAddr().String()+";transport=tcp>", 1)
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), "SIP/2.0 200 OK") {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no 200 over TCP: %v\n%s", err, got.String())
		}
		got.Write(buf[:n])
	}
	if !strings.Contains(got.String(), "transport=tcp") {
		t.Errorf("Contact of the 200 does not say TCP:\n%s", got.String())
	}
	select {
	case <-waitHandler(t, r).served:
	case <-time.After(2 * time.Second):
		t.Fatal("call not started")
	}
}

// gate is an Admission that refuses while closed and counts setups.
type gate struct {
	mu       sync.Mutex
	open     bool
	inflight int
	peak     int
}

func (g *gate) Admit() (func(), string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		return nil, "closed"
	}
	g.inflight++
	g.peak = max(g.peak, g.inflight)
	return sync.OnceFunc(func() {
		g.mu.Lock()
		g.inflight--
		g.mu.Unlock()
	}), ""
}

// TestAdmissionRefusesBeforeRouting: a setup the admission refuses gets 503
// with Retry-After and never reaches the router (nothing is created); an
// admitted setup is released once answered, not when the call ends.
func TestAdmissionRefusesBeforeRouting(t *testing.T) {
	r := &fakeRouter{}
	g := &gate{}
	s := startServer(t, r, func(c *Config) { c.Admission = g; c.RetryAfter = 5 * time.Second })
	p := newPeer(t, s)
	p.invite("100")
	busy := p.response(503, 2*time.Second)
	if h := busy.GetHeader("Retry-After"); h == nil || h.Value() != "5" {
		t.Fatalf("503 without Retry-After 5: %v", busy)
	}
	if r.last() != nil {
		t.Fatal("a refused setup reached the router")
	}
	g.mu.Lock()
	g.open = true
	g.mu.Unlock()
	d := p.invite("100")
	ok := p.response(200, 2*time.Second)
	d.toTag, _ = ok.To().Params.Get("tag")
	p.send(p.inDialog(d, "ACK", 1))
	waitHandler(t, r)
	deadline := time.Now().Add(2 * time.Second)
	for {
		g.mu.Lock()
		n := g.inflight
		g.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the setup was not released after the answer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.send(p.inDialog(d, "BYE", 2))
	p.response(200, time.Second)
	waitIdle(t, s)
}
