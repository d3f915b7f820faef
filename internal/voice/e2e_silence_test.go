package voice

import (
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
)

// TestE2ESilenceTimedOut: a caller who says nothing but keeps sending RTP
// (the raw Go caller over real SIP and RTP on loopback) hears the first
// message, then the configured checks at the configured silences, then the
// final message, and Parley hangs up with end_reason silence_timed_out. The
// silences are measured on the wire at the caller's socket, from the end of
// one prompt's audio to the start of the next.
func TestE2ESilenceTimedOut(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	const (
		first    = 1 * time.Second
		interval = 3 * time.Second
		slack    = 300 * time.Millisecond
	)
	prompts := []string{"Hello, this is Parley.", "Are you still there?", "I am still here.", "Goodbye for now."}
	aid, _ := e.assistant(t, map[string]any{
		"name":                        "Silence",
		"first_message":               prompts[0],
		"autonomous_silence_handling": true,
		"speech_config": map[string]any{
			"turn_taking": map[string]any{"endpointing_min_delay": 0.1},
			"silence": map[string]any{
				"messages":            []string{prompts[1], prompts[2]},
				"final_message":       prompts[3],
				"first_check_seconds": first.Seconds(), "interval_seconds": interval.Seconds(), "max_attempts": 3,
			},
		},
	})
	num := e.number(t, "+31201230091", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	id := e.waitLive(t, 10*time.Second)
	select {
	case <-c.bye:
	case <-time.After(30 * time.Second):
		t.Fatal("Parley did not hang up on the silent caller within 30 s")
	}
	hungUp := time.Now()
	row := e.waitFinal(t, id, 10*time.Second)
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndSilenceTimedOut) {
		t.Fatalf("call ended as %s / %s, want ended / %s", row.Status, deref(row.EndReason), call.EndSilenceTimedOut)
	}
	msgs := transcript(t, row)
	for _, p := range prompts {
		if !hasEntry(msgs, "assistant", p) {
			t.Errorf("transcript lacks %q: %+v", p, msgs)
		}
	}
	if n := countEntries(msgs, "assistant"); n != len(prompts) {
		t.Errorf("%d assistant entries, want %d: %+v", n, len(prompts), msgs)
	}

	var on, off []time.Time
	for done := false; !done; {
		select {
		case at := <-c.audioOn:
			on = append(on, at)
		case at := <-c.audioOff:
			off = append(off, at)
		default:
			done = true
		}
	}
	if len(on) != len(prompts) || len(off) < len(prompts)-1 {
		t.Fatalf("%d stretches of audio began and %d ended on the wire, want %d", len(on), len(off), len(prompts))
	}
	want := []time.Duration{first, interval, interval}
	for i, w := range want {
		got := on[i+1].Sub(off[i])
		t.Logf("silence before attempt %d: %v (configured %v, off by %+v)", i+1, got.Round(time.Millisecond), w, (got - w).Round(time.Millisecond))
		if got < w-slack || got > w+slack {
			t.Errorf("silence before attempt %d: %v, want %v ± %v", i+1, got, w, slack)
		}
	}
	if len(off) >= len(prompts) {
		t.Logf("BYE %v after the goodbye's last audio", hungUp.Sub(off[len(prompts)-1]).Round(time.Millisecond))
		if d := hungUp.Sub(off[len(prompts)-1]); d > time.Second {
			t.Errorf("BYE %v after the goodbye ended", d)
		}
	}
}
