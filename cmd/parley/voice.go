package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/media"
	"github.com/parley-voice/parley/internal/provider/deepgram"
	"github.com/parley-voice/parley/internal/provider/elevenlabs"
	"github.com/parley-voice/parley/internal/provider/local"
	"github.com/parley-voice/parley/internal/provider/openai"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/stt"
	"github.com/parley-voice/parley/internal/telephony"
	"github.com/parley-voice/parley/internal/tts"
	"github.com/parley-voice/parley/internal/voice"
)

// providers builds every provider client from the settings.
func providers(c *config, log *slog.Logger) voice.Providers {
	p := voice.Providers{
		STT:        map[string]stt.Provider{},
		LLM:        map[string]llm.Provider{},
		TTS:        map[string]tts.Provider{},
		ServerKeys: map[string]string{},
		Keyless:    map[string]bool{},
	}
	for name, s := range c.Providers {
		if s.APIKey != "" {
			p.ServerKeys[name] = s.APIKey
		}
	}
	pl := func(name string) *slog.Logger { return log.With("provider", name) }
	p.STT["deepgram"] = deepgram.New(deepgram.Config{BaseURL: c.Providers["deepgram"].BaseURL, Logger: pl("deepgram")})
	p.TTS["elevenlabs"] = elevenlabs.NewTTS(elevenlabs.Config{BaseURL: c.Providers["elevenlabs"].BaseURL, Logger: pl("elevenlabs")})
	for _, name := range []string{"openai", "xai", "mistral", "google"} {
		s := c.Providers[name]
		cfg := openai.Config{BaseURL: s.BaseURL, Logger: pl(name)}
		if name != "openai" || s.BaseURL != s.defaultURL {
			// Compatible servers take the classic field name.
			cfg.MaxTokensField = "max_tokens"
		}
		p.LLM[name] = openai.NewChat(cfg)
		// A self-hosted OpenAI-compatible server usually needs no key.
		if name == "openai" && s.BaseURL != s.defaultURL && s.APIKey == "" {
			p.Keyless[name] = true
		}
	}
	p.STT["local"] = local.NewSTT(local.STTConfig{Logger: pl("local")})
	p.TTS["local"] = local.NewTTS(local.TTSConfig{Logger: pl("local")})
	return p
}

// startTelephony builds the SIP server and binds it; nil when SIP is off.
func startTelephony(c *config, db *store.DB, keys *secret.Keyring, cat *catalog.Catalog, log *slog.Logger) (*telephony.Server, error) {
	if c.SIPAddr == "off" {
		return nil, nil
	}
	engine := voice.New(db, keys, voice.Config{Catalog: cat, Providers: providers(c, log), Logger: log})
	ap, err := netip.ParseAddrPort(c.SIPAddr)
	if err != nil {
		return nil, fmt.Errorf("PARLEY_SIP_ADDR: %w", err)
	}
	srv, err := telephony.New(telephony.Config{
		ListenAddr:   c.SIPAddr,
		PublicAddr:   c.SIPPublicAddr,
		Media:        media.Config{BindIP: ap.Addr(), Ports: c.RTPPorts, Timeout: c.MediaTimeout},
		MaxCalls:     c.MaxCalls,
		DrainTimeout: c.DrainTimeout,
		UserAgent:    "Parley/" + version,
		Logger:       log.With("component", "sip"),
	}, engine)
	if err != nil {
		return nil, err
	}
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	return srv, nil
}

// serveTelephony runs the SIP server until ctx ends.
func serveTelephony(ctx context.Context, srv *telephony.Server) error {
	if srv == nil {
		<-ctx.Done()
		return nil
	}
	return srv.Serve(ctx)
}
