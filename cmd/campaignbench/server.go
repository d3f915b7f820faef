package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver: fresh schema, pg_stat_statements
)

// server is the `parley serve` process under test.
type server struct {
	cmd       *exec.Cmd
	base      string // http://127.0.0.1:port
	debugBase string // http://127.0.0.1:port of PARLEY_DEBUG_ADDR
	sipAddr   string
	dataDir   string
	apiKey    string
	logPath   string
	logFile   *os.File
	exited    chan struct{}
	once      sync.Once
	client    http.Client
}

// freshDatabase returns the PARLEY_DATABASE_URL for the server: empty
// (SQLite in the data directory) when base is empty, else base with
// search_path set to a new schema campaignbench_<random>, and a function
// that drops it.
func freshDatabase(ctx context.Context, base string) (string, func(), error) {
	if base == "" {
		return "", func() {}, nil
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := fmt.Sprintf("campaignbench_%x", b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(c, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "campaignbench: drop schema %s: %v\n", schema, err)
		}
		admin.Close()
	}
	u, err := url.Parse(base)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// parleyEnv is this process's environment without any PARLEY_ variable (the
// server refuses unknown ones), plus the given settings.
func parleyEnv(settings ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			env = append(env, kv)
		}
	}
	return append(env, settings...)
}

// startServer creates the organization with the admin command, then starts
// `parley serve` on free loopback ports and waits for /api/v1/health.
func startServer(ctx context.Context, o options, dir, dbURL, fakes string) (*server, error) {
	httpAddr, err := freeTCP()
	if err != nil {
		return nil, err
	}
	debugAddr, err := freeTCP()
	if err != nil {
		return nil, err
	}
	sipAddr, err := freeUDPAndTCP()
	if err != nil {
		return nil, err
	}
	s := &server{base: "http://" + httpAddr, debugBase: "http://" + debugAddr, sipAddr: sipAddr, dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "parley.log"), exited: make(chan struct{}), client: http.Client{Timeout: 60 * time.Second}}
	settings := []string{
		"PARLEY_DATA_DIR=" + s.dataDir, "PARLEY_HTTP_ADDR=" + httpAddr, "PARLEY_SIP_ADDR=" + sipAddr, "PARLEY_DEBUG_ADDR=" + debugAddr,
		"PARLEY_RTP_PORTS=20000-31999", "PARLEY_RATE_LIMIT=1000000", "PARLEY_LOG_FORMAT=json", "PARLEY_LOG_LEVEL=warn",
		"PARLEY_MAX_CALLS=" + strconv.Itoa(max(1000, 2*o.concurrency)), "PARLEY_SIP_RATE_LIMIT=0",
		"PARLEY_MAX_WRITE_LATENCY=-1ms", "PARLEY_MAX_SCHED_LATENCY=-1ms",
		"PARLEY_CAMPAIGN_ORG_MAX_CALLS=" + strconv.Itoa(o.concurrency),
		"PARLEY_DEEPGRAM_BASE_URL=" + fakes, "PARLEY_DEEPGRAM_API_KEY=fake",
		"PARLEY_OPENAI_BASE_URL=" + fakes + "/v1", "PARLEY_OPENAI_API_KEY=fake",
		"PARLEY_ELEVENLABS_BASE_URL=" + fakes, "PARLEY_ELEVENLABS_API_KEY=fake",
	}
	if dbURL != "" {
		settings = append(settings, "PARLEY_DATABASE_URL="+dbURL)
	}
	env := parleyEnv(append(settings, o.env...)...)

	// The organization, with a balance no run can use up.
	admin := exec.CommandContext(ctx, o.parley, "org", "create", "--name", "campaignbench", "--minutes", "10000000")
	admin.Env = env
	out, err := admin.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("parley org create: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, _ := strings.Cut(l, ":"); strings.TrimSpace(k) == "api_key" {
			s.apiKey = strings.TrimSpace(v)
		}
	}
	if s.apiKey == "" {
		return nil, fmt.Errorf("parley org create printed no api_key:\n%s", out)
	}
	if s.logFile, err = os.Create(s.logPath); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(o.parley, "serve")
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = s.logFile, s.logFile
	if err := s.cmd.Start(); err != nil {
		s.logFile.Close()
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(s.base + "/api/v1/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			s.stop()
			return nil, fmt.Errorf("parley serve exited at start:\n%s", tail(s.logPath, 4000))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("parley serve did not become healthy in 60 s:\n%s", tail(s.logPath, 4000))
		}
	}
}

// stop interrupts the server and waits for it (killing it after 30 s).
func (s *server) stop() {
	s.once.Do(func() {
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			fmt.Fprintln(os.Stderr, "campaignbench: parley serve did not stop within 30 s of SIGINT; killing it")
			s.cmd.Process.Kill()
			<-s.exited
		}
		s.logFile.Close()
	})
}

func (s *server) cpu() time.Duration { return procCPUOf(s.cmd.Process.Pid) }

// peakRSS is the server's resident set high-water mark (VmHWM).
func (s *server) peakRSS() int64 { return procStatusKB(s.cmd.Process.Pid, "VmHWM:") * 1024 }

func (s *server) api(method, path, body string, out any) error {
	return s.do(method, s.base+"/api/v1"+path, body, out)
}

func (s *server) do(method, u, body string, out any) error {
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return &apiError{method: method, path: u, status: resp.StatusCode, body: string(raw)}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

type apiError struct {
	method, path string
	status       int
	body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, e.body)
}

// The number the campaign calls from.
const fromNumber = "+31201234567"

// configure creates the assistant, a trunk to the far end, a number on it
// and the campaign (still a draft) with calls_per_second and
// max_concurrent_calls, and returns the campaign's id.
func (s *server) configure(o options, farAddr string) (string, error) {
	var a struct{ Assistant struct{ ID string } }
	if err := s.api("POST", "/assistants", `{"name":"campaignbench","first_message":"Hello {{name}}, this is a reminder of your appointment.",
		"llm_config":{"provider":"openai","model":"gpt-4.1","messages":[{"role":"system","content":"Be brief."}]},
		"stt_config":{"provider":"deepgram","model":"nova-3","language":"en"},
		"tts_config":{"provider":"elevenlabs","voice_id":"campaignbench"}}`, &a); err != nil {
		return "", err
	}
	var tr struct {
		Trunk struct{ ID string } `json:"sip_trunk"`
	}
	if err := s.api("POST", "/sip-trunks", `{"name":"SIPp","address":"`+farAddr+`"}`, &tr); err != nil {
		return "", err
	}
	if err := s.api("POST", "/numbers", `{"phone_number":"`+fromNumber+`","transfer_trunk_id":"`+tr.Trunk.ID+`"}`, nil); err != nil {
		return "", err
	}
	leads := make([]string, o.leads)
	for i := range leads {
		leads[i] = fmt.Sprintf(`{"phone_number":"%s","variables":{"name":"Person %d"}}`, answeringNumber(i), i)
	}
	var c struct{ Campaign campaignState }
	if err := s.api("POST", "/campaigns", fmt.Sprintf(`{"name":"campaignbench","agent_id":"%s","calls_per_second":%g,"max_concurrent_calls":%d,
			"schedule_start_time":"00:00:00","schedule_end_time":"23:59:59","timezone":"UTC",
			"leads":[%s]}`, a.Assistant.ID, o.cps, o.concurrency, strings.Join(leads, ",")), &c); err != nil {
		return "", err
	}
	if got := c.Campaign; got.TotalLeads != o.leads || got.CallsPerSecond != o.cps || got.MaxConcurrentCalls != o.concurrency {
		return "", fmt.Errorf("campaign created with %d leads, calls_per_second %g, max_concurrent_calls %d; want %d, %g, %d",
			got.TotalLeads, got.CallsPerSecond, got.MaxConcurrentCalls, o.leads, o.cps, o.concurrency)
	}
	return c.Campaign.ID, nil
}

// answeringNumber is the i-th callee number whose last digit the far end
// answers (0 or 4-9; 1 is busy, 2 never answers, 3 is a congested trunk).
func answeringNumber(i int) string {
	const digits = "0456789"
	return fmt.Sprintf("+3161%06d%c", i/len(digits), digits[i%len(digits)])
}

// campaignState is GET /campaigns/{id}: its pacing and counters.
type campaignState struct {
	ID                 string  `json:"id"`
	Status             string  `json:"status"`
	StatusReason       string  `json:"status_reason"`
	CallsPerSecond     float64 `json:"calls_per_second"`
	MaxConcurrentCalls int     `json:"max_concurrent_calls"`
	TotalLeads         int     `json:"total_leads"`
	CompletedLeads     int     `json:"completed_leads"`
	FailedLeads        int     `json:"failed_leads"`
	CallingLeads       int     `json:"calling_leads"`
}

func (s *server) campaign(id string) (campaignState, error) {
	var c struct{ Campaign campaignState }
	err := s.api("GET", "/campaigns/"+id, "", &c)
	return c.Campaign, err
}

// dialerStats is GET /debug/dialer (dialer.Stats).
type dialerStats struct {
	Steps       int64 `json:"steps"`
	Claimed     int64 `json:"claimed"`
	Dialled     int64 `json:"dialled"`
	Settled     int64 `json:"settled"`
	Released    int64 `json:"released"`
	StepNanos   int64 `json:"step_ns"`
	SettleNanos int64 `json:"settle_ns"`
	ClaimNanos  int64 `json:"claim_ns"`
	DialNanos   int64 `json:"dial_ns"`
}

func (s *server) dialerStats() (dialerStats, error) {
	var d dialerStats
	err := s.do("GET", s.debugBase+"/debug/dialer", "", &d)
	return d, err
}

// callSeconds is the usage summary's total call duration.
func (s *server) callSeconds() (int, error) {
	var usage struct {
		Summary struct {
			TotalDurationSeconds int `json:"total_duration_seconds"`
		} `json:"summary"`
	}
	err := s.api("GET", "/usage?limit=1", "", &usage)
	return usage.Summary.TotalDurationSeconds, err
}

// procCPUOf is a process's user+system CPU time so far (0 when gone).
func procCPUOf(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	d, _ := procCPU(b)
	return d
}

// procCPU reads utime+stime from the text of /proc/<pid>/stat (in clock
// ticks of 1/100 s, USER_HZ on Linux).
func procCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 > len(stat) {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(stat[i+2:]))
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

func procRSS(pid int) int64 { return procStatusKB(pid, "VmRSS:") * 1024 }

// procStatusKB reads one "Key: N kB" line of /proc/<pid>/status.
func procStatusKB(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			if f := strings.Fields(l); len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb
			}
		}
	}
	return 0
}

// countErrors counts the ERROR lines of the server's JSON log and keeps the
// first few messages.
func countErrors(path string) logErrors {
	var le logErrors
	f, err := os.Open(path)
	if err != nil {
		return le
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct{ Level, Msg, Error string }
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		switch l.Level {
		case "ERROR":
			le.Errors++
		case "WARN":
			le.Warnings++
		default:
			continue
		}
		if len(le.First) < 5 {
			le.First = append(le.First, strings.TrimSpace(l.Level+" "+l.Msg+" "+l.Error))
		}
	}
	return le
}

type logErrors struct {
	Errors, Warnings int
	First            []string
}

func freeTCP() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// freeUDPAndTCP finds a loopback port free for both (the server's SIP
// listens on both; SIPp on UDP).
func freeUDPAndTCP() (string, error) {
	for range 50 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := c.LocalAddr().String()
		l, err := net.Listen("tcp", addr)
		c.Close()
		if err == nil {
			l.Close()
			return addr, nil
		}
	}
	return "", errors.New("no loopback port free for both UDP and TCP")
}

// tail is the last n bytes of a file.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
