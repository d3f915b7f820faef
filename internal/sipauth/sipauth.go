// Package sipauth checks SIP digest credentials (RFC 3261 §22, RFC 7616,
// RFC 8760): it issues challenges for MD5 and SHA-256 with qop=auth and
// verifies Authorization headers against a known password.
//
// Nonces are stateless: each carries its issue time and an HMAC of that
// time, the realm and the client's address under the server's key, so any
// node sharing the key can check it and nothing is stored per challenge. A
// nonce older than NonceTTL is stale (the client is challenged again with
// stale=true). Replay is stopped by the nonce count: once a response for a
// nonce verified, only higher nc values are accepted with that nonce until
// it expires. Unknown users and wrong passwords fail the same way.
package sipauth

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Algorithms Parley accepts.
const (
	MD5    = "MD5"
	SHA256 = "SHA-256"
)

// Errors of Verify. Callers answer ErrStale with a fresh challenge marked
// stale=true and every other error the same way, so a client cannot tell
// an unknown user from a wrong password.
var (
	ErrStale   = errors.New("sipauth: nonce expired")
	ErrInvalid = errors.New("sipauth: credentials do not verify")
	ErrReplay  = errors.New("sipauth: nonce count reused")

	// errForeign: a well-formed nonce this authenticator did not issue.
	errForeign = errors.New("sipauth: nonce not issued here")
)

// Config configures an Authenticator.
type Config struct {
	// Key signs nonces; nodes that share it accept each other's nonces.
	Key []byte
	// Realm is the protection space named in challenges (default "parley").
	Realm string
	// NonceTTL is how long a nonce is good for (default 300 s).
	NonceTTL time.Duration
	// MaxDrift is how far in the future a nonce's time may be (clock
	// differences between nodes; default 3 s).
	MaxDrift time.Duration
	// Algorithms are offered in this order, one challenge each (default
	// SHA-256, MD5: the preferred first, RFC 8760 §2.4). Clients that only
	// read the first challenge and know only MD5 (SIPp 3.6) need MD5 alone
	// or first.
	Algorithms []string
	// MaxTracked caps the nonces whose counts are remembered (default
	// 65536). Only nonces that verified are tracked; when the table is
	// full, new ones are answered as stale until old ones expire.
	MaxTracked int
	Now        func() time.Time
}

// Authenticator issues and checks digest challenges. It is safe for
// concurrent use.
type Authenticator struct {
	cfg Config

	mu   sync.Mutex
	seen map[string]tracked // nonce → highest nc that verified
}

type tracked struct {
	nc      uint64
	expires time.Time
}

// New returns an Authenticator; Key must not be empty.
func New(cfg Config) (*Authenticator, error) {
	if len(cfg.Key) < 16 {
		return nil, errors.New("sipauth: key must be at least 16 bytes")
	}
	if cfg.Realm == "" {
		cfg.Realm = "parley"
	}
	if cfg.NonceTTL <= 0 {
		cfg.NonceTTL = 300 * time.Second
	}
	if cfg.MaxDrift <= 0 {
		cfg.MaxDrift = 3 * time.Second
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{SHA256, MD5}
	}
	for _, alg := range cfg.Algorithms {
		if alg != SHA256 && alg != MD5 {
			return nil, fmt.Errorf("sipauth: algorithm %q is not supported (use %s or %s)", alg, SHA256, MD5)
		}
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = 1 << 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Authenticator{cfg: cfg, seen: map[string]tracked{}}, nil
}

// Realm is the realm challenges name.
func (a *Authenticator) Realm() string { return a.cfg.Realm }

// Challenges returns WWW-Authenticate values for a client at source (its
// IP address), one per algorithm in the configured order.
func (a *Authenticator) Challenges(source string, stale bool) []string {
	nonce := a.nonce(source, a.cfg.Now())
	out := make([]string, 0, len(a.cfg.Algorithms))
	for _, alg := range a.cfg.Algorithms {
		v := fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=%s, qop="auth"`, a.cfg.Realm, nonce, alg)
		if stale {
			v += ", stale=true"
		}
		out = append(out, v)
	}
	return out
}

// nonce is base64url(issued unix ms (8 bytes) | 8 random bytes | 16 bytes
// of HMAC-SHA256(key, first 16 bytes | realm | source)).
func (a *Authenticator) nonce(source string, at time.Time) string {
	var b [32]byte
	binary.BigEndian.PutUint64(b[:8], uint64(at.UnixMilli()))
	_, _ = rand.Read(b[8:16])
	copy(b[16:], a.mac(b[:16], source))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (a *Authenticator) mac(head []byte, source string) []byte {
	m := hmac.New(sha256.New, a.cfg.Key)
	m.Write(head)
	m.Write([]byte{0})
	m.Write([]byte(a.cfg.Realm))
	m.Write([]byte{0})
	m.Write([]byte(source))
	return m.Sum(nil)[:16]
}

// checkNonce returns when the nonce expires, ErrStale when it has, or
// ErrInvalid when it is not one of ours for this source.
func (a *Authenticator) checkNonce(nonce, source string, now time.Time) (time.Time, error) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 32 {
		return time.Time{}, ErrInvalid
	}
	if !hmac.Equal(b[16:], a.mac(b[:16], source)) {
		return time.Time{}, errForeign
	}
	issued := time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8])))
	if issued.After(now.Add(a.cfg.MaxDrift)) {
		return time.Time{}, ErrInvalid
	}
	expires := issued.Add(a.cfg.NonceTTL)
	if !now.Before(expires) {
		return time.Time{}, ErrStale
	}
	return expires, nil
}

// SameURI reports whether an Authorization's uri names the request's
// Request-URI (RFC 3261 §22.4): the same scheme, user, host (any case) and
// port, parameters aside. A uri without a user part that names the
// request's host and port also matches (SIPp, and some devices, send the
// server's address); one naming another user never does, so credentials
// for one number are not good for another.
func SameURI(authURI, requestURI string) bool {
	a, oka := parseURI(authURI)
	r, okr := parseURI(requestURI)
	if !oka || !okr || a.scheme != r.scheme || a.host != r.host {
		return false
	}
	return a.user == r.user || a.user == ""
}

type uriParts struct{ scheme, user, host string }

func parseURI(u string) (uriParts, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(u), ":")
	if !ok {
		return uriParts{}, false
	}
	rest, _, _ = strings.Cut(rest, ";")
	rest, _, _ = strings.Cut(rest, "?")
	user, host, hasUser := strings.Cut(rest, "@")
	if !hasUser {
		user, host = "", rest
	}
	return uriParts{scheme: strings.ToLower(scheme), user: user, host: strings.ToLower(host)}, host != ""
}

// Credentials are the parameters of an Authorization header.
type Credentials struct {
	Username, Realm, Nonce, URI, Response, Algorithm, CNonce, NC, QOP, Opaque string
}

// Parse reads a Digest Authorization (or Proxy-Authorization) value.
func Parse(v string) (Credentials, error) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, "Digest") {
		return Credentials{}, fmt.Errorf("sipauth: scheme %q is not Digest", scheme)
	}
	params, err := parseParams(rest)
	if err != nil {
		return Credentials{}, err
	}
	c := Credentials{
		Username: params["username"], Realm: params["realm"], Nonce: params["nonce"], URI: params["uri"],
		Response: params["response"], Algorithm: params["algorithm"], CNonce: params["cnonce"],
		NC: params["nc"], QOP: params["qop"], Opaque: params["opaque"],
	}
	if c.Algorithm == "" {
		c.Algorithm = MD5
	}
	for name, v := range map[string]string{"username": c.Username, "realm": c.Realm, "nonce": c.Nonce, "uri": c.URI, "response": c.Response} {
		if v == "" {
			return Credentials{}, fmt.Errorf("sipauth: %s is missing", name)
		}
	}
	return c, nil
}

// parseParams reads comma-separated name=value pairs, values optionally
// quoted with backslash escapes.
func parseParams(s string) (map[string]string, error) {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out, nil
		}
		name, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, errors.New("sipauth: parameter without a value")
		}
		name = strings.ToLower(strings.TrimSpace(name))
		rest = strings.TrimLeft(rest, " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			if i >= len(rest) {
				return nil, fmt.Errorf("sipauth: unterminated quoted value of %s", name)
			}
			val, s = b.String(), rest[i+1:]
		} else {
			val, s, _ = strings.Cut(rest, ",")
			val = strings.TrimSpace(val)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("sipauth: %s given twice", name)
		}
		out[name] = val
	}
}

// Response computes the digest response of RFC 7616 §3.4.1 with qop=auth
// (or RFC 2069's form when qop is empty).
func Response(alg, username, realm, password, method, uri, nonce, nc, cnonce, qop string) (string, error) {
	var h func() hash.Hash
	switch strings.ToUpper(alg) {
	case MD5:
		h = md5.New
	case SHA256:
		h = sha256.New
	default:
		return "", fmt.Errorf("sipauth: algorithm %q is not supported", alg)
	}
	hx := func(s string) string {
		d := h()
		d.Write([]byte(s))
		return hex.EncodeToString(d.Sum(nil))
	}
	ha1 := hx(username + ":" + realm + ":" + password)
	ha2 := hx(method + ":" + uri)
	if qop == "" {
		return hx(ha1 + ":" + nonce + ":" + ha2), nil
	}
	return hx(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + ha2), nil
}

// Verify checks credentials sent with method by the client at source
// against the expected user and password. A wrong username or password,
// a foreign or malformed nonce, a missing qop=auth and a mismatching realm
// all give ErrInvalid.
func (a *Authenticator) Verify(c Credentials, method, source, username, password string) error {
	now := a.cfg.Now()
	expires, err := a.checkNonce(c.Nonce, source, now)
	foreign := errors.Is(err, errForeign)
	if err != nil && !foreign {
		return err
	}
	if c.Realm != a.cfg.Realm || !strings.EqualFold(c.QOP, "auth") || c.CNonce == "" {
		return ErrInvalid
	}
	nc, err := strconv.ParseUint(c.NC, 16, 32)
	if err != nil || len(c.NC) != 8 || nc == 0 {
		return ErrInvalid
	}
	if !a.offers(c.Algorithm) {
		return ErrInvalid
	}
	want, err := Response(c.Algorithm, username, a.cfg.Realm, password, method, c.URI, c.Nonce, c.NC, c.CNonce, "auth")
	if err != nil {
		return ErrInvalid
	}
	userOK := subtle.ConstantTimeCompare([]byte(c.Username), []byte(username)) == 1
	respOK := subtle.ConstantTimeCompare([]byte(strings.ToLower(c.Response)), []byte(want)) == 1
	if !userOK || !respOK {
		return ErrInvalid
	}
	if foreign {
		// The right password over a nonce this authenticator did not
		// issue (another node's, a previous life's, another source's):
		// a fresh challenge, never acceptance, so a captured header
		// cannot be replayed where its count is not remembered.
		return ErrStale
	}
	return a.count(c.Nonce, nc, expires, now)
}

func (a *Authenticator) offers(alg string) bool {
	for _, o := range a.cfg.Algorithms {
		if strings.EqualFold(o, alg) {
			return true
		}
	}
	return false
}

// count accepts nc for nonce only when it is higher than any seen before.
func (a *Authenticator) count(nonce string, nc uint64, expires, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.seen[nonce]
	if ok {
		if nc <= t.nc {
			return ErrReplay
		}
		a.seen[nonce] = tracked{nc: nc, expires: expires}
		return nil
	}
	if len(a.seen) >= a.cfg.MaxTracked {
		for n, t := range a.seen {
			if !now.Before(t.expires) {
				delete(a.seen, n)
			}
		}
		if len(a.seen) >= a.cfg.MaxTracked {
			return ErrStale
		}
	}
	a.seen[nonce] = tracked{nc: nc, expires: expires}
	return nil
}

// Tracked is how many nonces have their counts remembered.
func (a *Authenticator) Tracked() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}
