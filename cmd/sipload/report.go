package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

// result is every figure of one rate and run.
type result struct {
	Rate int    `json:"rate"`
	Run  int    `json:"run"`
	Dir  string `json:"dir,omitempty"`
	// Schema is the PostgreSQL schema, when kept (-keep).
	Schema string `json:"schema,omitempty"`
	// RepeatedAfterSIPpCrash: the first attempt ended with SIPp dying.
	RepeatedAfterSIPpCrash bool `json:"repeated_after_sipp_crash,omitempty"`

	// From SIPp.
	Attempted  int            `json:"attempted"`
	Answered   int            `json:"answered"`
	Completed  int            `json:"completed"`
	Refused503 int            `json:"refused_503"`
	Failed     int            `json:"failed"` // other error answers + calls SIPp counted failed
	FinalCodes map[string]int `json:"final_codes,omitempty"`
	Unexpected int            `json:"unexpected_messages"`
	Setup      latency        `json:"invite_to_200_ms"`
	SIPp       sippStats      `json:"sipp"`

	// LoadAverage is /proc/loadavg before the run: other work on the
	// machine skews every time measured here.
	LoadAverage         string  `json:"load_average_before"`
	SIPpSeconds         float64 `json:"sipp_seconds"`
	CPUSeconds          float64 `json:"server_cpu_seconds"`            // while SIPp ran
	CPUSecondsWithDrain float64 `json:"server_cpu_seconds_with_drain"` // until no call was live
	DrainSeconds        float64 `json:"drain_seconds"`

	// From the REST API, after the drain.
	ActiveCallsAfterDrain int            `json:"active_calls_after_drain"`
	Rows                  int            `json:"rows"`
	RowsByStatus          map[string]int `json:"rows_by_status"`
	RowsLive              int            `json:"rows_live"`
	EndedWithoutDuration  int            `json:"ended_rows_without_duration"`
	SumDurationSeconds    int            `json:"sum_duration_seconds"`
	UsageCalls            int            `json:"usage_total_calls"`
	UsageSeconds          int            `json:"usage_total_duration_seconds"`
	BalanceBefore         float64        `json:"minutes_balance_before"`
	BalanceAfter          float64        `json:"minutes_balance_after"`
	BalanceDropSeconds    float64        `json:"balance_drop_seconds"`

	Log logSummary `json:"server_log"`
}

type latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func (r *result) setFromSIPp(s *sippRun) {
	st := s.stats
	r.Attempted, r.Answered, r.Completed, r.Refused503 = st.Created, st.Answered, st.Completed, st.Refused
	r.Failed = st.Rejected + st.Failed
	r.FinalCodes = finalCodes(s.counts)
	r.Unexpected = unexpected(s.counts)
	v := slices.Clone(s.setupMS)
	slices.Sort(v)
	r.Setup = latency{Count: len(v), P50: percentile(v, 50), P95: percentile(v, 95), P99: percentile(v, 99), Max: percentile(v, 100)}
}

const rowFormat = "%5v %3v %8v %8v %7v %6v %6v %6v %6v %6v %5v %9v %9v %9v %6v %7v\n"

func printHeader() {
	fmt.Printf(rowFormat, "rate", "run", "attempt", "answered", "503", "failed", "p50ms", "p95ms", "maxms", "rows", "live", "usage s", "sum dur s", "balance s", "errors", "cpu s")
}

func printRow(r *result) {
	fmt.Printf(rowFormat, r.Rate, r.Run, r.Attempted, r.Answered, r.Refused503, r.Failed,
		ms(r.Setup.P50), ms(r.Setup.P95), ms(r.Setup.Max), r.Rows, r.RowsLive,
		r.UsageSeconds, r.SumDurationSeconds, fmt.Sprintf("%.0f", r.BalanceDropSeconds), r.Log.Errors, fmt.Sprintf("%.1f", r.CPUSeconds))
}

func ms(v float64) string { return fmt.Sprintf("%.0f", v) }

// printNotes explains, under the table, whatever needs a closer look.
func printNotes(all []*result) {
	fmt.Println()
	fmt.Println("attempt/answered/503/failed: SIPp's calls and INVITE answers (failed = other error answers + calls SIPp")
	fmt.Println("counted failed: timeouts, unexpected messages); pNN: INVITE → 200 OK; rows/live: call rows and rows still")
	fmt.Println("connecting/ringing/in-progress after the drain; usage s: GET /usage total_duration_seconds; sum dur s: the")
	fmt.Println("rows' duration_seconds; balance s: minutes_balance drop × 60; errors: level=ERROR log lines; cpu s: server")
	fmt.Println("CPU while SIPp ran.")
	for _, r := range all {
		var notes []string
		if r.RepeatedAfterSIPpCrash {
			notes = append(notes, "SIPp died during the first attempt; these figures are the second's")
		}
		if r.Answered != r.Completed {
			notes = append(notes, fmt.Sprintf("%d answered calls did not end with 200 OK to BYE", r.Answered-r.Completed))
		}
		if r.Setup.Count != r.Answered {
			notes = append(notes, fmt.Sprintf("SIPp logged %d response times for %d answered calls", r.Setup.Count, r.Answered))
		}
		if s := r.SIPp; s.Failed > 0 {
			notes = append(notes, fmt.Sprintf("SIPp failed calls: %d (max UDP retransmissions %d, unexpected message %d, receive timeout %d, other %d)",
				s.Failed, s.FailedMaxUDPRetrans, s.FailedUnexpected, s.FailedTimeoutOnRecv, s.FailedOther))
		}
		if codes := nonRefusal(r.FinalCodes); len(codes) > 0 {
			notes = append(notes, "error answers other than 503: "+codes)
		}
		if r.SIPp.Retransmissions > 0 {
			notes = append(notes, fmt.Sprintf("SIPp retransmissions: %d", r.SIPp.Retransmissions))
		}
		if r.Rows != r.Answered {
			notes = append(notes, fmt.Sprintf("%d call rows for %d answered calls; rows by status: %s", r.Rows, r.Answered, statusList(r.RowsByStatus)))
		} else if r.RowsByStatus["ended"] != r.Rows {
			notes = append(notes, "rows by status: "+statusList(r.RowsByStatus))
		}
		if r.ActiveCallsAfterDrain > 0 || r.RowsLive > 0 {
			notes = append(notes, fmt.Sprintf("still live after %.0f s: %d (organization active_calls), %d rows", r.DrainSeconds, r.ActiveCallsAfterDrain, r.RowsLive))
		}
		if r.EndedWithoutDuration > 0 {
			notes = append(notes, fmt.Sprintf("%d ended rows have no duration_seconds", r.EndedWithoutDuration))
		}
		if r.UsageSeconds != r.SumDurationSeconds || r.UsageCalls != r.RowsByStatus["ended"] {
			notes = append(notes, fmt.Sprintf("usage: %d calls, %d s; ended rows: %d, %d s summed", r.UsageCalls, r.UsageSeconds, r.RowsByStatus["ended"], r.SumDurationSeconds))
		}
		if r.SIPp.PlacedSeconds > 0 {
			notes = append(notes, fmt.Sprintf("SIPp placed its %d calls in about %.0f s (%.0f calls/s), using %.1f s CPU; load average before: %s",
				r.Attempted, r.SIPp.PlacedSeconds, float64(r.Attempted)/r.SIPp.PlacedSeconds, r.SIPp.CPUSeconds, r.LoadAverage))
		}
		notes = append(notes, fmt.Sprintf("minutes_balance %.4f → %.4f (drop %.1f s; usage %d s); drain %.1f s, CPU to the drain's end %.1f s",
			r.BalanceBefore, r.BalanceAfter, r.BalanceDropSeconds, r.UsageSeconds, r.DrainSeconds, r.CPUSecondsWithDrain))
		if r.Log.Errors+r.Log.Warnings+r.Log.Other > 0 {
			notes = append(notes, fmt.Sprintf("server log: %d ERROR, %d WARN, %d other lines", r.Log.Errors, r.Log.Warnings, r.Log.Other))
			for _, m := range r.Log.Top {
				notes = append(notes, fmt.Sprintf("  %6d × %s %s", m.Count, m.Level, m.Message))
			}
		}
		if r.Dir != "" {
			kept := "kept: " + r.Dir
			if r.Schema != "" {
				kept += ", PostgreSQL schema " + r.Schema
			}
			notes = append(notes, kept)
		}
		fmt.Printf("\nrate %d run %d:\n", r.Rate, r.Run)
		for _, n := range notes {
			fmt.Println("  " + n)
		}
	}
}

func nonRefusal(codes map[string]int) string {
	var keys []string
	for k := range codes {
		if k != "503" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, codes[k]))
	}
	return strings.Join(parts, ", ")
}

func statusList(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// logSummary counts the server log's lines by level, with the most frequent
// distinct ERROR and WARN messages (and lines that are no log record at all,
// such as a panic's).
type logSummary struct {
	Errors   int        `json:"errors"`
	Warnings int        `json:"warnings"`
	Other    int        `json:"other_lines"`
	Top      []msgCount `json:"top,omitempty"`
}

type msgCount struct {
	Level   string `json:"level"`
	Message string `json:"message"`
	Count   int    `json:"count"`
}

// expectedWarnings are WARN messages every fresh server logs once.
var expectedWarnings = []string{"generated a new master key"}

func scanLogFile(path string) logSummary {
	f, err := os.Open(path)
	if err != nil {
		return logSummary{}
	}
	defer f.Close()
	return scanLog(f, 8)
}

// scanLog reads slog output, JSON or text, and keeps up to top distinct
// messages, errors first.
func scanLog(r io.Reader, top int) logSummary {
	var s logSummary
	counts := map[msgCount]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		level, msg, ok := parseLogLine(line)
		switch {
		case !ok:
			s.Other++
			level, msg = "OTHER", line
		case level == "ERROR":
			s.Errors++
		case level == "WARN":
			if slices.ContainsFunc(expectedWarnings, func(w string) bool { return strings.HasPrefix(msg, w) }) {
				continue
			}
			s.Warnings++
		default:
			continue
		}
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		counts[msgCount{Level: level, Message: msg}]++
	}
	rank := map[string]int{"ERROR": 0, "OTHER": 1, "WARN": 2}
	for k, n := range counts {
		k.Count = n
		s.Top = append(s.Top, k)
	}
	sort.Slice(s.Top, func(i, j int) bool {
		a, b := s.Top[i], s.Top[j]
		if rank[a.Level] != rank[b.Level] {
			return rank[a.Level] < rank[b.Level]
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Message < b.Message
	})
	if len(s.Top) > top {
		s.Top = s.Top[:top]
	}
	return s
}

// parseLogLine reads the level and message of one slog line: JSON
// ({"level":"ERROR","msg":"…"}) or text (level=ERROR msg="…").
func parseLogLine(line string) (level, msg string, ok bool) {
	if strings.HasPrefix(line, "{") {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Level == "" {
			return "", "", false
		}
		msg = rec.Msg
		if rec.Error != "" {
			msg += ": " + rec.Error
		}
		return baseLevel(rec.Level), msg, true
	}
	lv, ok := textField(line, "level")
	if !ok {
		return "", "", false
	}
	msg, _ = textField(line, "msg")
	if e, ok := textField(line, "error"); ok {
		msg += ": " + e
	}
	return baseLevel(lv), msg, true
}

// baseLevel maps "ERROR+2" and the like to their base name.
func baseLevel(l string) string {
	for _, b := range []string{"ERROR", "WARN", "INFO", "DEBUG"} {
		if strings.HasPrefix(strings.ToUpper(l), b) {
			return b
		}
	}
	return strings.ToUpper(l)
}

// textField finds key=value or key="quoted value" in a slog text line.
func textField(line, key string) (string, bool) {
	for i := 0; ; {
		j := strings.Index(line[i:], key+"=")
		if j < 0 {
			return "", false
		}
		j += i
		if j > 0 && line[j-1] != ' ' {
			i = j + len(key) + 1
			continue
		}
		v := line[j+len(key)+1:]
		if strings.HasPrefix(v, `"`) {
			var s string
			// Find the closing quote, honouring backslash escapes.
			end := 1
			for end < len(v) && v[end] != '"' {
				if v[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(v) {
				return strings.Trim(v, `"`), true
			}
			if err := json.Unmarshal([]byte(v[:end+1]), &s); err != nil {
				return v[1:end], true
			}
			return s, true
		}
		if k := strings.IndexByte(v, ' '); k >= 0 {
			v = v[:k]
		}
		return v, true
	}
}
