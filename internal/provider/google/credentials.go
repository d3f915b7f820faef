// Package google reaches Google's speech and Gemini models with either kind
// of key an organization or the server holds: an AI Studio API key (the
// Gemini API) or a Vertex AI service-account JSON key, exchanged for OAuth2
// access tokens (scope cloud-platform) and used in EU locations.
//
//   - Chat, an llm.Provider: Gemini through the two services'
//     OpenAI-compatible chat endpoints (providers-2.md §11).
//   - TTS (Chat.Speech), a tts.Provider: Gemini TTS (streamGenerateContent,
//     §6a) and Chirp 3 HD voices (Cloud Text-to-Speech REST, §6b).
//   - STT (Chat.SpeechToText), an stt.Provider: Speech-to-Text v2
//     StreamingRecognize over gRPC with chirp_3 (§4).
//   - Realtime (Chat.Realtime), a realtime.Provider: Gemini Live,
//     BidiGenerateContent over a websocket (§9).
//
// The ones made from one Chat share its access tokens.
package google

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"
)

// DefaultTokenURL is Google's OAuth2 token endpoint.
const DefaultTokenURL = "https://oauth2.googleapis.com/token"

// scope is what Vertex AI needs.
const scope = "https://www.googleapis.com/auth/cloud-platform"

// Key is a parsed Google key: an API key, or a service account.
type Key struct {
	apiKey  string
	account *serviceAccount
}

// serviceAccount is the part of a service-account JSON key used here.
type serviceAccount struct {
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	ProjectID    string `json:"project_id"`
	Type         string `json:"type"`
}

// ParseKey tells an AI Studio API key from a service-account JSON key. A
// malformed JSON key is an error naming what is wrong; the private key is
// never quoted.
func ParseKey(secret string) (Key, error) {
	s := strings.TrimSpace(secret)
	if s == "" {
		return Key{}, errors.New("google: empty key")
	}
	if !strings.HasPrefix(s, "{") {
		return Key{apiKey: s}, nil
	}
	var sa serviceAccount
	if err := json.Unmarshal([]byte(s), &sa); err != nil {
		return Key{}, errors.New("google: the service-account key is not valid JSON")
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"client_email", sa.ClientEmail}, {"private_key", sa.PrivateKey}, {"project_id", sa.ProjectID}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	switch {
	case sa.Type != "service_account":
		return Key{}, fmt.Errorf("google: the JSON key's type is %q, not \"service_account\"", sa.Type)
	case len(missing) > 0:
		return Key{}, fmt.Errorf("google: the service-account key lacks %s", strings.Join(missing, ", "))
	}
	if b, _ := pem.Decode([]byte(sa.PrivateKey)); b == nil {
		return Key{}, errors.New("google: the service-account key's private_key is not a PEM block")
	}
	return Key{account: &sa}, nil
}

// IsServiceAccount reports whether the key is a service account (Vertex AI).
func (k Key) IsServiceAccount() bool { return k.account != nil }

// Project is the service account's project ("" for an API key).
func (k Key) Project() string {
	if k.account == nil {
		return ""
	}
	return k.account.ProjectID
}

// tokens caches access tokens per service account, refreshing one shortly
// before it expires. Fetches run with the caller's context, so a refresh
// never outlives the request that needed it. Safe for concurrent use.
type tokens struct {
	tokenURL string
	ctx      func(context.Context) context.Context // adds the HTTP client oauth2 uses
	mu       sync.Mutex
	byKey    map[string]*cachedToken // client_email + private_key_id
}

type cachedToken struct {
	mu  sync.Mutex // one fetch at a time per account
	tok *oauth2.Token
}

// maxAccounts bounds the cache; past it, the cache starts over.
const maxAccounts = 1024

// token returns a valid access token for the account.
func (t *tokens) token(ctx context.Context, sa *serviceAccount) (string, error) {
	id := sa.ClientEmail + "\x00" + sa.PrivateKeyID + "\x00" + sa.PrivateKey
	t.mu.Lock()
	if t.byKey == nil || len(t.byKey) >= maxAccounts {
		t.byKey = map[string]*cachedToken{}
	}
	c := t.byKey[id]
	if c == nil {
		c = &cachedToken{}
		t.byKey[id] = c
	}
	t.mu.Unlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	// oauth2.Token.Valid already keeps a 10 s margin; a minute more keeps a
	// long reply's token from lapsing mid-request.
	if c.tok != nil && c.tok.Valid() && time.Until(c.tok.Expiry) > time.Minute {
		return c.tok.AccessToken, nil
	}
	cfg := &jwt.Config{
		Email: sa.ClientEmail, PrivateKey: []byte(sa.PrivateKey), PrivateKeyID: sa.PrivateKeyID,
		Scopes: []string{scope},
		// Never the key's own token_uri: a key is user input, and the
		// signed assertion goes only to the configured endpoint.
		TokenURL: t.tokenURL,
	}
	tok, err := cfg.TokenSource(t.ctx(ctx)).Token()
	if err != nil {
		return "", fmt.Errorf("google: exchange the service account %s's key for an access token: %w", sa.ClientEmail, redact(err, sa.PrivateKey))
	}
	c.tok = tok
	return tok.AccessToken, nil
}

// redact keeps a private key out of an error's text.
func redact(err error, secret string) error {
	if secret != "" && strings.Contains(err.Error(), secret) {
		return errors.New(strings.ReplaceAll(err.Error(), secret, "[private key]"))
	}
	return err
}
