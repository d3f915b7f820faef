package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func keyring(t *testing.T, b byte) *Keyring {
	k, err := NewKeyring(bytes.Repeat([]byte{b}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := keyring(t, 1)
	b := Binding{OrgID: "org-a", Table: "byok_keys", Field: "openai"}
	sealed := k.Seal([]byte("sk-secret"), b)
	if !strings.HasPrefix(sealed, "v1:") || strings.Contains(sealed, "sk-secret") {
		t.Fatalf("sealed = %q", sealed)
	}
	if sealed == k.Seal([]byte("sk-secret"), b) {
		t.Fatal("two seals of the same value are equal: nonce not random")
	}
	pt, err := k.Open(sealed, b)
	if err != nil || string(pt) != "sk-secret" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	for name, other := range map[string]Binding{
		"other org":   {OrgID: "org-b", Table: "byok_keys", Field: "openai"},
		"other field": {OrgID: "org-a", Table: "byok_keys", Field: "deepgram"},
		"other table": {OrgID: "org-a", Table: "sip_trunks", Field: "openai"},
		"other row":   {OrgID: "org-a", Table: "byok_keys", Field: "openai", RowID: "x"},
	} {
		if _, err := k.Open(sealed, other); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: Open = %v, want ErrOpen", name, err)
		}
	}
	if _, err := keyring(t, 2).Open(sealed, b); !errors.Is(err, ErrOpen) {
		t.Error("another master key opened the value")
	}
	// One character changed in the middle (the last ones may be padding
	// bits, or already "AA": this test once failed 1 time in 4096 so).
	mid := len(sealed) / 2
	swap := byte('A')
	if sealed[mid] == 'A' {
		swap = 'B'
	}
	tampered := sealed[:mid] + string(swap) + sealed[mid+1:]
	if _, err := k.Open(tampered, b); !errors.Is(err, ErrOpen) {
		t.Errorf("tampered value %q opened", tampered)
	}
	if _, err := k.Open("plain", b); !errors.Is(err, ErrOpen) {
		t.Error("unsealed value opened")
	}
}

func TestHash(t *testing.T) {
	k := keyring(t, 1)
	first, again := k.Hash("a", "x"), k.Hash("a", "x")
	if first != again || first == k.Hash("b", "x") || first == keyring(t, 2).Hash("a", "x") {
		t.Fatal("hash is not keyed and purpose-separated")
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, 32)
	for _, s := range []string{hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw), " " + hex.EncodeToString(raw) + "\n"} {
		if got, err := ParseKey(s); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "short", hex.EncodeToString(raw[:31])} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "master.key")
	k1, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created || len(k1) != KeySize {
		t.Fatalf("create = %x, %v, %v", k1, created, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v", fi.Mode())
	}
	k2, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("reload = %x, %v, %v", k2, created, err)
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, _, err := LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("garbage key file accepted")
	}
}
