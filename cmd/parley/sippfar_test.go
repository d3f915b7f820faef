package main

// A SIPp UAS standing in for a SIP trunk and the callees behind it
// (testdata/sipp/uas_campaign.xml), for outbound-campaign end-to-end tests
// and benchmarks: each destination number behaves by its last digit, and
// the far end's log tells afterwards which numbers were dialled how often
// and how each call ended.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/media"
	"github.com/parley-voice/parley/internal/telephony"
)

// farEnd is a SIPp UAS standing in for a SIP trunk and its callees
// (uas_campaign.xml). By the destination number's last digit: 1 is busy
// (486), 2 rings until cancelled (487), 3 is a congested trunk (503), any
// other answers, sends RTP and hangs up after hangupAfter unless the caller
// hangs up first.
type farEnd struct {
	// Addr is the host:port it listens on (UDP), the trunk address to dial.
	Addr string
	log  string // SIPp's -log_file: one line per INVITE and per ended call
	dir  string
}

// startFarEnd starts the far end on a free 127.0.0.1 port; it is stopped
// in t.Cleanup. It skips the test without SIPp (needSIPp).
func startFarEnd(t *testing.T, hangupAfter time.Duration) *farEnd {
	t.Helper()
	bin := needSIPp(t)
	scenario, err := filepath.Abs(filepath.Join("testdata", "sipp", "uas_campaign.xml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// SIPp loads the RTP file named in the scenario from its working
	// directory when it starts.
	if err := os.WriteFile(filepath.Join(dir, "tone.ulaw"), toneUlaw(), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &farEnd{Addr: freeAddr(t), log: filepath.Join(dir, "calls.log"), dir: dir}
	_, port, _ := net.SplitHostPort(f.Addr)
	out, err := os.Create(filepath.Join(dir, "sipp.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-sf", scenario, "-i", "127.0.0.1", "-p", port, "-mi", "127.0.0.1", "-bind_local",
		"-t", "u1", "-d", fmt.Sprint(hangupAfter.Milliseconds()), "-l", "1000", "-aa", "-nostdin",
		"-trace_logs", "-log_file", f.log, "-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start sipp: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		out.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			f.dump(t)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !udpBound(port) {
		select {
		case <-exited: // its output is logged by the cleanup
			t.Fatalf("sipp far end exited at start: %v", cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipp far end not listening on %s after 10 s", f.Addr)
		}
	}
	return f
}

// Invites counts the INVITEs received per destination number (the user
// part as sent, e.g. "+31610000001"). Retransmissions are not counted: a
// new INVITE is a new call. It is safe to call while SIPp runs.
func (f *farEnd) Invites() map[string]int {
	n := map[string]int{}
	for _, fields := range f.lines() {
		if fields[0] == "INVITE" && len(fields) == 2 {
			n[fields[1]]++
		}
	}
	return n
}

// Ends lists per destination number how its calls ended, in order: busy,
// unavailable, cancelled, hungup-by-callee (the far end's BYE after
// hangupAfter) or hungup-by-caller. A call still up, or one the scenario
// failed, is not listed.
func (f *farEnd) Ends() map[string][]string {
	ends := map[string][]string{}
	for _, fields := range f.lines() {
		if fields[0] == "END" && len(fields) == 3 {
			ends[fields[1]] = append(ends[fields[1]], fields[2])
		}
	}
	return ends
}

// Errors is SIPp's error log: unexpected messages and failed scenario
// steps ("" when there were none).
func (f *farEnd) Errors() string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "errors.log"))
	return string(b)
}

// lines reads the complete lines of the log, split into fields.
func (f *farEnd) lines() [][]string {
	b, err := os.ReadFile(f.log)
	if err != nil {
		return nil // no INVITE yet: SIPp creates the file at start, but be lenient
	}
	if i := strings.LastIndexByte(string(b), '\n'); i >= 0 {
		b = b[:i+1] // a line being written is left for the next read
	} else {
		return nil
	}
	var out [][]string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 0 {
			out = append(out, fields)
		}
	}
	return out
}

// dump logs the tail of SIPp's output and its unexpected messages.
func (f *farEnd) dump(t *testing.T) {
	for _, name := range []string{"sipp.out", "errors.log"} {
		b, err := os.ReadFile(filepath.Join(f.dir, name))
		if err != nil || len(b) == 0 {
			continue
		}
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		t.Logf("sipp far end %s (tail):\n%s", name, b)
	}
}

// udpBound says whether something listens on 127.0.0.1:port over UDP
// (Linux: /proc/net/udp lists local addresses as hex IP:port).
func udpBound(port string) bool {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		time.Sleep(500 * time.Millisecond) // no procfs: give SIPp a moment
		return true
	}
	var p int
	fmt.Sscan(port, &p)
	return strings.Contains(string(b), fmt.Sprintf(" 0100007F:%04X ", p))
}

// toneUlaw is one second of a 440 Hz tone as raw 8 kHz μ-law, the RTP
// SIPp loops on answered calls (a whole number of cycles: no click).
func toneUlaw() []byte {
	pcm := make([]int16, media.SampleRate)
	for i := range pcm {
		pcm[i] = int16(4000 * math.Sin(2*math.Pi*440*float64(i)/media.SampleRate))
	}
	return audio.EncodeUlaw(nil, pcm)
}

// TestFarEndBehaviour dials the far end with Parley's own SIP stack (as
// `parley call` does) once per behaviour and checks what each side saw.
func TestFarEndBehaviour(t *testing.T) {
	const hangupAfter = 2 * time.Second
	fe := startFarEnd(t, hangupAfter)

	ports, err := media.ParsePortRange("33000-33099")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := telephony.New(telephony.Config{
		ListenAddr: "127.0.0.1:0", Media: media.Config{Ports: ports}, UserAgent: "parley-test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LoopbackMedia: true,
	}, refuseCalls{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { stop(); <-served }()

	dial := func(number string, ring, linger time.Duration) farCall {
		phone := &softphone{linger: linger, maxDur: time.Minute, done: make(chan callOutcome, 1), played: make(chan struct{})}
		_, err := srv.Dial(ctx, telephony.Outbound{Trunk: telephony.Trunk{Address: fe.Addr}, From: "+15550123", To: number, RingTimeout: ring}, phone)
		if err != nil {
			return farCall{err: err}
		}
		return farCall{out: <-phone.done}
	}
	calls := []struct {
		number       string
		ring, linger time.Duration
		check        func(t *testing.T, r farCall)
		end          string
	}{
		{"+31610000000", 10 * time.Second, time.Minute, func(t *testing.T, r farCall) {
			if r.err != nil {
				t.Fatalf("not answered: %v", r.err)
			}
			if r.out.ended != "the other side hung up (BYE)" || r.out.duration < hangupAfter-200*time.Millisecond {
				t.Errorf("ended %q after %s, want the far end's BYE after %s", r.out.ended, r.out.duration, hangupAfter)
			}
			if r.out.rtpIn == 0 || r.out.codec != "PCMU" {
				t.Errorf("codec %s, %d RTP packets received: want PCMU audio from the far end", r.out.codec, r.out.rtpIn)
			}
		}, "hungup-by-callee"},
		{"+31610000001", 10 * time.Second, time.Minute, wantDialError(486), "busy"},
		{"+31610000002", time.Second, time.Minute, func(t *testing.T, r farCall) {
			if !errors.Is(r.err, telephony.ErrNoAnswer) {
				t.Errorf("dial: %v, want %v", r.err, telephony.ErrNoAnswer)
			}
		}, "cancelled"},
		{"+31610000003", 10 * time.Second, time.Minute, wantDialError(503), "unavailable"},
		// Parley hangs up first, long before hangupAfter.
		{"+31610000004", 10 * time.Second, 300 * time.Millisecond, func(t *testing.T, r farCall) {
			if r.err != nil {
				t.Fatalf("not answered: %v", r.err)
			}
			if !strings.HasPrefix(r.out.ended, "this side hung up") {
				t.Errorf("ended %q, want this side's BYE", r.out.ended)
			}
		}, "hungup-by-caller"},
	}
	results := make([]farCall, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = dial(c.number, c.ring, c.linger)
		}()
	}
	wg.Wait()
	for i, c := range calls {
		t.Run(c.number, func(t *testing.T) { c.check(t, results[i]) })
	}

	// The far end logs each call's end once its last message has arrived
	// (the ACK of a refusal, the answer to a BYE).
	want := map[string][]string{}
	invites := map[string]int{}
	for _, c := range calls {
		want[c.number] = []string{c.end}
		invites[c.number] = 1
	}
	deadline := time.Now().Add(10 * time.Second)
	for !reflect.DeepEqual(fe.Ends(), want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := fe.Ends(); !reflect.DeepEqual(got, want) {
		t.Errorf("far end's call ends %v, want %v", got, want)
	}
	if got := fe.Invites(); !maps.Equal(got, invites) {
		t.Errorf("far end's INVITEs per number %v, want %v", got, invites)
	}
	if e := fe.Errors(); e != "" {
		t.Errorf("far end's errors:\n%s", e)
	}
}

// farCall is how one dialled call went, seen from Parley's side.
type farCall struct {
	err error       // Dial's error: the call was not answered
	out callOutcome // the answered call's course
}

// wantDialError checks that the far end refused the call with code.
func wantDialError(code int) func(*testing.T, farCall) {
	return func(t *testing.T, r farCall) {
		var de *telephony.DialError
		if !errors.As(r.err, &de) || de.Code != code {
			t.Errorf("dial: %v, want sip %d", r.err, code)
		}
	}
}

// TestFarEndLoad checks that the far end keeps up with a campaign's pace:
// 40 new calls a second, about 200 up at once. It is slow (a minute) and
// heavy, so it runs only with PARLEY_FAREND_LOAD=1.
func TestFarEndLoad(t *testing.T) {
	if os.Getenv("PARLEY_FAREND_LOAD") == "" {
		t.Skip("set PARLEY_FAREND_LOAD=1 to run (about a minute, 200 concurrent calls)")
	}
	const (
		total       = 2000
		rate        = 40 // new calls per second
		hangupAfter = 7 * time.Second
	)
	fe := startFarEnd(t, hangupAfter)
	ports, err := media.ParsePortRange("34000-35999")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := telephony.New(telephony.Config{
		ListenAddr: "127.0.0.1:0", Media: media.Config{Ports: ports}, UserAgent: "parley-test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LoopbackMedia: true,
	}, refuseCalls{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { stop(); <-served }()

	var (
		mu       sync.Mutex
		outcomes = map[string]int{}
		up, peak int
	)
	count := func(k string, d int) {
		mu.Lock()
		defer mu.Unlock()
		outcomes[k]++
		up += d
		peak = max(peak, up)
	}
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for i := range total {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			phone := &softphone{linger: time.Minute, maxDur: time.Minute, done: make(chan callOutcome, 1), played: make(chan struct{})}
			_, err := srv.Dial(ctx, telephony.Outbound{Trunk: telephony.Trunk{Address: fe.Addr}, From: "+15550123",
				To: fmt.Sprintf("+3161%07d", i), RingTimeout: 3 * time.Second}, phone)
			var de *telephony.DialError
			switch {
			case errors.As(err, &de):
				count(fmt.Sprint(de.Code), 0)
			case err != nil:
				count(err.Error(), 0)
			default:
				count("answered", 1)
				out := <-phone.done
				count(out.ended, -1)
				if out.rtpIn == 0 {
					count("no rtp", 0)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("outcomes %v, peak %d calls up", outcomes, peak)
	inv := fe.Invites()
	if len(inv) != total {
		t.Errorf("far end saw %d numbers, want %d", len(inv), total)
	}
	for n, c := range inv {
		if c != 1 {
			t.Errorf("%s: %d INVITEs", n, c)
		}
	}
	if outcomes["answered"] != total*7/10 || outcomes["486"] != total/10 || outcomes["503"] != total/10 ||
		outcomes[telephony.ErrNoAnswer.Error()] != total/10 || outcomes["no rtp"] != 0 {
		t.Errorf("outcomes %v", outcomes)
	}
	if e := fe.Errors(); e != "" {
		t.Errorf("far end's errors:\n%s", e)
	}
}
