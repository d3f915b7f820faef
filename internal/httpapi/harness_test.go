package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/apikey"
	"github.com/parley-voice/parley/internal/assistant"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/domain"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/provider/resend"
	"github.com/parley-voice/parley/internal/provider/resend/resendfake"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
)

// env is one API server on a fresh database with two organizations.
type env struct {
	t      testing.TB
	srv    *httpapi.Server
	db     *store.DB
	keys   *secret.Keyring
	keyA   string // organization A's API key
	keyB   string // organization B's API key
	orgA   string
	orgB   string
	engine string
	cfg    httpapi.Config
	deps   httpapi.Deps
	resend *resendfake.Server // the fake Resend behind /domains
}

type fakeVoices struct{}

func (fakeVoices) LocalVoices(context.Context) ([]httpapi.Voice, error) {
	return []httpapi.Voice{{ID: "en-us", Name: "English (America)", Provider: "local", Language: "en-us"}}, nil
}

func newEnv(t testing.TB, engine string, open storetest.Opener, cfg httpapi.Config) *env {
	t.Helper()
	db := open(t)
	keys, err := secret.NewKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, keys: keys, engine: engine}
	e.orgA, e.keyA = e.newOrg("Org A")
	e.orgB, e.keyB = e.newOrg("Org B")
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 1_000_000
	}
	e.cfg, e.deps = cfg, httpapi.Deps{Store: db, Keyring: keys, Catalog: cat, Validator: assistant.NewValidator(cat), Voices: fakeVoices{}}
	e.resend = resendfake.New(resendfake.Config{})
	rs := httptest.NewServer(e.resend)
	t.Cleanup(rs.Close)
	rc, err := resend.New(resend.Config{BaseURL: rs.URL, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.deps.Domains = domain.New(domain.Config{Store: db, Keyring: keys, Resend: rc})
	e.srv = httpapi.NewServer(e.cfg, e.deps)
	return e
}

// with rebuilds the server with changed dependencies (a voice engine, an MCP
// tester, a clock) on the same database.
func (e *env) with(change func(d *httpapi.Deps)) *env {
	change(&e.deps)
	e.srv = httpapi.NewServer(e.cfg, e.deps)
	return e
}

func (e *env) newOrg(name string) (id, key string) {
	key = apikey.Generate()
	ident := apikey.Derive(e.keys, key)
	o := &store.Org{Name: name, MinutesBalance: 100, HasLocalModelsAccess: true}
	if err := e.db.CreateOrg(context.Background(), o, &store.APIKey{ID: ident.ID, Hash: ident.Hash, Prefix: ident.Prefix}); err != nil {
		e.t.Fatal(err)
	}
	return o.ID, key
}

// resp is a decoded response.
type resp struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

// do sends a request; body may be nil, a string (sent as is) or a value (JSON-encoded).
func (e *env) do(method, path, key string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req := httptest.NewRequest(method, path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	r := resp{Status: rec.Code, Header: rec.Header(), Raw: rec.Body.Bytes()}
	if len(bytes.TrimSpace(r.Raw)) > 0 && r.Raw[0] == '{' {
		if err := json.Unmarshal(r.Raw, &r.Body); err != nil {
			e.t.Fatalf("%s %s: response is not JSON: %v\n%s", method, path, err, r.Raw)
		}
	}
	return r
}

// must sends a request and fails the test unless the status matches.
func (e *env) must(status int, method, path string, body any) resp {
	e.t.Helper()
	r := e.do(method, path, e.keyA, body)
	if r.Status != status {
		e.t.Fatalf("%s %s = %d, want %d\n%s", method, path, r.Status, status, r.Raw)
	}
	return r
}

// obj returns the object under key in the body.
func (r resp) obj(t testing.TB, key string) map[string]any {
	t.Helper()
	m, ok := r.Body[key].(map[string]any)
	if !ok {
		t.Fatalf("response has no object %q: %s", key, r.Raw)
	}
	return m
}

func (r resp) list(t testing.TB, key string) []any {
	t.Helper()
	l, ok := r.Body[key].([]any)
	if !ok {
		t.Fatalf("response has no array %q: %s", key, r.Raw)
	}
	return l
}

// wantError checks an error response: status, code, and that the message names field.
func (r resp) wantError(t testing.TB, status int, code, field string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d: %s", r.Status, status, r.Raw)
	}
	if got, _ := r.Body["code"].(string); code != "" && got != code {
		t.Fatalf("code = %q, want %q: %s", got, code, r.Raw)
	}
	msg, _ := r.Body["error"].(string)
	if _, ok := r.Body["message"].(string); !ok || msg == "" {
		t.Fatalf("error body lacks error/message: %s", r.Raw)
	}
	if field != "" && !strings.Contains(msg, field) && !strings.Contains(string(r.Raw), field) {
		t.Fatalf("error does not name %q: %s", field, r.Raw)
	}
}

// forEachEngine runs fn against SQLite and, when configured, PostgreSQL.
func forEachEngine(t *testing.T, cfg httpapi.Config, fn func(t *testing.T, e *env)) {
	for name, open := range storetest.Engines(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, name, open, cfg))
		})
	}
}
