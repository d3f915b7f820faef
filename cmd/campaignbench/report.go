package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// result is everything one run measured.
type result struct {
	Database    string
	LoadAverage string
	Samples     []sample
	// Polls is how many GET /campaigns/{id} the harness made during the
	// run; PollStatements what one costs the server (PostgreSQL).
	Polls          int
	PollStatements float64
	Statements     int64 // pg_stat_statements total since scheduling (PostgreSQL)
	TopStatements  []statement
	CallSeconds    int   // the usage summary's total call duration
	PeakRSS        int64 // the server's VmHWM
	FarEnd         map[string]int
	FarEndErrors   int
	ServerErrors   logErrors
}

// sample is one second's reading; CPU times are since scheduling.
type sample struct {
	At                             time.Duration // since scheduling
	Campaign                       campaignState
	Dialer                         dialerStats
	ServerCPU, SIPpCPU, HarnessCPU time.Duration
	ServerRSS, SIPpRSS             int64
}

// summary is what the report prints, computed from a result.
type summary struct {
	Wall                 time.Duration // scheduling → completed (as sampled)
	Dialled              int64
	LastDial             time.Duration // first sample with every dial done
	T10, T90             time.Duration // 10 % and 90 % of the dials done
	SteadyRate, DialRate float64       // dials per second: 10-90 %, and over [0, LastDial]
	PeakCalling          int
	MedianCalling        float64 // over the steady phase
	SlotSeconds          float64 // Little's law: median calling / steady rate
	ClaimDialPerLead     time.Duration
	ClaimPerLead         time.Duration
	DialPerLead          time.Duration
	SettlePerLead        time.Duration
	StepMean             time.Duration
	DialerBusy           float64 // share of the wall time inside steps
	ServerCPU, SIPpCPU   time.Duration
	HarnessCPU           time.Duration
	PeakRSSSampled       int64
	StatementsPerLead    float64
	StatementsPolling    float64
}

func summarize(r *result) summary {
	var s summary
	if len(r.Samples) == 0 {
		return s
	}
	last := r.Samples[len(r.Samples)-1]
	s.Wall = last.At
	d := last.Dialer
	s.Dialled = d.Dialled
	for _, x := range r.Samples {
		if x.Dialer.Dialled >= d.Dialled {
			s.LastDial = x.At
			break
		}
	}
	s.T10 = crossAt(r.Samples, 0.1*float64(d.Dialled))
	s.T90 = crossAt(r.Samples, 0.9*float64(d.Dialled))
	if s.T90 > s.T10 {
		s.SteadyRate = 0.8 * float64(d.Dialled) / (s.T90 - s.T10).Seconds()
	}
	if s.LastDial > 0 {
		s.DialRate = float64(d.Dialled) / s.LastDial.Seconds()
	}
	var steady []float64
	for _, x := range r.Samples {
		s.PeakCalling = max(s.PeakCalling, x.Campaign.CallingLeads)
		s.PeakRSSSampled = max(s.PeakRSSSampled, x.ServerRSS)
		if x.At >= s.T10 && x.At <= s.T90 {
			steady = append(steady, float64(x.Campaign.CallingLeads))
		}
	}
	s.MedianCalling = median(steady)
	if s.SteadyRate > 0 {
		s.SlotSeconds = s.MedianCalling / s.SteadyRate
	}
	s.ClaimDialPerLead = per(d.ClaimNanos+d.DialNanos, d.Dialled)
	s.ClaimPerLead = per(d.ClaimNanos, d.Claimed)
	s.DialPerLead = per(d.DialNanos, d.Dialled)
	s.SettlePerLead = per(d.SettleNanos, d.Settled)
	s.StepMean = per(d.StepNanos, d.Steps)
	if s.Wall > 0 {
		s.DialerBusy = float64(d.StepNanos) / float64(s.Wall)
	}
	s.ServerCPU, s.SIPpCPU, s.HarnessCPU = last.ServerCPU, last.SIPpCPU, last.HarnessCPU
	if leads := last.Campaign.TotalLeads; leads > 0 && r.Statements > 0 {
		s.StatementsPolling = float64(r.Polls) * r.PollStatements
		s.StatementsPerLead = (float64(r.Statements) - s.StatementsPolling) / float64(leads)
	}
	return s
}

// crossAt is when the dials counter reached target, linearly interpolated
// between samples (from 0 at time 0).
func crossAt(samples []sample, target float64) time.Duration {
	var prevAt time.Duration
	var prev float64
	for _, x := range samples {
		v := float64(x.Dialer.Dialled)
		if v >= target {
			if v == prev {
				return x.At
			}
			return prevAt + time.Duration(float64(x.At-prevAt)*(target-prev)/(v-prev))
		}
		prevAt, prev = x.At, v
	}
	return prevAt
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func per(nanos, n int64) time.Duration {
	if n == 0 {
		return 0
	}
	return time.Duration(nanos / n)
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func printReport(w io.Writer, o options, r *result) {
	s := summarize(r)
	if len(r.Samples) == 0 {
		fmt.Fprintln(w, "no samples")
		return
	}
	last := r.Samples[len(r.Samples)-1]
	c := last.Campaign
	fmt.Fprintf(w, "campaignbench: %d leads, calls_per_second %g, max_concurrent_calls %d, far end hangs up %s after answering, %s; load average at start %s\n",
		o.leads, o.cps, o.concurrency, o.hold, r.Database, r.LoadAverage)
	fmt.Fprintf(w, "leads: %d completed, %d failed of %d; dialer: %d claimed, %d dialled, %d settled, %d handed back, %d steps\n",
		c.CompletedLeads, c.FailedLeads, c.TotalLeads, last.Dialer.Claimed, last.Dialer.Dialled, last.Dialer.Settled, last.Dialer.Released, last.Dialer.Steps)
	fmt.Fprintf(w, "far end: %s; %d error-log lines. server log: %d ERROR, %d WARN lines\n", outcomeList(r.FarEnd), r.FarEndErrors, r.ServerErrors.Errors, r.ServerErrors.Warnings)
	for _, l := range r.ServerErrors.First {
		fmt.Fprintf(w, "   %s\n", trim(l, 160))
	}
	fmt.Fprintf(w, "wall time: %.1fs scheduling → completed; last dial at %.1fs\n", s.Wall.Seconds(), s.LastDial.Seconds())
	fmt.Fprintf(w, "dial rate: steady (10%%→90%% of dials, %.1fs→%.1fs) %.2f/s = %.0f%% of configured %g/s; overall (to the last dial) %.2f/s; leads/wall %.2f/s\n",
		s.T10.Seconds(), s.T90.Seconds(), s.SteadyRate, 100*s.SteadyRate/o.cps, o.cps, s.DialRate, float64(c.TotalLeads)/s.Wall.Seconds())
	fmt.Fprintf(w, "leads calling at once: peak %d, median %.0f in the steady phase (cap %d); each lead holds a slot %.2fs (median calling ÷ steady rate), so the cap allows %.1f dials/s\n",
		s.PeakCalling, s.MedianCalling, o.concurrency, s.SlotSeconds, safeDiv(float64(o.concurrency), s.SlotSeconds))
	fmt.Fprintf(w, "dialer time per lead: claim+dial %s (claim %s per claimed lead, engine Dial %s); settle %s per settled lead; step %s mean over %d steps, busy %.1f%% of the wall time\n",
		s.ClaimDialPerLead, s.ClaimPerLead, s.DialPerLead, s.SettlePerLead, s.StepMean, last.Dialer.Steps, 100*s.DialerBusy)
	fmt.Fprintf(w, "server CPU: %.1fs = %.0f%% of one core; %.1f ms per call, %.2f ms per call-second (%d call-seconds in the usage summary)\n",
		s.ServerCPU.Seconds(), 100*s.ServerCPU.Seconds()/s.Wall.Seconds(), 1000*s.ServerCPU.Seconds()/float64(max(s.Dialled, 1)),
		1000*s.ServerCPU.Seconds()/float64(max(r.CallSeconds, 1)), r.CallSeconds)
	fmt.Fprintf(w, "server RSS: peak %.0f MB (VmHWM), %.0f MB sampled peak, %.0f MB at the end\n", mb(r.PeakRSS), mb(s.PeakRSSSampled), mb(last.ServerRSS))
	fmt.Fprintf(w, "SIPp CPU: %.1fs = %.0f%% of one core, RSS %.0f MB at the end; harness (fake providers, polling) CPU %.1fs = %.0f%%\n",
		s.SIPpCPU.Seconds(), 100*s.SIPpCPU.Seconds()/s.Wall.Seconds(), mb(last.SIPpRSS), s.HarnessCPU.Seconds(), 100*s.HarnessCPU.Seconds()/s.Wall.Seconds())
	if r.Statements == 0 {
		fmt.Fprintln(w, "database statements: not measured on SQLite (run with -database-url on a PostgreSQL with pg_stat_statements)")
		return
	}
	fmt.Fprintf(w, "database statements (pg_stat_statements, from scheduling to completed): %d in all, %.0f of them the harness's %d polls (%.1f each); %.2f per lead\n",
		r.Statements, s.StatementsPolling, r.Polls, r.PollStatements, s.StatementsPerLead)
	for _, st := range r.TopStatements {
		fmt.Fprintf(w, "  %8d  %5.2f/lead  %s\n", st.Calls, float64(st.Calls)/float64(max(c.TotalLeads, 1)), trim(st.Query, 150))
	}
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func outcomeList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
