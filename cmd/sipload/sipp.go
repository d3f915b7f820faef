package main

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// scenario is SIPp's UAC scenario (see the comment at its top).
//
//go:embed uac.xml
var scenario []byte

// sippRun is what one SIPp run left behind.
type sippRun struct {
	exitCode int
	stats    sippStats
	counts   map[string]int // -trace_counts, last row: "6_200_Recv" → n
	setupMS  []float64      // -trace_rtt: INVITE → 200 OK per answered call
}

// sippStats are the figures read from SIPp's -trace_stat file (cumulative).
type sippStats struct {
	ExitCode            int `json:"exit_code"`
	Created             int `json:"calls_created"`
	Successful          int `json:"successful_calls"`
	Failed              int `json:"failed_calls"`
	FailedMaxUDPRetrans int `json:"failed_max_udp_retrans"`
	FailedUnexpected    int `json:"failed_unexpected_message"`
	FailedTimeoutOnRecv int `json:"failed_timeout_on_recv"`
	FailedOther         int `json:"failed_other_reasons"`
	Retransmissions     int `json:"retransmissions"`
	OutOfCallMsgs       int `json:"out_of_call_messages"`
	DeadCallMsgs        int `json:"dead_call_messages"`
	WatchdogMajor       int `json:"watchdog_major"`
	WatchdogMinor       int `json:"watchdog_minor"`
	// PlacedSeconds is when the last call was created (the statistics
	// row's elapsed time, so in whole seconds): about -duration when SIPp
	// kept the rate.
	PlacedSeconds float64 `json:"placed_seconds"`
	CPUSeconds    float64 `json:"sipp_cpu_seconds"`
	// The scenario's counters.
	Answered  int `json:"answered"`
	Refused   int `json:"refused_503"`
	Rejected  int `json:"rejected_other_final"`
	Completed int `json:"completed_bye_200"`
}

// runSIPp places rate calls per second for o.duration against target
// (127.0.0.1:port) and reads SIPp's statistics, counts and response times.
func runSIPp(ctx context.Context, o options, dir, target string, rate int) (*sippRun, error) {
	work := filepath.Join(dir, "sipp")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(work, "uac.xml"), scenario, 0o644); err != nil {
		return nil, err
	}
	// The SDP offer points here: bound so the server's RTP is dropped
	// quietly by the kernel (no ICMP), and never read.
	sink, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	if c, ok := sink.(*net.UDPConn); ok {
		c.SetReadBuffer(4096)
	}
	sinkPort := strconv.Itoa(sink.LocalAddr().(*net.UDPAddr).Port)
	local, err := freeUDP()
	if err != nil {
		return nil, err
	}
	_, localPort, _ := net.SplitHostPort(local)
	control, err := freeUDP()
	if err != nil {
		return nil, err
	}
	_, controlPort, _ := net.SplitHostPort(control)

	calls := max(1, int(math.Round(float64(rate)*o.duration.Seconds())))
	timeout := o.duration + o.hold + 2*time.Minute
	args := []string{target,
		"-sf", "uac.xml", "-s", number, "-key", "caller", caller, "-key", "rtp_sink", sinkPort,
		"-i", "127.0.0.1", "-bind_local", "-p", localPort, "-cp", controlPort, "-t", "u1",
		"-r", strconv.Itoa(rate), "-rp", "1000", "-m", strconv.Itoa(calls), "-l", strconv.Itoa(calls),
		"-d", strconv.FormatInt(o.hold.Milliseconds(), 10),
		"-trace_stat", "-stf", "stat.csv", "-fd", "1",
		"-trace_rtt", "-rtt_freq", "1", "-trace_counts", "-trace_err",
		"-max_recv_loops", "10000", "-max_sched_loops", "10000", "-watchdog_major_maxtriggers", "1000000", "-watchdog_minor_maxtriggers", "1000000",
		"-nostdin", "-timeout", strconv.Itoa(int(timeout.Seconds())) + "s",
	}
	screen, err := os.Create(filepath.Join(work, "screen.txt"))
	if err != nil {
		return nil, err
	}
	defer screen.Close()
	cmd := exec.CommandContext(ctx, o.sipp, args...)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = screen, screen
	cmd.Stdin = nil
	runErr := cmd.Run()
	r := &sippRun{}
	var exit *exec.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &exit) && exit.ExitCode() >= 0:
		r.exitCode = exit.ExitCode()
	case errors.As(runErr, &exit) && ctx.Err() == nil:
		return nil, &sippCrash{state: exit.String(), screen: tail(screen.Name(), 2000)}
	default:
		return nil, fmt.Errorf("sipp: %v", runErr)
	}
	// 0: every call succeeded; 1: some failed; 97: internal command; 99: no
	// call processed. Anything else (255, 254) is SIPp failing to run.
	if r.exitCode != 0 && r.exitCode != 1 && r.exitCode != 97 {
		return nil, fmt.Errorf("sipp %s exited with %d:\n%s", strings.Join(args, " "), r.exitCode, tail(screen.Name(), 3000))
	}

	f, err := os.Open(filepath.Join(work, "stat.csv"))
	if err != nil {
		return nil, fmt.Errorf("sipp wrote no statistics: %v\n%s", err, tail(screen.Name(), 3000))
	}
	st, err := parseStat(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("sipp statistics: %w", err)
	}
	st.ExitCode = r.exitCode
	if ps := cmd.ProcessState; ps != nil {
		st.CPUSeconds = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	r.stats = st
	if p, err := glob1(work, "uac_*_counts.csv"); err == nil {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		r.counts, err = parseCounts(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("sipp counts: %w", err)
		}
	}
	if p, err := glob1(work, "uac_*_rtt.csv"); err == nil {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		r.setupMS, err = parseRTT(f, "setup")
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("sipp response times: %w", err)
		}
	}
	return r, nil
}

// sippCrash is SIPp ending on a signal (it has aborted at high rates).
type sippCrash struct{ state, screen string }

func (e *sippCrash) Error() string {
	return fmt.Sprintf("SIPp died (%s); the end of its output:\n%s", e.state, e.screen)
}

func glob1(dir, pattern string) (string, error) {
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(m) == 0 {
		return "", fmt.Errorf("no %s", pattern)
	}
	return m[0], nil
}

// readCSV reads SIPp's ';'-separated files: a header line and data lines.
// SIPp ends lines with a trailing ';'.
func readCSV(r io.Reader) (header []string, rows [][]string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(strings.TrimSuffix(line, ";"), ";")
		if header == nil {
			header = f
			continue
		}
		rows = append(rows, f)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if header == nil {
		return nil, nil, errors.New("empty file")
	}
	return header, rows, nil
}

// parseStat reads the last row of SIPp's -trace_stat file.
func parseStat(r io.Reader) (sippStats, error) {
	var s sippStats
	header, rows, err := readCSV(r)
	if err != nil {
		return s, err
	}
	if len(rows) == 0 {
		return s, errors.New("no statistics row")
	}
	last := rows[len(rows)-1]
	getIn := func(row []string, name string) int {
		i := slices.Index(header, name)
		if i < 0 || i >= len(row) {
			return 0
		}
		v, _ := strconv.ParseFloat(strings.TrimSpace(row[i]), 64)
		return int(v)
	}
	get := func(name string) int { return getIn(last, name) }
	s.Created = get("TotalCallCreated")
	if e := slices.Index(header, "ElapsedTime(C)"); e >= 0 {
		for _, row := range rows {
			if getIn(row, "TotalCallCreated") >= s.Created && e < len(row) {
				s.PlacedSeconds = elapsed(row[e])
				break
			}
		}
	}
	s.Successful = get("SuccessfulCall(C)")
	s.Failed = get("FailedCall(C)")
	s.FailedMaxUDPRetrans = get("FailedMaxUDPRetrans(C)")
	s.FailedUnexpected = get("FailedUnexpectedMessage(C)")
	s.FailedTimeoutOnRecv = get("FailedTimeoutOnRecv(C)")
	s.FailedOther = s.Failed - s.FailedMaxUDPRetrans - s.FailedUnexpected - s.FailedTimeoutOnRecv
	s.Retransmissions = get("Retransmissions(C)")
	s.OutOfCallMsgs = get("OutOfCallMsgs(C)")
	s.DeadCallMsgs = get("DeadCallMsgs(C)")
	s.WatchdogMajor = get("WatchdogMajor(C)")
	s.WatchdogMinor = get("WatchdogMinor(C)")
	s.Answered = get("answered(C)")
	s.Refused = get("refused(C)")
	s.Rejected = get("rejected(C)")
	s.Completed = get("completed(C)")
	if !slices.Contains(header, "answered(C)") {
		return s, errors.New("no answered(C) column: is this the sipload scenario's statistics file?")
	}
	return s, nil
}

// elapsed reads SIPp's hh:mm:ss[:microseconds] as seconds.
func elapsed(v string) float64 {
	f := strings.Split(strings.TrimSpace(v), ":")
	if len(f) < 3 {
		return 0
	}
	var secs float64
	for i, unit := range []float64{3600, 60, 1} {
		n, _ := strconv.Atoi(f[i])
		secs += float64(n) * unit
	}
	if len(f) > 3 {
		us, _ := strconv.Atoi(f[3])
		secs += float64(us) / 1e6
	}
	return secs
}

// parseCounts reads the last row of SIPp's -trace_counts file: one column
// per message index and event, such as "4_503_Recv" or "0_INVITE_Retrans".
func parseCounts(r io.Reader) (map[string]int, error) {
	header, rows, err := readCSV(r)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	if len(rows) == 0 {
		return out, nil
	}
	last := rows[len(rows)-1]
	for i, h := range header {
		if i < 2 || i >= len(last) { // CurrentTime, ElapsedTime
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(last[i]))
		if err != nil {
			return nil, fmt.Errorf("column %s: %q is not a count", h, last[i])
		}
		out[h] = n
	}
	return out, nil
}

// finalCodes sums, per response code, the final responses SIPp received
// at the scenario's INVITE answer indexes other than 200 (the 503s and the
// other error answers).
func finalCodes(counts map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range counts {
		parts := strings.Split(k, "_")
		if len(parts) != 3 || parts[2] != "Recv" || n == 0 {
			continue
		}
		code, err := strconv.Atoi(parts[1])
		if err != nil || code < 300 {
			continue
		}
		out[parts[1]] += n
	}
	return out
}

// unexpected sums the counts file's *_Unexp columns: messages SIPp did not
// expect where they came (each aborts its call).
func unexpected(counts map[string]int) int {
	n := 0
	for k, v := range counts {
		if strings.HasSuffix(k, "_Unexp") {
			n += v
		}
	}
	return n
}

// parseRTT reads SIPp's -trace_rtt file ("Date_ms;response_time_ms;rtd_no")
// and returns the response times of the named rtd, in milliseconds.
func parseRTT(r io.Reader, rtd string) ([]float64, error) {
	header, rows, err := readCSV(r)
	if err != nil {
		return nil, err
	}
	ti, ni := slices.Index(header, "response_time_ms"), slices.Index(header, "rtd_no")
	if ti < 0 || ni < 0 {
		return nil, fmt.Errorf("unexpected header %q", strings.Join(header, ";"))
	}
	var out []float64
	for _, row := range rows {
		if len(row) <= max(ti, ni) || strings.TrimSpace(row[ni]) != rtd {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(row[ti]), 64)
		if err != nil {
			return nil, fmt.Errorf("response time %q: %v", row[ti], err)
		}
		out = append(out, v)
	}
	return out, nil
}

// percentile of sorted values (nearest rank); 0 for none.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
