package sipauth

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Vectors from RFC 2617 §3.5 and RFC 7616 §3.9.1.
func TestResponseVectors(t *testing.T) {
	tests := []struct {
		name, alg, user, realm, pass, method, uri, nonce, nc, cnonce, qop, want string
	}{
		{"RFC 2617 3.5 MD5", MD5, "Mufasa", "testrealm@host.com", "Circle Of Life", "GET", "/dir/index.html",
			"dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b", "auth", "6629fae49393a05397450978507c4ef1"},
		{"RFC 7616 3.9.1 MD5", MD5, "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html",
			"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth",
			"8ca523f5e9506fed4657c9700eebdbec"},
		{"RFC 7616 3.9.1 SHA-256", SHA256, "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html",
			"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth",
			"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Response(tt.alg, tt.user, tt.realm, tt.pass, tt.method, tt.uri, tt.nonce, tt.nc, tt.cnonce, tt.qop)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("response %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := Response("MD5-sess", "u", "r", "p", "INVITE", "sip:x", "n", "00000001", "c", "auth"); err == nil {
		t.Error("MD5-sess accepted")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Credentials
		wantErr string
	}{
		{in: `Digest username="trunk", realm="parley", nonce="abc", uri="sip:+1555@127.0.0.1", response="0123", algorithm=SHA-256, cnonce="x\"y", qop=auth, nc=00000001`,
			want: Credentials{Username: "trunk", Realm: "parley", Nonce: "abc", URI: "sip:+1555@127.0.0.1", Response: "0123", Algorithm: SHA256, CNonce: `x"y`, QOP: "auth", NC: "00000001"}},
		{in: `digest username="u",realm="r",nonce="n",uri="sip:a",response="f"`,
			want: Credentials{Username: "u", Realm: "r", Nonce: "n", URI: "sip:a", Response: "f", Algorithm: MD5}},
		{in: `Basic dXNlcjpwYXNz`, wantErr: "not Digest"},
		{in: `Digest username="u", realm="r", nonce="n", uri="sip:a"`, wantErr: "response is missing"},
		{in: `Digest username="u", username="v", realm="r", nonce="n", uri="sip:a", response="f"`, wantErr: "given twice"},
		{in: `Digest username="u`, wantErr: "unterminated"},
		{in: `Digest username`, wantErr: "without a value"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// answer builds the Authorization a client would send for a challenge.
func answer(t *testing.T, challenge, user, pass, method, uri, nc string) Credentials {
	t.Helper()
	p, err := parseParams(strings.TrimPrefix(challenge, "Digest "))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := Response(p["algorithm"], user, p["realm"], pass, method, uri, p["nonce"], nc, "c0ffee", "auth")
	if err != nil {
		t.Fatal(err)
	}
	h := fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, cnonce="c0ffee", qop=auth, nc=%s`,
		user, p["realm"], p["nonce"], uri, resp, p["algorithm"], nc)
	c, err := Parse(h)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerify(t *testing.T) {
	const src = "127.0.0.1"
	const uri = "sip:+15550001111@127.0.0.1"
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	a, err := New(Config{Key: []byte("0123456789abcdef0123456789abcdef"), NonceTTL: 300 * time.Second, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := New(Config{Key: []byte("another key, another server....."), Now: c.now})
	ch := a.Challenges(src, false)
	if len(ch) != 2 || !strings.Contains(ch[0], "algorithm=SHA-256") || !strings.Contains(ch[1], "algorithm=MD5") || strings.Contains(ch[0], "stale") {
		t.Fatalf("challenges %q", ch)
	}
	if st := a.Challenges(src, true); !strings.HasSuffix(st[0], "stale=true") {
		t.Fatalf("stale challenge %q", st[0])
	}
	for _, alg := range []int{0, 1} {
		// Both challenges carry one nonce, so each algorithm gets its own.
		ch := a.Challenges(src, false)
		good := answer(t, ch[alg], "trunk", "s3cret", "INVITE", uri, "00000001")
		if err := a.Verify(good, "INVITE", src, "trunk", "s3cret"); err != nil {
			t.Fatalf("valid %s credentials: %v", good.Algorithm, err)
		}
		if err := a.Verify(good, "INVITE", src, "trunk", "s3cret"); !errors.Is(err, ErrReplay) {
			t.Errorf("%s replay of nc 1: %v, want ErrReplay", good.Algorithm, err)
		}
		next := answer(t, ch[alg], "trunk", "s3cret", "INVITE", uri, "00000002")
		if err := a.Verify(next, "INVITE", src, "trunk", "s3cret"); err != nil {
			t.Errorf("%s nc 2: %v", good.Algorithm, err)
		}
	}

	fresh := a.Challenges(src, false)[0]
	wrongPass := answer(t, fresh, "trunk", "guess", "INVITE", uri, "00000001")
	unknownUser := answer(t, fresh, "admin", "s3cret", "INVITE", uri, "00000001")
	if e1, e2 := a.Verify(wrongPass, "INVITE", src, "trunk", "s3cret"), a.Verify(unknownUser, "INVITE", src, "trunk", "s3cret"); !errors.Is(e1, ErrInvalid) || e1 != e2 {
		t.Errorf("wrong password %v, unknown user %v: want the same ErrInvalid", e1, e2)
	}
	tests := []struct {
		name   string
		creds  Credentials
		method string
		source string
		after  time.Duration
		want   error
	}{
		{"other method", answer(t, fresh, "trunk", "s3cret", "INVITE", uri, "00000003"), "REGISTER", src, 0, ErrInvalid},
		// The right password over a nonce not issued here (to another
		// source, by another node or an earlier life): a fresh challenge,
		// so a captured header is never accepted where its count is unknown.
		{"other source", answer(t, fresh, "trunk", "s3cret", "INVITE", uri, "00000003"), "INVITE", "127.0.0.2", 0, ErrStale},
		{"foreign nonce", answer(t, other.Challenges(src, false)[0], "trunk", "s3cret", "INVITE", uri, "00000001"), "INVITE", src, 0, ErrStale},
		{"foreign nonce, wrong password", answer(t, other.Challenges(src, false)[0], "trunk", "guess", "INVITE", uri, "00000001"), "INVITE", src, 0, ErrInvalid},
		{"tampered nonce", func() Credentials {
			cr := answer(t, fresh, "trunk", "s3cret", "INVITE", uri, "00000003")
			b := []byte(cr.Nonce)
			b[30] ^= 1 // a character of the MAC
			cr.Nonce = string(b)
			return cr
		}(), "INVITE", src, 0, ErrInvalid},
		{"no qop", func() Credentials {
			cr := answer(t, fresh, "trunk", "s3cret", "INVITE", uri, "00000003")
			cr.QOP = ""
			return cr
		}(), "INVITE", src, 0, ErrInvalid},
		{"wrong realm", func() Credentials {
			cr := answer(t, fresh, "trunk", "s3cret", "INVITE", uri, "00000003")
			cr.Realm = "elsewhere"
			return cr
		}(), "INVITE", src, 0, ErrInvalid},
		{"valid just before expiry", answer(t, fresh, "trunk", "s3cret", "INVITE", uri, "00000004"), "INVITE", src, 299 * time.Second, nil},
		{"expired", answer(t, fresh, "trunk", "s3cret", "INVITE", uri, "00000005"), "INVITE", src, time.Second, ErrStale},
	}
	for _, tt := range tests {
		c.t = c.t.Add(tt.after)
		if err := a.Verify(tt.creds, tt.method, tt.source, "trunk", "s3cret"); !errors.Is(err, tt.want) && err != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestAlgorithms(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	a, err := New(Config{Key: []byte("0123456789abcdef0123456789abcdef"), Algorithms: []string{MD5}, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	ch := a.Challenges("127.0.0.1", false)
	if len(ch) != 1 || !strings.Contains(ch[0], "algorithm=MD5") {
		t.Fatalf("challenges %q, want MD5 only", ch)
	}
	// SHA-256 credentials for an MD5-only authenticator are refused.
	sha := strings.Replace(ch[0], "algorithm=MD5", "algorithm=SHA-256", 1)
	if err := a.Verify(answer(t, sha, "u", "p", "INVITE", "sip:x", "00000001"), "INVITE", "127.0.0.1", "u", "p"); !errors.Is(err, ErrInvalid) {
		t.Errorf("algorithm not offered: %v, want ErrInvalid", err)
	}
	if _, err := New(Config{Key: []byte("0123456789abcdef0123456789abcdef"), Algorithms: []string{"MD5-sess"}}); err == nil {
		t.Error("MD5-sess accepted in Config.Algorithms")
	}
}

func TestReplayTableBounded(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	a, _ := New(Config{Key: []byte("0123456789abcdef0123456789abcdef"), MaxTracked: 3, NonceTTL: 10 * time.Second, Now: c.now})
	for i := range 3 {
		cr := answer(t, a.Challenges("127.0.0.1", false)[0], "u", "p", "REGISTER", "sip:x", "00000001")
		if err := a.Verify(cr, "REGISTER", "127.0.0.1", "u", "p"); err != nil {
			t.Fatalf("nonce %d: %v", i, err)
		}
	}
	cr := answer(t, a.Challenges("127.0.0.1", false)[0], "u", "p", "REGISTER", "sip:x", "00000001")
	if err := a.Verify(cr, "REGISTER", "127.0.0.1", "u", "p"); !errors.Is(err, ErrStale) {
		t.Fatalf("fourth nonce with a full table: %v, want ErrStale", err)
	}
	c.t = c.t.Add(11 * time.Second)
	cr = answer(t, a.Challenges("127.0.0.1", false)[0], "u", "p", "REGISTER", "sip:x", "00000001")
	if err := a.Verify(cr, "REGISTER", "127.0.0.1", "u", "p"); err != nil {
		t.Fatalf("after the old nonces expired: %v", err)
	}
	if n := a.Tracked(); n != 1 {
		t.Errorf("tracked %d nonces, want 1", n)
	}
}

func TestSameURI(t *testing.T) {
	for _, tc := range []struct {
		auth, req string
		want      bool
	}{
		{"sip:+31201230201@127.0.0.1:5060", "sip:+31201230201@127.0.0.1:5060", true},
		{"sip:+31201230201@Example.COM;transport=udp", "sip:+31201230201@example.com", true},
		{"sip:127.0.0.1:5060", "sip:+31201230201@127.0.0.1:5060", true}, // SIPp's form
		{"sip:+31209999999@127.0.0.1:5060", "sip:+31201230201@127.0.0.1:5060", false},
		{"sip:+31201230201@127.0.0.2:5060", "sip:+31201230201@127.0.0.1:5060", false},
		{"sip:+31201230201@127.0.0.1:5061", "sip:+31201230201@127.0.0.1:5060", false},
		{"sips:+31201230201@127.0.0.1:5060", "sip:+31201230201@127.0.0.1:5060", false},
		{"", "sip:+31201230201@127.0.0.1:5060", false},
		{"sip:", "sip:127.0.0.1", false},
	} {
		if got := SameURI(tc.auth, tc.req); got != tc.want {
			t.Errorf("SameURI(%q, %q) = %v, want %v", tc.auth, tc.req, got, tc.want)
		}
	}
}
