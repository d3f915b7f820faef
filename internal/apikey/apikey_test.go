package apikey

import (
	"bytes"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/secret"
)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		k := Generate()
		if !strings.HasPrefix(k, Prefix) || len(k) != len(Prefix)+40 || !Plausible(k) {
			t.Fatalf("key %q", k)
		}
		for _, c := range k[len(Prefix):] {
			if !strings.ContainsRune(alphabet, c) {
				t.Fatalf("key %q has %q", k, c)
			}
		}
		if seen[k] {
			t.Fatal("duplicate key")
		}
		seen[k] = true
	}
}

func TestDeriveMatches(t *testing.T) {
	h, _ := secret.NewKeyring(bytes.Repeat([]byte{3}, 32))
	for _, k := range []string{Generate(), "operator-chosen-bootstrap-key"} {
		id := Derive(h, k)
		if len(id.ID) != 20 || len(id.Hash) != 64 || strings.Contains(id.Hash, k) || id.ID != Derive(h, k).ID {
			t.Fatalf("identity %+v", id)
		}
		if !Derive(h, k).Matches(id.Hash) || Derive(h, k+"x").Matches(id.Hash) {
			t.Fatal("Matches is wrong")
		}
	}
	if Plausible("short") || Plausible("has space in the middle of it") {
		t.Fatal("implausible keys accepted")
	}
}
