package main

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// providerSetting is one provider's PARLEY_<NAME>_BASE_URL and _API_KEY.
type providerSetting struct {
	BaseURL    string
	APIKey     string
	defaultURL string
}

// providerDefaults are the vendors' documented endpoints. Every one can be
// pointed elsewhere: a regional endpoint, a gateway, a self-hosted
// OpenAI-compatible server, or `parley simulate-providers`.
var providerDefaults = []struct{ name, url, what string }{
	{"deepgram", "wss://api.deepgram.com", "Deepgram streaming speech-to-text"},
	{"openai", "https://api.openai.com/v1", "OpenAI (or any OpenAI-compatible server: vLLM, Ollama, llama.cpp), chat and /audio/speech"},
	{"xai", "https://api.x.ai/v1", "xAI Grok (text, OpenAI-compatible; text-to-speech at the same host's /v1/tts websocket)"},
	{"mistral", "https://api.mistral.ai/v1", "Mistral (OpenAI-compatible)"},
	{"google", "https://generativelanguage.googleapis.com/v1beta/openai", "Google Gemini API (OpenAI-compatible endpoint) for AI Studio keys; the server key may also be a Vertex AI service-account JSON key"},
	{"elevenlabs", "wss://api.elevenlabs.io", "ElevenLabs (text-to-speech and Scribe realtime speech-to-text websockets)"},
	{"gladia", "https://api.gladia.io", "Gladia live speech-to-text"},
	{"inworld", "wss://api.inworld.ai", "Inworld text-to-speech websocket"},
}

// providerSettings are each vendor's base URL and server key.
func providerSettings() []setting {
	var out []setting
	for _, p := range providerDefaults {
		name := p.name
		up := strings.ToUpper(name)
		get := func(c *config) *providerSetting {
			if c.Providers == nil {
				c.Providers = map[string]*providerSetting{}
			}
			if c.Providers[name] == nil {
				c.Providers[name] = &providerSetting{}
			}
			return c.Providers[name]
		}
		def := p.url
		out = append(out,
			setting{env: "PARLEY_" + up + "_BASE_URL", flag: name + "-base-url", def: def, help: p.what + " endpoint",
				set: func(c *config, v string) error {
					ps := get(c)
					ps.BaseURL, ps.defaultURL = v, def
					return checkURL(v)
				}},
			setting{env: "PARLEY_" + up + "_API_KEY", flag: name + "-api-key", def: "", secret: true, help: "server-wide " + p.what + " key, used when an organization has no BYOK key",
				set: func(c *config, v string) error { get(c).APIKey = v; return nil }},
		)
	}
	return append(out, setting{env: "PARLEY_RESEND_BASE_URL", flag: "resend-base-url", def: "https://api.resend.com",
		help: "Resend REST API endpoint, for organizations' e-mail sending domains (each organization's own Resend BYOK key)",
		set: func(c *config, v string) error {
			c.ResendBaseURL = v
			if u, err := url.Parse(v); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return errors.New("must be an absolute http or https URL")
			}
			return nil
		}})
}

// endpointSettings are the vendors' other endpoints: Google's services
// (Vertex AI, its token endpoint, Speech-to-Text, Cloud TTS, Gemini Live)
// and the realtime websockets.
func endpointSettings() []setting {
	return []setting{
		{env: "PARLEY_GOOGLE_VERTEX_LOCATION", flag: "google-vertex-location", def: "europe-west4", help: "Vertex AI region for Gemini requests made with a service-account key (the EU by default; global for models served only there)",
			set: func(c *config, v string) error {
				if v == "" || strings.ContainsAny(v, "/.: ") {
					return errors.New("must be a Vertex AI location such as europe-west4 or global")
				}
				c.GoogleVertexLocation = v
				return nil
			}},
		{env: "PARLEY_GOOGLE_VERTEX_URL", flag: "google-vertex-url", def: "", help: "Vertex AI origin for Gemini requests with a service-account key (default https://<location>-aiplatform.googleapis.com)",
			set: func(c *config, v string) error {
				c.GoogleVertexURL = v
				if v == "" {
					return nil
				}
				return checkURL(v)
			}},
		{env: "PARLEY_GOOGLE_TOKEN_URL", flag: "google-token-url", def: "https://oauth2.googleapis.com/token", help: "OAuth2 token endpoint service-account keys are exchanged at (a key's own token_uri is never used)",
			set: func(c *config, v string) error { c.GoogleTokenURL = v; return checkURL(v) }},
		{env: "PARLEY_GOOGLE_SPEECH_ADDR", flag: "google-speech-addr", def: "eu-speech.googleapis.com:443", help: "Speech-to-Text v2 gRPC address (host:port) for stt_config provider google (chirp_3, the EU endpoint by default; TLS except to a loopback address)",
			set: func(c *config, v string) error {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return errors.New("must be host:port")
				}
				c.GoogleSpeechAddr = v
				return nil
			}},
		{env: "PARLEY_OPENAI_REALTIME_URL", flag: "openai-realtime-url", def: "", help: "OpenAI Realtime websocket for llm_config provider openai_live (default: PARLEY_OPENAI_BASE_URL as ws(s) + /realtime, wss://api.openai.com/v1/realtime)",
			set: func(c *config, v string) error { c.OpenAIRealtimeURL = v; return optionalURL(v) }},
		{env: "PARLEY_XAI_REALTIME_URL", flag: "xai-realtime-url", def: "", help: "xAI voice agent websocket for llm_config provider xai_realtime (default: PARLEY_XAI_BASE_URL as ws(s) + /realtime, wss://api.x.ai/v1/realtime)",
			set: func(c *config, v string) error { c.XAIRealtimeURL = v; return optionalURL(v) }},
		{env: "PARLEY_GOOGLE_LIVE_URL", flag: "google-live-url", def: "", help: "Gemini Live websocket origin for AI Studio keys, llm_config provider google_realtime (default: the origin of PARLEY_GOOGLE_BASE_URL, wss://generativelanguage.googleapis.com); Vertex AI keys use PARLEY_GOOGLE_VERTEX_URL's origin",
			set: func(c *config, v string) error { c.GoogleLiveURL = v; return optionalURL(v) }},
		{env: "PARLEY_GOOGLE_TTS_URL", flag: "google-tts-url", def: "https://eu-texttospeech.googleapis.com", help: "Cloud Text-to-Speech origin, for Chirp 3 HD voices (the EU endpoint by default)",
			set: func(c *config, v string) error { c.GoogleCloudTTSURL = v; return checkURL(v) }},
	}
}
