//go:build !cgo

package silero

import (
	"errors"

	"github.com/parley-voice/parley/internal/audio"
)

// errNoCgo is why a binary built without cgo cannot load ONNX Runtime.
var errNoCgo = errors.New("silero: this binary was built without cgo (CGO_ENABLED=0) and cannot load ONNX Runtime; build with cgo or use the energy VAD")

// Model is unavailable without cgo: Open always fails.
type Model struct{}

// Open fails: ONNX Runtime is loaded through cgo.
func Open(cfg Config) (*Model, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	return nil, errNoCgo
}

// Version is empty without cgo.
func (m *Model) Version() string { return "" }

// Close does nothing.
func (m *Model) Close() error { return nil }

// Detector is unavailable without cgo.
type Detector struct{}

// NewDetector fails.
func (m *Model) NewDetector() (*Detector, error) { return nil, errNoCgo }

// Delays is zero.
func (d *Detector) Delays() (start, end int) { return 0, 0 }

// Probability is zero.
func (d *Detector) Probability() float32 { return 0 }

// Process never reports speech.
func (d *Detector) Process(frame []int16) audio.VADResult { return audio.VADResult{} }

// Err is errNoCgo.
func (d *Detector) Err() error { return errNoCgo }

// Close does nothing.
func (d *Detector) Close() error { return nil }
