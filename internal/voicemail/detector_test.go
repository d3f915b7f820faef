package voicemail

import (
	"math/rand/v2"
	"testing"
	"time"
)

// segment is a stretch of synthetic line audio.
type segment struct {
	kind string // "talk", "quiet", "beep"
	dur  time.Duration
}

// line renders segments into 20 ms frames: talk is a gliding harmonic
// buzz, beep a 1 kHz tone, quiet low noise.
func line(segs ...segment) [][]int16 {
	r := rand.New(rand.NewPCG(7, 8))
	var out [][]int16
	var ph, bph float64
	for _, s := range segs {
		for i := range int(s.dur / (20 * time.Millisecond)) {
			switch s.kind {
			case "talk":
				out = append(out, vowel(130+30*float64(i%20)/20, 5000, &ph))
			case "beep":
				out = append(out, sine(1000, 8000, frameLen, &bph))
			default:
				out = append(out, noise(r, 20, frameLen))
			}
		}
	}
	return out
}

type transcriptAt struct {
	at    time.Duration
	text  string
	final bool
}

type outcome struct {
	dec               Decision
	cue               Cue
	decidedAt         time.Duration
	readyCue          Cue
	readyAt           time.Duration
	decidedBeforeText bool
}

func run(cfg Config, audio [][]int16, ts []transcriptAt) outcome {
	d := New(cfg)
	var o outcome
	note := func(ev Event, i int) {
		switch ev {
		case Decided:
			o.dec, o.cue, o.decidedAt = d.Decision(), d.Cue(), frames(i)
		case Ready:
			o.readyCue, o.readyAt = d.ReadyCue(), frames(i)
		}
	}
	for i, f := range audio {
		for _, tr := range ts {
			if tr.at == frames(i) {
				note(d.Transcript(tr.text, tr.final), i)
			}
		}
		note(d.Frame(f), i+1)
	}
	return o
}

func TestDetector(t *testing.T) {
	cfg := DefaultConfig()
	s := func(kind string, ms int) segment { return segment{kind, time.Duration(ms) * time.Millisecond} }
	tests := []struct {
		name        string
		audio       [][]int16
		ts          []transcriptAt
		want        Decision
		cue         Cue
		within      time.Duration // decided by then
		readyCue    Cue
		readyAfter  time.Duration // Ready no earlier than this
		readyWithin time.Duration
	}{
		{
			name:  "hello? then quiet",
			audio: line(s("quiet", 400), s("talk", 500), s("quiet", 4000)),
			ts:    []transcriptAt{{1100 * time.Millisecond, "Hello?", true}},
			want:  HumanAnswered, cue: CueHumanAnswer, within: 1800 * time.Millisecond,
		},
		{
			name:  "silent line: timeout, a person waiting",
			audio: line(s("quiet", 6000)),
			want:  HumanAnswered, cue: CueTimeout, within: 3100 * time.Millisecond,
		},
		{
			name:  "short unclear answer, no transcript",
			audio: line(s("talk", 800), s("quiet", 5000)),
			want:  HumanAnswered, cue: CueTimeout, within: 3100 * time.Millisecond,
		},
		{
			name: "greeting with a phrase, then the beep",
			audio: line(s("quiet", 300), s("talk", 1500), s("quiet", 300), s("talk", 2000), s("quiet", 500),
				s("beep", 400), s("quiet", 3000)),
			ts:   []transcriptAt{{1400 * time.Millisecond, "Hi, you've reached", false}},
			want: MachineAnswered, cue: CuePhrase, within: 1500 * time.Millisecond,
			readyCue: CueBeepEnd, readyAfter: 5000 * time.Millisecond, readyWithin: 5100 * time.Millisecond,
		},
		{
			name:  "long greeting, no words, no beep",
			audio: line(s("talk", 2000), s("quiet", 300), s("talk", 3000), s("quiet", 4000)),
			want:  MachineAnswered, cue: CueLongGreeting, within: 4200 * time.Millisecond,
			readyCue: CueGreetingEnd, readyAfter: 6800 * time.Millisecond, readyWithin: 7000 * time.Millisecond,
		},
		{
			name:  "beep only",
			audio: line(s("quiet", 500), s("beep", 500), s("quiet", 2000)),
			want:  MachineAnswered, cue: CueBeep, within: 700 * time.Millisecond,
			readyCue: CueBeepEnd, readyAfter: 1000 * time.Millisecond, readyWithin: 1100 * time.Millisecond,
		},
		{
			name: "a 'hello' final mid-greeting does not decide while the machine talks on",
			audio: line(s("talk", 600), s("quiet", 300), s("talk", 3800), s("quiet", 400), s("beep", 300),
				s("quiet", 2000)),
			ts:   []transcriptAt{{800 * time.Millisecond, "Hello.", true}},
			want: MachineAnswered, cue: CueLongGreeting, within: 4200 * time.Millisecond,
			readyCue: CueBeepEnd, readyAfter: 5400 * time.Millisecond, readyWithin: 5500 * time.Millisecond,
		},
		{
			name:  "talking past the bound",
			audio: line(s("quiet", 2800), s("talk", 500), s("quiet", 100), s("talk", 5000)),
			want:  MachineAnswered, within: cfg.Bound(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := run(cfg, tt.audio, tt.ts)
			if o.dec != tt.want || (tt.cue != "" && o.cue != tt.cue) {
				t.Fatalf("decision %v (%s) at %v, want %v (%s)", o.dec, o.cue, o.decidedAt, tt.want, tt.cue)
			}
			if o.decidedAt > tt.within {
				t.Errorf("decided at %v, want within %v", o.decidedAt, tt.within)
			}
			if o.readyCue != tt.readyCue {
				t.Fatalf("ready %q at %v, want %q", o.readyCue, o.readyAt, tt.readyCue)
			}
			if tt.readyCue != "" && (o.readyAt < tt.readyAfter || o.readyAt > tt.readyWithin) {
				t.Errorf("ready at %v, want in [%v, %v]", o.readyAt, tt.readyAfter, tt.readyWithin)
			}
		})
	}
}

func TestDetectorOnlyFirstUtterance(t *testing.T) {
	d := New(DefaultConfig())
	for _, f := range line(segment{"talk", 500 * time.Millisecond}) {
		d.Frame(f)
	}
	d.Transcript("Hello?", true)
	for _, f := range line(segment{"quiet", time.Second}) {
		d.Frame(f)
	}
	if d.Decision() != HumanAnswered || !d.Done() {
		t.Fatalf("decision %v, done %v", d.Decision(), d.Done())
	}
	if d.Transcript("please leave a message", true) != NoEvent || d.Decision() != HumanAnswered {
		t.Fatal("a later utterance changed the decision")
	}
}

func TestDetectorMaxWait(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxWait = 2 * time.Second
	d := New(cfg)
	d.Transcript("leave a message", false)
	if d.Decision() != MachineAnswered {
		t.Fatal("no machine decision")
	}
	// Music on the line after the greeting: never quiet, no beep.
	var ready time.Duration
	for i, f := range line(segment{"talk", 4 * time.Second}) {
		if d.Frame(f) == Ready {
			ready = frames(i + 1)
			break
		}
	}
	if d.ReadyCue() != CueMaxWait || ready != cfg.MaxWait {
		t.Fatalf("ready %q at %v, want max_wait at %v", d.ReadyCue(), ready, cfg.MaxWait)
	}
}
