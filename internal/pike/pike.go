// Package pike limits how many requests one source address may send, after
// Kamailio's pike module: a source that sends more than Limit requests in a
// Window is banned for Ban, and every request from a banned source is
// refused until the ban runs out. The table of sources is capped, so a flood
// from spoofed addresses cannot grow it without bound.
package pike

import (
	"net/netip"
	"sync"
	"time"
)

// Config sets the limit. Zero fields take the defaults of Kamailio's
// sample configuration: 16 requests per 2 s, banned for 300 s.
type Config struct {
	// Limit is how many requests a source may send per Window.
	Limit int
	// Window is the counting period (default 2 s).
	Window time.Duration
	// Ban is how long a source that went over the limit is refused.
	Ban time.Duration
	// MaxSources caps the table (default 65536). When it is full, sources
	// seen longest ago are forgotten first; banned ones last.
	MaxSources int
	// Now is the clock (tests pass a fake one).
	Now func() time.Time
}

// Verdict is the answer for one request.
type Verdict int

// Verdicts.
const (
	// Allow: the request is within the limit.
	Allow Verdict = iota
	// Banned: this request took the source over the limit; it is banned
	// from now on (reported once per ban, for logging).
	Banned
	// Refused: the source is banned.
	Refused
)

// Stats are the limiter's counters since New.
type Stats struct {
	Bans    uint64 // bans issued
	Refused uint64 // requests refused (including those that caused a ban)
	Sources int    // sources in the table now
	Evicted uint64 // sources forgotten because the table was full
}

type source struct {
	windowStart time.Time
	count       int
	bannedUntil time.Time
}

// Limiter counts requests per source. It is safe for concurrent use.
type Limiter struct {
	cfg Config

	mu    sync.Mutex
	m     map[netip.Addr]*source
	stats Stats
}

// New returns a limiter for cfg.
func New(cfg Config) *Limiter {
	if cfg.Limit <= 0 {
		cfg.Limit = 16
	}
	if cfg.Window <= 0 {
		cfg.Window = 2 * time.Second
	}
	if cfg.Ban <= 0 {
		cfg.Ban = 300 * time.Second
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 1 << 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, m: map[netip.Addr]*source{}}
}

// Check counts one request from ip and says whether it may be served.
func (l *Limiter) Check(ip netip.Addr) Verdict {
	ip = ip.Unmap().WithZone("")
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[ip]
	if s == nil {
		if len(l.m) >= l.cfg.MaxSources {
			l.evict(now)
		}
		s = &source{windowStart: now}
		l.m[ip] = s
	}
	if now.Before(s.bannedUntil) {
		l.stats.Refused++
		return Refused
	}
	if now.Sub(s.windowStart) >= l.cfg.Window {
		s.windowStart, s.count = now, 0
	}
	s.count++
	if s.count <= l.cfg.Limit {
		return Allow
	}
	s.bannedUntil = now.Add(l.cfg.Ban)
	l.stats.Bans++
	l.stats.Refused++
	return Banned
}

// Banned reports whether ip is banned now, without counting a request.
func (l *Limiter) Banned(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[ip]
	return s != nil && now.Before(s.bannedUntil)
}

// Stats returns a snapshot of the counters.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	st.Sources = len(l.m)
	return st
}

// evict makes room in a full table: first every source that is neither
// banned nor inside its window, then, if that freed less than an eighth of
// the table, arbitrary unbanned sources, and banned ones only when nothing
// else is left. Each eviction frees at least an eighth, so its cost is
// spread over the inserts that follow.
func (l *Limiter) evict(now time.Time) {
	want := max(l.cfg.MaxSources/8, 1)
	freed := 0
	for ip, s := range l.m {
		if !now.Before(s.bannedUntil) && now.Sub(s.windowStart) >= l.cfg.Window {
			delete(l.m, ip)
			freed++
		}
	}
	for pass := 0; pass < 2 && freed < want; pass++ {
		for ip, s := range l.m {
			if freed >= want {
				break
			}
			if pass == 0 && now.Before(s.bannedUntil) {
				continue
			}
			delete(l.m, ip)
			freed++
		}
	}
	l.stats.Evicted += uint64(freed)
}
