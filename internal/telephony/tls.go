package telephony

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// ErrNoTLSListener refuses a TLS trunk when the server has no TLS listener:
// the Contact of our INVITE must name a TLS address the trunk can reach.
var ErrNoTLSListener = errors.New("sip over tls is not configured (no TLS listen address)")

// TLSError is a TLS handshake with a trunk that failed: its certificate did
// not verify (unknown authority, another host name, expired), it refused
// ours, or it does not speak TLS. No INVITE was sent.
type TLSError struct {
	Host string
	Err  error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("tls with %s failed: %v", e.Host, e.Err)
}

func (e *TLSError) Unwrap() error { return e.Err }

// listenTLS binds the TLS listener when one is configured.
func (s *Server) listenTLS() error {
	if s.cfg.TLSListenAddr == "" {
		return nil
	}
	ap, err := netip.ParseAddrPort(s.cfg.TLSListenAddr)
	if err != nil {
		return fmt.Errorf("sip tls listen address %q: must be IP:port: %w", s.cfg.TLSListenAddr, err)
	}
	conf := s.cfg.TLSServer
	if conf == nil || (len(conf.Certificates) == 0 && conf.GetCertificate == nil && conf.GetConfigForClient == nil) {
		return fmt.Errorf("sip tls listen address %s: no certificate configured", s.cfg.TLSListenAddr)
	}
	conf = conf.Clone()
	conf.MinVersion = max(conf.MinVersion, tls.VersionTLS12)
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return fmt.Errorf("listen sip tls %s: %w", s.cfg.TLSListenAddr, err)
	}
	timeout := s.cfg.TLSHandshakeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	s.tls = &tlsListener{Listener: ln, conf: conf, timeout: timeout, log: s.log}
	s.tlsPort = ln.Addr().(*net.TCPAddr).Port
	return nil
}

// tlsListener is tls.NewListener with a bound on each handshake. Accept
// does not handshake (a slow peer would hold up the others); the first
// Read, on the connection's own goroutine in sipgo, does.
type tlsListener struct {
	net.Listener
	conf    *tls.Config
	timeout time.Duration
	log     *slog.Logger
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &boundedTLSConn{Conn: tls.Server(c, l.conf), timeout: l.timeout, log: l.log}, nil
}

type boundedTLSConn struct {
	*tls.Conn
	timeout time.Duration
	log     *slog.Logger
}

func (c *boundedTLSConn) Read(b []byte) (int, error) {
	if !c.ConnectionState().HandshakeComplete {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		err := c.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.log.Debug("sip tls handshake failed", "remote", c.RemoteAddr().String(), "error", err)
			return 0, fmt.Errorf("tls handshake: %w", err)
		}
	}
	return c.Conn.Read(b)
}

// TLSAddr is the bound TLS address, or nil without a TLS listener.
func (s *Server) TLSAddr() net.Addr {
	if s.tls == nil {
		return nil
	}
	return s.tls.Addr()
}

// clientTLS is the configuration of connections to TLS trunks. sipgo
// fills ServerName with each destination's host, so it must stay empty.
func (s *Server) clientTLS() *tls.Config {
	conf := &tls.Config{}
	if s.cfg.TLSClient != nil {
		conf = s.cfg.TLSClient.Clone()
	}
	conf.ServerName = ""
	conf.MinVersion = max(conf.MinVersion, tls.VersionTLS12)
	return conf
}

// contactFor is our Contact for a dialog over transport (as sipgo names
// it: UDP, TCP, TLS) whose peer addressed us with scheme: a sips: URI
// for a sips: request (RFC 3261 §8.1.1.8), transport=tls or tcp otherwise.
func (s *Server) contactFor(transport, scheme string) sip.ContactHeader {
	c := s.contact
	c.Address.UriParams = nil
	switch strings.ToLower(transport) {
	case "", "udp":
	case "tls":
		c.Address.Port = s.tlsPort
		if strings.EqualFold(scheme, "sips") {
			c.Address.Scheme = "sips"
			break
		}
		c.Address.UriParams = sip.NewParams()
		c.Address.UriParams.Add("transport", "tls")
	default:
		c.Address.UriParams = sip.NewParams()
		c.Address.UriParams.Add("transport", strings.ToLower(transport))
	}
	return c
}

// clientFor is the client that sends requests over transport: the TLS one
// writes the TLS port into Via.
func (s *Server) clientFor(transport string) *sipgo.Client {
	if strings.EqualFold(transport, "tls") {
		return s.tlsClient
	}
	return s.client
}

// tlsFailure recognises a failed handshake in a send error.
func tlsFailure(host string, err error) error {
	var (
		verify   *tls.CertificateVerificationError
		hostname x509.HostnameError
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		alert    tls.AlertError
		record   tls.RecordHeaderError
	)
	if errors.As(err, &verify) || errors.As(err, &hostname) || errors.As(err, &unknown) ||
		errors.As(err, &invalid) || errors.As(err, &alert) || errors.As(err, &record) ||
		strings.Contains(err.Error(), "TLS handshake error") {
		return &TLSError{Host: host, Err: err}
	}
	return nil
}
