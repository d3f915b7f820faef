// Package mailtest is an SMTP server for tests (emersion/go-smtp): STARTTLS
// or implicit TLS with a throwaway CA, AUTH PLAIN, replies chosen per
// recipient (4xx, 5xx), and every accepted message kept for inspection.
package mailtest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/parley-voice/parley/internal/certfile/certtest"
)

// Message is one message the server accepted.
type Message struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool   // the message travelled over TLS
	AuthUser string // who authenticated ("" nobody)
}

// Config shapes the server.
type Config struct {
	// Implicit makes the listener TLS from the first byte; otherwise TLS is
	// offered with STARTTLS (unless NoTLS).
	Implicit bool
	NoTLS    bool
	// Username and Password, when set, are required (AUTH PLAIN).
	Username, Password string
	// Rcpt answers a recipient: nil accepts, an *smtp.SMTPError refuses
	// (see Refuse). Nil accepts everyone.
	Rcpt func(to string) error
}

// Refuse is a refusal with an SMTP reply code (451: try again later; 550:
// mailbox unavailable).
func Refuse(code int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
}

// Server is a running test SMTP server.
type Server struct {
	Host string
	Port int
	// CA signed the server's certificate; CAFile is it as a PEM file.
	CA     *x509.CertPool
	CAFile string

	cfg  Config
	mu   sync.Mutex
	got  []Message
	rcpt int // RCPT commands seen (accepted or not)
	news chan struct{}
}

// Start runs a server on 127.0.0.1 until the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	ca := certtest.NewCA(t, "mailtest CA")
	certPEM, keyPEM := ca.Issue(t, "localhost", "localhost", "127.0.0.1")
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	s := &Server{Host: "127.0.0.1", CA: ca.Pool(), CAFile: ca.WriteCA(t, t.TempDir(), "mailtest-ca.pem"), cfg: cfg, news: make(chan struct{}, 1)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = discard{}
	var l net.Listener
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case cfg.Implicit:
		l = tls.NewListener(l, tlsConf)
	case !cfg.NoTLS:
		srv.TLSConfig = tlsConf
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Messages are the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.got...)
}

// RcptCount is how many recipients were offered (accepted or refused).
func (s *Server) RcptCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcpt
}

// Wait returns the accepted messages once there are at least n, or what
// there is after timeout.
func (s *Server) Wait(n int, timeout time.Duration) []Message {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if got := s.Messages(); len(got) >= n {
			return got
		}
		select {
		case <-s.news:
		case <-deadline.C:
			return s.Messages()
		}
	}
}

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}

type session struct {
	s    *Server
	conn *smtp.Conn
	user string
	msg  Message
}

func (se *session) AuthMechanisms() []string {
	if se.s.cfg.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != se.s.cfg.Username || pass != se.s.cfg.Password {
			return smtp.ErrAuthFailed
		}
		se.user = user
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.cfg.Username != "" && se.user == "" {
		return smtp.ErrAuthRequired
	}
	se.msg = Message{From: from}
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.s.mu.Lock()
	se.s.rcpt++
	se.s.mu.Unlock()
	if f := se.s.cfg.Rcpt; f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	se.msg.To = append(se.msg.To, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return err
	}
	if len(se.msg.To) == 0 {
		return errors.New("no recipients")
	}
	_, se.msg.TLS = se.conn.TLSConnectionState()
	se.msg.Data, se.msg.AuthUser = b.Bytes(), se.user
	se.s.mu.Lock()
	se.s.got = append(se.s.got, se.msg)
	se.s.mu.Unlock()
	select {
	case se.s.news <- struct{}{}:
	default:
	}
	se.msg = Message{}
	return nil
}

func (se *session) Reset()        { se.msg = Message{} }
func (se *session) Logout() error { return nil }

// Parts reads a received multipart/alternative message: its header and its
// text/plain and text/html parts, decoded.
func Parts(t testing.TB, data []byte) (netmail.Header, string, string) {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read message: %v\n%s", err, data)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q (%v)", m.Header.Get("Content-Type"), err)
	}
	r := multipart.NewReader(m.Body, params["boundary"])
	var text, html string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p) // multipart decodes quoted-printable
		if err != nil {
			t.Fatal(err)
		}
		switch ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		}
	}
	return m.Header, text, html
}
