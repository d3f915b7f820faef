package audio

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// requireTool returns the path of an external program the test needs. It
// skips the test when the program is missing, unless
// PARLEY_REQUIRE_LOCAL_SPEECH is set: then a missing program is a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("PARLEY_REQUIRE_LOCAL_SPEECH") != "" {
			t.Fatalf("%s is required (PARLEY_REQUIRE_LOCAL_SPEECH is set) but not installed: %v", name, err)
		}
		t.Skipf("%s not installed (Debian: apt-get install sox espeak-ng); set PARLEY_REQUIRE_LOCAL_SPEECH=1 to make this a failure", name)
	}
	return path
}

// readFixture reads testdata/name and checks that it is 8 kHz.
func readFixture(t *testing.T, name string) []int16 {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcm, rate, err := ReadWAV(f)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	if rate != 8000 {
		t.Fatalf("%s: rate %d, want 8000", name, rate)
	}
	return pcm
}

// whiteNoise returns n samples of deterministic uniform white noise with the
// given RMS.
func whiteNoise(n int, rms float64, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	peak := rms * 1.7320508075688772 // uniform on [-p, p] has RMS p/√3
	out := make([]int16, n)
	for i := range out {
		out[i] = int16((rng.Float64()*2 - 1) * peak)
	}
	return out
}

// runTool runs a program and fails the test with its output when it fails.
func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
