// Package secret seals values at rest and derives the server's keyed hashes.
//
// Everything hangs off one 32-byte master key. Two independent keys are derived
// from it with HKDF-SHA256: an AES-256-GCM key that seals secrets (BYOK provider
// keys, SIP trunk passwords, MCP header values), and an HMAC key that hashes API
// keys. Every sealed value is bound to where it lives through the GCM additional
// data (organization, table, field), so a ciphertext copied to another row or
// another organization does not open.
//
// Sealed format: "v1:" + base64url(nonce ‖ ciphertext ‖ tag), nonce 96 bits random.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the master key length in bytes.
const KeySize = 32

const sealedPrefix = "v1:"

// ErrOpen is returned when a sealed value cannot be opened: wrong key, wrong
// binding, or tampering.
var ErrOpen = errors.New("secret: cannot open sealed value")

// Keyring seals and opens secrets and computes keyed hashes. It is safe for
// concurrent use.
type Keyring struct {
	aead   cipher.AEAD
	macKey []byte
}

// NewKeyring derives the sealing and hashing keys from a 32-byte master key.
func NewKeyring(master []byte) (*Keyring, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("secret: master key must be %d bytes, got %d", KeySize, len(master))
	}
	encKey, err := hkdf.Key(sha256.New, master, nil, "parley seal v1", 32)
	if err != nil {
		return nil, fmt.Errorf("secret: derive sealing key: %w", err)
	}
	macKey, err := hkdf.Key(sha256.New, master, nil, "parley api-key hash v1", 32)
	if err != nil {
		return nil, fmt.Errorf("secret: derive hashing key: %w", err)
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Keyring{aead: aead, macKey: macKey}, nil
}

// Binding names where a sealed value lives. All parts take part in authentication.
type Binding struct {
	OrgID string // owning organization
	Table string // e.g. "byok_keys"
	Field string // e.g. "openai" or "auth_password"
	RowID string // optional row identity
}

func (b Binding) aad() []byte {
	return []byte("org=" + b.OrgID + "\x00table=" + b.Table + "\x00field=" + b.Field + "\x00row=" + b.RowID)
}

// Seal encrypts plaintext bound to b.
func (k *Keyring) Seal(plaintext []byte, b Binding) string {
	ct := k.aead.Seal(nil, nil, plaintext, b.aad())
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(ct)
}

// Open decrypts a value produced by Seal with the same binding.
func (k *Keyring) Open(sealed string, b Binding) ([]byte, error) {
	raw, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: unknown format", ErrOpen)
	}
	ct, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	pt, err := k.aead.Open(nil, nil, ct, b.aad())
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Hash returns the hex HMAC-SHA256 of s under the hashing key, with a purpose label
// so hashes made for different uses never collide.
func (k *Keyring) Hash(purpose, s string) string {
	m := hmac.New(sha256.New, k.macKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// ParseKey decodes a master key given as 64 hex characters or as standard or
// URL-safe base64 of 32 bytes.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("master key must be %d bytes as 64 hex characters or base64", KeySize)
}

// LoadOrCreateKeyFile reads the master key from path, or, when the file does not
// exist, generates a new random key and writes it there with mode 0600.
// created reports whether a new key was generated.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := ParseKey(string(data))
		if err != nil {
			return nil, false, fmt.Errorf("read master key file %s: %w", path, err)
		}
		return key, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("read master key file: %w", err)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("generate master key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create directory for master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("create master key file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("write master key file: %w", err)
	}
	return key, true, nil
}
