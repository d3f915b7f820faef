package netguard

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeResolver answers from a map and never touches the network; it counts
// lookups so tests can see whether a name reached it.
type fakeResolver struct {
	names   map[string][]netip.Addr
	lookups atomic.Int64
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.lookups.Add(1)
	if addrs, ok := r.names[host]; ok {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func newResolver() *fakeResolver {
	return &fakeResolver{names: map[string][]netip.Addr{
		"rebind.test":    {netip.MustParseAddr("127.0.0.1")},
		"mixed.test":     {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("127.0.0.1")},
		"public.test":    {netip.MustParseAddr("93.184.216.34")},
		"empty.test":     {},
		"example.com":    {netip.MustParseAddr("127.0.0.1")},
		"wrongname.test": {netip.MustParseAddr("127.0.0.1")},
	}}
}

// sink is a plain HTTP server on 127.0.0.1 that counts the requests it gets.
type sink struct {
	*httptest.Server
	hits atomic.Int64
	port uint16
}

func newSink(t *testing.T, h http.HandlerFunc) *sink {
	t.Helper()
	s := &sink{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Listener.Close()
	s.Listener = ln
	s.Start()
	t.Cleanup(s.Close)
	s.port = s.addrPort().Port()
	return s
}

func (s *sink) addrPort() netip.AddrPort {
	return netip.MustParseAddrPort(s.Listener.Addr().String())
}

// client returns a guarded client with a short timeout, closed at cleanup.
func client(t *testing.T, g *Guard) *http.Client {
	c := g.Client(2 * time.Second)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func get(c *http.Client, u string) error {
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// wantBlocked fails unless err is a *BlockedError with reason (and, if want
// is valid, that address) that also matches ErrBlocked.
func wantBlocked(t *testing.T, err error, reason Reason, addr string) {
	t.Helper()
	var be *BlockedError
	if !errors.As(err, &be) || !errors.Is(err, ErrBlocked) {
		t.Fatalf("err = %v, want *BlockedError %s", err, reason)
	}
	if be.Reason != reason {
		t.Fatalf("reason = %s, want %s (%v)", be.Reason, reason, err)
	}
	if addr != "" && be.Addr != netip.MustParseAddr(addr) {
		t.Fatalf("addr = %s, want %s (%v)", be.Addr, addr, err)
	}
}

func TestSSRFTable(t *testing.T) {
	s := newSink(t, nil)
	res := newResolver()
	c := client(t, New(Config{Resolver: res}))
	p := s.port
	tests := []struct {
		url    string
		reason Reason
		addr   string
	}{
		{fmt.Sprintf("http://127.1:%d/", p), ReasonLoopback, "127.0.0.1"},
		{fmt.Sprintf("http://2130706433:%d/", p), ReasonLoopback, "127.0.0.1"},
		{fmt.Sprintf("http://0x7f000001:%d/", p), ReasonLoopback, "127.0.0.1"},
		{fmt.Sprintf("http://0177.0.0.1:%d/", p), ReasonLoopback, "127.0.0.1"},
		{fmt.Sprintf("http://0x7f.1:%d/", p), ReasonLoopback, "127.0.0.1"},
		{fmt.Sprintf("http://127.0.0.1:%d/", p), ReasonLoopback, "127.0.0.1"},
		{fmt.Sprintf("http://[::ffff:7f00:1]:%d/", p), ReasonLoopback, "127.0.0.1"},
		{fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", p), ReasonLoopback, "127.0.0.1"},
		{fmt.Sprintf("http://[::127.0.0.1]:%d/", p), ReasonLoopback, "127.0.0.1"},
		{fmt.Sprintf("http://[::1]:%d/", p), ReasonLoopback, "::1"},
		{fmt.Sprintf("http://localhost.:%d/", p), ReasonLoopback, "127.0.0.1"},
		{fmt.Sprintf("http://localhost:%d/", p), ReasonLoopback, "127.0.0.1"},
		{fmt.Sprintf("http://api.LOCALHOST:%d/", p), ReasonLoopback, "127.0.0.1"},
		{"http://169.254.169.254/latest/meta-data", ReasonMetadata, "169.254.169.254"},
		{"http://[fd00:ec2::254]/", ReasonMetadata, "fd00:ec2::254"},
		{"http://100.100.100.200/", ReasonMetadata, "100.100.100.200"},
		{"http://[fd00::1]/", ReasonPrivate, "fd00::1"},
		{"http://10.1.2.3/", ReasonPrivate, "10.1.2.3"},
		{"http://192.168.0.1/", ReasonPrivate, "192.168.0.1"},
		{"http://172.16.5.5/", ReasonPrivate, "172.16.5.5"},
		{"http://100.64.0.1/", ReasonPrivate, "100.64.0.1"},
		{fmt.Sprintf("http://0.0.0.0:%d/", p), ReasonUnspecified, "0.0.0.0"},
		{fmt.Sprintf("http://0:%d/", p), ReasonUnspecified, "0.0.0.0"},
		{fmt.Sprintf("http://[::]:%d/", p), ReasonUnspecified, "::"},
		{"http://224.0.0.1/", ReasonMulticast, "224.0.0.1"},
		{"http://[fe80::1]/", ReasonLinkLocal, "fe80::1"},
		{"http://[fe80::1%25eth0]/", ReasonLinkLocal, "fe80::1"},
		{"http://255.255.255.255/", ReasonReserved, "255.255.255.255"},
		{"http://[64:ff9b::7f00:1]/", ReasonReserved, "64:ff9b::7f00:1"},
		{fmt.Sprintf("http://rebind.test:%d/", p), ReasonLoopback, "127.0.0.1"},
		// Refused as a whole because one answer is blocked; the public one is not tried either.
		{fmt.Sprintf("http://mixed.test:%d/", p), ReasonLoopback, "127.0.0.1"},
		{"file:///etc/passwd", ReasonScheme, ""},
		{fmt.Sprintf("gopher://127.0.0.1:%d/", p), ReasonScheme, ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			wantBlocked(t, get(c, tt.url), tt.reason, tt.addr)
		})
	}
	if n := s.hits.Load(); n != 0 {
		t.Fatalf("sink got %d requests, want 0", n)
	}
	if n := res.lookups.Load(); n != 2 {
		t.Fatalf("resolver asked %d times, want 2 (rebind.test, mixed.test only)", n)
	}
}

func TestBlockedErrorMessage(t *testing.T) {
	err := New(Config{}).CheckURL(context.Background(), "http://localhost./")
	want := `netguard: 127.0.0.1 (from "localhost.") is loopback`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	err = New(Config{}).Check(netip.MustParseAddrPort("10.0.0.1:80"))
	if want := "netguard: 10.0.0.1 is private"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func TestRedirectToBlocked(t *testing.T) {
	target := newSink(t, nil)
	redir := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("http://127.0.0.1:%d/admin", target.port), http.StatusFound)
	})
	c := client(t, New(Config{Allow: []netip.AddrPort{redir.addrPort()}}))
	wantBlocked(t, get(c, redir.URL), ReasonLoopback, "127.0.0.1")
	if n := redir.hits.Load(); n != 1 {
		t.Fatalf("redirector got %d requests, want 1", n)
	}
	if n := target.hits.Load(); n != 0 {
		t.Fatalf("redirect target got %d requests, want 0", n)
	}
}

func TestRedirectToFile(t *testing.T) {
	redir := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///x", http.StatusFound)
	})
	c := client(t, New(Config{Allow: []netip.AddrPort{redir.addrPort()}}))
	wantBlocked(t, get(c, redir.URL), ReasonScheme, "")

	// CheckRedirect refuses it itself, before the transport sees it.
	req, err := http.NewRequest(http.MethodGet, "file:///x", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantBlocked(t, c.CheckRedirect(req, nil), ReasonScheme, "")
}

func TestRedirectLimit(t *testing.T) {
	for _, tt := range []struct {
		max      int
		wantHits int64
	}{
		{0, 6}, // default 5: the first request plus five redirects
		{2, 3},
		{-1, 1},
	} {
		t.Run(fmt.Sprint(tt.max), func(t *testing.T) {
			loop := newSink(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/again", http.StatusFound)
			})
			c := client(t, New(Config{Allow: []netip.AddrPort{loop.addrPort()}, MaxRedirects: tt.max}))
			wantBlocked(t, get(c, loop.URL), ReasonRedirects, "")
			if n := loop.hits.Load(); n != tt.wantHits {
				t.Fatalf("server got %d requests, want %d", n, tt.wantHits)
			}
		})
	}
}

func TestRedirectWithinLimit(t *testing.T) {
	s := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			http.Redirect(w, r, "/done", http.StatusFound)
		}
	})
	c := client(t, New(Config{Allow: []netip.AddrPort{s.addrPort()}}))
	if err := get(c, s.URL); err != nil {
		t.Fatal(err)
	}
	if n := s.hits.Load(); n != 2 {
		t.Fatalf("server got %d requests, want 2", n)
	}
}

func TestAllowLoopback(t *testing.T) {
	s := newSink(t, nil)
	c := client(t, New(Config{AllowLoopback: true, Resolver: newResolver()}))
	if err := get(c, s.URL); err != nil {
		t.Fatal(err)
	}
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("sink got %d requests, want 1", n)
	}
	wantBlocked(t, get(c, "http://169.254.169.254/latest/meta-data"), ReasonMetadata, "169.254.169.254")
	wantBlocked(t, get(c, "http://10.0.0.1/"), ReasonPrivate, "10.0.0.1")
}

func TestDefaultRefusesLoopback(t *testing.T) {
	s := newSink(t, nil)
	c := client(t, New(Config{Resolver: newResolver()}))
	wantBlocked(t, get(c, s.URL), ReasonLoopback, "127.0.0.1")
	if n := s.hits.Load(); n != 0 {
		t.Fatalf("sink got %d requests, want 0", n)
	}
}

// A name is resolved by the guard's resolver and the checked IP is dialled,
// while the request still carries the name.
func TestDialsResolvedAddress(t *testing.T) {
	var host atomic.Value
	s := newSink(t, func(w http.ResponseWriter, r *http.Request) { host.Store(r.Host) })
	res := newResolver()
	c := client(t, New(Config{Allow: []netip.AddrPort{s.addrPort()}, Resolver: res}))
	u := fmt.Sprintf("http://rebind.test:%d/", s.port)
	if err := get(c, u); err != nil {
		t.Fatal(err)
	}
	if got, want := host.Load(), fmt.Sprintf("rebind.test:%d", s.port); got != want {
		t.Fatalf("Host = %v, want %s", got, want)
	}
	if n := res.lookups.Load(); n != 1 {
		t.Fatalf("resolver asked %d times, want 1", n)
	}
	// Allow is exact: the same address on another port stays refused.
	wantBlocked(t, get(c, fmt.Sprintf("http://rebind.test:%d/", s.port+1)), ReasonLoopback, "127.0.0.1")
}

// TLS verifies the certificate against the URL's host name, not the dialled IP.
func TestTLSVerifiesHostName(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer s.Close()
	ap := netip.MustParseAddrPort(s.Listener.Addr().String())
	c := client(t, New(Config{Allow: []netip.AddrPort{ap}, Resolver: newResolver()}))
	tr := c.Transport.(*transport).base
	if tr.Proxy != nil || tr.DialTLSContext != nil {
		t.Fatal("transport has a proxy or a custom TLS dialer")
	}
	// Trust the test certificate, as s.Client does; no ServerName is set.
	tr.TLSClientConfig = s.Client().Transport.(*http.Transport).TLSClientConfig.Clone()

	// The test certificate is for example.com (and 127.0.0.1, ::1).
	if err := get(c, fmt.Sprintf("https://example.com:%d/", ap.Port())); err != nil {
		t.Fatal(err)
	}
	err := get(c, fmt.Sprintf("https://wrongname.test:%d/", ap.Port()))
	var he x509.HostnameError
	if !errors.As(err, &he) {
		t.Fatalf("err = %v, want x509.HostnameError", err)
	}
}

func TestAllowPrefixes(t *testing.T) {
	g := New(Config{AllowPrefixes: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("100.64.0.0/10"),
	}})
	for _, ap := range []string{"10.0.0.1:443", "10.255.1.2:80", "[::ffff:10.1.1.1]:80", "100.100.100.100:53"} {
		if err := g.Check(netip.MustParseAddrPort(ap)); err != nil {
			t.Errorf("Check(%s) = %v, want nil", ap, err)
		}
	}
	wantBlocked(t, g.Check(netip.MustParseAddrPort("192.168.1.1:443")), ReasonPrivate, "192.168.1.1")
	wantBlocked(t, g.Check(netip.MustParseAddrPort("127.0.0.1:80")), ReasonLoopback, "127.0.0.1")
	// A prefix never admits a metadata address, even one inside it.
	wantBlocked(t, g.Check(netip.MustParseAddrPort("100.100.100.200:80")), ReasonMetadata, "100.100.100.200")
	// An exact Allow entry does.
	meta := netip.MustParseAddrPort("169.254.169.254:80")
	if err := New(Config{Allow: []netip.AddrPort{meta}}).Check(meta); err != nil {
		t.Fatalf("exact Allow: %v", err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		addr string
		want Reason
	}{
		// Public.
		{"93.184.216.34", ""},
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"169.253.255.255", ""},
		{"223.255.255.255", ""},
		{"2606:4700:4700::1111", ""},
		{"2001:4860:4860::8888", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},  // 6to4 of 8.8.8.8
		// Loopback.
		{"127.0.0.1", ReasonLoopback},
		{"127.255.255.254", ReasonLoopback},
		{"::1", ReasonLoopback},
		{"::ffff:127.0.0.1", ReasonLoopback},
		{"::ffff:7f00:1", ReasonLoopback},
		{"::127.0.0.1", ReasonLoopback},
		// Private.
		{"10.0.0.0", ReasonPrivate},
		{"10.255.255.255", ReasonPrivate},
		{"172.16.0.0", ReasonPrivate},
		{"172.31.255.255", ReasonPrivate},
		{"192.168.1.1", ReasonPrivate},
		{"100.64.0.0", ReasonPrivate},
		{"100.127.255.255", ReasonPrivate},
		{"fc00::1", ReasonPrivate},
		{"fdff:ffff::1", ReasonPrivate},
		{"::ffff:10.0.0.1", ReasonPrivate},
		{"::ffff:192.168.0.1", ReasonPrivate},
		// Link-local.
		{"169.254.0.1", ReasonLinkLocal},
		{"169.254.170.2", ReasonLinkLocal},
		{"fe80::1", ReasonLinkLocal},
		{"fe80::1%eth0", ReasonLinkLocal},
		{"febf::1", ReasonLinkLocal},
		// Metadata, before link-local and private.
		{"169.254.169.254", ReasonMetadata},
		{"::ffff:169.254.169.254", ReasonMetadata},
		{"::169.254.169.254", ReasonMetadata},
		{"fd00:ec2::254", ReasonMetadata},
		{"100.100.100.200", ReasonMetadata},
		{"168.63.129.16", ReasonMetadata},
		// Unspecified.
		{"0.0.0.0", ReasonUnspecified},
		{"0.1.2.3", ReasonUnspecified},
		{"::", ReasonUnspecified},
		{"::ffff:0.0.0.0", ReasonUnspecified},
		{"::2", ReasonUnspecified}, // IPv4-compatible 0.0.0.2
		// Multicast.
		{"224.0.0.1", ReasonMulticast},
		{"239.255.255.250", ReasonMulticast},
		{"ff02::1", ReasonMulticast},
		{"ff05::2", ReasonMulticast},
		// Reserved.
		{"240.0.0.1", ReasonReserved},
		{"255.255.255.255", ReasonReserved},
		{"192.0.0.8", ReasonReserved},
		{"192.0.2.1", ReasonReserved},
		{"192.88.99.1", ReasonReserved},
		{"198.18.0.1", ReasonReserved},
		{"198.19.255.255", ReasonReserved},
		{"198.51.100.1", ReasonReserved},
		{"203.0.113.1", ReasonReserved},
		{"2001:db8::1", ReasonReserved},
		{"3fff::1", ReasonReserved},
		{"2001::1", ReasonReserved},         // Teredo
		{"64:ff9b::7f00:1", ReasonReserved}, // NAT64 of 127.0.0.1
		{"64:ff9b::a00:1", ReasonReserved},  // NAT64 of 10.0.0.1
		{"64:ff9b::a9fe:a9fe", ReasonReserved},
		{"64:ff9b:1::808:808", ReasonReserved}, // local-use NAT64
		{"2002:7f00:1::1", ReasonReserved},     // 6to4 of 127.0.0.1
		{"2002:a9fe:a9fe::", ReasonReserved},   // 6to4 of 169.254.169.254
		{"::ffff:0:7f00:1", ReasonReserved},    // IPv4-translated (SIIT)
		{"100::1", ReasonReserved},             // discard-only
		{"fec0::1", ReasonReserved},            // deprecated site-local
		{"4000::1", ReasonReserved},            // unallocated
	}
	for _, tt := range tests {
		if got := classify(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("classify(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	if got := classify(netip.Addr{}); got != ReasonUnspecified {
		t.Errorf("classify(zero) = %q, want %q", got, ReasonUnspecified)
	}
}

func TestParseLegacyIPv4(t *testing.T) {
	valid := map[string]string{
		"127.1":            "127.0.0.1",
		"127.0.1":          "127.0.0.1",
		"2130706433":       "127.0.0.1",
		"0x7f000001":       "127.0.0.1",
		"0X7F000001":       "127.0.0.1",
		"0177.0.0.1":       "127.0.0.1",
		"017700000001":     "127.0.0.1",
		"0x7f.1":           "127.0.0.1",
		"0x7f.0.0.0x1":     "127.0.0.1",
		"0177.0x0.0.01":    "127.0.0.1",
		"127.0.0.1.":       "127.0.0.1",
		"0":                "0.0.0.0",
		"00":               "0.0.0.0",
		"0xa9fea9fe":       "169.254.169.254",
		"169.254.43518":    "169.254.169.254",
		"169.16689662":     "169.254.169.254",
		"10.0.0.1":         "10.0.0.1",
		"4294967295":       "255.255.255.255",
		"0xff.0xff.0xffff": "255.255.255.255",
	}
	for in, want := range valid {
		got, ok := parseLegacyIPv4(in)
		if !ok || got != netip.MustParseAddr(want) {
			t.Errorf("parseLegacyIPv4(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{
		"", ".", "1.2.3.4.5", "1.2.3.4.0", "0x1g", "1..2", ".1.2", "1.2.3.4..",
		"08", "0179.0.0.1", "0x", "0x.1", "256.1", "1.256.1", "1.2.256.1", "1.2.3.256",
		"1.16777216", "1.2.65536", "4294967296", "0x100000000",
		"-1", "+1", "1_0", "1e3", "example.com", "1.2.3.x", " 1", "0x7f.1 ", "localhost",
	} {
		if got, ok := parseLegacyIPv4(in); ok {
			t.Errorf("parseLegacyIPv4(%q) = %v, want no IP", in, got)
		}
	}
}

func TestCheckURL(t *testing.T) {
	res := newResolver()
	g := New(Config{Resolver: res})
	ctx := context.Background()

	wantBlocked(t, g.CheckURL(ctx, "ftp://x"), ReasonScheme, "")
	wantBlocked(t, g.CheckURL(ctx, "https://rebind.test/"), ReasonLoopback, "127.0.0.1")
	wantBlocked(t, g.CheckURL(ctx, "https://0x7f.1/"), ReasonLoopback, "127.0.0.1")
	if err := g.CheckURL(ctx, "https://public.test/hook"); err != nil {
		t.Fatalf("public URL: %v", err)
	}
	if err := g.CheckURL(ctx, "http://93.184.216.34:8080/"); err != nil {
		t.Fatalf("public IP: %v", err)
	}
	for _, raw := range []string{"http://", "http:///path", "http://[::1", "http://unknown.test/", "http://empty.test/", "http://93.184.216.34:99999/"} {
		err := g.CheckURL(ctx, raw)
		if err == nil || errors.Is(err, ErrBlocked) {
			t.Errorf("CheckURL(%q) = %v, want a non-Blocked error", raw, err)
		}
	}
	if err := g.CheckURL(ctx, "http://"); !strings.Contains(err.Error(), "no host") {
		t.Errorf("CheckURL(http://) = %v, want a no-host error", err)
	}
}

// New copies the caller's slices, so later changes do not widen the policy.
func TestConfigCopied(t *testing.T) {
	prefixes := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	g := New(Config{AllowPrefixes: prefixes})
	prefixes[0] = netip.MustParsePrefix("192.168.0.0/16")
	wantBlocked(t, g.Check(netip.MustParseAddrPort("192.168.0.1:80")), ReasonPrivate, "192.168.0.1")
}
