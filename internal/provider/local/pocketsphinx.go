package local

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/stt"
)

// The Debian package pocketsphinx-en-us installs the US English model here.
const (
	DefaultModelDir = "/usr/share/pocketsphinx/model/en-us/en-us"
	DefaultDict     = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"
	DefaultLM       = "/usr/share/pocketsphinx/model/en-us/en-us.lm.bin"
)

const (
	// modelRate is the sample rate of the en-us acoustic model; utterances
	// are converted to it.
	modelRate = 16000
	// floorRMS and bandFillRMS are the levels of the noise floor added to
	// every utterance and of the noise that fills the empty top band of
	// narrow-band (telephone) audio; see addNoiseFloor.
	floorRMS    = 5
	bandFillRMS = 60
)

// STTConfig configures the PocketSphinx speech-to-text provider.
type STTConfig struct {
	// Binary is the pocketsphinx_continuous executable, a path or a name
	// looked up in PATH; empty means "pocketsphinx_continuous".
	Binary string
	// ModelDir, Dict and LM are the acoustic model directory, pronunciation
	// dictionary and language model; empty means DefaultModelDir,
	// DefaultDict and DefaultLM.
	ModelDir, Dict, LM string
	// TempDir holds the short-lived WAV, grammar and dictionary files; empty
	// means os.TempDir().
	TempDir string
	// Logger receives warnings and debug events; nil discards them.
	// Transcripts are never logged.
	Logger *slog.Logger
}

// STT opens PocketSphinx recognition streams. It is safe for concurrent use.
type STT struct {
	bin     string
	model   string
	dict    string
	lm      string
	tempDir string
	log     *slog.Logger
}

var _ stt.Provider = (*STT)(nil)

// NewSTT returns a provider using cfg, with defaults filled in.
func NewSTT(cfg STTConfig) *STT {
	p := &STT{bin: cfg.Binary, model: cfg.ModelDir, dict: cfg.Dict, lm: cfg.LM, tempDir: cfg.TempDir, log: cfg.Logger}
	if p.bin == "" {
		p.bin = "pocketsphinx_continuous"
	}
	if p.model == "" {
		p.model = DefaultModelDir
	}
	if p.dict == "" {
		p.dict = DefaultDict
	}
	if p.lm == "" {
		p.lm = DefaultLM
	}
	if p.tempDir == "" {
		p.tempDir = os.TempDir()
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p
}

// Open starts a recognition stream for English PCM at cfg.SampleRate (a
// multiple of 50 Hz, so that 20 ms frames are whole). When cfg.Keyterms is
// set it is the complete list of phrases the stream can recognise; otherwise
// the general language model is used. Model, APIKey, UtteranceEnd and
// Options are ignored. The stream lives until Close or the cancellation of
// ctx.
func (p *STT) Open(ctx context.Context, cfg stt.Config) (stt.Stream, error) {
	switch strings.ToLower(cfg.Language) {
	case "", "en", "en-us":
	default:
		return nil, fmt.Errorf("local stt: opening stream: language %q is not supported (English only)", cfg.Language)
	}
	if cfg.SampleRate <= 0 || cfg.SampleRate%50 != 0 || cfg.SampleRate > 192000 {
		return nil, fmt.Errorf("local stt: opening stream: sample rate %d (want a multiple of 50 Hz)", cfg.SampleRate)
	}
	bin, err := exec.LookPath(p.bin)
	if err != nil {
		return nil, fmt.Errorf("local stt: opening stream: pocketsphinx_continuous not found (Debian: apt-get install pocketsphinx pocketsphinx-en-us): %w", err)
	}
	for _, f := range []struct{ what, path string }{{"acoustic model", p.model}, {"dictionary", p.dict}} {
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("local stt: opening stream: %s: %w (Debian: apt-get install pocketsphinx-en-us)", f.what, err)
		}
	}

	rec := &recognizer{bin: bin, model: p.model, dict: p.dict, lm: p.lm, tempDir: p.tempDir, rate: cfg.SampleRate}
	log := p.log.With("provider", "pocketsphinx")
	if len(cfg.Keyterms) > 0 {
		if err := p.useGrammar(rec, cfg.Keyterms, log); err != nil {
			rec.removeFiles()
			return nil, fmt.Errorf("local stt: opening stream: %w", err)
		}
	}
	if rec.jsgf == "" {
		if _, err := os.Stat(p.lm); err != nil {
			return nil, fmt.Errorf("local stt: opening stream: language model: %w (Debian: apt-get install pocketsphinx-en-us)", err)
		}
	}
	return newSTTStream(ctx, rec, cfg, log), nil
}

// useGrammar makes rec recognise only the keyterms: it writes a JSGF grammar
// and a dictionary of just their words (which PocketSphinx loads far faster
// than the whole one). When no keyterm has a known word it leaves rec on the
// language model.
func (p *STT) useGrammar(rec *recognizer, keyterms []string, log *slog.Logger) error {
	g, err := buildGrammar(p.dict, keyterms)
	if err != nil {
		return err
	}
	if len(g.dropped) > 0 {
		log.Warn("keyterm words not in the pronunciation dictionary were left out", "words", g.dropped)
	}
	if len(g.phrases) == 0 {
		log.Warn("no keyterm has a word in the pronunciation dictionary; using the language model")
		return nil
	}
	if rec.dict, err = writeTemp(p.tempDir, "parley-*.dict", strings.Join(g.dict, "\n")+"\n"); err != nil {
		return err
	}
	rec.files = append(rec.files, rec.dict)
	if rec.jsgf, err = writeTemp(p.tempDir, "parley-*.gram", g.jsgf()); err != nil {
		return err
	}
	rec.files = append(rec.files, rec.jsgf)
	log.Debug("grammar ready", "phrases", len(g.phrases))
	return nil
}

// writeTemp writes content to a new file in dir named after pattern and
// returns its path.
func writeTemp(dir, pattern, content string) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", fmt.Errorf("creating temporary file: %w", err)
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// recognizer runs pocketsphinx_continuous on one utterance at a time.
type recognizer struct {
	bin, model, dict, lm string
	jsgf                 string // grammar file; empty means the language model
	tempDir              string
	rate                 int      // of the utterances given to recognize
	files                []string // temporary files to remove at the end
}

// removeFiles deletes the recognizer's temporary files.
func (r *recognizer) removeFiles() {
	for _, f := range r.files {
		_ = os.Remove(f)
	}
	r.files = nil
}

// recognize returns the transcript of pcm (at r.rate), "" when nothing was
// recognised.
func (r *recognizer) recognize(ctx context.Context, pcm []int16) (string, error) {
	pcm, err := audio.Resample(pcm, r.rate, modelRate) // a copy even at modelRate
	if err != nil {
		return "", fmt.Errorf("local stt: converting utterance to %d Hz: %w", modelRate, err)
	}
	addNoiseFloor(pcm, r.rate)
	// The name must end in .wav: only then does pocketsphinx_continuous
	// parse (and check) the header instead of decoding it as samples.
	wav, err := writeWAVTemp(r.tempDir, pcm)
	if err != nil {
		return "", fmt.Errorf("local stt: %w", err)
	}
	defer os.Remove(wav)

	args := []string{"-infile", wav, "-hmm", r.model, "-dict", r.dict}
	if r.jsgf != "" {
		args = append(args, "-jsgf", r.jsgf)
	} else {
		args = append(args, "-lm", r.lm)
	}
	// The segmenter already cut the utterance: -remove_silence no makes the
	// decoder take the whole file as one utterance instead of splitting it
	// again at its own detector's pauses, which breaks grammar matches.
	args = append(args, "-remove_silence", "no", "-logfn", os.DevNull)
	cmd := exec.CommandContext(ctx, r.bin, args...)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("local stt: %w", ctx.Err())
		}
		return "", fmt.Errorf("local stt: pocketsphinx_continuous failed: %w: %s", err, stderr.String())
	}
	return parseHypotheses(out), nil
}

// parseHypotheses reads what pocketsphinx_continuous -infile prints on
// standard output (with its log sent elsewhere): one line per stretch of
// speech its own detector found, holding the best hypothesis's words
// separated by single spaces, and an empty line for a stretch with no
// hypothesis. The lines are joined into one transcript.
func parseHypotheses(out []byte) string {
	var words []string
	for line := range strings.Lines(string(out)) {
		words = append(words, strings.Fields(line)...)
	}
	return strings.Join(words, " ")
}

// writeWAVTemp writes pcm at modelRate to a new temporary .wav file.
func writeWAVTemp(dir string, pcm []int16) (string, error) {
	f, err := os.CreateTemp(dir, "parley-utt-*.wav")
	if err != nil {
		return "", fmt.Errorf("creating utterance file: %w", err)
	}
	w := bufio.NewWriter(f)
	err = audio.WriteWAV(w, pcm, modelRate)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("writing utterance file %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// addNoiseFloor adds a faint seeded noise to pcm, audio at modelRate that
// was made at rate from: white noise of RMS floorRMS over the whole band,
// and, when from is lower, noise of RMS bandFillRMS from from/2 Hz up.
//
// PocketSphinx's en-us model was trained on wide-band recordings, which
// always carry some noise. Given digital silence, or telephone audio whose
// band above 4 kHz is empty, its mel filters see -∞ dB, the cepstral mean
// goes astray and grammar searches end nowhere ("final result does not
// match the grammar"). A noise floor like a microphone's fixes that. The
// noise is seeded, so a recognition can be repeated.
func addNoiseFloor(pcm []int16, from int) {
	rng := rand.New(rand.NewPCG(uint64(len(pcm)), 0x5eed))
	noise := make([]int32, len(pcm))
	for i := range noise {
		noise[i] = int32(uniform(rng, floorRMS))
	}
	// White noise at lowRate, converted up, covers 0..0.45·lowRate Hz;
	// flipping the sign of every other sample mirrors f to modelRate/2 - f,
	// which puts it just above from/2.
	if lowRate := modelRate - from; lowRate > 0 {
		low := make([]int16, len(pcm)*lowRate/modelRate+1)
		for i := range low {
			low[i] = int16(uniform(rng, bandFillRMS))
		}
		if up, err := audio.Resample(low, lowRate, modelRate); err == nil {
			for i := range min(len(up), len(noise)) {
				if i%2 == 1 {
					noise[i] -= int32(up[i])
				} else {
					noise[i] += int32(up[i])
				}
			}
		}
	}
	for i, n := range noise {
		pcm[i] = int16(max(math.MinInt16, min(math.MaxInt16, int32(pcm[i])+n)))
	}
}

// uniform returns a uniformly distributed sample with the given RMS.
func uniform(rng *rand.Rand, rms float64) float64 {
	return (rng.Float64()*2 - 1) * rms * math.Sqrt(3)
}
