package silence

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// step is something that happens on the line at a time (ms from start).
type step struct {
	at int
	op string // "heard", "busy", "idle"
}

// simulate runs a machine over a script for until ms. Every attempt makes
// the line busy for play ms (its prompt playing), like the pipeline does;
// play < 0 leaves the line idle (a prompt with nothing to say). It returns
// the attempts as "ms kind#n text".
func simulate(cfg Config, play int, script []step, until int) []string {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ms := func(t time.Time) int { return int(t.Sub(t0) / time.Millisecond) }
	m := New(cfg, t0)
	var out []string
	playEnd := -1
	script = slices.Clone(script)
	for now := 0; now <= until; now++ {
		if now == playEnd {
			m.Busy(at(now), false)
			playEnd = -1
		}
		for len(script) > 0 && script[0].at == now {
			switch script[0].op {
			case "heard":
				m.Heard(at(now))
			case "busy":
				m.Busy(at(now), true)
			case "idle":
				m.Busy(at(now), false)
			}
			script = script[1:]
		}
		if due, ok := m.Due(); ok && ms(due) <= now {
			if ms(due) != now {
				panic(fmt.Sprintf("due %d missed at %d", ms(due), now))
			}
			a, ok := m.Tick(at(now))
			if !ok {
				panic("due but no action")
			}
			out = append(out, fmt.Sprintf("%d %s#%d %s", now, a.Kind, a.Attempt, a.Text))
			if play >= 0 {
				m.Busy(at(now), true)
				playEnd = now + play
				if play == 0 {
					m.Busy(at(now), false)
					playEnd = -1
				}
			}
		}
	}
	return out
}

func TestMachine(t *testing.T) {
	base := Config{Messages: []string{"Still there?", "Hello?"}, FinalMessage: "Bye.", FirstCheck: 3 * time.Second, Interval: 12 * time.Second, MaxAttempts: 3}
	with := func(f func(*Config)) Config { c := base; f(&c); return c }
	tests := []struct {
		name   string
		cfg    Config
		play   int
		script []step
		until  int
		want   []string
	}{{
		name: "first check, interval after each prompt played, final at max_attempts",
		cfg:  base, play: 1000, until: 60000,
		want: []string{"3000 check#1 Still there?", "16000 check#2 Hello?", "29000 final#3 Bye."},
	}, {
		name: "prompts that take no time: 3 s, 15 s, 27 s",
		cfg:  base, play: 0, until: 60000,
		want: []string{"3000 check#1 Still there?", "15000 check#2 Hello?", "27000 final#3 Bye."},
	}, {
		name: "nothing before the first check",
		cfg:  base, play: 0, until: 2999,
		want: nil,
	}, {
		name: "busy line stops the clock; idle restarts it in full",
		cfg:  base, play: 0, until: 10000,
		script: []step{{1000, "busy"}, {2500, "idle"}},
		want:   []string{"5500 check#1 Still there?"},
	}, {
		name: "the clock does not run while busy, however long",
		cfg:  base, play: 0, until: 60000,
		script: []step{{0, "busy"}},
		want:   nil,
	}, {
		name: "caller heard resets the count: first check again, not interval",
		cfg:  base, play: 0, until: 20000,
		script: []step{{5000, "heard"}},
		want:   []string{"3000 check#1 Still there?", "8000 check#1 Still there?", "20000 check#2 Hello?"},
	}, {
		name: "caller heard while busy: the clock restarts when the line is idle",
		cfg:  base, play: 0, until: 20000,
		script: []step{{4000, "busy"}, {4100, "heard"}, {6000, "idle"}},
		want:   []string{"3000 check#1 Still there?", "9000 check#1 Still there?"},
	}, {
		name: "fewer messages than checks: the last is repeated",
		cfg:  with(func(c *Config) { c.MaxAttempts = 5 }), play: 0, until: 60000,
		want: []string{"3000 check#1 Still there?", "15000 check#2 Hello?", "27000 check#3 Hello?", "39000 check#4 Hello?", "51000 final#5 Bye."},
	}, {
		name: "reporting idle again while idle does not restart the clock",
		cfg:  base, play: 0, until: 3000,
		script: []step{{1000, "idle"}, {2000, "idle"}},
		want:   []string{"3000 check#1 Still there?"},
	}, {
		name: "reporting busy again while busy changes nothing",
		cfg:  base, play: 0, until: 6000,
		script: []step{{1000, "busy"}, {2000, "busy"}, {2500, "idle"}},
		want:   []string{"5500 check#1 Still there?"},
	}, {
		name: "no messages: the model writes the checks and the goodbye",
		cfg:  with(func(c *Config) { c.Messages, c.FinalMessage = nil, "" }), play: 0, until: 60000,
		want: []string{"3000 check#1 ", "15000 check#2 ", "27000 final#3 "},
	}, {
		name: "one attempt: it is the final one",
		cfg:  with(func(c *Config) { c.MaxAttempts = 1 }), play: 0, until: 60000,
		want: []string{"3000 final#1 Bye."},
	}, {
		name: "zero attempts act as one",
		cfg:  with(func(c *Config) { c.MaxAttempts = 0 }), play: 0, until: 60000,
		want: []string{"3000 final#1 Bye."},
	}, {
		name: "a prompt that never made the line busy: next one an interval after it",
		cfg:  base, play: -1, until: 60000,
		want: []string{"3000 check#1 Still there?", "15000 check#2 Hello?", "27000 final#3 Bye."},
	}, {
		name: "nothing after the final attempt, even if the caller is heard",
		cfg:  with(func(c *Config) { c.MaxAttempts = 1 }), play: 0, until: 60000,
		script: []step{{4000, "heard"}},
		want:   []string{"3000 final#1 Bye."},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := simulate(tt.cfg, tt.play, tt.script, tt.until)
			if !slices.Equal(got, tt.want) {
				t.Errorf("attempts\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestTickBeforeDueDoesNothing(t *testing.T) {
	t0 := time.Unix(0, 0)
	m := New(Config{FirstCheck: time.Second, Interval: 2 * time.Second, MaxAttempts: 2}, t0)
	if _, ok := m.Tick(t0.Add(999 * time.Millisecond)); ok {
		t.Fatal("attempt before the first check")
	}
	if a, ok := m.Tick(t0.Add(time.Second)); !ok || a.Kind != Check || m.Attempts() != 1 {
		t.Fatalf("at the first check: %+v %v attempts %d", a, ok, m.Attempts())
	}
	m.Busy(t0.Add(time.Second), true)
	if _, ok := m.Due(); ok {
		t.Fatal("due while busy")
	}
	if _, ok := m.Tick(t0.Add(time.Hour)); ok {
		t.Fatal("attempt while busy")
	}
}
