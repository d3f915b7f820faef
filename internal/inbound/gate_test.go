package inbound

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/sipacl"
	"github.com/parley-voice/parley/internal/sipauth"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/telephony"
)

type docs map[string]*store.Doc

func (d docs) GetDoc(_ context.Context, k store.Kind, orgID, id string) (*store.Doc, error) {
	if doc, ok := d[id]; ok && k == store.SIPTrunks && doc.OrgID == orgID {
		return doc, nil
	}
	return nil, fault.NotFoundf("sip trunk %s not found", id)
}

type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type rig struct {
	gate  *Gate
	auth  *sipauth.Authenticator
	clock *clock
	nums  map[string]*store.Number
}

func newRig(t *testing.T, policy Policy) *rig {
	t.Helper()
	keys, err := secret.NewKeyring(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	auth, err := sipauth.New(sipauth.Config{Key: []byte("0123456789abcdef0123456789abcdef"), NonceTTL: 300 * time.Second, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	d := docs{}
	trunk := func(id string, body map[string]any, password string) {
		b, _ := json.Marshal(body)
		doc := &store.Doc{Kind: store.SIPTrunks, ID: id, OrgID: "org1", Name: id, Active: true, Body: b}
		if password != "" {
			s := keys.Seal([]byte(password), secret.Binding{OrgID: "org1", Table: "sip_trunks", Field: "auth_password", RowID: id})
			doc.Secret = &s
		}
		d[id] = doc
	}
	trunk("addr", map[string]any{"inbound_addresses": []string{"127.0.0.1", "10.9.0.0/16", "pbx.example.test"}}, "")
	trunk("empty", map[string]any{"inbound_addresses": []string{}}, "")
	trunk("digest", map[string]any{"inbound_addresses": []string{}, "inbound_auth": "digest", "auth_username": "pbx"}, "s3cret")
	trunk("nopass", map[string]any{"inbound_auth": "digest", "auth_username": "pbx"}, "")
	nums := map[string]*store.Number{}
	for _, tr := range []string{"addr", "empty", "digest", "nopass", "gone"} {
		id := tr
		nums[tr] = &store.Number{ID: "n-" + tr, OrgID: "org1", PhoneNumber: "+1555000" + tr, TransferTrunkID: &id}
	}
	nums["none"] = &store.Number{ID: "n-none", OrgID: "org1", PhoneNumber: "+15550000000"}
	hosts := sipacl.NewCache(sipacl.CacheConfig{Resolver: resolver{"pbx.example.test": {netip.MustParseAddr("192.0.2.44")}}, Now: c.now})
	g := New(d, keys, Config{Policy: policy, Auth: auth, Hosts: hosts, Now: c.now})
	return &rig{gate: g, auth: auth, clock: c, nums: nums}
}

func code(err error) int {
	var rj *telephony.Reject
	if errors.As(err, &rj) {
		return rj.Code
	}
	if err != nil {
		return -1
	}
	return 0
}

// authorize answers challenge like a client would.
func authorize(t *testing.T, challenge, user, pass, method, uri string, nc int) string {
	t.Helper()
	params := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(challenge, "Digest "), ", ") {
		k, v, _ := strings.Cut(kv, "=")
		params[k] = strings.Trim(v, `"`)
	}
	ncs := fmt.Sprintf("%08x", nc)
	resp, err := sipauth.Response(params["algorithm"], user, params["realm"], pass, method, uri, params["nonce"], ncs, "cn", "auth")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, cnonce="cn", qop=auth, nc=%s`,
		user, params["realm"], params["nonce"], uri, resp, params["algorithm"], ncs)
}

func TestAdmitByAddress(t *testing.T) {
	ctx := context.Background()
	for _, policy := range []Policy{TrunksOnly, Open} {
		r := newRig(t, policy)
		tests := []struct {
			num    string // key of r.nums, "" for an unknown number
			source string
			want   int // 0 admitted, else the SIP status
		}{
			{"addr", "127.0.0.1:5060", 0},
			{"addr", "10.9.200.1:5062", 0},
			{"addr", "192.0.2.44:5060", 0}, // pbx.example.test
			{"addr", "127.0.0.2:5060", 403},
			{"addr", "[::ffff:127.0.0.1]:5060", 0},
			// The policy decides for numbers without a trunk that restricts.
			{"", "127.0.0.2:5060", map[Policy]int{TrunksOnly: 403, Open: 0}[policy]},
			{"none", "127.0.0.2:5060", map[Policy]int{TrunksOnly: 403, Open: 0}[policy]},
			{"empty", "127.0.0.2:5060", map[Policy]int{TrunksOnly: 403, Open: 0}[policy]},
			{"gone", "127.0.0.2:5060", map[Policy]int{TrunksOnly: 403, Open: 0}[policy]},
			// A digest trunk challenges whatever the policy.
			{"digest", "127.0.0.2:5060", 401},
		}
		for _, tt := range tests {
			in := telephony.Inbound{Source: tt.source, Dialled: tt.num, SIPCallID: "x"}
			if got := code(r.gate.Admit(ctx, r.nums[tt.num], in)); got != tt.want {
				t.Errorf("%s: number %q from %s: %d, want %d", policy, tt.num, tt.source, got, tt.want)
			}
		}
	}
	// Sources admitted as trunks are trusted (exempt from the rate limit)
	// for ten minutes; refused ones never.
	r := newRig(t, TrunksOnly)
	if r.gate.Trusted(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("trusted before any call")
	}
	if err := r.gate.Admit(ctx, r.nums["addr"], telephony.Inbound{Source: "127.0.0.1:5060"}); err != nil {
		t.Fatal(err)
	}
	if !r.gate.Trusted(netip.MustParseAddr("127.0.0.1")) || r.gate.Trusted(netip.MustParseAddr("127.0.0.9")) {
		t.Fatal("trust after an admitted call")
	}
	r.clock.t = r.clock.t.Add(trustFor)
	if r.gate.Trusted(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("still trusted after trustFor")
	}
	r.gate.Admit(ctx, nil, telephony.Inbound{Source: "127.0.0.9:5060"})
	r.gate.Admit(ctx, r.nums["addr"], telephony.Inbound{Source: "127.0.0.9:5060"})
	st := r.gate.Stats()
	if st.Refused[ReasonUnknownNumber] != 1 || st.Refused[ReasonAddress] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestAdmitByDigest(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, TrunksOnly)
	num := r.nums["digest"]
	const src = "127.0.0.5:5070"
	const uri = "sip:+1555000digest@127.0.0.1"
	err := r.gate.Admit(ctx, num, telephony.Inbound{Source: src, RequestURI: uri})
	var rj *telephony.Reject
	if !errors.As(err, &rj) || rj.Code != 401 || len(rj.Challenge) != 2 {
		t.Fatalf("no credentials: %v", err)
	}
	good := authorize(t, rj.Challenge[0], "pbx", "s3cret", "INVITE", uri, 1)
	if err := r.gate.Admit(ctx, num, telephony.Inbound{Source: src, RequestURI: uri, Authorization: good}); err != nil {
		t.Fatalf("valid credentials: %v", err)
	}
	// The same Authorization again is a replay.
	replay := r.gate.Admit(ctx, num, telephony.Inbound{Source: src, RequestURI: uri, Authorization: good})
	wrong := r.gate.Admit(ctx, num, telephony.Inbound{Source: src, RequestURI: uri, Authorization: authorize(t, rj.Challenge[1], "pbx", "guess", "INVITE", uri, 2)})
	unknown := r.gate.Admit(ctx, num, telephony.Inbound{Source: src, RequestURI: uri, Authorization: authorize(t, rj.Challenge[1], "admin", "s3cret", "INVITE", uri, 3)})
	otherSrc := r.gate.Admit(ctx, num, telephony.Inbound{Source: "127.0.0.6:5070", RequestURI: uri, Authorization: authorize(t, rj.Challenge[1], "pbx", "s3cret", "INVITE", uri, 4)})
	otherURI := r.gate.Admit(ctx, num, telephony.Inbound{Source: src, RequestURI: "sip:+1555000other@127.0.0.1", Authorization: authorize(t, rj.Challenge[1], "pbx", "s3cret", "INVITE", uri, 5)})
	for name, err := range map[string]error{"replay": replay, "wrong password": wrong, "unknown user": unknown, "credentials for another Request-URI": otherURI} {
		var got *telephony.Reject
		if !errors.As(err, &got) || got.Code != 403 || got.Reason != "Forbidden" || got.Challenge != nil {
			t.Errorf("%s: %v, want a bare 403 Forbidden", name, err)
		}
	}
	// The right password over a nonce issued to another source: a fresh
	// challenge for this one, never acceptance.
	if o := (*telephony.Reject)(nil); !errors.As(otherSrc, &o) || o.Code != 401 || !strings.Contains(o.Challenge[0], "stale=true") {
		t.Errorf("nonce of another source: %v, want 401 stale=true", otherSrc)
	}
	// After the nonce's lifetime: 401 with stale=true and a new nonce.
	r.clock.t = r.clock.t.Add(301 * time.Second)
	err = r.gate.Admit(ctx, num, telephony.Inbound{Source: src, RequestURI: uri, Authorization: authorize(t, rj.Challenge[0], "pbx", "s3cret", "INVITE", uri, 9)})
	if !errors.As(err, &rj) || rj.Code != 401 || !strings.Contains(rj.Challenge[0], "stale=true") {
		t.Fatalf("expired nonce: %v", err)
	}
	// A digest trunk without a password refuses even right-looking credentials.
	np := r.nums["nopass"]
	_ = r.gate.Admit(ctx, np, telephony.Inbound{Source: src, RequestURI: uri})
	ch := r.auth.Challenges("127.0.0.5", false)[0]
	if got := code(r.gate.Admit(ctx, np, telephony.Inbound{Source: src, RequestURI: uri, Authorization: authorize(t, ch, "pbx", "", "INVITE", uri, 1)})); got != 403 {
		t.Fatalf("trunk without password: %d, want 403", got)
	}
}

func TestRegisterAdmitsSource(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, TrunksOnly)
	num := r.nums["digest"]
	const src = "127.0.0.7:5080"
	const uri = "sip:127.0.0.1"
	reg := telephony.Registration{AOR: num.PhoneNumber, Source: src, RequestURI: uri, Expires: 120 * time.Second}
	_, err := r.gate.Register(ctx, num, reg)
	var rj *telephony.Reject
	if !errors.As(err, &rj) || rj.Code != 401 {
		t.Fatalf("REGISTER without credentials: %v", err)
	}
	// An unknown AOR is challenged the same way.
	if _, err := r.gate.Register(ctx, nil, reg); code(err) != 401 {
		t.Fatalf("REGISTER for an unknown number: %v, want 401", err)
	}
	bad := reg
	bad.Authorization = authorize(t, rj.Challenge[0], "pbx", "wrong", "REGISTER", uri, 1)
	if _, err := r.gate.Register(ctx, num, bad); code(err) != 403 {
		t.Fatalf("wrong password: %v, want 403", err)
	}
	unknown := reg
	unknown.Authorization = authorize(t, rj.Challenge[0], "pbx", "s3cret", "REGISTER", uri, 2)
	if _, err := r.gate.Register(ctx, nil, unknown); code(err) != 403 {
		t.Fatalf("valid-looking credentials for an unknown number: %v, want 403", err)
	}
	if code(r.gate.Admit(ctx, num, telephony.Inbound{Source: "127.0.0.7:6000"})) != 401 {
		t.Fatal("admitted before registering")
	}
	good := reg
	good.Authorization = authorize(t, rj.Challenge[0], "pbx", "s3cret", "REGISTER", uri, 3)
	exp, err := r.gate.Register(ctx, num, good)
	if err != nil || exp != 120*time.Second {
		t.Fatalf("register: %v, %v", exp, err)
	}
	// Any port of the registered address, for the registration's lifetime.
	if err := r.gate.Admit(ctx, num, telephony.Inbound{Source: "127.0.0.7:6000"}); err != nil {
		t.Fatalf("INVITE from the registered address: %v", err)
	}
	if code(r.gate.Admit(ctx, num, telephony.Inbound{Source: "127.0.0.8:5080"})) != 401 {
		t.Fatal("another address admitted")
	}
	if st := r.gate.Stats(); st.Bindings != 1 || st.Registered != 1 {
		t.Fatalf("stats %+v", st)
	}
	r.clock.t = r.clock.t.Add(121 * time.Second)
	if code(r.gate.Admit(ctx, num, telephony.Inbound{Source: "127.0.0.7:6000"})) != 401 {
		t.Fatal("admitted after the registration expired")
	}
	// Expiry is bounded: 10 s is raised to the minimum, a day lowered to
	// the maximum; Expires 0 unregisters.
	for _, tc := range []struct{ ask, want time.Duration }{{10 * time.Second, time.Minute}, {24 * time.Hour, time.Hour}, {0, 0}} {
		ch := r.auth.Challenges("127.0.0.7", false)[0]
		rq := reg
		rq.Expires = tc.ask
		rq.Authorization = authorize(t, ch, "pbx", "s3cret", "REGISTER", uri, 1)
		if got, err := r.gate.Register(ctx, num, rq); err != nil || got != tc.want {
			t.Errorf("Expires %s: granted %s, %v; want %s", tc.ask, got, err, tc.want)
		}
	}
	if code(r.gate.Admit(ctx, num, telephony.Inbound{Source: "127.0.0.7:6000"})) != 401 {
		t.Fatal("admitted after unregistering")
	}
}

// TestTrustOnlyNamedSources: a source admitted by a single IP or a host
// name is exempt from the rate limit; one admitted only by a prefix is not
// (a tenant listing 0.0.0.0/0 must not lift it for everyone).
func TestTrustOnlyNamedSources(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, TrunksOnly)
	for _, tc := range []struct {
		src     string
		trusted bool
	}{
		{"127.0.0.1:5060", true},  // a single IP
		{"192.0.2.44:5060", true}, // pbx.example.test
		{"10.9.3.4:5060", false},  // inside 10.9.0.0/16 only
	} {
		if err := r.gate.Admit(ctx, r.nums["addr"], telephony.Inbound{Source: tc.src}); err != nil {
			t.Fatalf("%s not admitted: %v", tc.src, err)
		}
		if got := r.gate.Trusted(netip.MustParseAddrPort(tc.src).Addr()); got != tc.trusted {
			t.Errorf("%s trusted = %v, want %v", tc.src, got, tc.trusted)
		}
	}
}

// TestRegisterWithoutAuthenticator: a gate without digest refuses every
// REGISTER (it used to call the missing authenticator).
func TestRegisterWithoutAuthenticator(t *testing.T) {
	g := New(docs{}, nil, Config{Policy: TrunksOnly})
	reg := telephony.Registration{AOR: "+15550000000", Source: "127.0.0.7:5080", RequestURI: "sip:127.0.0.1", Expires: time.Minute}
	if _, err := g.Register(context.Background(), nil, reg); code(err) != 403 {
		t.Fatalf("REGISTER: %v, want 403", err)
	}
}

func TestParsePolicy(t *testing.T) {
	for in, ok := range map[string]bool{"trunks-only": true, "open": true, "closed": false, "": false, "Open": false} {
		if _, err := ParsePolicy(in); (err == nil) != ok {
			t.Errorf("ParsePolicy(%q): %v", in, err)
		}
	}
}
