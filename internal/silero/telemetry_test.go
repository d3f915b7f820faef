package silero

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// probeEnv marks the child process TestNoTelemetry runs under strace.
const probeEnv = "PARLEY_SILERO_TELEMETRY_PROBE"

// TestNoTelemetry: ONNX Runtime's Linux builds carry Microsoft's 1DS
// telemetry, which about 9 s after the library starts resolves
// mobile.events.data.microsoft.com and posts usage events. Open turns it
// off. The test runs the model for 15 s in a child process under strace
// and fails on any network connection it tries (a name lookup included).
func TestNoTelemetry(t *testing.T) {
	if os.Getenv(probeEnv) != "" {
		t.Skip("this is the probe's process")
	}
	model(t)
	strace, err := exec.LookPath("strace")
	if err != nil {
		if os.Getenv("PARLEY_REQUIRE_SILERO") != "" {
			t.Fatal("strace is required to check that ONNX Runtime makes no connection (Debian: apt-get install strace)")
		}
		t.Skip("strace not installed (Debian: apt-get install strace)")
	}
	trace := filepath.Join(t.TempDir(), "strace.txt")
	cmd := exec.Command(strace, "-f", "-e", "trace=connect,sendto,sendmsg", "-o", trace,
		os.Args[0], "-test.run", "^TestTelemetryProbe$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), probeEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestTelemetryProbe") {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, "connect(") || strings.Contains(line, "sendto(") || strings.Contains(line, "sendmsg(") {
			calls = append(calls, strings.TrimSpace(line))
		}
	}
	if len(calls) > 0 {
		t.Fatalf("the process running the model tried the network (telemetry?):\n%s", strings.Join(calls, "\n"))
	}
}

// TestTelemetryProbe is TestNoTelemetry's child: the model at work for 15 s,
// in real time, as in a call.
func TestTelemetryProbe(t *testing.T) {
	if os.Getenv(probeEnv) == "" {
		t.Skip("run by TestNoTelemetry")
	}
	d := newDetector(t)
	pcm := readFixture(t, filepath.Join("..", "audio", "testdata", "hello.wav"))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range 750 {
		<-tick.C
		f := i % (len(pcm)/frameLen - 1)
		d.Process(pcm[f*frameLen : (f+1)*frameLen])
	}
}
