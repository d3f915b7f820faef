package voice

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/call"
)

// countingVAD is a Config.NewVAD detector: any frame with sound is voiced.
// It counts the frames it was given and its closes.
type countingVAD struct {
	mu          sync.Mutex
	track       audio.SpeechTracker
	frames      int
	starts      int
	closes      int
	framesAtEnd int // frames seen when closed
}

func (v *countingVAD) Process(frame []int16) audio.VADResult {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.frames++
	r := v.track.Step(audio.RMS(frame) > 100)
	if r.Event == audio.SpeechStart {
		v.starts++
	}
	return r
}

func (v *countingVAD) Delays() (int, int) { return v.track.StartFrames, v.track.EndFrames }

func (v *countingVAD) closeCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.closes
}

func (v *countingVAD) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closes++
	v.framesAtEnd = v.frames
	return nil
}

// TestE2EConfiguredVAD: a call's caller audio goes to the detector
// Config.NewVAD made for it, which is closed once when the call ends; a
// detector that cannot be made leaves the call on the energy VAD.
func TestE2EConfiguredVAD(t *testing.T) {
	t.Run("used and closed", func(t *testing.T) {
		var mu sync.Mutex
		var made []*countingVAD
		e := newE2E(t, e2eOptions{transcripts: []string{"what are your opening hours"}, newVAD: func() (VAD, error) {
			v := &countingVAD{track: audio.SpeechTracker{StartFrames: 5, EndFrames: 10}}
			mu.Lock()
			made = append(made, v)
			mu.Unlock()
			return v, nil
		}})
		aid, _ := e.assistant(t, map[string]any{"name": "VAD", "first_message": "Hello."})
		num := e.number(t, "+31201230092", &aid, nil)
		c := dialRaw(t, e.srv, num.PhoneNumber)
		id := e.waitLive(t, 10*time.Second)
		time.Sleep(time.Second)
		c.speak(800 * time.Millisecond)
		time.Sleep(2 * time.Second)
		c.hangup(t)
		row := e.waitFinal(t, id, 10*time.Second)
		if row.Status != call.StatusEnded {
			t.Fatalf("call ended as %s", row.Status)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := len(made)
			closed := n == 1 && made[0].closeCount() > 0
			mu.Unlock()
			if closed || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(made) != 1 {
			t.Fatalf("%d detectors made for one call", len(made))
		}
		v := made[0]
		v.mu.Lock()
		defer v.mu.Unlock()
		// About 3.8 s of caller audio: 190 frames.
		if v.framesAtEnd < 100 || v.starts != 1 || v.closes != 1 {
			t.Fatalf("detector saw %d frames and %d speech starts before its close, closed %d times; want ≥100, 1, 1", v.framesAtEnd, v.starts, v.closes)
		}
	})
	t.Run("unavailable", func(t *testing.T) {
		e := newE2E(t, e2eOptions{transcripts: []string{"what are your opening hours"}, newVAD: func() (VAD, error) {
			return nil, errors.New("no model here")
		}})
		aid, _ := e.assistant(t, map[string]any{"name": "VAD", "first_message": "Hello."})
		num := e.number(t, "+31201230093", &aid, nil)
		c := dialRaw(t, e.srv, num.PhoneNumber)
		id := e.waitLive(t, 10*time.Second)
		time.Sleep(time.Second)
		c.speak(800 * time.Millisecond)
		time.Sleep(3 * time.Second)
		c.hangup(t)
		row := e.waitFinal(t, id, 10*time.Second)
		if row.Status != call.StatusEnded {
			t.Fatalf("call ended as %s", row.Status)
		}
		if !hasEntry(transcript(t, row), "user", "what are your opening hours") {
			t.Errorf("the caller's turn was not heard on the energy VAD: %+v", transcript(t, row))
		}
		if !strings.Contains(e.logs.String(), "the call uses the energy VAD") {
			t.Errorf("no warning that the detector was unavailable")
		}
	})
}
