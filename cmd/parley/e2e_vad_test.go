package main

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

// sileroDir is where scripts/silero-setup.sh put ONNX Runtime and the
// model; the test skips when they are missing, unless PARLEY_REQUIRE_SILERO
// is set (CI).
func sileroDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PARLEY_SILERO_DIR")
	if dir == "" {
		dir = "/usr/local/lib/parley/silero"
	}
	for _, f := range []string{"libonnxruntime.so.1", "silero_vad.onnx"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			if os.Getenv("PARLEY_REQUIRE_SILERO") != "" {
				t.Fatalf("Silero VAD is required (PARLEY_REQUIRE_SILERO is set): %v", err)
			}
			t.Skipf("Silero VAD not installed (scripts/silero-setup.sh): %v", err)
		}
	}
	return dir
}

// knockAudio is d of what an open line picks up while a caller listens and
// handles the phone: every 1–2 s a 0.6 s rustle (low-passed noise, as loud
// as speech, its level wavering) and no word.
func knockAudio(d time.Duration) []int16 {
	r := rand.New(rand.NewPCG(5, 6))
	n := int(d.Seconds() * 8000)
	out := make([]int16, n)
	for t := 2000; t < n; t += 8000 + r.IntN(8000) {
		var lp float64
		for j := 0; j < 4800 && t+j < n; j++ {
			lp += 0.3 * (r.NormFloat64() - lp)
			env := math.Sin(math.Pi*float64(j)/4800) * (0.6 + 0.4*math.Sin(float64(j)/300))
			out[t+j] = int16(max(-32768, min(32767, 20000*lp*env)))
		}
	}
	return out
}

// TestE2EVADKnocks: while the assistant gives a long answer, the caller's
// line carries rustles but no word. The energy VAD takes them for the
// caller starting to talk and holds the answer, again at each rustle, until
// the caller hangs up; with PARLEY_VAD=silero the answer plays through
// untouched. The caller's real turn before it is heard by both.
func TestE2EVADKnocks(t *testing.T) {
	if inNetns(t) {
		return
	}
	dir := sileroDir(t)
	long := "Of course. We have openings at eight, nine, ten and eleven in the morning, and also in the afternoon at one, two, three and four, and on Wednesday there is more."
	for _, vad := range []string{"energy", "silero"} {
		t.Run(vad, func(t *testing.T) {
			s := startE2EWith(t, openaifake.Config{Replies: []openaifake.Reply{{Text: long}}}, "PARLEY_VAD="+vad, "PARLEY_SILERO_DIR="+dir)
			s.setupNumber(t, "")
			// The answer starts about 6.5 s in and lasts about 10 s; the
			// rustles run from 8 s to 15 s.
			wav := callerWAV(t, t.TempDir(), []segment{
				{silence: 4 * time.Second}, {say: "book an appointment for tomorrow morning"},
				{silence: 8*time.Second - 6400*time.Millisecond}, {pcm: knockAudio(7 * time.Second)}, {silence: 6 * time.Second},
			})
			heard := dial(t, s, wav)
			time.Sleep(300 * time.Millisecond)
			c := s.onlyCall(t)
			var full struct {
				ID      string `json:"id"`
				Metrics []struct {
					Turn              int  `json:"turn"`
					Interrupted       bool `json:"interrupted"`
					FalseInterruption bool `json:"false_interruption"`
				} `json:"metrics"`
			}
			var list struct {
				Calls []struct {
					ID string `json:"id"`
				}
			}
			s.api(t, "GET", "/calls", "", &list)
			s.api(t, "GET", "/calls/"+list.Calls[0].ID, "", &full)
			p := speechProfile(heard)
			t.Logf("heard (100 ms windows): %s; messages %+v; metrics %+v", spans(p), c.Messages, full.Metrics)
			if len(c.Messages) < 2 || c.Messages[1].Role != "user" || !strings.Contains(c.Messages[1].Content, "appointment") {
				t.Fatalf("the caller's turn is not in the transcript: %+v", c.Messages)
			}
			through := speechIn(p, 8.5, 14.5)
			switch vad {
			case "energy":
				// Why Silero is offered. If this stops failing, the rustles
				// no longer tell the VADs apart and the test proves nothing.
				if through > 0.4 {
					t.Errorf("the energy VAD let the rustles pass (answer heard in %.0f%% of 8.5–14.5 s): the test's noise is too weak", through*100)
				}
			case "silero":
				if through < 0.6 {
					t.Errorf("the answer was not heard through the rustles (%.0f%% of 8.5–14.5 s)", through*100)
				}
				if len(c.Messages) != 3 || c.Messages[2].Content != long || c.Messages[2].Interrupted {
					t.Errorf("the answer is not recorded whole: %+v", c.Messages)
				}
				for _, m := range full.Metrics {
					if m.Interrupted || m.FalseInterruption {
						t.Errorf("Silero took the rustles for speech: metrics %+v", full.Metrics)
					}
				}
			}
		})
	}
}
