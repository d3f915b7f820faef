package local

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/tts"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// requireBinary skips the test when an external program is missing, unless
// PARLEY_REQUIRE_LOCAL_SPEECH is set: then a missing program is a failure.
func requireBinary(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("PARLEY_REQUIRE_LOCAL_SPEECH") != "" {
			t.Fatalf("%s is required (PARLEY_REQUIRE_LOCAL_SPEECH is set) but not installed: %v", name, err)
		}
		t.Skipf("%s not installed (Debian: apt-get install espeak-ng pocketsphinx pocketsphinx-en-us); set PARLEY_REQUIRE_LOCAL_SPEECH=1 to make this a failure", name)
	}
}

// requireSTT skips unless pocketsphinx and its English model are installed.
func requireSTT(t *testing.T) {
	t.Helper()
	requireBinary(t, "pocketsphinx_continuous")
	for _, p := range []string{DefaultModelDir, DefaultDict, DefaultLM} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("PARLEY_REQUIRE_LOCAL_SPEECH") != "" {
				t.Fatalf("pocketsphinx-en-us is required but %v", err)
			}
			t.Skipf("pocketsphinx-en-us not installed: %v", err)
		}
	}
}

// synthesize speaks text with the local TTS at rate and returns all of it.
func synthesize(t *testing.T, text string, rate int) []int16 {
	t.Helper()
	requireBinary(t, "espeak-ng")
	s, err := NewTTS(TTSConfig{}).Open(context.Background(), tts.Config{Voice: "en-us", SampleRate: rate})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Send(text); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return pcm
		}
		if err != nil {
			t.Fatal(err)
		}
		pcm = append(pcm, c.PCM...)
	}
}

// children returns the pids of this process's live children named comm
// (zombies included: a child not waited for is a leak too).
func children(t *testing.T, comm string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc to look for child processes: %v", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut at the last ')'.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == self && s[open+1:end] == comm {
			pids = append(pids, pid)
		}
	}
	return pids
}
