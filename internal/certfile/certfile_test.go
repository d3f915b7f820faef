package certfile

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/certfile/certtest"
)

// TestReloadOnChange replaces the files and sees the next handshake get the
// new certificate; a broken replacement keeps the old one in service.
func TestReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "test CA")
	certFile, keyFile := ca.WriteFiles(t, dir, "sip", "first", "sip.test")
	r, err := New(Config{CertFile: certFile, KeyFile: keyFile, CheckEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	r.now = func() time.Time { return clock }
	cn := func() string {
		c, err := r.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.Subject.CommonName
	}
	if got := cn(); got != "first" {
		t.Fatalf("served %q, want first", got)
	}

	ca.WriteFiles(t, dir, "sip", "second", "sip.test")
	if got := cn(); got != "first" {
		t.Errorf("reloaded before CheckEvery: %q", got)
	}
	clock = clock.Add(2 * time.Second)
	if got := cn(); got != "second" {
		t.Errorf("after replacing the files served %q, want second", got)
	}

	// A key that belongs to another certificate: the old pair stays.
	_, otherKey := ca.Issue(t, "third", "sip.test")
	if err := os.WriteFile(keyFile, otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(2 * time.Second)
	if got := cn(); got != "second" {
		t.Errorf("with a mismatched key served %q, want second kept", got)
	}
	// Files removed: still serving.
	os.Remove(certFile)
	clock = clock.Add(2 * time.Second)
	if got := cn(); got != "second" {
		t.Errorf("with the files gone served %q, want second kept", got)
	}
	ca.WriteFiles(t, dir, "sip", "fourth", "sip.test")
	clock = clock.Add(2 * time.Second)
	if got := cn(); got != "fourth" {
		t.Errorf("after a good pair returned served %q, want fourth", got)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "test CA")
	certFile, keyFile := ca.WriteFiles(t, dir, "a", "a", "a.test")
	_, otherKey := ca.WriteFiles(t, dir, "b", "b", "b.test")
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not pem"), 0o600)
	for _, tc := range []struct {
		name       string
		cert, key  string
		wantSubstr string
	}{
		{"no key", certFile, "", "both required"},
		{"missing cert", filepath.Join(dir, "nope.crt"), keyFile, "nope.crt"},
		{"mismatched key", certFile, otherKey, "a.crt"},
		{"junk cert", junk, keyFile, "junk.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{CertFile: tc.cert, KeyFile: tc.key})
			if err == nil || !contains(err.Error(), tc.wantSubstr) {
				t.Errorf("error %v, want one naming %q", err, tc.wantSubstr)
			}
		})
	}
}

func TestRoots(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "bundle CA")
	bundle := ca.WriteCA(t, dir, "ca.pem")
	pool, err := Roots(bundle)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ca.Issue(t, "leaf", "trunk.test")
	leaf := parsePEM(t, c)
	if _, err := leaf.Verify(x509VerifyOpts(pool, "trunk.test")); err != nil {
		t.Errorf("leaf of the bundle's CA does not verify: %v", err)
	}
	if sys, _ := Roots(""); sys != nil {
		if _, err := leaf.Verify(x509VerifyOpts(sys, "trunk.test")); err == nil {
			t.Error("leaf verifies against the system roots alone")
		}
	}
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("nothing"), 0o600)
	if _, err := Roots(junk); err == nil || !contains(err.Error(), "junk.pem") {
		t.Errorf("junk bundle: %v", err)
	}
	if _, err := Roots(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("missing bundle accepted")
	}
}
