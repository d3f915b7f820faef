package voicemail

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
)

// TestAccuracy runs the Detector on the synthetic greetings in testdata
// (scripts/voicemail-testdata.sh: espeak-ng speech, sox beeps, 8 kHz µ-law)
// and prints the accuracy table (go test -v -run TestAccuracy). Each
// machine file is a greeting, 0.5 s of quiet, a 0.4 s beep and 1.5 s of
// quiet; each human file an answer and 3.5 s of quiet.
//
// The transcript is the file's known text, given as one final once the
// line has been quiet for 700 ms after speech (an STT that delivers words
// only after the speaker stops; for a machine that is after its beep).
// Four ways are measured: the text alone (Classify), the audio alone, both
// (what a call uses), and both with the beep replaced by quiet (a machine
// that does not beep).
func TestAccuracy(t *testing.T) {
	cases := readCases(t)
	var table strings.Builder
	fmt.Fprintf(&table, "%-18s %-7s | %-7s | %-22s | %-22s | %-22s | %s\n",
		"file", "truth", "text", "audio only", "audio+text", "audio+text, no beep", "ready (beep ends)")
	type tally struct{ machine, human, falsePos int }
	score := map[string]*tally{"text": {}, "audio": {}, "both": {}, "nobeep": {}}
	count := func(mode string, truth string, machine bool) {
		s := score[mode]
		switch {
		case truth == "machine" && machine:
			s.machine++
		case truth == "human" && machine:
			s.falsePos++
		case truth == "human":
			s.human++
		}
	}
	var machines, humans int
	for _, c := range cases {
		pcm := readPCM(t, c.file)
		if c.truth == "machine" {
			machines++
		} else {
			humans++
		}
		text := Classify(c.text)
		count("text", c.truth, text == Machine)
		audioOnly := runCase(pcm, "")
		count("audio", c.truth, audioOnly.dec == MachineAnswered)
		both := runCase(pcm, c.text)
		count("both", c.truth, both.dec == MachineAnswered)
		noBeep := both
		if c.truth == "machine" {
			noBeep = runCase(withoutBeep(pcm), c.text)
		}
		count("nobeep", c.truth, noBeep.dec == MachineAnswered)
		ready := "-"
		if both.readyCue != "" {
			beepEnd := time.Duration(len(pcm)-tailSamples) * time.Second / sampleRate
			ready = fmt.Sprintf("%s at %.2fs (%.2fs)", both.readyCue, both.readyAt.Seconds(), beepEnd.Seconds())
		}
		fmt.Fprintf(&table, "%-18s %-7s | %-7s | %-22s | %-22s | %-22s | %s\n",
			c.file, c.truth, text, audioOnly, both, noBeep, ready)
		if both.dec != map[string]Decision{"machine": MachineAnswered, "human": HumanAnswered}[c.truth] {
			t.Errorf("%s: detected %v, want %s", c.file, both.dec, c.truth)
		}
		if c.truth == "machine" && both.readyCue != CueBeepEnd {
			t.Errorf("%s: ready on %q, want after the beep", c.file, both.readyCue)
		}
	}
	fmt.Fprintf(&table, "\n%-22s %-18s %s\n", "mode", "machine detected", "human false positives")
	for _, m := range []string{"text", "audio", "both", "nobeep"} {
		s := score[m]
		fmt.Fprintf(&table, "%-22s %d/%-16d %d/%d\n", map[string]string{"text": "text only", "audio": "audio only",
			"both": "audio+text", "nobeep": "audio+text, no beep"}[m], s.machine, machines, s.falsePos, humans)
	}
	t.Logf("voicemail detection accuracy (synthetic greetings):\n%s", table.String())
}

// tailSamples is the quiet after a machine file's beep.
const tailSamples = 1500 * sampleRate / 1000

type accCase struct{ file, truth, text string }

func readCases(t *testing.T) []accCase {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "cases.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []accCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.SplitN(sc.Text(), "|", 3)
		if len(p) == 3 {
			out = append(out, accCase{p[0], p[1], p[2]})
		}
	}
	if len(out) == 0 {
		t.Fatal("no cases in testdata/cases.txt")
	}
	return out
}

func readPCM(t *testing.T, name string) []int16 {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcm, rate, err := audio.ReadWAV(f)
	if err != nil || rate != sampleRate {
		t.Fatalf("%s: rate %d, %v", name, rate, err)
	}
	return pcm
}

// withoutBeep replaces a machine file's beep (the 0.4 s before its tail)
// with quiet.
func withoutBeep(pcm []int16) []int16 {
	out := append([]int16(nil), pcm...)
	end := len(out) - tailSamples
	clear(out[max(0, end-400*sampleRate/1000) : end+frameLen])
	return out
}

type caseResult struct {
	dec      Decision
	cue      Cue
	at       time.Duration
	readyCue Cue
	readyAt  time.Duration
}

func (r caseResult) String() string {
	return fmt.Sprintf("%s/%s %.2fs", r.dec, r.cue, r.at.Seconds())
}

// runCase feeds pcm frame by frame; a non-empty text is given as one
// final once the line has been quiet 700 ms after speech.
func runCase(pcm []int16, text string) caseResult {
	d := New(DefaultConfig())
	vad := audio.NewVAD(audio.DefaultVADConfig())
	var r caseResult
	note := func(ev Event) {
		switch ev {
		case Decided:
			r.dec, r.cue, r.at = d.Decision(), d.Cue(), d.Heard()
		case Ready:
			r.readyCue, r.readyAt = d.ReadyCue(), d.Heard()
		}
	}
	spoke, quiet, sent := false, 0, false
	for i := 0; i+frameLen <= len(pcm); i += frameLen {
		f := pcm[i : i+frameLen]
		v := vad.Process(f)
		switch {
		case v.Speaking:
			spoke, quiet = true, 0
		case spoke:
			quiet++
		}
		if text != "" && !sent && spoke && quiet >= 35 {
			sent = true
			note(d.Transcript(text, true))
		}
		note(d.Frame(f))
	}
	return r
}
