package assistant

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/fault"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func newValidator(t *testing.T) *Validator {
	t.Helper()
	c, err := catalog.Load()
	if err != nil {
		t.Fatalf("catalog.Load: %v", err)
	}
	return NewValidator(c)
}

func parseDoc(t *testing.T, s string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad test document %s: %v", s, err)
	}
	return m
}

// canon renders a document with sorted top-level keys; nested objects keep
// the order the normaliser wrote, so comparisons also check that order.
func canon(t *testing.T, m map[string]json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// want renders an expected document the way canon renders a result.
func want(t *testing.T, s string) string {
	t.Helper()
	return canon(t, parseDoc(t, s))
}

func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("bad expected JSON %s: %v", s, err)
	}
	return b.String()
}

// invalid asserts err is an Invalid *fault.Error and returns it.
func invalid(t *testing.T, err error) *fault.Error {
	t.Helper()
	if err == nil {
		t.Fatal("got no error, want an invalid-field error")
	}
	e, ok := fault.As(err)
	if !ok || e.Kind != fault.Invalid {
		t.Fatalf("got %#v, want a fault.Invalid error", err)
	}
	if len(e.Details) == 0 || e.Field == "" && e.Code != "missing_field" {
		t.Fatalf("error without field or details: %#v", e)
	}
	return e
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, []byte(got), "", "  "); err != nil { // Indent keeps & and < as they are
		t.Fatalf("indent: %v", err)
	}
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	wantBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(pretty.Bytes(), wantBytes) {
		t.Errorf("%s differs from the normalised output:\ngot:\n%s\nwant:\n%s", path, pretty.String(), wantBytes)
	}
}

func readTestdata(t *testing.T, name string) map[string]json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return parseDoc(t, string(b))
}

func equalDetails(got, want []string) bool { return slices.Equal(got, want) }
