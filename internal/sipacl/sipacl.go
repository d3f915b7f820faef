// Package sipacl matches a SIP peer's address against a trunk's inbound
// addresses: IP addresses, CIDR prefixes and host names. Host names are
// resolved through a Cache that refreshes them in the background and, when
// a refresh fails, keeps the last good answer for a while.
package sipacl

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Entry is one inbound address: a prefix (a single IP is a /32 or /128) or
// a host name.
type Entry struct {
	Prefix netip.Prefix
	Host   string
}

func (e Entry) String() string {
	if e.Host != "" {
		return e.Host
	}
	if e.Prefix.IsSingleIP() {
		return e.Prefix.Addr().String()
	}
	return e.Prefix.String()
}

var hostnameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$`)

// ParseEntry reads an inbound address: an IP ("203.0.113.5", "2001:db8::1"),
// a CIDR prefix ("203.0.113.0/24"), or a host name ("sip.example.com"),
// each optionally with a sip:/sips: prefix and a port, which is ignored
// (a peer's source port says nothing).
func ParseEntry(s string) (Entry, error) {
	a := strings.ToLower(strings.TrimSpace(s))
	a = strings.TrimPrefix(strings.TrimPrefix(a, "sips:"), "sip:")
	if a == "" || len(a) > 253 {
		return Entry{}, fmt.Errorf("%q is not an IP address, CIDR prefix or host name", s)
	}
	if strings.Contains(a, "/") {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return Entry{}, fmt.Errorf("%q is not a CIDR prefix such as 203.0.113.0/24", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr()))
		if p.Masked() != p {
			return Entry{}, fmt.Errorf("%q has bits set past the prefix length; write %s", s, p.Masked())
		}
		return Entry{Prefix: p}, nil
	}
	host := a
	if h, port, err := net.SplitHostPort(a); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return Entry{}, fmt.Errorf("%q has a bad port", s)
		}
		host = h
	}
	host = strings.Trim(host, "[]")
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap().WithZone("")
		return Entry{Prefix: netip.PrefixFrom(ip, ip.BitLen())}, nil
	}
	host = strings.TrimSuffix(host, ".")
	if !hostnameRE.MatchString(host) {
		return Entry{}, fmt.Errorf("%q is not an IP address, CIDR prefix or host name", s)
	}
	return Entry{Host: host}, nil
}

// unmapBits is how many prefix bits an IPv4-mapped address spends on the
// ::ffff: part.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// ParseList reads a list of entries; the error names the first bad index.
func ParseList(ss []string) ([]Entry, error) {
	out := make([]Entry, 0, len(ss))
	for i, s := range ss {
		e, err := ParseEntry(s)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Resolver resolves host names; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CacheConfig configures a Cache.
type CacheConfig struct {
	// Resolver resolves names (default net.DefaultResolver).
	Resolver Resolver
	// Refresh is how old an answer may get before Run resolves it again
	// (default 60 s).
	Refresh time.Duration
	// KeepStale is how long the last good answer is still used while
	// refreshes fail (default 1 h).
	KeepStale time.Duration
	// Timeout bounds one lookup (default 2 s).
	Timeout time.Duration
	// MaxHosts caps the names kept (default 1024); names not asked for
	// longest are dropped first.
	MaxHosts int
	Now      func() time.Time
	Logger   *slog.Logger
}

// Cache resolves and remembers host names. It is safe for concurrent use;
// Run keeps it fresh.
type Cache struct {
	cfg CacheConfig

	mu    sync.Mutex
	hosts map[string]*hostAddrs
}

type hostAddrs struct {
	addrs    []netip.Addr
	good     time.Time // when addrs were resolved
	tried    time.Time // last attempt, good or not
	lastUsed time.Time
}

// NewCache returns a cache for cfg.
func NewCache(cfg CacheConfig) *Cache {
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Minute
	}
	if cfg.KeepStale <= 0 {
		cfg.KeepStale = time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.MaxHosts <= 0 {
		cfg.MaxHosts = 1024
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Cache{cfg: cfg, hosts: map[string]*hostAddrs{}}
}

// retryFailed is how soon a name that never resolved is tried again when
// asked for.
const retryFailed = 5 * time.Second

// Lookup returns host's addresses: the cached answer, or one resolved now
// when the name is new (or never resolved and last tried over 5 s ago).
func (c *Cache) Lookup(ctx context.Context, host string) []netip.Addr {
	now := c.cfg.Now()
	c.mu.Lock()
	h := c.hosts[host]
	if h != nil {
		h.lastUsed = now
		if h.addrs != nil || now.Sub(h.tried) < retryFailed {
			addrs := h.addrs
			c.mu.Unlock()
			return addrs
		}
	}
	c.mu.Unlock()
	return c.resolve(ctx, host, now)
}

// resolve looks host up and stores the answer.
func (c *Cache) resolve(ctx context.Context, host string, now time.Time) []netip.Addr {
	lctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	addrs, err := c.cfg.Resolver.LookupNetIP(lctx, "ip", host)
	cancel()
	for i, a := range addrs {
		addrs[i] = a.Unmap().WithZone("")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.hosts[host]
	if h == nil {
		if len(c.hosts) >= c.cfg.MaxHosts {
			c.dropLeastUsed()
		}
		h = &hostAddrs{lastUsed: now}
		c.hosts[host] = h
	}
	h.tried = now
	switch {
	case err == nil && len(addrs) > 0:
		h.addrs, h.good = addrs, now
	case h.addrs != nil && now.Sub(h.good) < c.cfg.KeepStale:
		c.cfg.Logger.Warn("sip inbound address: refresh failed; keeping the last answer", "host", host, "resolved_at", h.good, "error", errOrEmpty(err))
	default:
		if h.addrs != nil {
			c.cfg.Logger.Error("sip inbound address: no good answer for too long; the name admits nobody until it resolves", "host", host, "error", errOrEmpty(err))
		} else {
			c.cfg.Logger.Warn("sip inbound address does not resolve", "host", host, "error", errOrEmpty(err))
		}
		h.addrs = nil
	}
	return h.addrs
}

func errOrEmpty(err error) string {
	if err == nil {
		return "no addresses"
	}
	return err.Error()
}

func (c *Cache) dropLeastUsed() {
	var oldest string
	var at time.Time
	for name, h := range c.hosts {
		if oldest == "" || h.lastUsed.Before(at) {
			oldest, at = name, h.lastUsed
		}
	}
	delete(c.hosts, oldest)
}

// Refresh resolves again every name whose answer is older than Refresh
// and forgets names nobody asked for in ten refresh periods.
func (c *Cache) Refresh(ctx context.Context) {
	now := c.cfg.Now()
	var due []string
	c.mu.Lock()
	for name, h := range c.hosts {
		switch {
		case now.Sub(h.lastUsed) > 10*c.cfg.Refresh:
			delete(c.hosts, name)
		case now.Sub(h.tried) >= c.cfg.Refresh:
			due = append(due, name)
		}
	}
	c.mu.Unlock()
	for _, name := range due {
		if ctx.Err() != nil {
			return
		}
		c.resolve(ctx, name, now)
	}
}

// Run refreshes the cache every Refresh/4 until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Refresh / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Refresh(ctx)
		}
	}
}

// Allows reports whether ip matches one of the entries.
func (c *Cache) Allows(ctx context.Context, entries []Entry, ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	for _, e := range entries {
		if e.Host == "" {
			if e.Prefix.Contains(ip) {
				return true
			}
			continue
		}
		for _, a := range c.Lookup(ctx, e.Host) {
			if a == ip {
				return true
			}
		}
	}
	return false
}
