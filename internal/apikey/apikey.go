// Package apikey makes and recognises the bearer keys clients authenticate with.
//
// A key is shown once, when it is created, and is never stored. The store keeps
// two keyed hashes of it (see secret.Keyring.Hash): a short lookup id, which finds
// the row, and a full hash, which is compared in constant time. Because the id is
// derived from the key rather than embedded in it, keys of any format work,
// including an operator-chosen bootstrap key.
package apikey

import (
	"crypto/rand"
	"crypto/subtle"
	"strings"
)

// Hasher computes keyed hashes; *secret.Keyring implements it.
type Hasher interface {
	Hash(purpose, s string) string
}

// Prefix starts every key Parley generates, as on the HMS platform ("fl_live_…").
const Prefix = "fl_live_"

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Generate returns a new random key: Prefix followed by 40 base62 characters (≈238 bits).
func Generate() string {
	var b strings.Builder
	b.WriteString(Prefix)
	buf := make([]byte, 64)
	for b.Len() < len(Prefix)+40 {
		rand.Read(buf) // never returns an error (crypto/rand, Go ≥ 1.24)
		for _, c := range buf {
			if c < 248 && b.Len() < len(Prefix)+40 { // 248 = 4*62: no modulo bias
				b.WriteByte(alphabet[int(c)%62])
			}
		}
	}
	return b.String()
}

// Identity is what the store keeps of a key.
type Identity struct {
	ID     string // lookup id, 20 hex characters
	Hash   string // full keyed hash, 64 hex characters
	Prefix string // first characters of the key, for display only
}

// Derive computes the stored identity of key.
func Derive(h Hasher, key string) Identity {
	p := key
	if len(p) > len(Prefix)+4 {
		p = p[:len(Prefix)+4]
	}
	return Identity{ID: h.Hash("api-key-id", key)[:20], Hash: h.Hash("api-key", key), Prefix: p}
}

// New generates a key and computes its stored identity.
func New(h Hasher) (key string, id Identity) {
	key = Generate()
	return key, Derive(h, key)
}

// Matches reports whether the identity's hash equals the stored hash, in constant time.
func (id Identity) Matches(storedHash string) bool {
	return subtle.ConstantTimeCompare([]byte(id.Hash), []byte(storedHash)) == 1
}

// Plausible reports whether s could be a key at all (cheap check before hashing).
func Plausible(s string) bool {
	return len(s) >= 16 && len(s) <= 256 && !strings.ContainsAny(s, " \t\r\n")
}
