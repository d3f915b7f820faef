package netguard

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// DevelopmentConfig is the policy of a development or private deployment
// (PARLEY_ALLOW_PRIVATE_URLS): loopback and the private ranges (RFC 1918,
// ULA) are admitted; link-local, cloud metadata, CGNAT, multicast and
// reserved addresses stay refused.
func DevelopmentConfig() Config {
	return Config{
		AllowLoopback: true,
		AllowPrefixes: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("172.16.0.0/12"),
			netip.MustParsePrefix("192.168.0.0/16"),
			netip.MustParsePrefix("fc00::/7"),
		},
	}
}

// URLCheck is the registration-time check of a URL Parley will call later
// (webhooks, tool endpoints, MCP servers). It runs the same classifier as the
// dial-time guard on every spelling of an IP literal in the URL (dotted quad,
// "127.1", "0177.0.0.1", "2130706433", "0x7f000001", IPv4-mapped and
// -compatible IPv6, NAT64 64:ff9b::/96 and 6to4 carrying a non-public IPv4),
// refuses the localhost names and names that can only be internal (one label,
// .local, .internal), and requires https. It resolves nothing: a name's
// addresses are checked by the guard on every connection.
//
// Create it with NewURLCheck; it is safe for concurrent use.
type URLCheck struct {
	guard     *Guard
	allowHTTP bool
	private   bool
}

// NewURLCheck returns the check for a deployment. development admits what
// DevelopmentConfig admits, internal host names and plain http.
func NewURLCheck(development bool) *URLCheck {
	if development {
		return &URLCheck{guard: New(DevelopmentConfig()), allowHTTP: true, private: true}
	}
	return &URLCheck{guard: New(Config{})}
}

// ErrURL is matched (errors.Is) by every refusal of URLCheck.Check.
var ErrURL = errors.New("netguard: URL not allowed")

// urlError is a refusal of URLCheck.Check; its text is written to be shown
// to the client after the field name ("webhook_url must use https ...").
type urlError struct{ msg string }

func (e *urlError) Error() string { return e.msg }
func (e *urlError) Unwrap() error { return ErrURL }

func refuse(format string, args ...any) error {
	return &urlError{msg: fmt.Sprintf(format, args...)}
}

// Check validates raw and returns it normalised: scheme and host lower-cased,
// the default port dropped. Refusals match ErrURL and read as the end of a
// sentence that starts with the field name.
func (c *URLCheck) Check(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || !u.IsAbs() || u.Opaque != "" {
		return "", refuse("must be an absolute URL such as https://hooks.example.com/parley")
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && c.allowHTTP:
	default:
		return "", refuse("must use https (got %s)", u.Scheme)
	}
	if u.User != nil {
		return "", refuse("must not contain credentials")
	}
	if u.Fragment != "" {
		return "", refuse("must not contain a fragment")
	}
	host := u.Hostname()
	if host == "" {
		return "", refuse("must name a host")
	}
	port := u.Port()
	if port != "" {
		if err := validPort(port); err != nil {
			return "", err
		}
	}
	if err := c.checkHost(host); err != nil {
		return "", err
	}
	if (port == "443" && u.Scheme == "https") || (port == "80" && u.Scheme == "http") {
		u.Host = host
		if strings.Contains(host, ":") {
			u.Host = "[" + host + "]"
		}
	}
	return u.String(), nil
}

func validPort(p string) error {
	n := 0
	for _, r := range p {
		if r < '0' || r > '9' {
			return refuse("has an invalid port %q", p)
		}
		n = n*10 + int(r-'0')
		if n > 65535 {
			return refuse("has an invalid port %q", p)
		}
	}
	if n == 0 {
		return refuse("has an invalid port %q", p)
	}
	return nil
}

// checkHost classifies an IP literal (any spelling) with the guard's rules,
// and refuses host names that cannot be public.
func (c *URLCheck) checkHost(host string) error {
	a, err := netip.ParseAddr(host)
	if err != nil {
		var ok bool
		if a, ok = parseLegacyIPv4(host); !ok {
			return c.checkName(host)
		}
	}
	if err := c.guard.check(host, netip.AddrPortFrom(a, 0)); err != nil {
		var be *BlockedError
		if errors.As(err, &be) {
			return &urlError{msg: addrMessage(be)}
		}
		return err
	}
	return nil
}

func (c *URLCheck) checkName(host string) error {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if isLocalhost(h) {
		if c.guard.allowLoopback {
			return nil
		}
		return refuse("must point at a public address (%s is a loopback name)", host)
	}
	if c.private {
		return nil
	}
	if !strings.Contains(h, ".") || strings.HasSuffix(h, ".local") || strings.HasSuffix(h, ".internal") || strings.HasSuffix(h, ".localdomain") {
		return refuse("must point at a public host name (%s can only be internal)", host)
	}
	return nil
}

func addrMessage(be *BlockedError) string {
	what := "a " + string(be.Reason) + " address"
	switch be.Reason {
	case ReasonMetadata:
		what = "a cloud metadata address"
	case ReasonUnspecified:
		what = "an unspecified address"
	}
	if be.Host != "" && be.Host != be.Addr.String() {
		return fmt.Sprintf("must point at a public address (%s is %s, %s)", be.Host, be.Addr, what)
	}
	return fmt.Sprintf("must point at a public address (%s is %s)", be.Addr, what)
}
