package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/admission"
	"github.com/parley-voice/parley/internal/apikey"
	"github.com/parley-voice/parley/internal/assistant"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/dialer"
	"github.com/parley-voice/parley/internal/docsecret"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/provider/espeak"
	"github.com/parley-voice/parley/internal/recovery"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/postgres"
	"github.com/parley-voice/parley/internal/store/sqlite"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

const usage = `usage: parley <command> [flags]

Commands:
  serve                          run the API server (migrates first)
  migrate                        apply database migrations and exit
  org create --name N [--parent ID] [--minutes M]
                                 create an organization and print its first API key
                                 (--minutes defaults to PARLEY_TRIAL_MINUTES, 0 with --parent)
  org list                       list organizations
  org balance --org ID --minutes M | --add M
                                 set an organization's minutes balance, or add to it
  key create --org ID [--name N] create an API key (printed once)
  key list --org ID              list an organization's keys (ids only)
  key revoke (--id KEY_ID | --key API_KEY)
                                 revoke an API key
  call [--play F.wav] [--record G.wav] NUMBER
                                 a headless softphone: dial NUMBER on a Parley server
                                 (--server, default 127.0.0.1:5060), play F, record
                                 what it hears to G, hang up and print the outcome
  call --listen IP:PORT [--play F.wav] [--record G.wav]
                                 answer one incoming call the same way (a local
                                 "phone" for outbound calls through a SIP trunk)
  campaign watch ID [--url U] [--key K] [--every 1s]
                                 follow a campaign's progress through the API
                                 (--url defaults to PARLEY_API_URL or
                                 http://127.0.0.1:8080, --key to PARLEY_API_KEY)
                                 until it is completed or cancelled
  simulate-providers [--addr A] [--transcript T]... [--reply R]...
                                 serve fake Deepgram, OpenAI and ElevenLabs endpoints
                                 to try calls without provider accounts
  version                        print the version
`

func run(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, env, stdout, stderr)
	case "migrate":
		return migrate(ctx, rest, env, stdout, stderr)
	case "org", "key":
		if len(rest) == 0 {
			fmt.Fprint(stderr, usage)
			return fmt.Errorf("%s: missing subcommand", cmd)
		}
		return admin(ctx, cmd+" "+rest[0], rest[1:], env, stdout, stderr)
	case "call":
		return callCommand(ctx, rest, stdout, stderr)
	case "campaign":
		return campaignCommand(ctx, rest, env, stdout, stderr)
	case "simulate-providers":
		return simulateProviders(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "parley", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		fmt.Fprintln(stdout)
		printSettings(stdout)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func newLogger(c *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStore opens and migrates the configured database.
func openStore(ctx context.Context, c *config, log *slog.Logger) (*store.DB, error) {
	var db *store.DB
	var err error
	switch {
	case strings.HasPrefix(c.DatabaseURL, "postgres://"), strings.HasPrefix(c.DatabaseURL, "postgresql://"):
		db, err = postgres.Open(ctx, postgres.Config{URL: c.DatabaseURL, MaxConns: c.DatabaseConns})
	default:
		path := strings.TrimPrefix(c.DatabaseURL, "sqlite://")
		if path == "" {
			path = c.DataDir + "/parley.db"
		}
		db, err = sqlite.Open(ctx, sqlite.Config{Path: path})
	}
	if err != nil {
		return nil, err
	}
	n, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if n > 0 {
		log.Info("database migrated", "driver", db.Driver(), "applied", n)
	}
	return db, nil
}

// openKeyring loads the master key from the setting, the key file, or creates the file.
func openKeyring(c *config, log *slog.Logger) (*secret.Keyring, error) {
	if c.MasterKey != "" {
		k, err := secret.ParseKey(c.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("invalid PARLEY_MASTER_KEY: %w", err)
		}
		return secret.NewKeyring(k)
	}
	k, created, err := secret.LoadOrCreateKeyFile(c.MasterKeyFile)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("generated a new master key; back it up: without it stored secrets and API keys cannot be used",
			"file", c.MasterKeyFile, "hint", "set PARLEY_MASTER_KEY or PARLEY_MASTER_KEY_FILE to manage it yourself (required when several nodes share a database)")
	}
	return secret.NewKeyring(k)
}

// openBackend opens the keyring and the migrated store that every command
// touching data needs.
func openBackend(ctx context.Context, c *config, log *slog.Logger) (*secret.Keyring, *store.DB, error) {
	keys, err := openKeyring(c, log)
	if err != nil {
		return nil, nil, err
	}
	db, err := openStore(ctx, c, log)
	if err != nil {
		return nil, nil, err
	}
	// The Go step after the SQL migrations: seal the tool and webhook
	// secrets that rows written before sealing keep in clear.
	n, err := docsecret.SealStored(ctx, db, keys)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	if n > 0 {
		log.Info("sealed secrets left in clear in stored documents", "rows", n)
	}
	return keys, db, nil
}

func serve(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	c, rest, err := loadConfig("serve", args, env, stderr, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("serve: unexpected argument %q", rest[0])
	}
	log := newLogger(c, stderr)
	keys, db, err := openBackend(ctx, c, log)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := ensureBootstrapKey(ctx, db, keys, c.BootstrapAPIKey, c.BootstrapMinutes, log); err != nil {
		return err
	}
	welcome, err := firstRun(ctx, db, keys, c, log)
	if err != nil {
		return err
	}
	cat, err := catalog.Load()
	if err != nil {
		return err
	}
	out := newOutgoing(c, db, keys, log)
	domains, err := newDomains(c, db, keys, log)
	if err != nil {
		return err
	}
	after, err := newAfterCall(ctx, c, db, keys, domains, out.dispatcher, log)
	if err != nil {
		return err
	}
	// This process life is recorded before any call, so every call row
	// names it and a later life can end what a crash leaves live.
	rec := recovery.New(recovery.Config{
		NodeID: c.NodeID, Store: db, AfterCall: after.post, Outbox: out.dispatcher, DeadAfter: c.NodeDeadAfter,
		AdoptUnowned: db.Driver() == "sqlite", Logger: log.With("component", "recovery"),
	})
	boot, err := rec.Start(ctx)
	if err != nil {
		return err
	}
	edge, err := newSIPEdge(c, db, keys, boot, log)
	if err != nil {
		return err
	}
	vad, err := openVAD(c, log)
	if err != nil {
		return err
	}
	if vad != nil {
		// Deferred before engine.Wait, so it runs after: every call, and
		// its detector, has ended.
		defer func() {
			if err := vad.Close(); err != nil {
				log.Warn("close the Silero VAD", "error", err)
			}
		}()
	}
	provs, closeProviders, err := providers(c, cat, log)
	if err != nil {
		return err
	}
	// Deferred before engine.Wait, so it runs after the last call.
	defer closeProviders()
	valid := assistant.NewValidator(cat).WithServed(servedBy(provs))
	engine, err := newEngine(c, db, keys, cat, provs, valid, out, after.post, boot, edge.gate, vad, log)
	if err != nil {
		return err
	}
	after.post.Attach(after.queue, engine)
	adm := admission.New(admission.Config{
		MaxSetups: c.MaxSetups, MaxRate: c.MaxCPS, MaxSchedLatency: c.MaxSchedLatency, MaxWriteLatency: c.MaxWriteLatency,
		Store: db, Logger: log.With("component", "admission"),
	})
	sip, err := startTelephony(c, engine, adm, edge, log)
	if err != nil {
		return err
	}
	deps := httpapi.Deps{Store: db, Keyring: keys, Catalog: cat, Validator: valid, Voices: &localVoices{},
		TestMCP: out.testMCP, Recordings: after.rec, Logger: log, KeyChecks: byokKeyChecks()}
	if sip != nil {
		deps.Calls = engine
	}
	deps.Domains = domains
	api := httpapi.NewServer(httpapi.Config{Version: version, RateLimit: c.RateLimit, MaxBodyBytes: c.MaxBodyBytes, AllowPrivateURLs: c.AllowPrivateURLs}, deps)
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.HTTPAddr, err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	var dial *dialer.Dialer
	if sip != nil {
		dial = newDialer(c, db, keys, engine, sip, boot, log)
	}
	if c.DebugAddr != "" {
		stop, err := serveDebug(c.DebugAddr, func() any { return edge.stats(sip) }, func() any {
			if dial == nil {
				return nil
			}
			return dial.Stats()
		}, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	log.Info("parley listening", "url", "http://"+ln.Addr().String(), "database", db.Driver(), "version", version)
	welcome(stdout)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	sipCtx, stopSIP := context.WithCancel(ctx)
	defer stopSIP()
	// Webhooks are delivered until the very end, after the last call's events.
	hookCtx, stopHooks := context.WithCancel(context.WithoutCancel(ctx))
	hooksDone := make(chan error, 1)
	go func() { hooksDone <- out.dispatcher.Run(hookCtx) }()
	defer func() { stopHooks(); <-hooksDone }()
	// Post-call jobs run until the calls have ended and queued theirs; what
	// is still running when the grace ends runs again after a restart.
	jobCtx := context.WithoutCancel(ctx)
	if err := after.queue.Start(jobCtx); err != nil {
		return err
	}
	defer func() {
		if err := after.queue.Stop(jobCtx, jobGrace); err != nil {
			log.Warn("stop post-call jobs", "error", err)
		}
	}()
	// Orphaned calls are ended from the start; the boot is marked stopped
	// once this life's calls have ended.
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	recDone := make(chan error, 1)
	go func() { recDone <- rec.Run(recCtx) }()
	defer func() {
		stopRec()
		<-recDone
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := rec.Stop(stopCtx); err != nil {
			log.Warn("record clean stop", "error", err)
		}
	}()
	admDone := make(chan error, 1)
	go func() { admDone <- adm.Run(sipCtx) }()
	defer func() { stopSIP(); <-admDone }()
	edgeDone := make(chan struct{})
	go func() { defer close(edgeDone); edge.run(sipCtx) }()
	defer func() { stopSIP(); <-edgeDone }()
	if sip != nil {
		engine.Attach(sipCtx, sip)
		defer engine.Wait()
		// The dialer stops before the calls are waited for: no new dial
		// once shutdown starts.
		dialCtx, stopDial := context.WithCancel(sipCtx)
		dialDone := make(chan error, 1)
		go func() { dialDone <- dial.Run(dialCtx) }()
		defer func() { stopDial(); <-dialDone }()
	}
	sipDone := make(chan error, 1)
	go func() { sipDone <- serveTelephony(sipCtx, sip) }()
	select {
	case err := <-errc:
		stopSIP()
		<-sipDone
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	// Calls end first (they may still write to the store), then HTTP.
	sipErr := <-sipDone
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-errc
	return sipErr
}

// jobGrace is how long running post-call jobs may finish at shutdown.
const jobGrace = 10 * time.Second

// ensureBootstrapKey makes sure an organization authenticates with key.
func ensureBootstrapKey(ctx context.Context, db *store.DB, keys *secret.Keyring, key string, minutes float64, log *slog.Logger) error {
	if key == "" {
		return nil
	}
	ident := apikey.Derive(keys, key)
	existing, err := db.APIKeyByID(ctx, ident.ID)
	switch {
	case err == nil:
		if existing.RevokedAt != nil {
			return errors.New("PARLEY_BOOTSTRAP_API_KEY was revoked; choose another key")
		}
		return nil
	case fault.KindOf(err) != fault.NotFound:
		return err
	}
	org := &store.Org{Name: "Bootstrap", MinutesBalance: minutes, HasLocalModelsAccess: true}
	if err := db.CreateOrg(ctx, org, &store.APIKey{ID: ident.ID, Hash: ident.Hash, Prefix: ident.Prefix, Name: "bootstrap"}); err != nil {
		return fmt.Errorf("create bootstrap organization: %w", err)
	}
	log.Info("created bootstrap organization", "org_id", org.ID)
	return nil
}

// localVoices adapts espeak-ng's installed voices to the API's voice list.
type localVoices struct {
	lister espeak.Lister
}

func (l *localVoices) LocalVoices(ctx context.Context) ([]httpapi.Voice, error) {
	vs, err := l.lister.Voices(ctx)
	out := make([]httpapi.Voice, len(vs))
	for i, v := range vs {
		out[i] = httpapi.Voice{ID: v.ID, Name: v.Name, Provider: "local", Language: v.Language}
	}
	return out, err
}

// serveDebug serves the Go profiler, and the SIP edge counters at
// /debug/sip, on addr until stop is called.
func serveDebug(addr string, sipStats, dialerStats func() any, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("PARLEY_DEBUG_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/sip", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sipStats())
	})
	mux.HandleFunc("/debug/dialer", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(dialerStats())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	log.Info("profiler listening", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { srv.Close(); <-done }, nil
}
