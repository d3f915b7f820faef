package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/inbound"
	"github.com/parley-voice/parley/internal/media"
	"github.com/parley-voice/parley/internal/secret"
)

// config is every setting of the binary. It is read here, in cmd, and handed to
// packages as their own typed Config structs.
type config struct {
	HTTPAddr         string
	DataDir          string
	DatabaseURL      string
	DatabaseConns    int
	BootstrapAPIKey  string
	BootstrapMinutes float64
	// TrialMinutes is the balance new top-level organizations start with.
	TrialMinutes     float64
	MasterKey        string
	MasterKeyFile    string
	RateLimit        int
	MaxBodyBytes     int64
	AllowPrivateURLs bool
	LogLevel         slog.Level
	LogFormat        string

	SIPAddr       string // "off" disables telephony
	SIPPublicAddr string
	RTPPorts      media.PortRange
	MaxCalls      int
	MediaTimeout  time.Duration
	DrainTimeout  time.Duration
	// SDESWithoutTLS lets SDES-SRTP keys cross SIP over UDP/TCP (development).
	SDESWithoutTLS bool

	// SIP over TLS: listen address ("" = off), certificate and key files
	// (reloaded when they change), a CA bundle trusted for trunks besides
	// the system roots, and skipping trunk verification (development).
	SIPTLSAddr     string
	SIPTLSCert     string
	SIPTLSKey      string
	SIPTLSCA       string
	SIPTLSInsecure bool

	// Who may call in (package inbound): the policy for numbers without a
	// trunk, whether SDP may name loopback media addresses (both default
	// by whether SIPAddr is loopback), the per-source request limit
	// (0: off) and ban, and how long digest nonces live.
	SIPInbound       inbound.Policy
	SIPLoopbackMedia bool
	SIPRateLimit     int
	SIPRateWindow    time.Duration
	SIPBan           time.Duration
	SIPNonceTTL      time.Duration

	WebhookTimeout time.Duration // per delivery attempt
	WebhookLease   time.Duration // how long a claimed webhook event is held before it is due again

	// NodeID names this node among the nodes sharing a database (its jobs,
	// its recordings waiting for upload); default: the host name.
	NodeID string
	// PublicURL is where clients reach the API; signed links start with it.
	PublicURL string
	// RecordingsDir keeps recordings when no S3 bucket is set; SpoolDir
	// holds this node's recordings in progress and waiting for upload.
	RecordingsDir   string
	SpoolDir        string
	S3              s3Setting
	RecordingURLTTL time.Duration
	// Post-call work: model requests in flight per node, the timeout of
	// each, and per-provider post-call models (overriding the catalog's).
	PostcallConcurrency int
	PostcallTimeout     time.Duration
	PostcallModels      map[string]string
	// Providers holds each provider's endpoint and server-wide key.
	Providers map[string]*providerSetting
	// ResendBaseURL is Resend's REST API (e-mail sending domains); the keys
	// are the organizations' BYOK keys.
	ResendBaseURL string

	// Capacity: call setups at once, setups per second (0: no cap), and
	// the scheduler latency and store write latency above which new calls
	// are refused with 503 (negative: that limit is off).
	MaxSetups       int
	MaxCPS          float64
	MaxSchedLatency time.Duration
	MaxWriteLatency time.Duration
	SIPRetryAfter   time.Duration
	// UnavailableAudio is a WAV file played to callers of an organization
	// with no minutes left ("" plays the built-in message).
	UnavailableAudio string
	// NodeDeadAfter is how stale a node's heartbeat is before other nodes
	// end its calls.
	NodeDeadAfter time.Duration
	// CampaignOrgMaxCalls caps an organization's campaign calls at once
	// unless it has a cap of its own; CampaignBackoff is how long a campaign
	// waits after its trunk answered 503; CampaignTick is the dialer's step.
	CampaignOrgMaxCalls int
	CampaignBackoff     time.Duration
	CampaignTick        time.Duration
	// RingTimeout bounds the ringing of outbound calls.
	RingTimeout time.Duration
	// MaxCallDuration caps calls whose assistant sets no max_duration_seconds.
	MaxCallDuration time.Duration
	// GoogleVertexURL, GoogleVertexLocation and GoogleTokenURL are where
	// Gemini requests with a Vertex AI service-account key go.
	GoogleVertexURL      string
	GoogleVertexLocation string
	GoogleTokenURL       string
	GoogleCloudTTSURL    string
	GoogleSpeechAddr     string
	// OpenAIRealtimeURL, XAIRealtimeURL and GoogleLiveURL are the realtime
	// (speech-to-speech) websocket endpoints; empty ones are derived from
	// the vendor's base URL (realtimeURLs).
	OpenAIRealtimeURL string
	XAIRealtimeURL    string
	GoogleLiveURL     string
	// VAD is the callers' voice-activity detector: "energy" or "silero";
	// SileroDir holds ONNX Runtime and the model (scripts/silero-setup.sh);
	// SileroThreshold is the model's speech probability threshold.
	VAD             string
	SileroDir       string
	SileroThreshold float64
	// RetentionInterval is how often retention periods are enforced.
	RetentionInterval time.Duration
	// DebugAddr serves Go's profiler (net/http/pprof) when set.
	DebugAddr string
	// SMTP is the server's mail transport (mailconfig.go).
	SMTP smtpSetting
}

// s3Setting is an S3-compatible object store for recordings.
type s3Setting struct {
	Endpoint, Bucket, Region, Prefix string
	AccessKeyID, SecretAccessKey     string
	Insecure                         bool
}

// setting describes one configuration value: its environment variable, its
// flag, its default and how to parse it.
type setting struct {
	env, flag, def, help string
	secret               bool
	set                  func(c *config, v string) error
}

func settings() []setting {
	return append(append(append(append(append(append(coreSettings(), sipTLSSettings()...), providerSettings()...), endpointSettings()...), postcallSettings()...), accountingSettings()...), smtpSettings()...)
}

// llmProviders are the text model providers (their post-call model can be set).
var llmProviders = []string{"openai", "xai", "mistral", "google"}

func postcallSettings() []setting {
	out := []setting{
		{env: "PARLEY_NODE_ID", flag: "node-id", def: "", help: "this node's name among the nodes sharing one database, stable across restarts (default: the host name)",
			set: func(c *config, v string) error {
				c.NodeID = v
				if strings.ContainsAny(v, " \t\r\n") {
					return errors.New("must not contain spaces")
				}
				return nil
			}},
		{env: "PARLEY_PUBLIC_URL", flag: "public-url", def: "", help: "URL clients reach the API at, used in signed recording links (default: http://<PARLEY_HTTP_ADDR>)",
			set: func(c *config, v string) error {
				c.PublicURL = strings.TrimRight(v, "/")
				if v == "" {
					return nil
				}
				return checkURL(v)
			}},
		{env: "PARLEY_RECORDINGS_DIR", flag: "recordings-dir", def: "", help: "where call recordings are kept when no S3 bucket is set (default: <data-dir>/recordings)",
			set: func(c *config, v string) error { c.RecordingsDir = v; return nil }},
		{env: "PARLEY_SPOOL_DIR", flag: "spool-dir", def: "", help: "this node's local directory for recordings in progress and waiting for upload (default: <data-dir>/spool)",
			set: func(c *config, v string) error { c.SpoolDir = v; return nil }},
		{env: "PARLEY_S3_ENDPOINT", flag: "s3-endpoint", def: "", help: "S3-compatible object store (host:port) for recordings, instead of the recordings directory; needed when several nodes share a database",
			set: func(c *config, v string) error { c.S3.Endpoint = v; return nil }},
		{env: "PARLEY_S3_BUCKET", flag: "s3-bucket", def: "", help: "bucket for recordings (must exist)",
			set: func(c *config, v string) error { c.S3.Bucket = v; return nil }},
		{env: "PARLEY_S3_REGION", flag: "s3-region", def: "", help: "bucket region (e.g. eu-central-1)",
			set: func(c *config, v string) error { c.S3.Region = v; return nil }},
		{env: "PARLEY_S3_PREFIX", flag: "s3-prefix", def: "", help: "key prefix for Parley's objects in the bucket",
			set: func(c *config, v string) error { c.S3.Prefix = v; return nil }},
		{env: "PARLEY_S3_ACCESS_KEY_ID", flag: "s3-access-key-id", def: "", help: "S3 access key id",
			set: func(c *config, v string) error { c.S3.AccessKeyID = v; return nil }},
		{env: "PARLEY_S3_SECRET_ACCESS_KEY", flag: "s3-secret-access-key", def: "", secret: true, help: "S3 secret access key",
			set: func(c *config, v string) error { c.S3.SecretAccessKey = v; return nil }},
		{env: "PARLEY_S3_INSECURE", flag: "s3-insecure", def: "false", help: "talk to the S3 endpoint over plain http (a store on a private network)",
			set: func(c *config, v string) error {
				b, err := strconv.ParseBool(v)
				c.S3.Insecure = b
				if err != nil {
					return errors.New("must be true or false")
				}
				return nil
			}},
		{env: "PARLEY_RECORDING_URL_TTL", flag: "recording-url-ttl", def: "24h", help: "how long a recording_url works without an API key",
			set: func(c *config, v string) error { return duration(v, &c.RecordingURLTTL, time.Minute) }},
		{env: "PARLEY_POSTCALL_CONCURRENCY", flag: "postcall-concurrency", def: "8", help: "summary and analysis requests to models in flight at once on this node",
			set: func(c *config, v string) error { return positiveInt(v, &c.PostcallConcurrency) }},
		{env: "PARLEY_POSTCALL_TIMEOUT", flag: "postcall-timeout", def: "60s", help: "timeout of one summary or analysis request",
			set: func(c *config, v string) error { return duration(v, &c.PostcallTimeout, time.Second) }},
	}
	for _, name := range llmProviders {
		out = append(out, setting{env: "PARLEY_" + strings.ToUpper(name) + "_POSTCALL_MODEL", flag: name + "-postcall-model", def: "",
			help: "model for call summaries and analysis on " + name + " (default: the catalog's post-call model; set it for a self-hosted server)",
			set: func(c *config, v string) error {
				if v != "" {
					if c.PostcallModels == nil {
						c.PostcallModels = map[string]string{}
					}
					c.PostcallModels[name] = v
				}
				return nil
			}})
	}
	return out
}

func coreSettings() []setting {
	return []setting{
		{env: "PARLEY_HTTP_ADDR", flag: "http-addr", def: "127.0.0.1:8080", help: "address the HTTP API listens on",
			set: func(c *config, v string) error { c.HTTPAddr = v; return checkAddr(v) }},
		{env: "PARLEY_DATA_DIR", flag: "data-dir", def: "./data", help: "directory for the SQLite database and the generated master key",
			set: func(c *config, v string) error { c.DataDir = v; return nonEmpty(v) }},
		{env: "PARLEY_DATABASE_URL", flag: "database-url", def: "", help: "database: empty for SQLite in the data directory, sqlite:///path/file.db, or postgres://user:pass@host/db",
			set: func(c *config, v string) error { c.DatabaseURL = v; return checkDatabaseURL(v) }},
		{env: "PARLEY_DATABASE_MAX_CONNS", flag: "database-max-conns", def: "16", help: "PostgreSQL connections in the pool (about twice the database server's cores is a good start)",
			set: func(c *config, v string) error { return positiveInt(v, &c.DatabaseConns) }},
		{env: "PARLEY_BOOTSTRAP_API_KEY", flag: "bootstrap-api-key", def: "", secret: true, help: "ensure an organization exists that authenticates with exactly this key (automation, tests)",
			set: func(c *config, v string) error {
				c.BootstrapAPIKey = v
				if v != "" && (len(v) < 16 || strings.ContainsAny(v, " \t\r\n")) {
					return errors.New("must be at least 16 characters without spaces")
				}
				return nil
			}},
		{env: "PARLEY_BOOTSTRAP_MINUTES", flag: "bootstrap-minutes", def: "1000", help: "the minutes balance the bootstrap organization starts with (calls are billed per second; at zero inbound calls are refused)",
			set: func(c *config, v string) error { return minutesValue(v, &c.BootstrapMinutes) }},
		{env: "PARLEY_TRIAL_MINUTES", flag: "trial-minutes", def: "60", help: "the minutes balance a new top-level organization starts with: the one `parley serve` creates on an empty database, and `parley org create` without --minutes (child organizations spend their parent's)",
			set: func(c *config, v string) error { return minutesValue(v, &c.TrialMinutes) }},
		{env: "PARLEY_MASTER_KEY", flag: "master-key", def: "", secret: true, help: "32-byte key (64 hex characters or base64) that encrypts secrets at rest",
			set: func(c *config, v string) error {
				c.MasterKey = v
				if v != "" {
					_, err := secret.ParseKey(v)
					return err
				}
				return nil
			}},
		{env: "PARLEY_MASTER_KEY_FILE", flag: "master-key-file", def: "", help: "file holding the master key (default: <data-dir>/master.key, generated on first start)",
			set: func(c *config, v string) error { c.MasterKeyFile = v; return nil }},
		{env: "PARLEY_RATE_LIMIT", flag: "rate-limit", def: "100", help: "API requests per minute per API key",
			set: func(c *config, v string) error { return positiveInt(v, &c.RateLimit) }},
		{env: "PARLEY_MAX_BODY_BYTES", flag: "max-body-bytes", def: "1048576", help: "largest accepted request body",
			set: func(c *config, v string) error {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 1024 {
					return errors.New("must be an integer ≥ 1024")
				}
				c.MaxBodyBytes = n
				return nil
			}},
		{env: "PARLEY_ALLOW_PRIVATE_URLS", flag: "allow-private-urls", def: "false", help: "allow webhook, tool and MCP URLs on loopback/private addresses and plain http (development only)",
			set: func(c *config, v string) error {
				b, err := strconv.ParseBool(v)
				c.AllowPrivateURLs = b
				if err != nil {
					return errors.New("must be true or false")
				}
				return nil
			}},
		{env: "PARLEY_SIP_ADDR", flag: "sip-addr", def: "127.0.0.1:5060", help: "host:port for SIP over UDP and TCP, or off",
			set: func(c *config, v string) error {
				c.SIPAddr = v
				if v == "off" {
					return nil
				}
				return checkIPPort(v)
			}},
		{env: "PARLEY_SIP_PUBLIC_ADDR", flag: "sip-public-addr", def: "", help: "IP[:port] peers reach this server at, written into SIP Contact and SDP (default: the SIP listen address)",
			set: func(c *config, v string) error {
				c.SIPPublicAddr = v
				if v == "" {
					return nil
				}
				if strings.Contains(v, ":") && !strings.HasPrefix(v, "[") && strings.Count(v, ":") == 1 {
					return checkIPPort(v)
				}
				if _, err := netip.ParseAddr(strings.Trim(v, "[]")); err != nil {
					return checkIPPort(v)
				}
				return nil
			}},
		{env: "PARLEY_RTP_PORTS", flag: "rtp-ports", def: "10000-20000", help: "UDP port range for RTP and RTCP",
			set: func(c *config, v string) error {
				r, err := media.ParsePortRange(v)
				c.RTPPorts = r
				return err
			}},
		{env: "PARLEY_MAX_CALLS", flag: "max-calls", def: "1000", help: "concurrent calls before new ones get 503",
			set: func(c *config, v string) error { return positiveInt(v, &c.MaxCalls) }},
		{env: "PARLEY_MEDIA_TIMEOUT", flag: "media-timeout", def: "20s", help: "end a call after this long without RTP from the caller",
			set: func(c *config, v string) error { return duration(v, &c.MediaTimeout, time.Second) }},
		{env: "PARLEY_SIP_SDES_WITHOUT_TLS", flag: "sip-sdes-without-tls", def: "false", help: "accept and offer SDES-SRTP keys over SIP on UDP/TCP, where anyone on the path can read them (development and tests only; otherwise SRTP needs SIP over TLS)",
			set: func(c *config, v string) error { return boolean(v, &c.SDESWithoutTLS) }},
		{env: "PARLEY_DRAIN_TIMEOUT", flag: "drain-timeout", def: "0s", help: "on shutdown, let live calls run this long before hanging them up",
			set: func(c *config, v string) error { return duration(v, &c.DrainTimeout, 0) }},
		{env: "PARLEY_WEBHOOK_TIMEOUT", flag: "webhook-timeout", def: "10s", help: "give up on one webhook delivery attempt after this long (it is retried later)",
			set: func(c *config, v string) error { return duration(v, &c.WebhookTimeout, time.Second) }},
		{env: "PARLEY_WEBHOOK_LEASE", flag: "webhook-lease", def: "30s", help: "a claimed webhook event is due again after this long if its attempt never finished (crash); must exceed PARLEY_WEBHOOK_TIMEOUT",
			set: func(c *config, v string) error { return duration(v, &c.WebhookLease, time.Second) }},
		{env: "PARLEY_LOG_LEVEL", flag: "log-level", def: "info", help: "debug, info, warn or error",
			set: func(c *config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
		{env: "PARLEY_LOG_FORMAT", flag: "log-format", def: "text", help: "text or json",
			set: func(c *config, v string) error {
				c.LogFormat = v
				if v != "text" && v != "json" {
					return errors.New("must be text or json")
				}
				return nil
			}},
	}
}

// reservedEnv are PARLEY_ variables that belong to the test suite, not the server.
var reservedEnv = []string{"PARLEY_TEST_", "PARLEY_REQUIRE_"}

// loadConfig reads defaults, then the environment, then flags. An unknown
// PARLEY_ variable, an unknown flag or a malformed value is an error naming it.
func loadConfig(name string, args, env []string, stderr io.Writer, extra func(*flag.FlagSet)) (*config, []string, error) {
	all := settings()
	known := map[string]setting{}
	for _, s := range all {
		known[s.env] = s
	}
	values := map[string]string{}
	source := map[string]string{}
	for _, s := range all {
		values[s.env], source[s.env] = s.def, "default"
	}
	var unknown []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "PARLEY_") || reserved(k) {
			continue
		}
		if _, ok := known[k]; !ok {
			unknown = append(unknown, k)
			continue
		}
		values[k], source[k] = v, "environment variable "+k
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, nil, fmt.Errorf("unknown setting %s (known: %s)", strings.Join(unknown, ", "), knownList(all))
	}
	fset := flag.NewFlagSet("parley "+name, flag.ContinueOnError)
	fset.SetOutput(stderr)
	for _, s := range all {
		s := s
		fset.Func(s.flag, s.help+" ($"+s.env+")", func(v string) error {
			values[s.env], source[s.env] = v, "flag --"+s.flag
			return nil
		})
	}
	if extra != nil {
		extra(fset)
	}
	if err := fset.Parse(args); err != nil {
		return nil, nil, err
	}
	c := &config{}
	for _, s := range all {
		if err := s.set(c, values[s.env]); err != nil {
			shown := values[s.env]
			if s.secret {
				shown = "(hidden)"
			}
			return nil, nil, fmt.Errorf("invalid %s %q: %v", source[s.env], shown, err)
		}
	}
	if c.WebhookLease <= c.WebhookTimeout {
		return nil, nil, fmt.Errorf("invalid %s %q: must exceed PARLEY_WEBHOOK_TIMEOUT (%s), or an attempt still running would be claimed again",
			source["PARLEY_WEBHOOK_LEASE"], values["PARLEY_WEBHOOK_LEASE"], c.WebhookTimeout)
	}
	if c.SIPTLSAddr != "" && (c.SIPTLSCert == "" || c.SIPTLSKey == "") {
		return nil, nil, errors.New("PARLEY_SIP_TLS_ADDR is set but PARLEY_SIP_TLS_CERT or PARLEY_SIP_TLS_KEY is not: name the certificate and key files")
	}
	if c.MasterKeyFile == "" {
		c.MasterKeyFile = filepath.Join(c.DataDir, "master.key")
	}
	if c.RecordingsDir == "" {
		c.RecordingsDir = filepath.Join(c.DataDir, "recordings")
	}
	if c.SpoolDir == "" {
		c.SpoolDir = filepath.Join(c.DataDir, "spool")
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.HTTPAddr
	}
	if c.NodeID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "parley"
		}
		c.NodeID = host
	}
	if c.SIPAddr != "off" {
		local := netip.MustParseAddrPort(c.SIPAddr).Addr().IsLoopback()
		if c.SIPInbound == "" {
			c.SIPInbound = inbound.TrunksOnly
			if local {
				c.SIPInbound = inbound.Open
			}
		}
		if values["PARLEY_SIP_LOOPBACK_MEDIA"] == "" {
			c.SIPLoopbackMedia = local
		}
	}
	if err := c.SMTP.check(); err != nil {
		return nil, nil, err
	}
	if c.S3.Endpoint != "" && c.S3.Bucket == "" {
		return nil, nil, errors.New("PARLEY_S3_ENDPOINT is set but PARLEY_S3_BUCKET is not: name the bucket for recordings")
	}
	return c, fset.Args(), nil
}

func reserved(k string) bool {
	for _, p := range reservedEnv {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func knownList(all []setting) string {
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.env
	}
	return strings.Join(names, ", ")
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// accountingSettings are capacity, billing, recovery and retention.
func accountingSettings() []setting {
	latency := func(dst *time.Duration) func(c *config, v string) error {
		return func(c *config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return errors.New("must be a duration such as 30ms (negative: no limit)")
			}
			*dst = d
			return nil
		}
	}
	return []setting{
		{env: "PARLEY_MAX_SETUPS", flag: "max-setups", def: "32", help: "inbound calls being set up at once before more get 503",
			set: func(c *config, v string) error { return positiveInt(v, &c.MaxSetups) }},
		{env: "PARLEY_MAX_CPS", flag: "max-cps", def: "0", help: "inbound call setups per second before more get 503 (0: no fixed cap; the load limits still apply)",
			set: func(c *config, v string) error {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 0 {
					return errors.New("must be a number of calls per second, 0 for no cap")
				}
				c.MaxCPS = f
				return nil
			}},
		{env: "PARLEY_MAX_SCHED_LATENCY", flag: "max-sched-latency", def: "50ms", help: "refuse new calls (503) while the Go scheduler's p99 latency is above this: the CPU is saturated (negative: off)",
			set: func(c *config, v string) error { return latency(&c.MaxSchedLatency)(c, v) }},
		{env: "PARLEY_MAX_WRITE_LATENCY", flag: "max-write-latency", def: "250ms", help: "refuse new calls (503) while the database's write latency is above this (negative: off)",
			set: func(c *config, v string) error { return latency(&c.MaxWriteLatency)(c, v) }},
		{env: "PARLEY_SIP_INBOUND", flag: "sip-inbound", def: "", help: "calls to numbers without a trunk that lists inbound addresses or authenticates: trunks-only (refused with 403) or open; default open when PARLEY_SIP_ADDR is loopback, trunks-only otherwise",
			set: func(c *config, v string) error {
				if v == "" {
					return nil
				}
				p, err := inbound.ParsePolicy(v)
				c.SIPInbound = p
				return err
			}},
		{env: "PARLEY_SIP_LOOPBACK_MEDIA", flag: "sip-loopback-media", def: "", help: "accept SDP offers whose media address is loopback (development); default true when PARLEY_SIP_ADDR is loopback. Link-local, metadata, multicast and reserved addresses always get 488",
			set: func(c *config, v string) error {
				if v == "" {
					return nil
				}
				b, err := strconv.ParseBool(v)
				if err != nil {
					return errors.New("must be true or false")
				}
				c.SIPLoopbackMedia = b
				return nil
			}},
		{env: "PARLEY_SIP_RATE_LIMIT", flag: "sip-rate-limit", def: "16", help: "INVITE, REGISTER and OPTIONS requests one source address may send per PARLEY_SIP_RATE_WINDOW before it is banned (0: no limit)",
			set: func(c *config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return errors.New("must be a number of requests, 0 for no limit")
				}
				c.SIPRateLimit = n
				return nil
			}},
		{env: "PARLEY_SIP_RATE_WINDOW", flag: "sip-rate-window", def: "2s", help: "the period PARLEY_SIP_RATE_LIMIT counts over",
			set: func(c *config, v string) error { return duration(v, &c.SIPRateWindow, 100*time.Millisecond) }},
		{env: "PARLEY_SIP_BAN", flag: "sip-ban", def: "300s", help: "how long a source over the SIP rate limit is ignored",
			set: func(c *config, v string) error { return duration(v, &c.SIPBan, time.Second) }},
		{env: "PARLEY_SIP_NONCE_TTL", flag: "sip-nonce-ttl", def: "300s", help: "how long a SIP digest nonce is valid; older ones are challenged again with stale=true",
			set: func(c *config, v string) error { return duration(v, &c.SIPNonceTTL, 10*time.Second) }},
		{env: "PARLEY_SIP_RETRY_AFTER", flag: "sip-retry-after", def: "5s", help: "Retry-After of 503 answers to calls refused over capacity",
			set: func(c *config, v string) error { return duration(v, &c.SIPRetryAfter, time.Second) }},
		{env: "PARLEY_UNAVAILABLE_AUDIO", flag: "unavailable-audio", def: "", help: "WAV file callers hear when the organization has no minutes left (default: a built-in English message)",
			set: func(c *config, v string) error { c.UnavailableAudio = v; return nil }},
		{env: "PARLEY_NODE_DEAD_AFTER", flag: "node-dead-after", def: "60s", help: "a node whose heartbeat is this old is taken for dead: other nodes end its calls",
			set: func(c *config, v string) error { return duration(v, &c.NodeDeadAfter, 15*time.Second) }},
		{env: "PARLEY_RING_TIMEOUT", flag: "ring-timeout", def: "60s", help: "how long an outbound call (API, campaign, transfer) may ring before it ends as no_answer",
			set: func(c *config, v string) error { return duration(v, &c.RingTimeout, time.Second) }},
		{env: "PARLEY_MAX_CALL_DURATION", flag: "max-call-duration", def: "1h", help: "longest a call may last when its assistant sets no max_duration_seconds; it then ends as max_duration",
			set: func(c *config, v string) error { return duration(v, &c.MaxCallDuration, 10*time.Second) }},
		{env: "PARLEY_VAD", flag: "vad", def: "energy", help: "how callers' speech is told from silence and noise for turn-taking: energy (built in) or silero (a neural model run by ONNX Runtime; install it with scripts/silero-setup.sh)",
			set: func(c *config, v string) error {
				if v != "energy" && v != "silero" {
					return errors.New("must be energy or silero")
				}
				c.VAD = v
				return nil
			}},
		{env: "PARLEY_SILERO_DIR", flag: "silero-dir", def: "/usr/local/lib/parley/silero", help: "where PARLEY_VAD=silero finds libonnxruntime.so.1 and silero_vad.onnx (scripts/silero-setup.sh DIR installs them)",
			set: func(c *config, v string) error { c.SileroDir = v; return nil }},
		{env: "PARLEY_SILERO_THRESHOLD", flag: "silero-threshold", def: "0.5", help: "speech probability from which Silero counts a frame as speech (0.2–0.95; higher: fewer false starts, more missed soft speech)",
			set: func(c *config, v string) error {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 0.2 || f > 0.95 {
					return errors.New("must be a probability from 0.2 to 0.95")
				}
				c.SileroThreshold = f
				return nil
			}},
		{env: "PARLEY_CAMPAIGN_ORG_MAX_CALLS", flag: "campaign-org-max-calls", def: "50", help: "most campaign calls at once per organization, shared by its campaigns; an organization's own max_concurrent_campaign_calls can only lower it",
			set: func(c *config, v string) error { return positiveInt(v, &c.CampaignOrgMaxCalls) }},
		{env: "PARLEY_CAMPAIGN_BACKOFF", flag: "campaign-backoff", def: "30s", help: "how long a campaign stops dialling after its trunk answered 503 or did not respond (the lead is not counted as tried)",
			set: func(c *config, v string) error { return duration(v, &c.CampaignBackoff, time.Second) }},
		{env: "PARLEY_CAMPAIGN_TICK", flag: "campaign-tick", def: "250ms", help: "how often the campaign dialer settles ended calls and starts new ones",
			set: func(c *config, v string) error { return duration(v, &c.CampaignTick, 10*time.Millisecond) }},
		{env: "PARLEY_DEBUG_ADDR", flag: "debug-addr", def: "", help: "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 (keep it private)",
			set: func(c *config, v string) error {
				c.DebugAddr = v
				if v == "" {
					return nil
				}
				return checkAddr(v)
			}},
		{env: "PARLEY_RETENTION_INTERVAL", flag: "retention-interval", def: "1h", help: "how often organizations' retention periods are enforced",
			set: func(c *config, v string) error { return duration(v, &c.RetentionInterval, time.Second) }},
	}
}

func sipTLSSettings() []setting {
	file := func(dst func(*config) *string) func(c *config, v string) error {
		return func(c *config, v string) error {
			*dst(c) = v
			if v == "" {
				return nil
			}
			if _, err := os.Stat(v); err != nil {
				return errors.New("must be a readable file")
			}
			return nil
		}
	}
	return []setting{
		{env: "PARLEY_SIP_TLS_ADDR", flag: "sip-tls-addr", def: "", help: "IP:port for SIP over TLS, such as 0.0.0.0:5061 (unset: no TLS listener; TLS trunks need it)",
			set: func(c *config, v string) error {
				c.SIPTLSAddr = v
				if v == "" {
					return nil
				}
				return checkIPPort(v)
			}},
		{env: "PARLEY_SIP_TLS_CERT", flag: "sip-tls-cert", def: "", help: "PEM certificate chain of the SIP TLS listener, also presented to trunks that ask; reloaded when the file changes",
			set: file(func(c *config) *string { return &c.SIPTLSCert })},
		{env: "PARLEY_SIP_TLS_KEY", flag: "sip-tls-key", def: "", help: "PEM private key of PARLEY_SIP_TLS_CERT; reloaded when the file changes",
			set: file(func(c *config) *string { return &c.SIPTLSKey })},
		{env: "PARLEY_SIP_TLS_CA", flag: "sip-tls-ca", def: "", help: "PEM CA bundle trusted for TLS trunk certificates, besides the system roots",
			set: file(func(c *config) *string { return &c.SIPTLSCA })},
		{env: "PARLEY_SIP_TLS_INSECURE", flag: "sip-tls-insecure", def: "false", help: "do not verify TLS trunk certificates (development only)",
			set: func(c *config, v string) error {
				b, err := strconv.ParseBool(v)
				c.SIPTLSInsecure = b
				if err != nil {
					return errors.New("must be true or false")
				}
				return nil
			}},
	}
}

// minutesValue parses a minutes balance, 0 or more.
func minutesValue(v string, dst *float64) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return errors.New("must be a number of minutes, 0 or more")
	}
	*dst = f
	return nil
}

func positiveInt(v string, dst *int) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return errors.New("must be a positive integer")
	}
	*dst = n
	return nil
}

func checkAddr(v string) error {
	i := strings.LastIndex(v, ":")
	if i < 0 {
		return errors.New("must be host:port, such as 127.0.0.1:8080")
	}
	p, err := strconv.Atoi(v[i+1:])
	if err != nil || p < 0 || p > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	return nil
}

func checkIPPort(v string) error {
	if _, err := netip.ParseAddrPort(v); err != nil {
		return errors.New("must be IP:port, such as 127.0.0.1:5060")
	}
	return nil
}

func checkURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return errors.New("must be an absolute URL")
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
		return nil
	}
	return errors.New("scheme must be http, https, ws or wss")
}

// optionalURL is checkURL for settings whose empty value means "derived".
func optionalURL(v string) error {
	if v == "" {
		return nil
	}
	return checkURL(v)
}

func boolean(v string, dst *bool) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("must be true or false")
	}
	*dst = b
	return nil
}

func duration(v string, dst *time.Duration, min time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < min {
		return fmt.Errorf("must be a duration of at least %s, such as 20s", min)
	}
	*dst = d
	return nil
}

func checkDatabaseURL(v string) error {
	switch {
	case v == "", strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		return nil
	case strings.HasPrefix(v, "sqlite://"):
		if strings.TrimPrefix(v, "sqlite://") == "" {
			return errors.New("sqlite:// needs a file path, such as sqlite:///var/lib/parley/parley.db")
		}
		return nil
	}
	return errors.New("must be empty, sqlite://<path> or postgres://…")
}

func printSettings(w io.Writer) {
	fmt.Fprintln(w, "Settings (environment variable / flag, default):")
	for _, s := range settings() {
		def := s.def
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(w, "  %-26s --%-20s %s (default %s)\n", s.env, s.flag, s.help, def)
	}
}
