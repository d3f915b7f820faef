package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
)

// TestQuickstart walks the README's quickstart with the built binary, as a
// new user on a machine without a sound card would: `parley
// simulate-providers`, `parley serve` on an empty data directory (which
// prints the API key), an assistant and a number over the API, one inbound
// call with `parley call` playing docs/quickstart/caller.wav, and one
// outbound call through a SIP trunk that points at `parley call --listen`.
// Both calls must end normally with the caller's words and the assistant's
// replies in their transcripts, and both softphones must have heard the
// assistant.
func TestQuickstart(t *testing.T) {
	bin := parleyBinary(t)
	caller, err := filepath.Abs("../../docs/quickstart/caller.wav")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	sim := freeAddr(t)
	simulated := startProc(t, bin, nil, "simulate-providers", "--addr", sim)
	waitFor(t, 15*time.Second, "the simulated providers", func() bool { return strings.Contains(simulated.stdout.String(), "Start the server with") })

	httpAddr, sipAddr := freeAddr(t), freeAddr(t)
	server := startProc(t, bin, []string{
		"PARLEY_DATA_DIR=" + filepath.Join(dir, "data"), "PARLEY_HTTP_ADDR=" + httpAddr, "PARLEY_SIP_ADDR=" + sipAddr,
		"PARLEY_RTP_PORTS=43000-43999",
		"PARLEY_DEEPGRAM_BASE_URL=ws://" + sim, "PARLEY_DEEPGRAM_API_KEY=simulated",
		"PARLEY_OPENAI_BASE_URL=http://" + sim + "/v1", "PARLEY_OPENAI_API_KEY=simulated",
		"PARLEY_ELEVENLABS_BASE_URL=ws://" + sim, "PARLEY_ELEVENLABS_API_KEY=simulated",
		// As in the other end-to-end tests: a test machine loaded by other
		// packages' tests must not turn these calls away with 503.
		"PARLEY_MAX_WRITE_LATENCY=-1ms", "PARLEY_MAX_SCHED_LATENCY=-1ms",
	}, "serve")
	keyRE := regexp.MustCompile(`export PARLEY_API_KEY=(\S+)`)
	waitFor(t, 30*time.Second, "the API key on stdout", func() bool { return keyRE.MatchString(server.stdout.String()) })
	key := keyRE.FindStringSubmatch(server.stdout.String())[1]
	if strings.Contains(server.stderr.String(), key) {
		t.Fatal("the API key is in the log")
	}
	base := "http://" + httpAddr
	api := func(method, path, body string, out any) {
		t.Helper()
		apiRequest(t, base, key, method, path, body, out)
	}

	var a struct{ Assistant struct{ ID string } }
	api("POST", "/assistants", `{"name":"Demo","first_message":"Hello! How can I help?","llm_config":{"provider":"openai","model":"gpt-4.1","tools":[{"type":"end_call"}]}}`, &a)
	var n struct{ Number struct{ ID string } }
	api("POST", "/numbers", `{"phone_number":"+15550100","assistant_id":"`+a.Assistant.ID+`"}`, &n)

	// Inbound: dial the number.
	heardIn := filepath.Join(dir, "inbound-heard.wav")
	in := startProc(t, bin, nil, "call", "--server", sipAddr, "--play", caller, "--record", heardIn, "--linger", "3s", "+15550100")
	in.wait(t, 60*time.Second)
	t.Logf("parley call:\n%s", in.stdout.String())

	// Outbound: a trunk pointing at a listening `parley call`.
	phone := freeAddr(t)
	var tr struct {
		Trunk struct{ ID string } `json:"sip_trunk"`
	}
	api("POST", "/sip-trunks", `{"name":"Local softphone","provider":"local","address":"`+phone+`"}`, &tr)
	api("PATCH", "/numbers/"+n.Number.ID, `{"transfer_trunk_id":"`+tr.Trunk.ID+`"}`, nil)
	heardOut := filepath.Join(dir, "outbound-heard.wav")
	out := startProc(t, bin, nil, "call", "--listen", phone, "--play", caller, "--record", heardOut, "--linger", "3s", "--rtp-ports", "32000-32999")
	waitFor(t, 15*time.Second, "parley call --listen", func() bool { return strings.Contains(out.stdout.String(), "waiting for one call") })
	api("POST", "/calls/outbound", `{"destination":"+15550199","assistant_id":"`+a.Assistant.ID+`"}`, nil)
	out.wait(t, 60*time.Second)
	t.Logf("parley call --listen:\n%s", out.stdout.String())

	for _, f := range []string{heardIn, heardOut} {
		if s := soundIn(t, f); s < time.Second {
			t.Errorf("%s: %v of sound heard, want the assistant's greeting and replies", f, s)
		}
	}
	type listed struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		EndReason string `json:"end_reason"`
		Messages  []struct{ Role, Content string }
	}
	var calls struct{ Calls []listed }
	waitFor(t, 15*time.Second, "both calls to end", func() bool {
		api("GET", "/calls", "", &calls)
		ended := 0
		for _, c := range calls.Calls {
			if c.Status == "ended" {
				ended++
			}
		}
		return ended == 2
	})
	if len(calls.Calls) != 2 || strings.HasPrefix(calls.Calls[0].ID, "call-outbound-") == strings.HasPrefix(calls.Calls[1].ID, "call-outbound-") {
		t.Fatalf("calls %+v, want one inbound and one outbound", calls.Calls)
	}
	for _, c := range calls.Calls {
		said := map[string][]string{}
		for _, m := range c.Messages {
			said[m.Role] = append(said[m.Role], m.Content)
		}
		if c.EndReason != "user_hangup" || len(said["user"]) < 2 || len(said["assistant"]) < 2 || said["user"][0] != "I would like to book an appointment." {
			b, _ := json.MarshalIndent(c, "", "  ")
			t.Errorf("call %s ended as %s with transcript %s; want user_hangup, both of the caller's sentences and the assistant's replies", c.ID, c.EndReason, b)
		}
	}
}

// soundIn is how much of a recorded WAV file is sound rather than silence.
func soundIn(t *testing.T, path string) time.Duration {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcm, rate, err := audio.ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	frame := rate / 50
	var d time.Duration
	for i := 0; i+frame <= len(pcm); i += frame {
		if audio.RMS(pcm[i:i+frame]) > soundLevel {
			d += 20 * time.Millisecond
		}
	}
	return d
}

// proc is a parley subprocess with its stdout and stderr kept apart.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	done           chan error
}

func startProc(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	// Only our settings: the caller's PARLEY_ variables must not leak in.
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case err := <-p.done:
			p.done <- err
		default: // still running: interrupt it (only this process, by its pid)
			p.cmd.Process.Signal(os.Interrupt)
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("parley %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout.String(), tail(p.stderr.String(), 8000))
		}
	})
	return p
}

// wait waits for the process to exit successfully.
func (p *proc) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("parley %s: %v\n%s%s", strings.Join(p.cmd.Args[1:], " "), err, p.stdout.String(), p.stderr.String())
		}
	case <-time.After(d):
		t.Fatalf("parley %s did not finish within %s", strings.Join(p.cmd.Args[1:], " "), d)
	}
}

// TestCallCommandArguments: `parley call` refuses what it cannot do
// before it binds anything.
func TestCallCommandArguments(t *testing.T) {
	wav := filepath.Join(t.TempDir(), "in.wav")
	if err := os.WriteFile(wav, []byte("not a wav file"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give the number"},
		{[]string{"--listen", "127.0.0.1:0", "+15550100"}, "dials nothing"},
		{[]string{"--server", "parley.example.com", "+15550100"}, "--server"},
		{[]string{"--rtp-ports", "9-1", "+15550100"}, "--rtp-ports"},
		{[]string{"--play", wav, "+15550100"}, "--play"},
		{[]string{"--play", filepath.Join(t.TempDir(), "missing.wav"), "+15550100"}, "--play"},
	} {
		var out, errb lockedBuffer
		err := run(t.Context(), append([]string{"call"}, tc.args...), nil, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parley call %v = %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
}
