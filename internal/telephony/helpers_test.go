package telephony

import (
	"context"
	"errors"
	"fmt"
	"net"
	osexec "os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parley-voice/parley/internal/media"
)

// peer is a raw UDP SIP endpoint for tests: it writes messages as text and
// parses what comes back, with no SIP stack in between.
type peer struct {
	t      *testing.T
	conn   *net.UDPConn
	server *net.UDPAddr
	parser *sip.Parser
	rtp    *net.UDPConn
	// from is where the last message recv returned came from.
	from *net.UDPAddr
}

func newPeer(t *testing.T, srv *Server) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); r.Close() })
	return &peer{t: t, conn: c, server: net.UDPAddrFromAddrPort(srv.UDPAddr()), parser: sip.NewParser(), rtp: r}
}

func (p *peer) port() int    { return p.conn.LocalAddr().(*net.UDPAddr).Port }
func (p *peer) rtpPort() int { return p.rtp.LocalAddr().(*net.UDPAddr).Port }

func (p *peer) send(msg string) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDP([]byte(msg), p.server); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next SIP message, or nil after timeout.
func (p *peer) recv(timeout time.Duration) sip.Message {
	p.t.Helper()
	buf := make([]byte, 65535)
	p.conn.SetReadDeadline(time.Now().Add(timeout))
	n, from, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		return nil
	}
	p.from = from
	m, err := p.parser.ParseSIP(buf[:n])
	if err != nil {
		p.t.Fatalf("unparseable message from server: %v\n%s", err, buf[:n])
	}
	return m
}

// recvStatus reads the status code of the next response, without needing
// the rest of it to parse (answers to torture messages echo their oddities).
func (p *peer) recvStatus(timeout time.Duration) (code int, callID string, ok bool) {
	buf := make([]byte, 65535)
	p.conn.SetReadDeadline(time.Now().Add(timeout))
	n, _, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		return 0, "", false
	}
	lines := strings.Split(string(buf[:n]), "\r\n")
	for _, l := range lines[1:] {
		if name, v, ok := strings.Cut(l, ":"); ok && (strings.EqualFold(strings.TrimSpace(name), "call-id") || strings.TrimSpace(name) == "i") {
			callID = strings.TrimSpace(v)
		}
	}
	f := strings.Fields(lines[0])
	if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
		return 0, callID, true // a request
	}
	code, _ = strconv.Atoi(f[1])
	return code, callID, true
}

// response waits for a response with the given status, skipping others.
func (p *peer) response(code int, timeout time.Duration) *sip.Response {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		m := p.recv(time.Until(deadline))
		if r, ok := m.(*sip.Response); ok && r.StatusCode == code {
			return r
		}
	}
	p.t.Fatalf("no %d response within %s", code, timeout)
	return nil
}

type dialog struct {
	callID, fromTag, branch, toTag string
	user                           string
	cseq                           int
}

func (p *peer) sdp() string {
	return fmt.Sprintf("v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n", p.rtpPort())
}

func (p *peer) invite(user string) *dialog {
	d := &dialog{callID: fmt.Sprintf("c%d@test", time.Now().UnixNano()), fromTag: "ft" + fmt.Sprint(time.Now().UnixNano()%100000), branch: "z9hG4bK" + fmt.Sprint(time.Now().UnixNano()), user: user, cseq: 1}
	p.send(p.inviteText(d, p.sdp()))
	return d
}

func (p *peer) inviteText(d *dialog, body string) string {
	return fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=%s\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@127.0.0.1>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: %d INVITE\r\nContact: <sip:caller@127.0.0.1:%d>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		d.user, p.server, p.port(), d.branch, d.fromTag, d.user, p.server, d.callID, d.cseq, p.port(), len(body), body)
}

func (p *peer) inDialog(d *dialog, method string, cseq int) string {
	return fmt.Sprintf("%s sip:parley@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s%d\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@127.0.0.1>;tag=%s\r\nTo: <sip:%s@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContent-Length: 0\r\n\r\n",
		method, p.server, p.port(), strings.ToLower(method), time.Now().UnixNano(), d.fromTag, d.user, p.server, d.toTag, d.callID, cseq, method)
}

// fakeRouter routes by dialled user: "404…" rejects 404, "480…" rejects 480,
// "slow…" blocks until released, anything else answers with a recording handler.
type fakeRouter struct {
	mu      sync.Mutex
	calls   []*fakeHandler
	release chan struct{}
	serve   func(ctx context.Context, c *Call)
}

func (r *fakeRouter) Route(ctx context.Context, in Inbound) (Handler, error) {
	switch {
	case strings.HasPrefix(in.Dialled, "404"):
		return nil, &Reject{Code: 404, Reason: "Not Found"}
	case strings.HasPrefix(in.Dialled, "480"):
		return nil, &Reject{Code: 480, Reason: "Temporarily Unavailable"}
	case strings.HasPrefix(in.Dialled, "fail"):
		return nil, errors.New("the database did not answer")
	case strings.HasPrefix(in.Dialled, "slow"):
		select {
		case <-r.release:
		case <-ctx.Done():
		}
	}
	h := &fakeHandler{in: in, served: make(chan struct{}), done: make(chan error, 1), serve: r.serve}
	r.mu.Lock()
	r.calls = append(r.calls, h)
	r.mu.Unlock()
	return h, nil
}

func (r *fakeRouter) last() *fakeHandler {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return nil
	}
	return r.calls[len(r.calls)-1]
}

type fakeHandler struct {
	in     Inbound
	served chan struct{}
	done   chan error // the cause ServeCall saw, or NotAnswered's error
	serve  func(ctx context.Context, c *Call)
}

func (h *fakeHandler) ServeCall(ctx context.Context, c *Call) {
	close(h.served)
	if h.serve != nil {
		h.serve(ctx, c)
		h.done <- context.Cause(ctx)
		return
	}
	<-ctx.Done()
	h.done <- context.Cause(ctx)
}

func (h *fakeHandler) NotAnswered(_ context.Context, err error) { h.done <- err }

func startServer(t *testing.T, r Router, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{ListenAddr: "127.0.0.1:0", Media: media.Config{Ports: media.PortRange{Min: 30000, Max: 39999}, Timeout: 5 * time.Second}, T1: 50 * time.Millisecond, LoopbackMedia: true}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func exec(name string, args ...string) (string, error) {
	out, err := osexec.Command(name, args...).Output()
	return string(out), err
}
