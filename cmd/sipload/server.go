package main

import (
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

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the fresh schema
)

// server is one `parley serve` process under test.
type server struct {
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:port
	sipAddr string // 127.0.0.1:port, UDP and TCP
	apiKey  string
	orgID   string
	logPath string
	logFile *os.File
	exited  chan struct{}
	once    sync.Once
}

// freshDatabase returns the PARLEY_DATABASE_URL for one server: empty (SQLite
// in the data directory) when base is empty, else base with search_path set
// to a new schema sipload_<random>, and a function that drops it.
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
	schema := fmt.Sprintf("sipload_%x", b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(c, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "sipload: drop schema %s: %v\n", schema, err)
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

func schemaOf(dbURL string) string {
	if u, err := url.Parse(dbURL); err == nil {
		return u.Query().Get("search_path")
	}
	return ""
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
	sipAddr, err := freeUDPAndTCP()
	if err != nil {
		return nil, err
	}
	settings := []string{
		"PARLEY_DATA_DIR=" + filepath.Join(dir, "data"), "PARLEY_HTTP_ADDR=" + httpAddr, "PARLEY_SIP_ADDR=" + sipAddr,
		"PARLEY_RTP_PORTS=20000-31999", "PARLEY_RATE_LIMIT=1000000", "PARLEY_LOG_FORMAT=json", "PARLEY_LOG_LEVEL=warn",
		"PARLEY_DEEPGRAM_BASE_URL=" + fakes, "PARLEY_DEEPGRAM_API_KEY=fake",
		"PARLEY_OPENAI_BASE_URL=" + fakes + "/v1", "PARLEY_OPENAI_API_KEY=fake",
		"PARLEY_ELEVENLABS_BASE_URL=" + fakes, "PARLEY_ELEVENLABS_API_KEY=fake",
	}
	if dbURL != "" {
		settings = append(settings, "PARLEY_DATABASE_URL="+dbURL)
	}
	if o.maxCalls > 0 {
		settings = append(settings, "PARLEY_MAX_CALLS="+strconv.Itoa(o.maxCalls))
	}
	env := parleyEnv(append(settings, o.env...)...)

	// The organization, with a balance no run can use up.
	admin := exec.CommandContext(ctx, o.parley, "org", "create", "--name", "sipload", "--minutes", "1000000")
	admin.Env = env
	out, err := admin.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("parley org create: %v\n%s", err, out)
	}
	s := &server{base: "http://" + httpAddr, sipAddr: sipAddr, logPath: filepath.Join(dir, "parley.log"), exited: make(chan struct{})}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(l, ":")
		switch strings.TrimSpace(k) {
		case "org_id":
			s.orgID = strings.TrimSpace(v)
		case "api_key":
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
			fmt.Fprintln(os.Stderr, "sipload: parley serve did not stop within 30 s of SIGINT; killing it")
			s.cmd.Process.Kill()
			<-s.exited
		}
		s.logFile.Close()
	})
}

// cpu is the server's user+system CPU time so far, from /proc/<pid>/stat.
func (s *server) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
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

func (s *server) api(method, path, body string, out any) error {
	req, err := http.NewRequest(method, s.base+"/api/v1"+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
	req.Header.Set("Content-Type", "application/json")
	c := http.Client{Timeout: 60 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// configure creates the assistant and gives it the number.
func (s *server) configure() error {
	var a struct{ Assistant struct{ ID string } }
	err := s.api("POST", "/assistants", `{"name":"sipload","first_message":"Hi.",
		"llm_config":{"provider":"openai","model":"gpt-4.1","messages":[{"role":"system","content":"Be brief."}]},
		"stt_config":{"provider":"deepgram","model":"nova-3","language":"en"},
		"tts_config":{"provider":"elevenlabs","voice_id":"sipload"}}`, &a)
	if err != nil {
		return err
	}
	if a.Assistant.ID == "" {
		return errors.New("POST /assistants answered no assistant.id")
	}
	return s.api("POST", "/numbers", `{"phone_number":"`+number+`","assistant_id":"`+a.Assistant.ID+`"}`, nil)
}

type orgInfo struct {
	MinutesBalance float64 `json:"minutes_balance"`
	ActiveCalls    int     `json:"active_calls"`
}

func (s *server) org() (orgInfo, error) {
	var o orgInfo
	err := s.api("GET", "/organizations", "", &o)
	return o, err
}

// waitIdle polls the organization until it has no live call (connecting,
// ringing, dialing or in-progress) or the timeout passes; it returns the
// number still live.
func (s *server) waitIdle(ctx context.Context, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		o, err := s.org()
		if err != nil {
			return 0, err
		}
		if o.ActiveCalls == 0 || time.Now().After(deadline) {
			return o.ActiveCalls, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// liveStatuses are the statuses of a call that has not ended.
var liveStatuses = map[string]bool{"connecting": true, "ringing": true, "dialing": true, "in-progress": true}

// books reads the call rows, the usage summary and the balance into res.
func (s *server) books(res *result) error {
	res.RowsByStatus = map[string]int{}
	for offset := 0; ; {
		var page struct {
			Calls []struct {
				Status          string `json:"status"`
				DurationSeconds *int   `json:"duration_seconds"`
			} `json:"calls"`
			Pagination struct{ Total int } `json:"pagination"`
		}
		if err := s.api("GET", fmt.Sprintf("/calls?limit=1000&offset=%d", offset), "", &page); err != nil {
			return err
		}
		for _, c := range page.Calls {
			res.Rows++
			res.RowsByStatus[c.Status]++
			if liveStatuses[c.Status] {
				res.RowsLive++
			}
			if c.DurationSeconds != nil {
				res.SumDurationSeconds += *c.DurationSeconds
			} else if c.Status == "ended" {
				res.EndedWithoutDuration++
			}
		}
		offset += len(page.Calls)
		if len(page.Calls) == 0 || offset >= page.Pagination.Total {
			break
		}
	}
	var usage struct {
		Summary struct {
			TotalCalls           int `json:"total_calls"`
			TotalDurationSeconds int `json:"total_duration_seconds"`
		} `json:"summary"`
	}
	if err := s.api("GET", "/usage?limit=1", "", &usage); err != nil {
		return err
	}
	res.UsageCalls, res.UsageSeconds = usage.Summary.TotalCalls, usage.Summary.TotalDurationSeconds
	after, err := s.org()
	if err != nil {
		return err
	}
	res.BalanceAfter = after.MinutesBalance
	res.BalanceDropSeconds = (res.BalanceBefore - res.BalanceAfter) * 60
	return nil
}

func freeTCP() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func freeUDP() (string, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// freeUDPAndTCP finds a loopback port free for both (the server's SIP listens on both).
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

// tail is the end of a file, for error messages.
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
