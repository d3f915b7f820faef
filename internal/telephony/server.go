// Package telephony answers SIP calls: it listens on UDP and TCP (and TLS
// when configured), routes each
// INVITE to a Handler chosen by a Router, negotiates media (internal/media),
// answers with a 200 OK that it retransmits until the ACK arrives, and tears
// calls down with BYE or CANCEL in either direction. It knows nothing about
// assistants or storage; those sit behind Router and Handler.
package telephony

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parley-voice/parley/internal/media"
	"github.com/parley-voice/parley/internal/netguard"
)

// Config configures the SIP edge.
type Config struct {
	// ListenAddr is host:port for both UDP and TCP (default 127.0.0.1:5060).
	ListenAddr string
	// PublicAddr is the host[:port] peers reach us at, written into Contact
	// and SDP. Empty means ListenAddr.
	PublicAddr string
	// TLSListenAddr, when set, adds SIP over TLS on that host:port (port 0
	// picks a free one). It needs TLSServer with a certificate.
	TLSListenAddr string
	// TLSServer configures the TLS listener: its certificate, through
	// Certificates or GetCertificate (which may reload it). Versions below
	// TLS 1.2 are never accepted.
	TLSServer *tls.Config
	// TLSHandshakeTimeout bounds a handshake on the TLS listener (default
	// 10 s): a peer that connects and stalls is disconnected.
	TLSHandshakeTimeout time.Duration
	// TLSClient configures connections to trunks with transport tls: the
	// roots their certificates are verified against (nil: the system's),
	// a client certificate. ServerName is always the trunk's host (SNI and
	// verification); versions below TLS 1.2 are never used.
	TLSClient *tls.Config
	// Media configures RTP; its BindIP defaults to the listen host.
	Media media.Config
	// MaxCalls caps concurrent calls; more get 503 with Retry-After. 0 = no cap.
	MaxCalls int
	// Admission, when set, is asked before each inbound call is set up;
	// a refusal answers 503 with Retry-After before anything is created.
	Admission Admission
	// RetryAfter is what 503 answers suggest (default 30 s).
	RetryAfter time.Duration
	// DrainTimeout is how long Serve lets live calls finish after its
	// context ends before hanging them up (0 = hang up at once).
	DrainTimeout time.Duration
	// T1 is the SIP round-trip estimate (default 500 ms; tests shorten it).
	T1 time.Duration
	// SDESWithoutTLS accepts and offers SDES-SRTP keys over SIP that is
	// not TLS, where anyone on the path can read them. Development and
	// tests only; otherwise an SRTP offer over UDP/TCP gets 488.
	SDESWithoutTLS bool
	// Limiter, when set, counts INVITE, REGISTER and OPTIONS per source
	// address; requests from a banned source are dropped unanswered.
	Limiter SourceLimiter
	// Trusted sources (trunks recently admitted) bypass Limiter.
	Trusted TrustedSources
	// LoopbackMedia accepts SDP offers whose address is loopback (local
	// development); otherwise they get 488 like link-local, metadata,
	// unspecified, multicast and reserved addresses always do.
	LoopbackMedia bool
	// Registrar, when set, answers REGISTER (trunks that register to
	// Parley); without it REGISTER gets 405.
	Registrar Registrar
	// StatsEvery is how often the edge counters are logged while they
	// change (default 1 min).
	StatsEvery time.Duration
	// UserAgent is sent in User-Agent and Server headers.
	UserAgent string
	Logger    *slog.Logger
}

// Router decides who answers an inbound call. It returns a *Reject to refuse
// the call with a SIP status; any other error (it could not decide) answers
// 503 with Retry-After.
type Router interface {
	Route(ctx context.Context, in Inbound) (Handler, error)
}

// Admission decides whether one more call is set up. Admit returns a func
// to call when the setup is over, or the reason it refuses.
type Admission interface {
	Admit() (done func(), reason string)
}

// Handler runs one answered call.
type Handler interface {
	// ServeCall runs the conversation. ctx ends when the caller hangs up,
	// media stops, or the server shuts down; context.Cause tells which
	// (ErrRemoteHangup, media.ErrMediaTimeout, ErrNoACK, ErrShutdown).
	// Returning hangs up the call (BYE) if it is still up.
	ServeCall(ctx context.Context, c *Call)
	// NotAnswered reports that the call ended before it was answered
	// (the caller cancelled, or answering failed); ServeCall is not called.
	NotAnswered(ctx context.Context, err error)
}

// Reject refuses an inbound call with a SIP final response.
type Reject struct {
	Code       int
	Reason     string
	RetryAfter time.Duration
	// Challenge are WWW-Authenticate values (401 answers).
	Challenge []string
	// Warning is a Warning header value (RFC 3261 §20.43).
	Warning string
}

func (r *Reject) Error() string { return fmt.Sprintf("sip %d %s", r.Code, r.Reason) }

// End causes a Handler can find with context.Cause.
var (
	ErrRemoteHangup = errors.New("caller hung up")
	ErrNoACK        = errors.New("no ACK for the 200 OK")
	ErrShutdown     = errors.New("server shutting down")
	ErrCanceled     = errors.New("caller cancelled before answer")
)

// Server is the SIP user agent server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	router Router

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	parser *sip.Parser

	udp *net.UDPConn
	tcp net.Listener
	tls net.Listener // nil without TLSListenAddr

	// tlsClient sends requests over TLS: its Via names the TLS port.
	tlsClient *sipgo.Client
	tlsPort   int // the TLS port written into Via and Contact

	edge       edgeCounters
	mediaGuard *netguard.Guard

	publicHost string
	publicPort int
	publicIP   netip.Addr
	contact    sip.ContactHeader

	mu       sync.Mutex
	calls    map[string]*Call // by dialogKey
	active   atomic.Int64
	draining atomic.Bool
	wg       sync.WaitGroup

	callsCtx    context.Context
	cancelCalls context.CancelCauseFunc
	serving     chan struct{} // closed once Serve has set callsCtx
}

// New builds a server; Listen binds it and Serve runs it.
func New(cfg Config, router Router) (*Server, error) {
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:5060"
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 30 * time.Second
	}
	if cfg.T1 <= 0 {
		cfg.T1 = sip.T1
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "Parley"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StatsEvery <= 0 {
		cfg.StatsEvery = time.Minute
	}
	return &Server{cfg: cfg, log: cfg.Logger, router: router, calls: map[string]*Call{}, parser: sip.NewParser(), serving: make(chan struct{}),
		mediaGuard: netguard.New(netguard.Config{})}, nil
}

// Listen binds the UDP and TCP sockets (port 0 picks a free port, the same
// for both) and prepares the SIP stack.
func (s *Server) Listen() error {
	host, portS, err := net.SplitHostPort(s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("sip listen address %q: %w", s.cfg.ListenAddr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("sip listen address %q: host must be an IP address", s.cfg.ListenAddr)
	}
	port, _ := strconv.Atoi(portS)
	for attempt := 0; ; attempt++ {
		s.udp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if err != nil {
			return fmt.Errorf("listen sip udp %s: %w", s.cfg.ListenAddr, err)
		}
		bound := s.udp.LocalAddr().(*net.UDPAddr).Port
		s.tcp, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(bound)))
		if err == nil {
			port = bound
			break
		}
		s.udp.Close()
		if port != 0 || attempt > 20 {
			return fmt.Errorf("listen sip tcp %s: %w", s.cfg.ListenAddr, err)
		}
	}
	_ = s.udp.SetReadBuffer(1 << 20)
	if err := s.setPublic(ip, port); err != nil {
		s.udp.Close()
		s.tcp.Close()
		return err
	}
	if err := s.listenTLS(); err != nil {
		s.udp.Close()
		s.tcp.Close()
		return err
	}
	if !s.cfg.Media.BindIP.IsValid() {
		s.cfg.Media.BindIP = ip
	}
	if s.cfg.Media.Logger == nil {
		s.cfg.Media.Logger = s.log
	}
	return s.buildStack()
}

func (s *Server) setPublic(listenIP netip.Addr, port int) error {
	s.publicHost, s.publicPort, s.publicIP = listenIP.String(), port, listenIP
	if s.cfg.PublicAddr != "" {
		h, p, err := net.SplitHostPort(s.cfg.PublicAddr)
		if err != nil {
			h, p = s.cfg.PublicAddr, strconv.Itoa(port)
		}
		ip, err := netip.ParseAddr(h)
		if err != nil {
			return fmt.Errorf("sip public address %q: host must be an IP address (it goes into SDP)", s.cfg.PublicAddr)
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("sip public address %q: bad port", s.cfg.PublicAddr)
		}
		s.publicHost, s.publicPort, s.publicIP = ip.String(), n, ip
	}
	if s.publicIP.IsUnspecified() {
		return fmt.Errorf("sip: listening on %s needs PARLEY_SIP_PUBLIC_ADDR, the address peers should send to", s.cfg.ListenAddr)
	}
	s.contact = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "parley", Host: s.publicHost, Port: s.publicPort}}
	return nil
}

func (s *Server) buildStack() error {
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(s.cfg.UserAgent),
		sipgo.WithUserAgentHostname(s.publicHost),
		sipgo.WithUserAgenTLSConfig(s.clientTLS()),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(s.log.With("component", "sip-transport")),
			sip.WithTransportLayerReadFilter(s.filter),
		),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(s.log.With("component", "sip-transaction")),
			sip.WithTransactionLayerUnhandledResponseHandler(func(r *sip.Response) {
				s.log.Debug("sip response matches no transaction", "status", r.StatusCode, "source", r.Source())
			}),
		),
	)
	if err != nil {
		return fmt.Errorf("sip user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(s.log.With("component", "sip-server")))
	if err != nil {
		ua.Close()
		return fmt.Errorf("sip server: %w", err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(s.publicHost), sipgo.WithClientPort(s.publicPort), sipgo.WithClientLogger(s.log.With("component", "sip-client")))
	if err != nil {
		ua.Close()
		return fmt.Errorf("sip client: %w", err)
	}
	tlsClient, err := sipgo.NewClient(ua, sipgo.WithClientHostname(s.publicHost), sipgo.WithClientPort(s.tlsPort), sipgo.WithClientLogger(s.log.With("component", "sip-client")))
	if err != nil {
		ua.Close()
		return fmt.Errorf("sip tls client: %w", err)
	}
	s.ua, s.srv, s.client, s.tlsClient = ua, srv, client, tlsClient
	srv.OnInvite(s.safe(s.onInvite))
	srv.OnAck(s.safe(s.onAck))
	srv.OnBye(s.safe(s.onBye))
	srv.OnCancel(s.safe(s.onStrayCancel))
	srv.OnOptions(s.safe(s.onOptions))
	srv.OnInfo(s.safe(s.onInfo))
	srv.OnNotify(s.safe(s.onNotify))
	if s.cfg.Registrar != nil {
		srv.OnRegister(s.safe(s.onRegister))
	}
	srv.OnNoRoute(s.safe(s.onUnsupported))
	return nil
}

// UDPAddr and TCPAddr are the bound addresses (after Listen).
func (s *Server) UDPAddr() netip.AddrPort { return s.udp.LocalAddr().(*net.UDPAddr).AddrPort() }

// TCPAddr is the bound TCP address.
func (s *Server) TCPAddr() net.Addr { return s.tcp.Addr() }

// ActiveCalls is the number of calls in progress.
func (s *Server) ActiveCalls() int { return int(s.active.Load()) }

// awaitUDPListener waits (briefly) for sipgo to register the listening
// UDP socket, which it does on ServeUDP's goroutine: until then a request
// cannot be sent from it (fromListener).
func (s *Server) awaitUDPListener() {
	pool := s.ua.TransportLayer().Pool("udp")
	addr := s.udp.LocalAddr().String()
	for range 1000 {
		if pool.Get(addr) != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
	s.log.Warn("sip udp listener not registered after 1s; requests may leave from other ports")
}

// Serve handles SIP until ctx ends, then refuses new calls, lets live ones
// finish for up to DrainTimeout, hangs up the rest and returns.
func (s *Server) Serve(ctx context.Context) error {
	// Calls outlive ctx by the drain period, so they hang off a context of
	// their own that keeps ctx's values but not its cancellation.
	s.callsCtx, s.cancelCalls = context.WithCancelCause(context.WithoutCancel(ctx))
	transports := 2
	errc := make(chan error, 3)
	go func() { errc <- s.srv.ServeUDP(s.udp) }()
	go func() { errc <- s.srv.ServeTCP(s.tcp) }()
	if s.tls != nil {
		transports++
		go func() { errc <- s.srv.ServeTLS(s.tls) }()
	}
	s.awaitUDPListener()
	close(s.serving)
	statsCtx, stopStats := context.WithCancel(ctx)
	statsDone := make(chan struct{})
	go func() { defer close(statsDone); s.logEdge(statsCtx, s.cfg.StatsEvery) }()
	defer func() { stopStats(); <-statsDone }()
	attrs := []any{"udp", s.UDPAddr().String(), "tcp", s.TCPAddr().String(), "public", net.JoinHostPort(s.publicHost, strconv.Itoa(s.publicPort))}
	if s.tls != nil {
		attrs = append(attrs, "tls", s.tls.Addr().String())
	}
	s.log.Info("sip listening", attrs...)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.draining.Store(true)
	if s.cfg.DrainTimeout > 0 && s.active.Load() > 0 {
		s.log.Info("sip draining", "calls", s.active.Load(), "timeout", s.cfg.DrainTimeout)
		deadline := time.Now().Add(s.cfg.DrainTimeout)
		for s.active.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	s.cancelCalls(ErrShutdown)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.log.Warn("sip shutdown: calls still ending after 10s")
	}
	s.udp.Close()
	s.tcp.Close()
	if s.tls != nil {
		s.tls.Close()
	}
	s.ua.Close()
	// The transports return once their sockets are closed.
	for range transports {
		if serveErr == nil {
			<-errc
		} else {
			serveErr = nil
		}
	}
	return nil
}

// safe keeps a handler's panic from taking the process down: nothing a
// peer sends may crash the server. The request gets a 500 when it can.
func (s *Server) safe(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("sip handler panicked", "method", string(req.Method), "panic", v, "stack", string(debug.Stack()))
				if tx != nil && !req.IsAck() {
					_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
				}
			}
		}()
		h(req, tx)
	}
}

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if s.dropStream(req) {
		return
	}
	code, reason := 200, "OK"
	if s.draining.Load() {
		code, reason = 503, "Service Unavailable"
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.AppendHeader(sip.NewHeader("Allow", s.allowHeader()))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	s.respond(tx, res)
}

func (s *Server) onUnsupported(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil)
	res.AppendHeader(sip.NewHeader("Allow", s.allowHeader()))
	s.respond(tx, res)
}

// onStrayCancel answers a CANCEL that matched no pending INVITE.
func (s *Server) onStrayCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
}

const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY"

// allowHeader is the Allow header: REGISTER too when a Registrar is set.
func (s *Server) allowHeader() string {
	if s.cfg.Registrar != nil {
		return allowed + ", REGISTER"
	}
	return allowed
}

func (s *Server) respond(tx sip.ServerTransaction, res *sip.Response) {
	res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
	if err := tx.Respond(res); err != nil {
		s.log.Debug("sip respond failed", "status", res.StatusCode, "error", err)
	}
}
