package google

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/oauth2"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/openai"
)

// Defaults.
const (
	// DefaultStudioURL is the Gemini API's OpenAI-compatible root.
	DefaultStudioURL = "https://generativelanguage.googleapis.com/v1beta/openai"
	// DefaultLocation keeps Vertex AI requests in the EU.
	DefaultLocation = "europe-west4"
	// DefaultCloudTTSURL is Cloud Text-to-Speech's EU endpoint.
	DefaultCloudTTSURL = "https://eu-texttospeech.googleapis.com"
)

// Config says where the two services are.
type Config struct {
	// StudioURL is the Gemini API's OpenAI-compatible root, for API keys
	// (default DefaultStudioURL).
	StudioURL string
	// VertexURL is Vertex AI's origin (default https://<location>-aiplatform.googleapis.com,
	// or https://aiplatform.googleapis.com for location "global").
	VertexURL string
	// Location is the Vertex AI region (default DefaultLocation).
	Location string
	// TokenURL is where service-account keys get access tokens (default
	// DefaultTokenURL). A key's own token_uri is never used.
	TokenURL string
	// CloudTTSURL is Cloud Text-to-Speech's origin, for Chirp 3 HD voices
	// (default DefaultCloudTTSURL, the EU endpoint).
	CloudTTSURL string
	// Locale turns a language code ("nl") into the BCP-47 locale Chirp 3 HD
	// voice names start with ("nl-NL"); nil keeps the code as it is.
	Locale     func(lang string) string
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Chat is Gemini as an llm.Provider. Each request's key decides the
// service: an API key goes to the Gemini API, a service-account key to
// Vertex AI in Config.Location, with its project and a fresh access token,
// and the model named with its publisher ("google/gemini-2.5-flash"). Safe
// for concurrent use.
type Chat struct {
	cfg    Config
	studio *openai.Chat
	tokens *tokens

	mu     sync.Mutex
	vertex map[string]*openai.Chat // by project
}

// NewChat returns a Chat.
func NewChat(cfg Config) *Chat {
	if cfg.StudioURL == "" {
		cfg.StudioURL = DefaultStudioURL
	}
	if cfg.Location == "" {
		cfg.Location = DefaultLocation
	}
	if cfg.VertexURL == "" {
		cfg.VertexURL = "https://" + cfg.Location + "-aiplatform.googleapis.com"
		if cfg.Location == "global" {
			cfg.VertexURL = "https://aiplatform.googleapis.com"
		}
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = DefaultTokenURL
	}
	if cfg.CloudTTSURL == "" {
		cfg.CloudTTSURL = DefaultCloudTTSURL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Chat{cfg: cfg, vertex: map[string]*openai.Chat{}}
	c.studio = openai.NewChat(c.openaiConfig(cfg.StudioURL))
	c.tokens = &tokens{tokenURL: cfg.TokenURL, ctx: func(ctx context.Context) context.Context {
		if cfg.HTTPClient == nil {
			return ctx
		}
		return context.WithValue(ctx, oauth2.HTTPClient, cfg.HTTPClient)
	}}
	return c
}

func (c *Chat) openaiConfig(base string) openai.Config {
	// Both services take the classic max_tokens field.
	return openai.Config{BaseURL: base, HTTPClient: c.cfg.HTTPClient, Logger: c.cfg.Logger, MaxTokensField: "max_tokens"}
}

// Stream sends req to the service its key belongs to.
func (c *Chat) Stream(ctx context.Context, req llm.Request) (llm.Stream, error) {
	key, err := ParseKey(req.APIKey)
	if err != nil {
		return nil, err
	}
	if !key.IsServiceAccount() {
		return c.studio.Stream(ctx, req)
	}
	token, err := c.tokens.token(ctx, key.account)
	if err != nil {
		return nil, err
	}
	req.APIKey = token
	if !strings.Contains(req.Model, "/") {
		req.Model = "google/" + req.Model
	}
	return c.vertexChat(key.Project()).Stream(ctx, req)
}

// vertexChat is the OpenAI-compatible client of one project's endpoint.
func (c *Chat) vertexChat(project string) *openai.Chat {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch := c.vertex[project]; ch != nil {
		return ch
	}
	if len(c.vertex) >= maxAccounts {
		clear(c.vertex)
	}
	base := fmt.Sprintf("%s/v1/projects/%s/locations/%s/endpoints/openapi", strings.TrimRight(c.cfg.VertexURL, "/"), url.PathEscape(project), url.PathEscape(c.cfg.Location))
	ch := openai.NewChat(c.openaiConfig(base))
	c.vertex[project] = ch
	return ch
}

// httpClient is the configured client, or the default one.
func (c *Chat) httpClient() *http.Client {
	if c.cfg.HTTPClient != nil {
		return c.cfg.HTTPClient
	}
	return http.DefaultClient
}
