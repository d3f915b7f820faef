package telephony

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parley-voice/parley/internal/certfile"
	"github.com/parley-voice/parley/internal/certfile/certtest"
)

// tlsServer starts a server with a TLS listener whose certificate (for
// hosts, issued by ca) is read from files through a certfile.Reloader.
func tlsServer(t *testing.T, r Router, ca *certtest.CA, mod func(*Config), hosts ...string) (*Server, string, string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := ca.WriteFiles(t, dir, "sip", "first", hosts...)
	rl, err := certfile.New(certfile.Config{CertFile: certFile, KeyFile: keyFile, CheckEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, r, func(c *Config) {
		c.TLSListenAddr = "127.0.0.1:0"
		c.TLSServer = &tls.Config{GetCertificate: rl.GetCertificate}
		if mod != nil {
			mod(c)
		}
	})
	return s, certFile, keyFile
}

// tlsPeer is a SIP endpoint on one TLS connection, writing messages as text.
type tlsPeer struct {
	t      *testing.T
	conn   *tls.Conn
	stream *sip.ParserStream
	msgs   chan sip.Message
	base   *peer // for its RTP socket and SDP
}

func dialTLSPeer(t *testing.T, s *Server, conf *tls.Config) *tlsPeer {
	t.Helper()
	conn, err := tls.Dial("tcp", s.TLSAddr().String(), conf)
	if err != nil {
		t.Fatal(err)
	}
	p := &tlsPeer{t: t, conn: conn, stream: sip.NewParser().NewSIPStream(), msgs: make(chan sip.Message, 32), base: newPeer(t, s)}
	t.Cleanup(func() { conn.Close() })
	go p.read()
	return p
}

func (p *tlsPeer) read() {
	buf := make([]byte, 65535)
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			close(p.msgs)
			return
		}
		p.stream.Write(buf[:n])
		for {
			m, _, err := p.stream.ParseNext()
			if err != nil {
				break
			}
			p.msgs <- m
		}
	}
}

func (p *tlsPeer) send(msg string) {
	p.t.Helper()
	if _, err := io.WriteString(p.conn, msg); err != nil {
		p.t.Fatal(err)
	}
}

// next returns the next message that matches, skipping others.
func (p *tlsPeer) next(what string, match func(sip.Message) bool) sip.Message {
	p.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				p.t.Fatalf("connection closed waiting for %s", what)
			}
			if match(m) {
				return m
			}
		case <-deadline:
			p.t.Fatalf("no %s over TLS", what)
		}
	}
}

func (p *tlsPeer) response(code int, method sip.RequestMethod) *sip.Response {
	p.t.Helper()
	return p.next(fmt.Sprintf("%d to %s", code, method), func(m sip.Message) bool {
		r, ok := m.(*sip.Response)
		return ok && int(r.StatusCode) == code && r.CSeq().MethodName == method
	}).(*sip.Response)
}

func (p *tlsPeer) request(method sip.RequestMethod) *sip.Request {
	p.t.Helper()
	return p.next(string(method), func(m sip.Message) bool {
		r, ok := m.(*sip.Request)
		return ok && r.Method == method
	}).(*sip.Request)
}

const unreachableContact = "127.0.0.1:9" // the caller's Contact: nothing listens

func (p *tlsPeer) inviteText(d *dialog, scheme string) string {
	local := p.conn.LocalAddr().String()
	body := p.base.sdp()
	return fmt.Sprintf("INVITE %s:%s@%s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=%s;rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@127.0.0.1>;tag=%s\r\nTo: <sip:%s@127.0.0.1>\r\nCall-ID: %s\r\nCSeq: %d INVITE\r\nContact: <sip:caller@%s;transport=tls>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		scheme, d.user, p.conn.RemoteAddr(), local, d.branch, d.fromTag, d.user, d.callID, d.cseq, unreachableContact, len(body), body)
}

func (p *tlsPeer) inDialog(d *dialog, method string, cseq int, branch string) string {
	return fmt.Sprintf("%s sip:parley@%s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=%s\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@127.0.0.1>;tag=%s\r\nTo: <sip:%s@127.0.0.1>%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContent-Length: 0\r\n\r\n",
		method, p.conn.RemoteAddr(), p.conn.LocalAddr(), branch, d.fromTag, d.user, tagParam(d.toTag), d.callID, cseq, method)
}

func tagParam(tag string) string {
	if tag == "" {
		return ""
	}
	return ";tag=" + tag
}

// reply answers a request received over TLS with code.
func (p *tlsPeer) reply(req *sip.Request, code int, reason string) {
	p.t.Helper()
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	p.send(res.String())
}

func newDialog(user string) *dialog {
	n := time.Now().UnixNano()
	return &dialog{callID: fmt.Sprintf("tls%d@test", n), fromTag: fmt.Sprintf("ft%d", n%100000), branch: fmt.Sprintf("z9hG4bKtls%d", n), user: user, cseq: 1}
}

// TestTLSCalls runs calls over SIP over TLS as over UDP: our hang-up (BYE
// over the caller's connection, its Contact being unreachable), the
// caller's BYE, CANCEL before the answer, and REFER with NOTIFY. Contact
// names the TLS port with transport=tls, or is sips: when called at sips:.
func TestTLSCalls(t *testing.T) {
	ca := certtest.NewCA(t, "test CA")
	transferred := make(chan error, 1)
	r := &fakeRouter{release: make(chan struct{}), serve: func(ctx context.Context, c *Call) {
		switch {
		case strings.HasPrefix(c.In.Dialled, "hangup"):
			time.Sleep(100 * time.Millisecond)
		case strings.HasPrefix(c.In.Dialled, "transfer"):
			tctx, stop := context.WithTimeout(ctx, 5*time.Second)
			transferred <- c.Transfer(tctx, "sip:agent@127.0.0.1")
			stop()
		default:
			<-ctx.Done()
		}
	}}
	s, _, _ := tlsServer(t, r, ca, nil, "sip.test", "127.0.0.1")
	p := dialTLSPeer(t, s, &tls.Config{RootCAs: ca.Pool(), ServerName: "sip.test"})
	tlsPort := fmt.Sprint(s.TLSAddr().(*net.TCPAddr).Port)

	answer := func(d *dialog, scheme string) (*sip.Response, *fakeHandler) {
		t.Helper()
		p.send(p.inviteText(d, scheme))
		res := p.response(200, sip.INVITE)
		d.toTag, _ = res.To().Params.Get("tag")
		p.send(strings.Replace(p.inDialog(d, "ACK", 1, d.branch+"ack"), "ACK sip:parley", "ACK sip:parley", 1))
		h := waitHandler(t, r)
		<-h.served
		return res, h
	}

	t.Run("we hang up", func(t *testing.T) {
		d := newDialog("hangup1")
		res, h := answer(d, "sip")
		contact := res.Contact().Address
		if contact.Scheme != "sip" || fmt.Sprint(contact.Port) != tlsPort || !strings.Contains(contact.String(), "transport=tls") {
			t.Errorf("Contact %s: want sip: at TLS port %s with transport=tls", contact.String(), tlsPort)
		}
		if h.in.Transport != "tls" {
			t.Errorf("Inbound.Transport = %q, want tls", h.in.Transport)
		}
		bye := p.request(sip.BYE)
		if v := bye.Via(); v == nil || !strings.EqualFold(v.Transport, "TLS") || fmt.Sprint(v.Port) != tlsPort {
			t.Errorf("BYE Via %v: want TLS at port %s", bye.Via(), tlsPort)
		}
		p.reply(bye, 200, "OK")
		<-h.done
	})

	t.Run("caller hangs up, called at sips", func(t *testing.T) {
		d := newDialog("200")
		res, h := answer(d, "sips")
		if c := res.Contact().Address; c.Scheme != "sips" || fmt.Sprint(c.Port) != tlsPort {
			t.Errorf("Contact %s: want sips: at TLS port %s", c.String(), tlsPort)
		}
		p.send(p.inDialog(d, "BYE", 2, d.branch+"bye"))
		p.response(200, sip.BYE)
		if err := <-h.done; !errors.Is(err, ErrRemoteHangup) {
			t.Errorf("cause %v, want remote hang-up", err)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		d := newDialog("slow1")
		p.send(p.inviteText(d, "sip"))
		p.response(100, sip.INVITE)
		cancel := strings.Replace(p.inDialog(d, "CANCEL", 1, d.branch), "CANCEL sip:parley@"+p.conn.RemoteAddr().String(), "CANCEL sip:slow1@"+p.conn.RemoteAddr().String(), 1)
		p.send(cancel)
		p.response(200, sip.CANCEL)
		p.response(487, sip.INVITE)
		r.release <- struct{}{}
	})

	t.Run("refer", func(t *testing.T) {
		d := newDialog("transfer1")
		_, h := answer(d, "sip")
		refer := p.request(sip.REFER)
		if rt := refer.GetHeader("Refer-To"); rt == nil || !strings.Contains(rt.Value(), "agent@127.0.0.1") {
			t.Errorf("Refer-To %v", rt)
		}
		p.reply(refer, 202, "Accepted")
		notify := fmt.Sprintf("NOTIFY sip:parley@%s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bKnotify%d\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@127.0.0.1>;tag=%s\r\nTo: <sip:%s@127.0.0.1>;tag=%s\r\nCall-ID: %s\r\nCSeq: 3 NOTIFY\r\nEvent: refer\r\nSubscription-State: terminated\r\nContent-Type: message/sipfrag\r\nContent-Length: 16\r\n\r\nSIP/2.0 200 OK\r\n",
			p.conn.RemoteAddr(), p.conn.LocalAddr(), time.Now().UnixNano(), d.fromTag, d.user, d.toTag, d.callID)
		p.send(notify)
		p.response(200, sip.NOTIFY)
		select {
		case err := <-transferred:
			if err != nil {
				t.Errorf("transfer: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("transfer did not finish")
		}
		bye := p.request(sip.BYE)
		p.reply(bye, 200, "OK")
		<-h.done
	})
}

// TestTLSCertificateReload replaces the certificate files of a running
// listener: the next handshake gets the new certificate. TLS 1.1 is refused.
func TestTLSCertificateReload(t *testing.T) {
	ca := certtest.NewCA(t, "test CA")
	s, certFile, _ := tlsServer(t, &fakeRouter{}, ca, nil, "sip.test")
	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", s.TLSAddr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "sip.test"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q, want first", got)
	}
	dir := certFile[:strings.LastIndex(certFile, "/")]
	ca.WriteFiles(t, dir, "sip", "second", "sip.test")
	if got := served(); got != "second" {
		t.Errorf("after replacing the files served %q, want second", got)
	}

	conn, err := tls.Dial("tcp", s.TLSAddr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "sip.test", MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
}

// TestTLSHandshakeTimeout: a peer that connects to the TLS port and says
// nothing is disconnected after the handshake timeout, and other peers
// are served meanwhile.
func TestTLSHandshakeTimeout(t *testing.T) {
	ca := certtest.NewCA(t, "test CA")
	s, _, _ := tlsServer(t, &fakeRouter{}, ca, func(c *Config) { c.TLSHandshakeTimeout = 300 * time.Millisecond }, "sip.test")
	idle, err := net.Dial("tcp", s.TLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	conn, err := tls.Dial("tcp", s.TLSAddr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "sip.test"})
	if err != nil {
		t.Fatalf("a second peer is not served while the first stalls: %v", err)
	}
	conn.Close()
	start := time.Now()
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = idle.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("stalled connection not closed by the server: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("closed after %v, want about 300ms", took)
	}
}

func TestTLSListenNeedsCertificate(t *testing.T) {
	s, err := New(Config{ListenAddr: "127.0.0.1:0", TLSListenAddr: "127.0.0.1:0"}, &fakeRouter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("Listen: %v, want a missing-certificate error", err)
	}
}

// sniRecorder records the server names of handshakes.
type sniRecorder struct {
	mu    sync.Mutex
	names []string
	get   func(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

func (r *sniRecorder) GetCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	r.names = append(r.names, h.ServerName)
	r.mu.Unlock()
	return r.get(h)
}

// TestDialTLS places calls to a TLS trunk (another server): SNI is the
// trunk's host name and its certificate must verify against the roots
// given (system + CA bundle), else the call fails with a TLSError before
// any INVITE reaches the trunk.
func TestDialTLS(t *testing.T) {
	ca := certtest.NewCA(t, "trunk CA")
	trunkFor := func(t *testing.T, hosts ...string) (*Server, *fakeRouter, *sniRecorder) {
		dir := t.TempDir()
		certFile, keyFile := ca.WriteFiles(t, dir, "trunk", "trunk", hosts...)
		rl, err := certfile.New(certfile.Config{CertFile: certFile, KeyFile: keyFile})
		if err != nil {
			t.Fatal(err)
		}
		sni := &sniRecorder{get: rl.GetCertificate}
		r := &fakeRouter{}
		s := startServer(t, r, func(c *Config) {
			c.TLSListenAddr = "127.0.0.1:0"
			c.TLSServer = &tls.Config{GetCertificate: sni.GetCertificate}
		})
		return s, r, sni
	}
	caller := func(t *testing.T, roots *x509.CertPool) *Server {
		s, _, _ := tlsServer(t, &fakeRouter{}, ca, func(c *Config) { c.TLSClient = &tls.Config{RootCAs: roots} }, "127.0.0.1")
		return s
	}
	dial := func(s *Server, trunk *Server) (*Call, *fakeHandler, error) {
		h := &fakeHandler{served: make(chan struct{}), done: make(chan error, 1)}
		ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		port := trunk.TLSAddr().(*net.TCPAddr).Port
		c, err := s.Dial(ctx, Outbound{Trunk: Trunk{Address: fmt.Sprintf("localhost:%d", port), Transport: "tls"}, From: "+15550001111", To: "+15550002222"}, h)
		return c, h, err
	}

	t.Run("verified", func(t *testing.T) {
		trunk, tr, sni := trunkFor(t, "localhost")
		s := caller(t, ca.Pool())
		c, h, err := dial(s, trunk)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if c.In.Transport != "tls" {
			t.Errorf("call transport %q", c.In.Transport)
		}
		th := waitHandler(t, tr)
		<-th.served
		if th.in.Transport != "tls" {
			t.Errorf("trunk saw transport %q", th.in.Transport)
		}
		sni.mu.Lock()
		names := append([]string(nil), sni.names...)
		sni.mu.Unlock()
		if len(names) == 0 || names[0] != "localhost" {
			t.Errorf("SNI %q, want localhost", names)
		}
		<-h.served
		c.cancel(errHandlerReturned) // our handler returns: BYE to the trunk
		select {
		case err := <-th.done:
			if !errors.Is(err, ErrRemoteHangup) {
				t.Errorf("trunk's call ended by %v, want our BYE", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the trunk never got our BYE")
		}
	})

	for _, tc := range []struct {
		name  string
		hosts []string
		roots func() *x509.CertPool
		want  string
	}{
		{"unknown authority", []string{"localhost"}, func() *x509.CertPool { p, _ := certfile.Roots(""); return p }, "unknown authority"},
		{"other host name", []string{"trunk.example"}, ca.Pool, "not localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trunk, tr, _ := trunkFor(t, tc.hosts...)
			s := caller(t, tc.roots())
			_, _, err := dial(s, trunk)
			var te *TLSError
			if !errors.As(err, &te) {
				t.Fatalf("dial error %v (%T), want a TLSError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			time.Sleep(100 * time.Millisecond)
			if tr.last() != nil {
				t.Error("the trunk got the call")
			}
		})
	}

	t.Run("verification off (development)", func(t *testing.T) {
		trunk, tr, _ := trunkFor(t, "trunk.example")
		s, _, _ := tlsServer(t, &fakeRouter{}, ca, func(c *Config) { c.TLSClient = &tls.Config{InsecureSkipVerify: true} }, "127.0.0.1")
		c, h, err := dial(s, trunk)
		if err != nil {
			t.Fatalf("dial with verification off: %v", err)
		}
		<-h.served
		waitHandler(t, tr)
		c.cancel(errHandlerReturned)
		<-c.Ended()
	})

	t.Run("no TLS listener", func(t *testing.T) {
		trunk, _, _ := trunkFor(t, "localhost")
		s := startServer(t, &fakeRouter{}, nil)
		if _, _, err := dial(s, trunk); !errors.Is(err, ErrNoTLSListener) {
			t.Errorf("dial error %v, want ErrNoTLSListener", err)
		}
	})
}
