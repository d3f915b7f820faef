// Package signedurl makes links to Parley resources that work without an API
// key until they expire, such as a call's recording_url in an end-of-call
// report. A link carries its expiry and an HMAC of the path and expiry under
// the server's master key, so it cannot be forged, extended or moved to
// another resource, and stops working when the master key changes.
package signedurl

import (
	"crypto/subtle"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Hasher computes keyed hashes (secret.Keyring).
type Hasher interface {
	Hash(purpose, s string) string
}

// Signer makes and checks signed links under one base URL.
type Signer struct {
	// Base is the server's public URL, e.g. "https://voice.example.com";
	// links are Base + path.
	Base string
	Keys Hasher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Query parameters of a signed link.
const (
	ParamExpires   = "expires"
	ParamSignature = "signature"
)

const purpose = "signed-url"

// Errors of Check.
var (
	ErrUnsigned = errors.New("the link is not signed")
	ErrExpired  = errors.New("the signed link has expired")
	ErrInvalid  = errors.New("the link's signature is not valid")
)

func (s Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// URL returns Base+path?params with a signature valid for ttl. path is the
// escaped path ("/api/v1/calls/call-_%2B3161_x/recording"); params (which
// may be nil) are signed too.
func (s Signer) URL(path string, params url.Values, ttl time.Duration) string {
	q := url.Values{}
	for k, v := range params {
		q[k] = append([]string(nil), v...)
	}
	q.Set(ParamExpires, strconv.FormatInt(s.now().Add(ttl).Unix(), 10))
	q.Set(ParamSignature, s.sign(path, q))
	return strings.TrimRight(s.Base, "/") + path + "?" + q.Encode()
}

// sign is the HMAC of path and every query parameter but the signature.
func (s Signer) sign(path string, q url.Values) string {
	c := url.Values{}
	for k, v := range q {
		if k != ParamSignature {
			c[k] = v
		}
	}
	return s.Keys.Hash(purpose, path+"?"+c.Encode()) // Encode sorts by key
}

// Signed reports whether a request carries a signature at all.
func Signed(q url.Values) bool { return q.Has(ParamSignature) || q.Has(ParamExpires) }

// Check verifies the signature of a request for path (its escaped path).
func (s Signer) Check(path string, q url.Values) error {
	exp, sig := q.Get(ParamExpires), q.Get(ParamSignature)
	if exp == "" || sig == "" {
		return ErrUnsigned
	}
	want := s.sign(path, q)
	if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		return ErrInvalid
	}
	at, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return ErrInvalid
	}
	if !s.now().Before(time.Unix(at, 0)) {
		return ErrExpired
	}
	return nil
}
