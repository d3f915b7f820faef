// Package netguard guards outgoing requests to user-supplied URLs (webhooks,
// tool and MCP endpoints) against server-side request forgery.
//
// Enforcement happens at dial time on the resolved IP: the guard resolves the
// host itself, checks every address, and dials the checked IP, so a DNS answer
// that changes between check and connect (rebinding) cannot slip through.
// Because every connection is dialled this way, each redirect hop is checked
// again too; CheckRedirect additionally caps the number of redirects and admits
// only http and https. Proxies are never taken from the environment: a proxy
// would do its own resolution and defeat the check.
//
// Refused are loopback, private (RFC 1918, CGNAT, ULA), link-local, cloud
// metadata, unspecified, multicast and reserved addresses, including their
// IPv4-mapped and IPv4-compatible IPv6 forms, legacy numeric spellings such as
// "127.1" or "0x7f000001", and the name localhost. Config opens exceptions.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Resolver resolves host names to addresses; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config opens exceptions to the default policy, which refuses every
// non-public destination. The exceptions apply after classification.
type Config struct {
	// AllowLoopback admits 127.0.0.0/8 and ::1 (local development and tests).
	// Everything else stays refused.
	AllowLoopback bool
	// Allow admits these exact destinations (ip:port) whatever their range
	// (test sinks).
	Allow []netip.AddrPort
	// AllowPrefixes admits whole ranges, for operators whose backends live on a
	// private network (e.g. 10.0.0.0/8). Cloud metadata addresses are never
	// admitted by a prefix, only by an exact Allow entry.
	AllowPrefixes []netip.Prefix
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// MaxRedirects caps redirects per request: zero means 5, negative means
	// no redirect is followed.
	MaxRedirects int
}

// Guard checks destinations against a Config. It is safe for concurrent use.
// Create it with New.
type Guard struct {
	allowLoopback bool
	allow         map[netip.AddrPort]bool
	allowPrefixes []netip.Prefix
	resolver      Resolver
	maxRedirects  int
}

// New returns a Guard for cfg. It copies cfg's slices.
func New(cfg Config) *Guard {
	g := &Guard{
		allowLoopback: cfg.AllowLoopback,
		allow:         make(map[netip.AddrPort]bool, len(cfg.Allow)),
		allowPrefixes: append([]netip.Prefix(nil), cfg.AllowPrefixes...),
		resolver:      cfg.Resolver,
		maxRedirects:  cfg.MaxRedirects,
	}
	for _, ap := range cfg.Allow {
		g.allow[netip.AddrPortFrom(canonical(ap.Addr()).WithZone(""), ap.Port())] = true
	}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	if g.maxRedirects == 0 {
		g.maxRedirects = 5
	}
	return g
}

// ErrBlocked is matched (errors.Is) by every refusal of the guard.
var ErrBlocked = errors.New("netguard: destination not allowed")

// Reason says why a destination was refused.
type Reason string

// Reasons for a refusal.
const (
	ReasonLoopback    Reason = "loopback"           // 127.0.0.0/8, ::1, localhost
	ReasonPrivate     Reason = "private"            // 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7
	ReasonLinkLocal   Reason = "link-local"         // 169.254/16, fe80::/10
	ReasonMetadata    Reason = "metadata"           // cloud instance metadata services
	ReasonUnspecified Reason = "unspecified"        // 0.0.0.0/8, ::
	ReasonMulticast   Reason = "multicast"          // 224/4, ff00::/8
	ReasonReserved    Reason = "reserved"           // documentation, benchmarking, 240/4, non-global IPv6, ...
	ReasonScheme      Reason = "scheme"             // not http or https
	ReasonRedirects   Reason = "too-many-redirects" // more than MaxRedirects
)

// BlockedError is a refusal. It unwraps to ErrBlocked.
type BlockedError struct {
	Host   string     // as written in the URL or dial address
	Addr   netip.Addr // the refused address (zero for scheme and redirect refusals)
	Reason Reason
}

func (e *BlockedError) Error() string {
	switch {
	case e.Addr.IsValid() && e.Host != "" && e.Host != e.Addr.String():
		return fmt.Sprintf("netguard: %s (from %q) is %s", e.Addr, e.Host, e.Reason)
	case e.Addr.IsValid():
		return fmt.Sprintf("netguard: %s is %s", e.Addr, e.Reason)
	case e.Reason == ReasonScheme:
		return fmt.Sprintf("netguard: only http and https URLs are allowed (host %q)", e.Host)
	case e.Reason == ReasonRedirects:
		return fmt.Sprintf("netguard: too many redirects (to host %q)", e.Host)
	default:
		return fmt.Sprintf("netguard: host %q refused: %s", e.Host, e.Reason)
	}
}

func (e *BlockedError) Unwrap() error { return ErrBlocked }

// Client returns an *http.Client whose every connection goes through the
// guard, with total timeout timeout (zero means none, as for http.Client).
//
// Its transport never uses a proxy, refuses non-http(s) URLs, and dials by
// resolving the host itself: if any resolved address is refused, the
// connection is refused (no attempt is made on the others), otherwise the
// checked addresses are dialled in order. TLS still verifies the certificate
// for the host name in the URL. Redirects are capped at MaxRedirects.
//
// Call CloseIdleConnections on the client when done with it.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	base := &http.Transport{
		Proxy: nil, // never from the environment
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			aps, err := g.resolve(ctx, lookupNetwork(network), host, port)
			if err != nil {
				return nil, err
			}
			var firstErr error
			for _, ap := range aps {
				conn, err := dialer.DialContext(ctx, network, ap.String())
				if err == nil {
					return conn, nil
				}
				if firstErr == nil {
					firstErr = err
				}
			}
			return nil, firstErr
		},
		// DialTLSContext stays nil so the transport performs the TLS handshake
		// on the guarded connection and verifies the URL's host name.
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: &transport{base: base},
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if g.maxRedirects < 0 || len(via) > g.maxRedirects {
				return &BlockedError{Host: req.URL.Hostname(), Reason: ReasonRedirects}
			}
			return checkScheme(req.URL)
		},
	}
}

// transport refuses non-http(s) requests before they reach the
// http.Transport, so they fail with a BlockedError.
type transport struct{ base *http.Transport }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkScheme(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// underlying transport.
func (t *transport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// CheckURL validates raw without sending anything: the scheme must be http or
// https, the host present, and every address it resolves to allowed.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if err := checkScheme(u); err != nil {
		return err
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("netguard: URL %q has no host", raw)
	}
	port := u.Port()
	switch {
	case port != "":
	case u.Scheme == "https":
		port = "443"
	default:
		port = "80"
	}
	_, err = g.resolve(ctx, "ip", host, port)
	return err
}

// Check reports whether one address:port may be dialled.
func (g *Guard) Check(ap netip.AddrPort) error {
	return g.check(ap.Addr().String(), ap)
}

func (g *Guard) check(host string, ap netip.AddrPort) error {
	a := canonical(ap.Addr()).WithZone("")
	reason := classify(a)
	if reason == "" || g.admits(netip.AddrPortFrom(a, ap.Port()), reason) {
		return nil
	}
	return &BlockedError{Host: host, Addr: a, Reason: reason}
}

// admits applies the Config exceptions to a refused, canonical address.
func (g *Guard) admits(ap netip.AddrPort, reason Reason) bool {
	switch {
	case g.allow[ap]:
		return true
	case reason == ReasonLoopback:
		if g.allowLoopback {
			return true
		}
	case reason == ReasonMetadata:
		return false
	}
	for _, p := range g.allowPrefixes {
		if p.Contains(ap.Addr()) {
			return true
		}
	}
	return false
}

// resolve returns the addresses to dial for host:port, all of them checked,
// or the refusal of the first blocked one.
func (g *Guard) resolve(ctx context.Context, network, host, port string) ([]netip.AddrPort, error) {
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("netguard: invalid port %q", port)
	}
	addrs, err := g.lookup(ctx, network, host)
	if err != nil {
		return nil, err
	}
	aps := make([]netip.AddrPort, 0, len(addrs))
	for _, a := range addrs {
		ap := netip.AddrPortFrom(canonical(a), uint16(p))
		if err := g.check(host, ap); err != nil {
			return nil, err
		}
		aps = append(aps, ap)
	}
	return aps, nil
}

// lookup resolves host. IP literals, legacy numeric spellings and localhost
// names are answered without asking the resolver.
func (g *Guard) lookup(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	if a, ok := parseLegacyIPv4(host); ok {
		return []netip.Addr{a}, nil
	}
	if isLocalhost(host) {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}, nil
	}
	addrs, err := g.resolver.LookupNetIP(ctx, network, host)
	if err == nil && len(addrs) == 0 {
		err = &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, err
}

func checkScheme(u *url.URL) error {
	if u.Scheme == "http" || u.Scheme == "https" {
		return nil
	}
	return &BlockedError{Host: u.Hostname(), Reason: ReasonScheme}
}

// isLocalhost reports whether host is localhost or a name under it, which
// RFC 6761 reserves for loopback.
func isLocalhost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// lookupNetwork maps a dial network ("tcp4") to a lookup network ("ip4").
func lookupNetwork(network string) string {
	switch network {
	case "tcp4", "udp4":
		return "ip4"
	case "tcp6", "udp6":
		return "ip6"
	}
	return "ip"
}
