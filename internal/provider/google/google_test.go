package google

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/google/googlefake"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func account(t *testing.T) *googlefake.Account {
	t.Helper()
	a, err := googlefake.NewAccount("eu-voice-project", "parley@eu-voice-project.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseKey(t *testing.T) {
	a := account(t)
	tests := []struct {
		name, secret, wantErr string
		sa                    bool
	}{
		{"api key", "AIzaSyExample", "", false},
		{"service account", a.JSON, "", true},
		{"empty", "  ", "empty key", false},
		{"not json", "{client_email", "not valid JSON", false},
		{"wrong type", `{"type":"authorized_user","client_email":"x","private_key":"y","project_id":"p"}`, `"authorized_user"`, false},
		{"missing fields", `{"type":"service_account","private_key":"SECRETPEM"}`, "lacks client_email, project_id", false},
		{"bad pem", `{"type":"service_account","client_email":"x@y","private_key":"SECRETPEM","project_id":"p"}`, "not a PEM block", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.secret)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "SECRETPEM") {
					t.Fatalf("error quotes the private key: %v", err)
				}
				return
			}
			if err != nil || k.IsServiceAccount() != tt.sa {
				t.Fatalf("ParseKey = %+v, %v", k, err)
			}
			if tt.sa && k.Project() != "eu-voice-project" {
				t.Fatalf("project %q", k.Project())
			}
		})
	}
}

// fixture is a Chat pointed at a fake that trusts acct.
func fixture(t *testing.T, acct *googlefake.Account, ttl time.Duration) (*Chat, *googlefake.Server) {
	t.Helper()
	fake := googlefake.New(googlefake.Config{Account: acct, StudioKey: "AIza-studio", TokenTTL: ttl,
		Chat: openaifake.Config{Replies: []openaifake.Reply{{Text: "Guten Tag."}}}})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c := NewChat(Config{StudioURL: srv.URL + "/v1beta/openai", VertexURL: srv.URL, TokenURL: srv.URL + googlefake.TokenPath, HTTPClient: srv.Client()})
	return c, fake
}

func reply(t *testing.T, c *Chat, key, model string) (string, error) {
	t.Helper()
	s, err := c.Stream(context.Background(), llm.Request{Model: model, APIKey: key, Messages: []llm.Message{{Role: llm.User, Content: "Hallo"}}})
	if err != nil {
		return "", err
	}
	defer s.Close()
	var b strings.Builder
	for {
		d, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		b.WriteString(d.Text)
	}
}

// A service-account key reaches Vertex AI in the EU location with its
// project, a token from the configured endpoint (never the key's own
// token_uri, here an unreachable host) and the publisher-prefixed model;
// the token is reused while valid.
func TestVertexServiceAccount(t *testing.T) {
	a := account(t)
	c, fake := fixture(t, a, time.Hour)
	for range 3 {
		got, err := reply(t, c, a.JSON, "gemini-2.5-flash")
		if err != nil || got != "Guten Tag." {
			t.Fatalf("reply %q, %v", got, err)
		}
	}
	want := googlefake.Call{Service: "vertex", Project: "eu-voice-project", Location: DefaultLocation, Model: "google/gemini-2.5-flash"}
	for _, call := range fake.Calls() {
		if call != want {
			t.Errorf("call %+v, want %+v", call, want)
		}
	}
	if g := fake.Grants(); g != 1 {
		t.Errorf("%d token grants for 3 requests in an hour, want 1", g)
	}
}

// A token about to expire is not used: each request gets a fresh one.
func TestVertexTokenRefresh(t *testing.T) {
	a := account(t)
	c, fake := fixture(t, a, 30*time.Second)
	for range 2 {
		if _, err := reply(t, c, a.JSON, "gemini-2.5-flash"); err != nil {
			t.Fatal(err)
		}
	}
	if g := fake.Grants(); g != 2 {
		t.Errorf("%d grants for tokens lasting 30 s, want one per request (2)", g)
	}
}

// Concurrent requests with one account share one token fetch.
func TestVertexConcurrent(t *testing.T) {
	a := account(t)
	c, fake := fixture(t, a, time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := reply(t, c, a.JSON, "gemini-2.5-flash-lite"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if g := fake.Grants(); g != 1 {
		t.Errorf("%d grants, want 1", g)
	}
}

// A key the token endpoint does not trust fails with an error naming the
// account and the step, never the private key.
func TestVertexUntrustedKey(t *testing.T) {
	trusted, other := account(t), account(t)
	c, fake := fixture(t, trusted, time.Hour)
	_, err := reply(t, c, other.JSON, "gemini-2.5-flash")
	if err == nil || !strings.Contains(err.Error(), "access token") || !strings.Contains(err.Error(), other.Email) {
		t.Fatalf("err = %v, want the token exchange refused for %s", err, other.Email)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Fatalf("error quotes the private key: %v", err)
	}
	if len(fake.Calls()) != 0 {
		t.Fatalf("chat reached without a token: %+v", fake.Calls())
	}
}

// An API key goes to the Gemini API, model as given.
func TestStudioKey(t *testing.T) {
	c, fake := fixture(t, account(t), time.Hour)
	got, err := reply(t, c, "AIza-studio", "gemini-2.5-flash")
	if err != nil || got != "Guten Tag." {
		t.Fatalf("reply %q, %v", got, err)
	}
	if calls := fake.Calls(); len(calls) != 1 || calls[0] != (googlefake.Call{Service: "studio", Model: "gemini-2.5-flash"}) {
		t.Fatalf("calls %+v", calls)
	}
	if _, err := reply(t, c, "AIza-wrong", "gemini-2.5-flash"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong API key: err = %v, want a 401", err)
	}
}

func TestVertexURLs(t *testing.T) {
	for loc, want := range map[string]string{"": "https://europe-west4-aiplatform.googleapis.com", "europe-west1": "https://europe-west1-aiplatform.googleapis.com", "global": "https://aiplatform.googleapis.com"} {
		if got := NewChat(Config{Location: loc}).cfg.VertexURL; got != want {
			t.Errorf("location %q: %s, want %s", loc, got, want)
		}
	}
}
