package sipacl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseEntry(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "203.0.113.5", want: "203.0.113.5"},
		{in: " sip:203.0.113.5:5060 ", want: "203.0.113.5"},
		{in: "[2001:db8::1]:5061", want: "2001:db8::1"},
		{in: "2001:db8::1", want: "2001:db8::1"},
		{in: "::ffff:127.0.0.1", want: "127.0.0.1"},
		{in: "203.0.113.0/24", want: "203.0.113.0/24"},
		{in: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "SIP.Example.COM.", want: "sip.example.com"},
		{in: "sips:pbx.example.com:5061", want: "pbx.example.com"},
		{in: "203.0.113.5/24", wantErr: "write 203.0.113.0/24"},
		{in: "203.0.113.0/33", wantErr: "not a CIDR prefix"},
		{in: "pbx.example.com:99999", wantErr: "bad port"},
		{in: "", wantErr: "not an IP address"},
		{in: "user@pbx.example.com", wantErr: "not an IP address"},
		{in: "-bad-.example.com", wantErr: "not an IP address"},
		{in: "a b", wantErr: "not an IP address"},
	}
	for _, tt := range tests {
		e, err := ParseEntry(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseEntry(%q) = %v, %v; want error %q", tt.in, e, err, tt.wantErr)
			}
			continue
		}
		if err != nil || e.String() != tt.want {
			t.Errorf("ParseEntry(%q) = %v, %v; want %s", tt.in, e, err, tt.want)
		}
	}
	if _, err := ParseList([]string{"10.0.0.1", "nope nope"}); err == nil || !strings.HasPrefix(err.Error(), "[1]: ") {
		t.Errorf("ParseList error %v, want one naming [1]", err)
	}
}

// fakeResolver answers from a map that tests change; a missing name fails.
type fakeResolver struct {
	mu    sync.Mutex
	m     map[string][]netip.Addr
	calls int
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	a, ok := r.m[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	return append([]netip.Addr(nil), a...), nil
}

func (r *fakeResolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if addrs == nil {
		delete(r.m, host)
		return
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	r.m[host] = out
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCacheAllows(t *testing.T) {
	ctx := context.Background()
	r := &fakeResolver{m: map[string][]netip.Addr{}}
	c := &clock{t: time.Unix(1000, 0)}
	cache := NewCache(CacheConfig{Resolver: r, Refresh: time.Minute, KeepStale: 10 * time.Minute, Now: c.now})
	r.set("pbx.example.com", "198.51.100.10")
	entries, err := ParseList([]string{"203.0.113.0/24", "192.0.2.7", "pbx.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		setup func()
		ip    string
		want  bool
	}{
		{"in the CIDR", nil, "203.0.113.200", true},
		{"the single IP", nil, "192.0.2.7", true},
		{"IPv4-mapped form of it", nil, "::ffff:192.0.2.7", true},
		{"next to it", nil, "192.0.2.8", false},
		{"the host's address", nil, "198.51.100.10", true},
		{"the host moved: cached until refreshed", func() { r.set("pbx.example.com", "198.51.100.20") }, "198.51.100.20", false},
		{"after a refresh: the new address", func() { c.t = c.t.Add(time.Minute); cache.Refresh(ctx) }, "198.51.100.20", true},
		{"and not the old one", nil, "198.51.100.10", false},
		{"refresh fails: the last answer is kept", func() { r.set("pbx.example.com"); c.t = c.t.Add(5 * time.Minute); cache.Refresh(ctx) }, "198.51.100.20", true},
		{"failing for longer than KeepStale: dropped", func() { c.t = c.t.Add(6 * time.Minute); cache.Refresh(ctx) }, "198.51.100.20", false},
		{"resolves again", func() { r.set("pbx.example.com", "198.51.100.30"); c.t = c.t.Add(time.Minute); cache.Refresh(ctx) }, "198.51.100.30", true},
	}
	for _, s := range steps {
		if s.setup != nil {
			s.setup()
		}
		if got := cache.Allows(ctx, entries, netip.MustParseAddr(s.ip)); got != s.want {
			t.Errorf("%s: Allows(%s) = %v, want %v", s.name, s.ip, got, s.want)
		}
	}
}

func TestCacheFailedNameNotHammered(t *testing.T) {
	ctx := context.Background()
	r := &fakeResolver{m: map[string][]netip.Addr{}}
	c := &clock{t: time.Unix(1000, 0)}
	cache := NewCache(CacheConfig{Resolver: r, Now: c.now})
	for range 100 {
		if a := cache.Lookup(ctx, "missing.example.com"); a != nil {
			t.Fatalf("addresses %v for a missing name", a)
		}
	}
	if r.calls != 1 {
		t.Errorf("%d lookups of a failing name within 5 s, want 1", r.calls)
	}
	c.t = c.t.Add(retryFailed)
	cache.Lookup(ctx, "missing.example.com")
	if r.calls != 2 {
		t.Errorf("%d lookups after 5 s, want 2", r.calls)
	}
}

func TestCacheBounded(t *testing.T) {
	ctx := context.Background()
	r := &fakeResolver{m: map[string][]netip.Addr{}}
	c := &clock{t: time.Unix(1000, 0)}
	cache := NewCache(CacheConfig{Resolver: r, MaxHosts: 10, Now: c.now})
	for i := range 100 {
		c.t = c.t.Add(time.Millisecond)
		name := fmt.Sprintf("h%d.example.com", i)
		r.set(name, "192.0.2.1")
		cache.Lookup(ctx, name)
	}
	cache.mu.Lock()
	n := len(cache.hosts)
	_, newest := cache.hosts["h99.example.com"]
	cache.mu.Unlock()
	if n != 10 || !newest {
		t.Errorf("%d names kept (want 10), newest kept %v", n, newest)
	}
}
