package voice

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/silence"
)

func TestPlanSilence(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want *silence.Config
	}{{
		name: "off by default",
		doc:  `{"silence_timeout_seconds": 8}`,
		want: nil,
	}, {
		name: "speech_config.silence without autonomous_silence_handling: off (spec §8.5)",
		doc:  `{"autonomous_silence_handling": false, "speech_config": {"silence": {"messages": ["Hello?"]}}}`,
		want: nil,
	}, {
		name: "older assistant: silence_timeout_seconds is the first check, then 12 s, 3 attempts, model-written",
		doc:  `{"autonomous_silence_handling": true, "silence_timeout_seconds": 8}`,
		want: &silence.Config{FirstCheck: 8 * time.Second, Interval: 12 * time.Second, MaxAttempts: 3},
	}, {
		name: "older assistant without silence_timeout_seconds: the feature page's 7 s",
		doc:  `{"autonomous_silence_handling": true, "speech_config": {"silence": null}}`,
		want: &silence.Config{FirstCheck: 7 * time.Second, Interval: 12 * time.Second, MaxAttempts: 3},
	}, {
		name: "speech_config.silence present: catalog defaults 3/12/3, silence_timeout_seconds ignored",
		doc:  `{"autonomous_silence_handling": true, "silence_timeout_seconds": 8, "speech_config": {"silence": {}}}`,
		want: &silence.Config{FirstCheck: 3 * time.Second, Interval: 12 * time.Second, MaxAttempts: 3},
	}, {
		name: "speech_config.silence fields",
		doc: `{"autonomous_silence_handling": true, "speech_config": {"silence": {"messages": ["Are you there?", " ", "Hello?"],
			"final_message": "Goodbye.", "first_check_seconds": 1.5, "interval_seconds": 4, "max_attempts": 5}}}`,
		want: &silence.Config{Messages: []string{"Are you there?", "Hello?"}, FinalMessage: "Goodbye.",
			FirstCheck: 1500 * time.Millisecond, Interval: 4 * time.Second, MaxAttempts: 5},
	}, {
		name: "final_message null: the model says goodbye",
		doc:  `{"autonomous_silence_handling": true, "speech_config": {"silence": {"final_message": null, "max_attempts": 1}}}`,
		want: &silence.Config{FirstCheck: 3 * time.Second, Interval: 12 * time.Second, MaxAttempts: 1},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planSilence([]byte(tt.doc)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMaxCallDuration(t *testing.T) {
	for _, tt := range []struct {
		set, want time.Duration
	}{{0, time.Hour}, {-1, 0}, {90 * time.Second, 90 * time.Second}} {
		e := &Engine{cfg: Config{MaxCallDuration: tt.set}}
		if got := e.maxCallDuration(); got != tt.want {
			t.Errorf("MaxCallDuration %v: cap %v, want %v", tt.set, got, tt.want)
		}
	}
}

// TestPlanCapsAndSilence checks the plan's wiring: the server-wide cap for
// an assistant without max_duration_seconds (its own wins when set), and
// silence handling read from the document.
func TestPlanCapsAndSilence(t *testing.T) {
	f := newFixture(t)
	capped, err := f.engine.plan(t.Context(), f.org.ID, []byte(localBody))
	if err != nil {
		t.Fatal(err)
	}
	if capped.cfg.MaxDuration != time.Minute || capped.cfg.Silence != nil {
		t.Fatalf("assistant with max_duration_seconds 60 and no silence handling: cap %v, silence %+v", capped.cfg.MaxDuration, capped.cfg.Silence)
	}
	body := strings.Replace(localBody, `"max_duration_seconds":60,`, `"autonomous_silence_handling":true,`, 1)
	p, err := f.engine.plan(t.Context(), f.org.ID, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.MaxDuration != DefaultMaxCallDuration {
		t.Errorf("no max_duration_seconds: cap %v, want the server's %v", p.cfg.MaxDuration, DefaultMaxCallDuration)
	}
	if s := p.cfg.Silence; s == nil || s.FirstCheck != 7*time.Second || !p.cfg.EndCallTool {
		t.Errorf("autonomous_silence_handling: silence %+v, end_call tool %v", s, p.cfg.EndCallTool)
	}
}
