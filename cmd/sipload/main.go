// Command sipload measures call setup capacity: how many inbound SIP calls
// per second a real `parley serve` process answers, how long INVITE → 200 OK
// takes while it does, and whether the server's books agree afterwards. It
// drives the server with SIPp (Debian package sip-tester) over loopback, with
// the in-repo fake Deepgram, OpenAI and ElevenLabs servers as providers, as
// cmd/callload does.
//
//	apt-get install -y sip-tester
//	go build -o /tmp/parley ./cmd/parley
//	go run ./cmd/sipload -parley /tmp/parley                          # 100,200,400,800 calls/s, 10 s each, SQLite
//	go run ./cmd/sipload -parley /tmp/parley -rates 100,200 -duration 5s
//	go run ./cmd/sipload -parley /tmp/parley -database-url postgres://… # a fresh schema per rate
//
// For every rate (and every -runs repetition) it starts a fresh server (new
// data directory, or a new PostgreSQL schema), creates an organization with a
// large minutes balance (`parley org create`), an assistant with a short
// first message and a number, and runs SIPp's UAC with the scenario in
// uac.xml: INVITE with a PCMU offer, 200 OK, ACK, hold for -hold, BYE. A 503
// (admission control) is counted as refused, other error answers as failed.
// SIPp sends no RTP; the server's RTP goes to a UDP port nobody reads.
//
// It prints one row per rate and run: calls attempted, answered, refused with
// 503 and failed; INVITE → 200 OK p50/p95/max (SIPp's response times, whole
// milliseconds); then, once no call is live any more, what the REST API says:
// call rows, rows still live, the usage summary's total seconds against the
// sum of the calls' duration_seconds, the organization's minutes_balance drop
// (×60, in seconds), ERROR lines in the server's log, and the server's CPU
// seconds while SIPp ran (utime+stime from /proc). -out writes every figure
// as JSON. It exits non-zero only when the harness itself fails, never on
// the figures. It is a development harness, not part of the product binary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parley-voice/parley/internal/provider/deepgram/deepgramfake"
	"github.com/parley-voice/parley/internal/provider/elevenlabs/elevenlabsfake"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

// The dialled number (SIPp's service) and the caller.
const (
	number = "+31201234567"
	caller = "+15550100"
)

type options struct {
	parley      string
	sipp        string
	rates       []int
	duration    time.Duration
	hold        time.Duration
	databaseURL string
	maxCalls    int
	runs        int
	out         string
	drain       time.Duration
	keep        bool
	env         []string // extra PARLEY_ settings for the server
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sipload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var o options
	var rates string
	flag.StringVar(&o.parley, "parley", "", "path to a built parley binary (default: build ./cmd/parley into a temporary directory)")
	flag.StringVar(&o.sipp, "sipp", "sipp", "the SIPp binary (Debian package sip-tester)")
	flag.StringVar(&rates, "rates", "100,200,400,800", "call setups per second to try, comma-separated")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to place calls at each rate")
	flag.DurationVar(&o.hold, "hold", 2*time.Second, "length of each answered call (ACK to BYE)")
	flag.StringVar(&o.databaseURL, "database-url", "", "postgres:// URL (a fresh schema per server, dropped afterwards); empty: SQLite in a temporary directory")
	flag.IntVar(&o.maxCalls, "max-calls", 0, "PARLEY_MAX_CALLS for the server (0: the server's default)")
	flag.IntVar(&o.runs, "runs", 1, "repeat each rate this many times, each on a fresh server")
	flag.StringVar(&o.out, "out", "", "write every figure to this JSON file")
	flag.DurationVar(&o.drain, "drain-timeout", 60*time.Second, "after SIPp ends, wait this long at most for the server to report no live call")
	flag.Func("env", "an extra server setting KEY=VALUE, e.g. PARLEY_MAX_SCHED_LATENCY=50ms (repeat the flag)", func(v string) error {
		if !strings.HasPrefix(v, "PARLEY_") || !strings.Contains(v, "=") {
			return fmt.Errorf("-env %q: want PARLEY_NAME=value", v)
		}
		o.env = append(o.env, v)
		return nil
	})
	flag.BoolVar(&o.keep, "keep", false, "keep each run's directory (server log, SIPp's files) and PostgreSQL schema")
	flag.Parse()
	var err error
	if o.rates, err = parseRates(rates); err != nil {
		return err
	}
	if o.duration <= 0 || o.hold < 0 || o.runs < 1 || o.maxCalls < 0 {
		return errors.New("-duration must be positive, -hold not negative, -runs at least 1, -max-calls not negative")
	}
	if o.databaseURL != "" && !strings.HasPrefix(o.databaseURL, "postgres://") && !strings.HasPrefix(o.databaseURL, "postgresql://") {
		return errors.New("-database-url must be a postgres:// URL (leave it empty for SQLite)")
	}
	if o.sipp, err = exec.LookPath(o.sipp); err != nil {
		return fmt.Errorf("SIPp not found (%v): apt-get install -y sip-tester", err)
	}
	if o.parley == "" {
		dir, err := os.MkdirTemp("", "sipload-build")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.parley = filepath.Join(dir, "parley")
		fmt.Fprintln(os.Stderr, "building ./cmd/parley …")
		build := exec.CommandContext(ctx, "go", "build", "-o", o.parley, "github.com/parley-voice/parley/cmd/parley")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build parley: %w", err)
		}
	}

	// Fake providers, in this process, shared by every server.
	mux := http.NewServeMux()
	mux.Handle("/v1/listen", deepgramfake.New(deepgramfake.Config{Transcripts: []string{"I would like an appointment"}}))
	mux.Handle("/v1/chat/completions", openaifake.New(openaifake.Config{Replies: []openaifake.Reply{{Text: "Sure, noted."}}}))
	el := elevenlabsfake.New(elevenlabsfake.Config{})
	mux.Handle(elevenlabsfake.Path, el)
	fakes := httptest.NewServer(mux)
	defer fakes.Close()
	defer el.Close()

	fmt.Printf("sipload: %s, %s per rate, calls held %s, %s, max-calls %s, %d run(s) per rate\n",
		describeRates(o.rates), o.duration, o.hold, dbName(o.databaseURL), maxCallsName(o.maxCalls), o.runs)
	printHeader()
	var all []*result
	var runErr error
rates:
	for _, rate := range o.rates {
		for r := 1; r <= o.runs; r++ {
			if runErr = ctx.Err(); runErr != nil {
				break rates
			}
			res, err := measure(ctx, o, fakes.URL, rate, r)
			var crash *sippCrash
			if errors.As(err, &crash) && ctx.Err() == nil {
				// SIPp itself died (3.6.1 aborted on an assertion at 800
				// calls/s before uac.xml acknowledged retransmitted 200 OKs
				// with ack_txn); that says nothing about the server, so the
				// run is repeated once on a fresh server.
				fmt.Fprintf(os.Stderr, "sipload: rate %d run %d: %v\nsipload: trying once more on a fresh server\n", rate, r, err)
				res, err = measure(ctx, o, fakes.URL, rate, r)
				if res != nil {
					res.RepeatedAfterSIPpCrash = true
				}
			}
			if err != nil {
				runErr = fmt.Errorf("rate %d run %d: %w", rate, r, err)
				break rates
			}
			all = append(all, res)
			printRow(res)
		}
	}
	printNotes(all)
	if o.out != "" {
		b, err := json.MarshalIndent(map[string]any{
			"parley": o.parley, "database": dbName(o.databaseURL), "duration_seconds": o.duration.Seconds(),
			"hold_seconds": o.hold.Seconds(), "max_calls": o.maxCalls, "runs": all,
		}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return runErr
}

func parseRates(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-rates: %q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func describeRates(r []int) string {
	s := make([]string, len(r))
	for i, n := range r {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",") + " calls/s"
}

func dbName(u string) string {
	if u == "" {
		return "SQLite"
	}
	return "PostgreSQL"
}

func maxCallsName(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n)
}

// measure runs one rate against a fresh server.
// Its directory (server log, SIPp's files) is removed unless -keep is set
// or the run failed.
func measure(ctx context.Context, o options, fakes string, rate, runNo int) (_ *result, err error) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("sipload-%d-", rate))
	if err != nil {
		return nil, err
	}
	res := &result{Rate: rate, Run: runNo}
	if o.keep {
		res.Dir = dir
	}
	defer func() {
		switch {
		case err != nil:
			err = fmt.Errorf("%w\n(server log and SIPp's files kept in %s)", err, dir)
		case !o.keep:
			os.RemoveAll(dir)
		}
	}()
	dbURL, dropDB, err := freshDatabase(ctx, o.databaseURL)
	if err != nil {
		return nil, err
	}
	if o.keep {
		res.Schema = schemaOf(dbURL)
	} else {
		defer dropDB()
	}
	srv, err := startServer(ctx, o, dir, dbURL, fakes)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	if err := srv.configure(); err != nil {
		return nil, err
	}
	before, err := srv.org()
	if err != nil {
		return nil, err
	}
	res.BalanceBefore = before.MinutesBalance

	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			res.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	cpu0 := srv.cpu()
	started := time.Now()
	s, err := runSIPp(ctx, o, dir, srv.sipAddr, rate)
	if err != nil {
		return nil, err
	}
	res.SIPpSeconds = time.Since(started).Seconds()
	res.CPUSeconds = (srv.cpu() - cpu0).Seconds()
	res.SIPp = s.stats
	res.setFromSIPp(s)

	// Let the server finish every call, then read its books.
	drainStart := time.Now()
	live, err := srv.waitIdle(ctx, o.drain)
	if err != nil {
		return nil, err
	}
	res.DrainSeconds = time.Since(drainStart).Seconds()
	res.ActiveCallsAfterDrain = live
	res.CPUSecondsWithDrain = (srv.cpu() - cpu0).Seconds()
	if err := srv.books(res); err != nil {
		return nil, err
	}
	srv.stop()
	res.Log = scanLogFile(srv.logPath)
	return res, nil
}
