package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/announce"
	"github.com/parley-voice/parley/internal/assistant"
	"github.com/parley-voice/parley/internal/certfile"
	"github.com/parley-voice/parley/internal/dialer"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/inbound"
	"github.com/parley-voice/parley/internal/mcp"
	"github.com/parley-voice/parley/internal/netguard"
	"github.com/parley-voice/parley/internal/webhook"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/media"
	"github.com/parley-voice/parley/internal/pike"
	"github.com/parley-voice/parley/internal/provider/deepgram"
	"github.com/parley-voice/parley/internal/provider/elevenlabs"
	"github.com/parley-voice/parley/internal/provider/gladia"
	"github.com/parley-voice/parley/internal/provider/google"
	"github.com/parley-voice/parley/internal/provider/inworld"
	"github.com/parley-voice/parley/internal/provider/local"
	"github.com/parley-voice/parley/internal/provider/mistral"
	"github.com/parley-voice/parley/internal/provider/openai"
	"github.com/parley-voice/parley/internal/provider/wsurl"
	"github.com/parley-voice/parley/internal/provider/xai"
	"github.com/parley-voice/parley/internal/realtime"
	"github.com/parley-voice/parley/internal/recording"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/silero"
	"github.com/parley-voice/parley/internal/sipacl"
	"github.com/parley-voice/parley/internal/sipauth"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/stt"
	"github.com/parley-voice/parley/internal/telephony"
	"github.com/parley-voice/parley/internal/tts"
	"github.com/parley-voice/parley/internal/voice"
)

// providers builds every provider client from the settings.
func providers(c *config, cat *catalog.Catalog, log *slog.Logger) (voice.Providers, func() error, error) {
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
	p.STT["elevenlabs"] = elevenlabs.NewSTT(elevenlabs.Config{BaseURL: c.Providers["elevenlabs"].BaseURL, Logger: pl("elevenlabs")})
	p.STT["mistral"] = mistral.NewSTT(mistral.Config{BaseURL: c.Providers["mistral"].BaseURL, Logger: pl("mistral")})
	p.STT["gladia"] = gladia.New(gladia.Config{BaseURL: c.Providers["gladia"].BaseURL, Logger: pl("gladia")})
	p.TTS["inworld"] = inworld.NewTTS(inworld.Config{BaseURL: c.Providers["inworld"].BaseURL, Logger: pl("inworld")})
	// xAI's one base URL names its OpenAI-compatible API root (…/v1); the
	// speech websocket is /v1/tts on the same host.
	p.TTS["xai"] = xai.NewTTS(xai.Config{BaseURL: strings.TrimSuffix(strings.TrimRight(c.Providers["xai"].BaseURL, "/"), "/v1"), Logger: pl("xai")})
	p.TTS["openai"] = openai.NewTTS(openai.Config{BaseURL: c.Providers["openai"].BaseURL, Logger: pl("openai")})
	for _, name := range []string{"openai", "xai", "mistral"} {
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
	// Gemini: an AI Studio key to the Gemini API (PARLEY_GOOGLE_BASE_URL), a
	// Vertex AI service-account key to Vertex AI in PARLEY_GOOGLE_VERTEX_LOCATION.
	gemini := google.NewChat(google.Config{StudioURL: c.Providers["google"].BaseURL, VertexURL: c.GoogleVertexURL,
		Location: c.GoogleVertexLocation, TokenURL: c.GoogleTokenURL, CloudTTSURL: c.GoogleCloudTTSURL, Logger: pl("google"),
		Locale: func(lang string) string {
			if l := cat.BCP47(lang); len(l) > 0 {
				return l[0]
			}
			return lang
		}})
	p.LLM["google"] = gemini
	p.TTS["google"] = gemini.Speech() // Gemini TTS, same keys and tokens
	// Speech-to-Text v2 (chirp_3) over gRPC; plain text only to a loopback
	// address (googlefake in tests).
	gstt, err := gemini.SpeechToText(google.STTConfig{Addr: c.GoogleSpeechAddr, Insecure: loopbackAddr(c.GoogleSpeechAddr), Logger: pl("google")})
	if err != nil {
		return p, nil, fmt.Errorf("PARLEY_GOOGLE_SPEECH_ADDR: %w", err)
	}
	p.STT["google"] = gstt
	p.STT["local"] = local.NewSTT(local.STTConfig{Logger: pl("local")})
	p.TTS["local"] = local.NewTTS(local.TTSConfig{Logger: pl("local")})
	p.Realtime = realtimeProviders(c, gemini, pl)
	// Realtime calls apologise and ask for recording consent in the
	// server's own voice (espeak-ng), their model being unable to.
	p.Fallback = voice.FallbackVoice{TTS: p.TTS["local"]}
	return p, gstt.Close, nil
}

// realtimeProviders builds the speech-to-speech clients: each endpoint
// is its setting, or derived from the vendor's base URL.
func realtimeProviders(c *config, gemini *google.Chat, pl func(string) *slog.Logger) map[string]realtime.Provider {
	gl := google.RealtimeConfig{StudioURL: cmp.Or(c.GoogleLiveURL, websocketURL(originOf(c.Providers["google"].BaseURL), "")),
		Logger: pl("google")}
	if c.GoogleVertexURL != "" {
		gl.VertexURL = websocketURL(originOf(c.GoogleVertexURL), "")
	}
	return map[string]realtime.Provider{
		"openai_live": openai.NewRealtime(openai.RealtimeConfig{
			URL: cmp.Or(c.OpenAIRealtimeURL, websocketURL(c.Providers["openai"].BaseURL, "/realtime")), Logger: pl("openai")}),
		"xai_realtime": xai.NewRealtime(xai.RealtimeConfig{
			URL: cmp.Or(c.XAIRealtimeURL, websocketURL(c.Providers["xai"].BaseURL, "/realtime")), Logger: pl("xai")}),
		"google_realtime": gemini.Realtime(gl),
	}
}

// websocketURL is base with path appended and http(s) turned into ws(s).
// A base URL that is not one gives "", the adapter's default.
func websocketURL(base, path string) string {
	u, err := url.Parse(base)
	if err != nil || wsurl.Adapt(u, base) != nil {
		return ""
	}
	u.Path = strings.TrimRight(u.Path, "/") + path
	return u.String()
}

// originOf is the scheme and host of a URL.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// loopbackAddr reports whether host:port names a loopback address.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// byokKeyChecks vet the BYOK keys that are documents: a google_vertex key is
// a Vertex AI service-account JSON key.
func byokKeyChecks() map[string]func(string) error {
	return map[string]func(string) error{
		"google_vertex": func(key string) error {
			k, err := google.ParseKey(key)
			if err != nil {
				return fmt.Errorf("must be a Vertex AI service-account JSON key: %w", err)
			}
			if !k.IsServiceAccount() {
				return errors.New("must be a Vertex AI service-account JSON key (an AI Studio API key goes under provider google)")
			}
			return nil
		},
	}
}

// servedBy says what this server runs (assistant.Served): a provider needs
// a client here (providers, above). Assistants choosing anything else are
// refused with a 400 naming the field, at save, outbound and
// assistant-request time, and GET /voices and the OpenAPI document leave it
// out.
func servedBy(p voice.Providers) assistant.Served {
	return func(s catalog.Section, provider, model string) error {
		var ok bool
		switch s {
		case catalog.STT:
			_, ok = p.STT[provider]
		case catalog.LLM:
			_, ok = p.LLM[provider]
			if !ok {
				_, ok = p.Realtime[provider]
			}
		case catalog.TTS:
			_, ok = p.TTS[provider]
		}
		switch {
		case ok:
			return nil
		default:
			return errors.New("this server has no client for it yet")
		}
	}
}

// outgoing is everything that dials user-supplied URLs: webhooks, tool
// calls and MCP servers, all through the SSRF guard.
type outgoing struct {
	guard      *netguard.Guard
	sender     *webhook.Sender
	dispatcher *webhook.Dispatcher
	mcpHTTP    *http.Client
}

func newOutgoing(c *config, db *store.DB, keys *secret.Keyring, log *slog.Logger) *outgoing {
	gc := netguard.Config{}
	if c.AllowPrivateURLs {
		// Development: loopback and private networks are reachable too,
		// as the create-time check (netguard.NewURLCheck) admits them.
		gc = netguard.DevelopmentConfig()
	}
	g := netguard.New(gc)
	o := &outgoing{guard: g, sender: &webhook.Sender{HTTP: g.Client(30 * time.Second)}, mcpHTTP: g.Client(0)}
	o.dispatcher = webhook.NewDispatcher(db, keys, o.sender, webhook.DispatcherConfig{
		Timeout: c.WebhookTimeout, Lease: c.WebhookLease, Logger: log.With("component", "webhooks"),
	})
	return o
}

// testMCP lists an MCP server's tools for POST /mcp-servers/{id}/test.
func (o *outgoing) testMCP(ctx context.Context, url, transport string, headers map[string]string, timeout time.Duration) ([]httpapi.MCPTool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sess, err := mcp.Connect(ctx, mcp.Config{URL: url, Transport: mcp.Transport(transport), Headers: headers, Timeout: timeout, HTTPClient: o.mcpHTTP, ClientVersion: version})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	tools, err := sess.ListTools(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.MCPTool, len(tools))
	for i, t := range tools {
		out[i] = httpapi.MCPTool{Name: t.Name, Description: t.Description, InputSchema: t.InputSchema}
	}
	return out, nil
}

// openVAD loads the Silero model when PARLEY_VAD=silero; nil means the
// energy VAD. A configured model that cannot be loaded stops the server:
// running with another detector than the one asked for would go unnoticed.
func openVAD(c *config, log *slog.Logger) (*silero.Model, error) {
	if c.VAD != "silero" {
		return nil, nil
	}
	m, err := silero.Open(silero.Config{
		Library:   filepath.Join(c.SileroDir, "libonnxruntime.so.1"),
		Model:     filepath.Join(c.SileroDir, "silero_vad.onnx"),
		Threshold: c.SileroThreshold,
	})
	if err != nil {
		return nil, fmt.Errorf("PARLEY_VAD=silero: %w", err)
	}
	log.Info("voice-activity detection: Silero VAD", "onnxruntime", m.Version(), "dir", c.SileroDir, "threshold", c.SileroThreshold)
	return m, nil
}

// newEngine builds the voice engine. It runs calls when the SIP server is on,
// and picks post-call models either way, with the providers this server
// runs (provs) and the validator that refuses the others (valid). vad, when
// set, gives every call a Silero detector.
func newEngine(c *config, db *store.DB, keys *secret.Keyring, cat *catalog.Catalog, provs voice.Providers, valid *assistant.Validator, out *outgoing, after voice.AfterCall, boot string, gate voice.Gate, vad *silero.Model, log *slog.Logger) (*voice.Engine, error) {
	unavailable, err := announce.Unavailable()
	if c.UnavailableAudio != "" {
		unavailable, err = announce.Load(c.UnavailableAudio)
	}
	if err != nil {
		return nil, fmt.Errorf("PARLEY_UNAVAILABLE_AUDIO: %w", err)
	}
	var newVAD func() (voice.VAD, error)
	if vad != nil {
		newVAD = func() (voice.VAD, error) { return vad.NewDetector() }
	}
	return voice.New(db, keys, voice.Config{
		NewVAD:  newVAD,
		Catalog: cat, Providers: provs, Validator: valid,
		Webhooks: out.sender, Outbox: out.dispatcher, HTTP: out.mcpHTTP, Logger: log,
		AfterCall: after, PostcallModels: c.PostcallModels, BootID: boot, Unavailable: unavailable, Gate: gate,
		RingTimeout: c.RingTimeout, MaxCallDuration: c.MaxCallDuration,
		// Rings of a second per channel, flushed twice a second: a small,
		// fixed amount of memory per recorded call.
		Recordings: &recording.Config{Dir: filepath.Join(c.SpoolDir, "recordings"), FlushInterval: 500 * time.Millisecond, Logger: log.With("component", "recording")},
	}), nil
}

// sipEdge is who may call in: the admission gate (trunk addresses,
// registrations, digest), the host name cache behind it and the
// per-source request limiter.
type sipEdge struct {
	gate    *inbound.Gate
	hosts   *sipacl.Cache
	limiter *pike.Limiter // nil: no limit
}

// newSIPEdge builds the admission gate. Digest nonces are signed with a
// key derived from the master key and this process life (boot): the
// nonce counts that stop replays live in this process, so a nonce is
// accepted only here; another node (or this one after a restart) answers
// the right password over it with a fresh challenge (401 stale=true).
func newSIPEdge(c *config, db *store.DB, keys *secret.Keyring, boot string, log *slog.Logger) (*sipEdge, error) {
	nonceKey, err := hex.DecodeString(keys.Hash("sip-digest-nonce", boot))
	if err != nil {
		return nil, fmt.Errorf("derive the SIP nonce key: %w", err)
	}
	auth, err := sipauth.New(sipauth.Config{Key: nonceKey, NonceTTL: c.SIPNonceTTL})
	if err != nil {
		return nil, err
	}
	glog := log.With("component", "sip-admission")
	hosts := sipacl.NewCache(sipacl.CacheConfig{Logger: glog})
	e := &sipEdge{hosts: hosts, gate: inbound.New(db, keys, inbound.Config{Policy: c.SIPInbound, Auth: auth, Hosts: hosts, Logger: glog})}
	if c.SIPRateLimit > 0 {
		e.limiter = pike.New(pike.Config{Limit: c.SIPRateLimit, Window: c.SIPRateWindow, Ban: c.SIPBan})
	}
	log.Info("sip inbound policy", "policy", string(c.SIPInbound), "loopback_media", c.SIPLoopbackMedia, "rate_limit", c.SIPRateLimit, "rate_window", c.SIPRateWindow, "ban", c.SIPBan)
	return e, nil
}

// run keeps host names fresh and logs the admission counters until ctx
// ends.
func (e *sipEdge) run(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); e.hosts.Run(ctx) }()
	e.gate.Run(ctx, time.Minute)
	<-done
}

// stats is the edge's counters, served at /debug/sip.
func (e *sipEdge) stats(srv *telephony.Server) map[string]any {
	out := map[string]any{"admission": e.gate.Stats()}
	if srv != nil {
		out["edge"] = srv.EdgeStats()
	}
	if e.limiter != nil {
		out["rate_limit"] = e.limiter.Stats()
	}
	return out
}

// startTelephony builds the SIP server in front of the engine and binds it;
// nil when SIP is off.
func startTelephony(c *config, engine *voice.Engine, adm telephony.Admission, edge *sipEdge, log *slog.Logger) (*telephony.Server, error) {
	if c.SIPAddr == "off" {
		return nil, nil
	}
	ap, err := netip.ParseAddrPort(c.SIPAddr)
	if err != nil {
		return nil, fmt.Errorf("PARLEY_SIP_ADDR: %w", err)
	}
	tlsServer, tlsClient, err := sipTLS(c, log)
	if err != nil {
		return nil, err
	}
	srv, err := telephony.New(telephony.Config{
		ListenAddr:     c.SIPAddr,
		PublicAddr:     c.SIPPublicAddr,
		TLSListenAddr:  c.SIPTLSAddr,
		TLSServer:      tlsServer,
		TLSClient:      tlsClient,
		Media:          media.Config{BindIP: ap.Addr(), Ports: c.RTPPorts, Timeout: c.MediaTimeout},
		MaxCalls:       c.MaxCalls,
		Admission:      adm,
		RetryAfter:     c.SIPRetryAfter,
		DrainTimeout:   c.DrainTimeout,
		SDESWithoutTLS: c.SDESWithoutTLS,
		// A typed nil *pike.Limiter must not become a non-nil interface.
		Limiter:       sourceLimiter(edge.limiter),
		Trusted:       edge.gate,
		LoopbackMedia: c.SIPLoopbackMedia,
		Registrar:     engine,
		UserAgent:     "Parley/" + version,
		Logger:        log.With("component", "sip"),
	}, engine)
	if err != nil {
		return nil, err
	}
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	return srv, nil
}

// sipTLS builds the TLS configurations of the SIP listener (its
// certificate files reloaded when they change) and of connections to TLS
// trunks (system roots plus PARLEY_SIP_TLS_CA, our certificate when a trunk
// asks for one).
func sipTLS(c *config, log *slog.Logger) (server, client *tls.Config, err error) {
	client = &tls.Config{MinVersion: tls.VersionTLS12}
	if client.RootCAs, err = certfile.Roots(c.SIPTLSCA); err != nil {
		return nil, nil, fmt.Errorf("PARLEY_SIP_TLS_CA: %w", err)
	}
	if c.SIPTLSInsecure {
		log.Warn("PARLEY_SIP_TLS_INSECURE: TLS trunk certificates are not verified (development only)")
		client.InsecureSkipVerify = true
	}
	if c.SIPTLSCert == "" && c.SIPTLSKey == "" {
		return nil, client, nil
	}
	certs, err := certfile.New(certfile.Config{CertFile: c.SIPTLSCert, KeyFile: c.SIPTLSKey, Logger: log.With("component", "sip-tls")})
	if err != nil {
		return nil, nil, fmt.Errorf("PARLEY_SIP_TLS_CERT/PARLEY_SIP_TLS_KEY: %w", err)
	}
	client.GetClientCertificate = certs.GetClientCertificate
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}, client, nil
}

func sourceLimiter(l *pike.Limiter) telephony.SourceLimiter {
	if l == nil {
		return nil
	}
	return l
}

// serveTelephony runs the SIP server until ctx ends.
func serveTelephony(ctx context.Context, srv *telephony.Server) error {
	if srv == nil {
		<-ctx.Done()
		return nil
	}
	return srv.Serve(ctx)
}

// newDialer builds the campaign dialer of this node: it dials through the
// voice engine and never past the node's call limit.
func newDialer(c *config, db *store.DB, keys *secret.Keyring, engine *voice.Engine, sip *telephony.Server, boot string, log *slog.Logger) *dialer.Dialer {
	free := func() int { return math.MaxInt32 }
	if c.MaxCalls > 0 {
		free = func() int { return c.MaxCalls - sip.ActiveCalls() }
	}
	return dialer.New(dialer.Config{
		Store: db, Calls: engine, Keys: keys, BootID: boot, Tick: c.CampaignTick, Free: free,
		OrgMaxConcurrent: c.CampaignOrgMaxCalls, StaleAfter: c.NodeDeadAfter, Backoff: c.CampaignBackoff,
		Logger: log.With("component", "dialer"),
	})
}
