package signedurl

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/secret"
)

func keyring(t *testing.T, b byte) *secret.Keyring {
	t.Helper()
	k := make([]byte, secret.KeySize)
	for i := range k {
		k[i] = b
	}
	r, err := secret.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSignAndCheck(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	s := Signer{Base: "https://voice.example.com/", Keys: keyring(t, 1), Now: clock}
	const path = "/api/v1/calls/call-_%2B31612345678_abc/recording"
	link := s.URL(path, url.Values{"org": {"o1"}}, time.Hour)
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme+"://"+u.Host+u.EscapedPath() != "https://voice.example.com"+path {
		t.Fatalf("link %q does not point at the path", link)
	}
	q := u.Query()
	if err := s.Check(path, q); err != nil {
		t.Fatalf("fresh link refused: %v", err)
	}

	tamper := func(k, v string) url.Values {
		c := url.Values{}
		for kk, vv := range q {
			c[kk] = append([]string(nil), vv...)
		}
		c.Set(k, v)
		return c
	}
	cases := []struct {
		name string
		s    Signer
		path string
		q    url.Values
		want error
	}{
		{"no signature", s, path, url.Values{}, ErrUnsigned},
		{"another resource", s, "/api/v1/calls/other/recording", q, ErrInvalid},
		{"extended expiry", s, path, tamper(ParamExpires, "1900000000"), ErrInvalid},
		{"another organization", s, path, tamper("org", "o2"), ErrInvalid},
		{"added parameter", s, path, tamper("x", "1"), ErrInvalid},
		{"forged signature", s, path, tamper(ParamSignature, "00"+q.Get(ParamSignature)[2:]), ErrInvalid},
		{"another master key", Signer{Keys: keyring(t, 2), Now: clock}, path, q, ErrInvalid},
		{"expired", Signer{Keys: s.Keys, Now: func() time.Time { return now.Add(time.Hour) }}, path, q, ErrExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Check(tc.path, tc.q); !errors.Is(err, tc.want) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
		})
	}
	if q.Get("org") != "o1" {
		t.Fatalf("link %q lost its parameter", link)
	}
	if !Signed(q) || Signed(url.Values{"x": {"1"}}) {
		t.Fatal("Signed misreports")
	}
}
