// Command campaignbench measures the outbound campaign dialer end to end: a
// real `parley serve` process dials a campaign of many leads through a SIPp
// far end (cmd/parley/testdata/sipp/uas_campaign.xml) that answers every
// call at once (180 + 200), sends RTP and hangs up after -hold. The
// assistant runs on the in-repo fake Deepgram, OpenAI and ElevenLabs
// servers, in this process, as in cmd/callload and cmd/sipload.
//
//	apt-get install -y sip-tester
//	go build -o /tmp/parley ./cmd/parley
//	go run ./cmd/campaignbench -parley /tmp/parley -leads 500
//	go run ./cmd/campaignbench -parley /tmp/parley                    # 10,000 leads, 40/s, 200 at once, SQLite
//	go run ./cmd/campaignbench -parley /tmp/parley -database-url 'postgres://parley@127.0.0.1:25433/bench?sslmode=disable'
//
// It creates an organization with a large minutes balance (`parley org
// create`), starts the server on loopback with admission control off
// (PARLEY_MAX_WRITE_LATENCY and PARLEY_MAX_SCHED_LATENCY negative), no SIP
// rate limit, PARLEY_CAMPAIGN_ORG_MAX_CALLS at -concurrency and
// PARLEY_DEBUG_ADDR set, then creates an assistant, a trunk pointing at
// SIPp, a number on that trunk and a campaign of -leads numbers that all
// answer, with calls_per_second -cps and max_concurrent_calls -concurrency.
//
// While the campaign runs it samples every second: the campaign's counters
// (GET /campaigns/{id}), the dialer's own (GET /debug/dialer), and the
// server's and SIPp's CPU time and resident memory (/proc). When the
// campaign is completed it prints the achieved dial rate (overall, and over
// the steady phase between 10 % and 90 % of the leads dialled) against the
// configured one, the leads being called at once (peak, median), the
// dialer's time per lead, the server's CPU per call and per call-second, and
// its peak RSS. With PostgreSQL (-database-url; the server must have
// pg_stat_statements in shared_preload_libraries, the harness creates the
// extension) it resets pg_stat_statements when scheduling and reports the
// statements executed per lead and the most frequent ones, less its own
// polling (measured before the run). With SQLite statements are not counted.
// It is a development harness, not part of the product binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/parley-voice/parley/internal/provider/deepgram/deepgramfake"
	"github.com/parley-voice/parley/internal/provider/elevenlabs/elevenlabsfake"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

type options struct {
	parley      string
	sipp        string
	scenario    string
	leads       int
	cps         float64
	concurrency int
	hold        time.Duration
	databaseURL string
	timeout     time.Duration
	timeline    time.Duration
	keep        bool
	env         []string // extra PARLEY_ settings for the server
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "campaignbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("campaignbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.parley, "parley", "", "path to a built parley binary (default: build ./cmd/parley into a temporary directory)")
	fs.StringVar(&o.sipp, "sipp", "sipp", "the SIPp binary (Debian package sip-tester)")
	fs.StringVar(&o.scenario, "scenario", "cmd/parley/testdata/sipp/uas_campaign.xml", "the far end's SIPp scenario")
	fs.IntVar(&o.leads, "leads", 10000, "leads in the campaign (at most 10000: one POST)")
	fs.Float64Var(&o.cps, "cps", 40, "the campaign's calls_per_second")
	fs.IntVar(&o.concurrency, "concurrency", 200, "the campaign's max_concurrent_calls (also PARLEY_CAMPAIGN_ORG_MAX_CALLS)")
	fs.DurationVar(&o.hold, "hold", 5*time.Second, "the far end hangs up this long after answering")
	fs.StringVar(&o.databaseURL, "database-url", "", "postgres:// URL (a fresh schema, dropped afterwards); empty: SQLite in a temporary directory")
	fs.DurationVar(&o.timeout, "timeout", 0, "give up when the campaign is not completed after this long (default: three times the expected time plus 2 minutes)")
	fs.DurationVar(&o.timeline, "timeline", 30*time.Second, "print a timeline row this often (0: none)")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's directory (server log, SIPp's files) and PostgreSQL schema")
	fs.Func("env", "an extra server setting KEY=VALUE, e.g. PARLEY_CAMPAIGN_TICK=100ms (repeat the flag)", func(v string) error {
		if !strings.HasPrefix(v, "PARLEY_") || !strings.Contains(v, "=") {
			return fmt.Errorf("-env %q: want PARLEY_NAME=value", v)
		}
		o.env = append(o.env, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.leads < 1 || o.leads > 10000 || !(o.cps >= 0.01 && o.cps <= 100) || o.concurrency < 1 || o.concurrency > 1000 || o.hold <= 0 {
		return errors.New("-leads must be 1..10000, -cps 0.01..100, -concurrency 1..1000, -hold positive")
	}
	if o.databaseURL != "" && !strings.HasPrefix(o.databaseURL, "postgres://") && !strings.HasPrefix(o.databaseURL, "postgresql://") {
		return errors.New("-database-url must be a postgres:// URL (leave it empty for SQLite)")
	}
	if o.timeout == 0 {
		o.timeout = 3*time.Duration(float64(o.leads)/o.cps*float64(time.Second)) + 2*time.Minute
	}
	var err error
	if o.sipp, err = exec.LookPath(o.sipp); err != nil {
		return fmt.Errorf("SIPp not found (%v): apt-get install -y sip-tester", err)
	}
	if o.scenario, err = filepath.Abs(o.scenario); err != nil {
		return err
	}
	if _, err := os.Stat(o.scenario); err != nil {
		return fmt.Errorf("-scenario: %w (run from the repository root or pass the path)", err)
	}
	if o.parley == "" {
		dir, err := os.MkdirTemp("", "campaignbench-build")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.parley = filepath.Join(dir, "parley")
		fmt.Fprintln(stderr, "building ./cmd/parley …")
		build := exec.CommandContext(ctx, "go", "build", "-o", o.parley, "github.com/parley-voice/parley/cmd/parley")
		build.Stdout, build.Stderr = stderr, stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build parley: %w", err)
		}
	}

	// Fake providers, in this process.
	mux := http.NewServeMux()
	mux.Handle("/v1/listen", deepgramfake.New(deepgramfake.Config{Transcripts: []string{"Yes, that is fine."}}))
	mux.Handle("/v1/chat/completions", openaifake.New(openaifake.Config{Replies: []openaifake.Reply{{Text: "Thank you, goodbye."}}}))
	el := elevenlabsfake.New(elevenlabsfake.Config{})
	mux.Handle(elevenlabsfake.Path, el)
	fakes := httptest.NewServer(mux)
	defer fakes.Close()
	defer el.Close()

	dir, err := os.MkdirTemp("", "campaignbench-")
	if err != nil {
		return err
	}
	res, err := bench(ctx, o, dir, fakes.URL, stderr)
	switch {
	case err != nil:
		return fmt.Errorf("%w\n(server log and SIPp's files kept in %s)", err, dir)
	case o.keep:
		fmt.Fprintf(stderr, "server log and SIPp's files kept in %s\n", dir)
	default:
		os.RemoveAll(dir)
	}
	printReport(stdout, o, res)
	return nil
}

// bench runs one campaign against a fresh server and far end.
func bench(ctx context.Context, o options, dir, fakes string, stderr io.Writer) (*result, error) {
	dbURL, dropDB, err := freshDatabase(ctx, o.databaseURL)
	if err != nil {
		return nil, err
	}
	if !o.keep {
		defer dropDB()
	}
	far, err := startFarEnd(ctx, o, dir)
	if err != nil {
		return nil, err
	}
	defer far.stop()
	srv, err := startServer(ctx, o, dir, dbURL, fakes)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	res := &result{Database: dbName(o.databaseURL)}
	id, err := srv.configure(o, far.addr)
	if err != nil {
		return nil, err
	}

	var pg *pgStats
	if dbURL != "" {
		if pg, err = openPGStats(ctx, dbURL); err != nil {
			return nil, err
		}
		defer pg.close()
		// What the harness's own polling costs, to take it out.
		if res.PollStatements, err = pg.perPoll(ctx, func() error { _, err := srv.campaign(id); return err }); err != nil {
			return nil, err
		}
		if err := pg.reset(ctx); err != nil {
			return nil, err
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAverage = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	fmt.Fprintf(stderr, "campaign %s: %d leads, scheduling\n", id, o.leads)
	if err := srv.api("PATCH", "/campaigns/"+id, `{"status":"scheduled"}`, nil); err != nil {
		return nil, err
	}
	res.Samples, err = sampleUntilDone(ctx, o, srv, far, id, stderr)
	if err != nil {
		return nil, err
	}
	res.Polls = len(res.Samples)
	if pg != nil {
		if res.Statements, res.TopStatements, err = pg.read(ctx, 12); err != nil {
			return nil, err
		}
	}
	if res.CallSeconds, err = srv.callSeconds(); err != nil {
		return nil, err
	}
	res.PeakRSS = srv.peakRSS()
	res.FarEnd = far.outcomes()
	res.FarEndErrors = far.errorLines()
	res.ServerErrors = countErrors(srv.logPath)
	return res, nil
}

// sampleUntilDone samples once a second until the campaign is completed.
func sampleUntilDone(ctx context.Context, o options, srv *server, far *farEnd, id string, stderr io.Writer) ([]sample, error) {
	start := time.Now()
	deadline := start.Add(o.timeout)
	selfCPU := func() time.Duration { return procCPUOf(os.Getpid()) }
	base := sample{ServerCPU: srv.cpu(), SIPpCPU: far.cpu(), HarnessCPU: selfCPU()}
	var out []sample
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastPrint := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		s := sample{At: time.Since(start)}
		c, err := srv.campaign(id)
		if err != nil {
			return nil, err
		}
		d, err := srv.dialerStats()
		if err != nil {
			return nil, err
		}
		s.Campaign, s.Dialer = c, d
		s.ServerCPU, s.SIPpCPU, s.HarnessCPU = srv.cpu()-base.ServerCPU, far.cpu()-base.SIPpCPU, selfCPU()-base.HarnessCPU
		s.ServerRSS, s.SIPpRSS = procRSS(srv.cmd.Process.Pid), procRSS(far.cmd.Process.Pid)
		out = append(out, s)
		if o.timeline > 0 && s.At-lastPrint >= o.timeline {
			lastPrint = s.At
			fmt.Fprintf(stderr, "%4.0fs  dialled %5d  calling %4d  completed %5d  failed %4d  server CPU %5.1fs  RSS %.0f MB\n",
				s.At.Seconds(), d.Dialled, c.CallingLeads, c.CompletedLeads, c.FailedLeads, s.ServerCPU.Seconds(), mb(s.ServerRSS))
		}
		if c.Status == "completed" {
			return out, nil
		}
		if c.Status != "scheduled" {
			return out, fmt.Errorf("campaign is %s: %s", c.Status, c.StatusReason)
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("campaign not completed after %s: %+v, dialer %+v", o.timeout, c, d)
		}
	}
}

func dbName(u string) string {
	if u == "" {
		return "SQLite"
	}
	return "PostgreSQL"
}
