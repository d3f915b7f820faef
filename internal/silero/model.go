//go:build cgo

package silero

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/parley-voice/parley/internal/audio"
)

var (
	inputNames  = []string{"input", "state", "sr"}
	outputNames = []string{"output", "stateN"}
)

// Model is the loaded Silero VAD: ONNX Runtime's environment and one
// session, shared by every Detector. ONNX Runtime keeps its environment per
// process, so a process opens one Model.
type Model struct {
	cfg     Config
	session *ort.DynamicAdvancedSession
	sr      *ort.Tensor[int64] // the sample rate input; never written after Open
}

// Open loads ONNX Runtime from cfg.Library and the model from cfg.Model,
// and checks that the model is Silero v5 (its inputs and outputs).
func Open(cfg Config) (*Model, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, f := range []string{cfg.Library, cfg.Model} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("silero: %w (scripts/silero-setup.sh installs ONNX Runtime and the model)", err)
		}
	}
	if ort.IsInitialized() {
		return nil, errors.New("silero: ONNX Runtime is already initialized in this process; open one Model")
	}
	// ONNX Runtime's Linux builds (1.30 from npm among them) carry
	// Microsoft's 1DS telemetry: a while after the first inference they
	// look up mobile.events.data.microsoft.com and post usage events, and
	// on unload they wait for the upload (10 s with no DNS). Neither is
	// acceptable on a sovereign server. The C API's DisableTelemetryEvents
	// does not stop that uploader; the variable, read when the library
	// starts its environment, does. Set before loading, and through libc
	// (cgo makes os.Setenv call setenv).
	if err := os.Setenv("ORT_DISABLE_TELEMETRY", "1"); err != nil {
		return nil, fmt.Errorf("silero: turn off ONNX Runtime telemetry: %w", err)
	}
	ort.SetSharedLibraryPath(cfg.Library)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("silero: load ONNX Runtime %s: %w", cfg.Library, err)
	}
	if err := ort.DisableTelemetry(); err != nil {
		ort.DestroyEnvironment()
		return nil, fmt.Errorf("silero: turn off ONNX Runtime telemetry: %w", err)
	}
	m := &Model{cfg: cfg}
	if err := m.load(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Model) load() error {
	ins, outs, err := ort.GetInputOutputInfo(m.cfg.Model)
	if err != nil {
		return fmt.Errorf("silero: read model %s: %w", m.cfg.Model, err)
	}
	if !hasNames(ins, inputNames) || !hasNames(outs, outputNames) {
		return fmt.Errorf("silero: %s is not a Silero VAD v5 model (want inputs %v and outputs %v)", m.cfg.Model, inputNames, outputNames)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return fmt.Errorf("silero: session options: %w", err)
	}
	defer opts.Destroy()
	// Each run is a few hundred microseconds of small matrices: threads
	// would cost more than they save, and spinning ones burn idle cores.
	// Calls run the session concurrently instead.
	for _, set := range []func() error{
		func() error { return opts.SetIntraOpNumThreads(1) },
		func() error { return opts.SetInterOpNumThreads(1) },
		func() error { return opts.SetExecutionMode(ort.ExecutionModeSequential) },
		func() error { return opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0") },
		func() error { return opts.AddSessionConfigEntry("session.inter_op.allow_spinning", "0") },
	} {
		if err := set(); err != nil {
			return fmt.Errorf("silero: session options: %w", err)
		}
	}
	m.session, err = ort.NewDynamicAdvancedSession(m.cfg.Model, inputNames, outputNames, opts)
	if err != nil {
		return fmt.Errorf("silero: load model %s: %w", m.cfg.Model, err)
	}
	m.sr, err = ort.NewTensor(ort.NewShape(1), []int64{sampleRate})
	if err != nil {
		return fmt.Errorf("silero: sample-rate tensor: %w", err)
	}
	return nil
}

func hasNames(infos []ort.InputOutputInfo, want []string) bool {
	if len(infos) != len(want) {
		return false
	}
	for _, i := range infos {
		if !slices.Contains(want, i.Name) {
			return false
		}
	}
	return true
}

// Version returns ONNX Runtime's version.
func (m *Model) Version() string { return ort.GetVersion() }

// Close releases the session and ONNX Runtime's environment. Every
// Detector must be closed first.
func (m *Model) Close() error {
	var errs []error
	if m.sr != nil {
		errs = append(errs, m.sr.Destroy())
	}
	if m.session != nil {
		errs = append(errs, m.session.Destroy())
	}
	errs = append(errs, ort.DestroyEnvironment())
	return errors.Join(errs...)
}

// Detector is one call's VAD: it buffers 20 ms frames into the model's
// 32 ms windows, keeps the model's recurrent state between them and turns
// the latest speech probability into per-frame verdicts and speech events
// (audio.SpeechTracker, as the energy VAD does). Process is called from one
// goroutine at a time; Close may come from another while a frame is being
// processed (a media session detaches its sink without waiting): it waits
// for that frame, and later frames are silence.
type Detector struct {
	mu       sync.Mutex
	m        *Model
	in       *ort.Tensor[float32] // [1, contextLen+window]: context, then the window
	state    *ort.Tensor[float32] // [2, 1, 128]
	out      *ort.Tensor[float32] // [1, 1]: the speech probability
	stateN   *ort.Tensor[float32] // the next state
	pending  []float32            // samples not yet in a window
	prob     float32
	track    audio.SpeechTracker
	fallback *audio.VAD // set after a failed run: the energy VAD takes over
	err      error
}

// NewDetector returns a detector in silence.
func (m *Model) NewDetector() (*Detector, error) {
	d := &Detector{m: m, pending: make([]float32, 0, 2*window),
		track: audio.SpeechTracker{StartFrames: m.cfg.StartFrames, EndFrames: m.cfg.EndFrames}}
	var err error
	if d.in, err = ort.NewEmptyTensor[float32](ort.NewShape(1, contextLen+window)); err == nil {
		if d.state, err = ort.NewEmptyTensor[float32](ort.NewShape(2, 1, 128)); err == nil {
			if d.out, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1)); err == nil {
				d.stateN, err = ort.NewEmptyTensor[float32](ort.NewShape(2, 1, 128))
			}
		}
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("silero: detector tensors: %w", err)
	}
	return d, nil
}

// Delays returns the frames by which SpeechStart and SpeechEnd trail the
// speech (pipeline.VAD).
func (d *Detector) Delays() (start, end int) { return d.track.StartFrames, d.track.EndFrames }

// Probability returns the model's speech probability for the latest window.
func (d *Detector) Probability() float32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.prob
}

// Process classifies one frame of 8 kHz audio. The verdict uses the latest
// complete window, so it trails the audio by up to 32 ms. If the model
// fails to run, the rest of the call falls back to the energy VAD and Close
// reports the failure.
func (d *Detector) Process(frame []int16) audio.VADResult {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.in == nil { // closed
		return audio.VADResult{}
	}
	if d.fallback != nil {
		return d.fallback.Process(frame)
	}
	for _, s := range frame {
		d.pending = append(d.pending, float32(s)/32768)
	}
	for len(d.pending) >= window {
		if err := d.run(d.pending[:window]); err != nil {
			d.err = fmt.Errorf("silero: run model: %w", err)
			d.fallback = audio.NewVAD(audio.VADConfig{StartFrames: d.track.StartFrames, EndFrames: d.track.EndFrames})
			return d.fallback.Process(frame)
		}
		d.pending = append(d.pending[:0], d.pending[window:]...)
	}
	return d.track.Step(verdict(d.prob, d.track.Speaking(), d.m.cfg.Threshold))
}

// run classifies one window: the input is the previous window's last
// contextLen samples, then this one.
func (d *Detector) run(samples []float32) error {
	in := d.in.GetData()
	copy(in[:contextLen], in[window:])
	copy(in[contextLen:], samples)
	err := d.m.session.Run([]ort.Value{d.in, d.state, d.m.sr}, []ort.Value{d.out, d.stateN})
	if err != nil {
		return err
	}
	copy(d.state.GetData(), d.stateN.GetData())
	d.prob = d.out.GetData()[0]
	return nil
}

// Err returns why the model stopped running, if it did.
func (d *Detector) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Close releases the detector's tensors and returns the model failure that
// made it fall back to the energy VAD, if any.
func (d *Detector) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	errs := []error{d.err}
	for _, t := range []*ort.Tensor[float32]{d.in, d.state, d.out, d.stateN} {
		if t != nil {
			errs = append(errs, t.Destroy())
		}
	}
	d.in, d.state, d.out, d.stateN = nil, nil, nil, nil
	return errors.Join(errs...)
}
