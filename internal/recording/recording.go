// Package recording captures a call's audio as a two-channel WAV file: 16-bit
// PCM at 8 kHz, the caller on the left channel and the assistant on the right,
// exactly as the caller heard it (what the RTP sender sent: silence where
// nothing was sent, so a reply cut short by a barge-in is cut short in the
// recording too).
//
// A Recorder wraps the media session's Sink (the caller's decoded frames) and
// Source (the assistant's outgoing frames). The wrappers copy each 20 ms frame
// into a fixed ring buffer per channel and return: no file I/O, no lock held
// during I/O and no allocation on the media path. A goroutine owned by the
// Recorder drains the rings into spool files, one raw little-endian PCM file
// per channel, every FlushInterval (sooner when a ring is half full). Finish
// streams the two spool files, interleaved, into a WAV; memory per call is the
// two rings (2 × FlushInterval of audio per channel, at most 5 s) whatever the
// call's length.
//
// # Alignment
//
// Frames are placed on a grid of 20 ms slots counted from Start by the wall
// clock. Each channel keeps its own position: the slot its next frame goes to.
// When a frame arrives in wall-clock slot w:
//
//   - if the channel lags by more than Slack frames (w − position > Slack) —
//     the peer stopped sending RTP (hold, a network gap), the session had not
//     started yet, or the sender stalled — it jumps to w: the slots it skips
//     are silence. A lag within the slack (network jitter: the caller's frames
//     come late and in bursts, never early) is left alone;
//   - a frame of audio is written at the channel's position, even when the
//     channel is ahead of the clock (a burst after a gap, a sender woken early
//     by a reply's first frame): audio is never dropped;
//   - a silent frame (the Source had nothing to send, or the caller's frame is
//     all zeros: concealed loss, suppressed silence, digital silence) is left
//     out while the channel is ahead of the clock (position > w), so a channel
//     pushed ahead falls back onto the clock in the next pause; so is a
//     filler frame (background audio alone, see Filler), which is otherwise
//     written like audio.
//
// Both channels therefore stay within Slack frames (60 ms) of the wall clock,
// and of each other, except while a burst is being played out. Finish pads
// both channels with silence to the wall-clock length since Start (longer only
// if audio was placed beyond it), so the file lasts as long as the call.
package recording

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/media"
)

const (
	// Rate is the sample rate of recordings.
	Rate = 8000
	// FramePeriod is the length of one frame.
	FramePeriod = 20 * time.Millisecond
	// Slack is how many frames a channel may lag the wall clock before
	// silence is inserted to catch up.
	Slack = 3

	frameSamples = media.FrameSamples // 160
	frameBytes   = 2 * frameSamples   // one channel's frame in the spool
	wavHeader    = 44

	minRing = 16  // frames per channel (320 ms)
	maxRing = 250 // frames per channel (5 s)

	// maxFrames keeps the WAV data size below what readers take for a
	// streaming header (audio.ReadWAVHeader: 0x7FFF0000): about 18.6 hours.
	maxFrames = (0x7FFF0000 - 1) / (2 * frameBytes)
)

// Channel indexes.
const (
	caller    = 0
	assistant = 1
)

// ErrClosed is returned by Finish after Finish or Abort.
var ErrClosed = errors.New("recording: already finished or aborted")

// Config configures recordings.
type Config struct {
	// Dir is the spool directory for recordings in progress; it is created
	// (mode 0700) if missing. Each recording spools into its own
	// subdirectory, removed by Finish and Abort.
	Dir string
	// FlushInterval is how often buffered frames are written to the spool
	// (default 1 s). The ring buffers hold twice this much audio per channel
	// (between 320 ms and 5 s); a half-full ring is flushed at once.
	FlushInterval time.Duration
	Logger        *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ChannelInfo describes what happened to one channel.
type ChannelInfo struct {
	// Audio is the number of frames of audio written (silent frames are
	// not counted).
	Audio int64
	// Inserted is the number of silent frames inserted to catch up with the
	// wall clock after the channel fell more than Slack frames behind.
	Inserted int64
	// Skipped is the number of silent (or filler) frames left out while the
	// channel was ahead of the wall clock.
	Skipped int64
	// Lost is the number of audio frames that are silence in the file
	// because the ring was full or the spool could not be written.
	Lost int64
}

// Info describes a finished recording.
type Info struct {
	// Frames is the length of each channel in 20 ms frames.
	Frames int64
	// Duration is Frames × 20 ms.
	Duration time.Duration
	// Size is the size of the WAV stream in bytes (header and data).
	Size                int64
	Caller, Assistant   ChannelInfo
	Started, FinishedAt time.Time
}

// Recorder records one call. Its Sink and Source wrappers may be used from
// the media goroutines while the owner calls Finish or Abort; one of the two
// must be called to end the recorder's goroutine and remove its spool.
type Recorder struct {
	log   *slog.Logger
	now   func() time.Time
	start time.Time
	dir   string // this recording's spool subdirectory
	every time.Duration

	ch [2]channel

	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	scratch []byte        // the flusher's encoding buffer
	syncReq chan struct{} // flush now, then answer on synced (tests)
	synced  chan struct{}

	endMu sync.Mutex
	ended bool
}

// channel is one side of the call. The producer (a media goroutine) owns the
// slots from head up to tail+len(at); the flusher owns those from tail to
// head. mu guards the indexes and counters, never I/O.
type channel struct {
	mu     sync.Mutex
	closed bool
	pos    int64   // the slot (frame index) the next frame goes to
	end    int64   // the slot after the last audio frame
	head   uint64  // frames put in the ring
	tail   uint64  // frames taken out of the ring by the flusher
	data   []int16 // len(at) frames
	at     []int64
	high   int // most frames ever buffered at once
	info   ChannelInfo

	// Owned by the flusher until it has ended, then by Finish/Abort.
	file      *os.File
	writeErr  error
	writeLost int64
}

// Start begins a recording. name (a call id) becomes part of the spool
// subdirectory's name, reduced to letters, digits, '-', '_' and '.'.
func Start(cfg Config, name string) (*Recorder, error) {
	if cfg.Dir == "" {
		return nil, errors.New("recording: no spool directory configured")
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("recording: creating spool directory: %w", err)
	}
	stem := Sanitize(name)
	dir, err := os.MkdirTemp(cfg.Dir, stem+"-*")
	if err != nil {
		return nil, fmt.Errorf("recording: creating spool for %s: %w", stem, err)
	}
	ring := int((2*cfg.FlushInterval + FramePeriod - 1) / FramePeriod)
	ring = min(max(ring, minRing), maxRing)
	r := &Recorder{
		log:     cfg.Logger.With("recording", stem),
		now:     cfg.Now,
		dir:     dir,
		every:   cfg.FlushInterval,
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		scratch: make([]byte, scratchFrames*frameBytes),
		syncReq: make(chan struct{}),
		synced:  make(chan struct{}),
	}
	for i, file := range spoolFiles {
		f, err := os.OpenFile(filepath.Join(dir, file), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			r.closeFiles()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("recording: creating spool file for %s: %w", stem, err)
		}
		r.ch[i].file = f
		r.ch[i].data = make([]int16, ring*frameSamples)
		r.ch[i].at = make([]int64, ring)
	}
	r.start = r.now()
	go r.run()
	return r, nil
}

// Sanitize reduces name to a safe file stem: letters, digits, '-', '_' and
// '.', nothing else, no leading '.' or '_', at most 64 bytes; "recording"
// when nothing is left.
func Sanitize(name string) string {
	var b strings.Builder
	for _, c := range name {
		if b.Len() >= 64 {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimRight(strings.TrimLeft(b.String(), "._"), "_")
	if s == "" {
		return "recording"
	}
	return s
}

// spoolFiles are the files of a recording's spool subdirectory.
var spoolFiles = [2]string{"caller.pcm", "assistant.pcm"}

// CleanSpool removes the spools that recordings interrupted by a crash left
// in dir: its subdirectories holding nothing but spool files. Call it at
// startup, before the first Start. A missing dir is not an error.
func CleanSpool(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recording: cleaning spool: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !isSpool(filepath.Join(dir, e.Name())) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("recording: cleaning spool: %w", err)
	}
	return nil
}

func isSpool(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || (e.Name() != spoolFiles[0] && e.Name() != spoolFiles[1]) {
			return false
		}
	}
	return true
}

// Sink returns a media.Sink that records each of the caller's frames and
// then passes it to inner (which may be nil).
func (r *Recorder) Sink(inner media.Sink) media.Sink { return &sink{r: r, inner: inner} }

// Source returns a media.Source that reads a frame from inner (silence when
// inner is nil or has nothing) and records what will be sent. It is also a
// media.Waker: Wake delegates to inner when inner is a Waker and otherwise
// returns a nil channel (never ready).
func (r *Recorder) Source(inner media.Source) media.Source {
	return &source{r: r, inner: inner}
}

type sink struct {
	r     *Recorder
	inner media.Sink
}

func (s *sink) WriteFrame(frame []int16) {
	s.r.put(&s.r.ch[caller], frame, true)
	if s.inner != nil {
		s.inner.WriteFrame(frame)
	}
}

type source struct {
	r     *Recorder
	inner media.Source
}

func (s *source) ReadFrame(frame []int16) bool {
	ok := s.inner != nil && s.inner.ReadFrame(frame)
	f, filler := s.inner.(Filler)
	s.r.place(&s.r.ch[assistant], frame, ok, filler && ok && f.Filler())
	return ok
}

// Filler is a Source that can say its last frame was only filler: audio
// that stands for silence (background audio under no speech, package
// ambience). A filler frame is recorded like audio, except that, like a
// silent frame, it is left out while the channel is ahead of the clock, so
// a channel that never falls silent still falls back onto the clock.
type Filler interface {
	Filler() bool
}

func (s *source) Wake() <-chan struct{} {
	if w, ok := s.inner.(media.Waker); ok {
		return w.Wake()
	}
	return nil
}

// put places one frame (media.FrameSamples samples; a shorter frame is
// padded with silence, a longer one cut) following the alignment rule in the
// package comment. It never blocks on I/O and does not allocate.
func (r *Recorder) put(c *channel, frame []int16, audio bool) { r.place(c, frame, audio, false) }

// place is put for a frame that may be filler (see Filler).
func (r *Recorder) place(c *channel, frame []int16, audio, filler bool) {
	wall := int64(r.now().Sub(r.start) / FramePeriod)
	if audio {
		audio = !silent(frame)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if behind := wall - c.pos; behind > Slack {
		c.info.Inserted += behind
		c.pos = wall
	}
	if !audio || (filler && c.pos > wall) {
		if c.pos > wall {
			c.info.Skipped++
			return
		}
		c.pos++ // never written: reads back as zeros
		return
	}
	c.info.Audio++
	c.end = c.pos + 1
	n := len(c.at)
	if c.head-c.tail == uint64(n) {
		c.info.Lost++
		c.pos++
		r.signal()
		return
	}
	slot := int(c.head % uint64(n))
	b := c.data[slot*frameSamples : (slot+1)*frameSamples]
	clear(b[copy(b, frame):])
	c.at[slot] = c.pos
	c.pos++
	c.head++
	buffered := int(c.head - c.tail)
	c.high = max(c.high, buffered)
	if buffered >= n/2 {
		r.signal()
	}
}

// silent reports whether frame holds only zeros.
func silent(frame []int16) bool {
	for _, s := range frame {
		if s != 0 {
			return false
		}
	}
	return true
}

// signal asks the flusher to flush now, without waiting.
func (r *Recorder) signal() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run is the flusher: it drains the rings into the spool files until quit,
// then drains them one last time.
func (r *Recorder) run() {
	defer close(r.done)
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.kick:
		case <-r.syncReq:
			r.flush()
			r.synced <- struct{}{}
			continue
		case <-r.quit:
			r.flush()
			return
		}
		r.flush()
	}
}

func (r *Recorder) flush() {
	for i := range r.ch {
		r.ch[i].flush(r.scratch, r.log)
	}
}

// scratchFrames is the most frames the flusher writes at once.
const scratchFrames = 25

// flush writes the frames buffered when it starts, as little-endian PCM,
// coalescing up to scratchFrames consecutive slots that hold consecutive
// positions into one write.
func (c *channel) flush(scratch []byte, log *slog.Logger) {
	c.mu.Lock()
	head, tail := c.head, c.tail
	c.mu.Unlock()
	n := uint64(len(c.at))
	for tail < head {
		first := int(tail % n)
		last := first
		for tail+1 < head && last+1 < int(n) && last+1-first < scratchFrames && c.at[last+1] == c.at[last]+1 {
			last++
			tail++
		}
		tail++
		if c.writeErr != nil {
			c.writeLost += int64(last - first + 1)
			continue
		}
		b := scratch[:0]
		for _, v := range c.data[first*frameSamples : (last+1)*frameSamples] {
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		}
		_, err := c.file.WriteAt(b, c.at[first]*frameBytes)
		if err != nil {
			// Later frames become silence; the recording keeps its length.
			c.writeErr = err
			c.writeLost += int64(last - first + 1)
			log.Warn("recording: spool write failed; the rest of this channel is silence", "error", err)
		}
	}
	c.mu.Lock()
	c.tail = head
	c.mu.Unlock()
}

// sync makes the flusher flush and waits until it has (tests; one caller at
// a time).
func (r *Recorder) sync() {
	select {
	case r.syncReq <- struct{}{}:
		<-r.synced
	case <-r.done:
	}
}

// stop closes both channels to new frames and ends the flusher after its
// last flush. It reports false when the recorder had already ended.
func (r *Recorder) stop() bool {
	r.endMu.Lock()
	defer r.endMu.Unlock()
	if r.ended {
		return false
	}
	r.ended = true
	for i := range r.ch {
		c := &r.ch[i]
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
	}
	close(r.quit)
	<-r.done
	return true
}

func (r *Recorder) closeFiles() {
	for i := range r.ch {
		if f := r.ch[i].file; f != nil {
			f.Close()
		}
	}
}

// Abort stops the recording and deletes it. It does nothing after Finish or
// Abort.
func (r *Recorder) Abort() {
	if !r.stop() {
		return
	}
	r.closeFiles()
	if err := os.RemoveAll(r.dir); err != nil {
		r.log.Warn("recording: removing spool", "error", err)
	}
}

// Finish stops the recording and writes it to dst as a WAV stream: a 44-byte
// header, then the interleaved samples, streamed from the spool. Both
// channels are padded with silence to the wall-clock length since Start (or
// to the end of the last audio frame, if that is later). The spool is removed whether or not writing succeeds.
// After Finish or Abort it returns ErrClosed.
func (r *Recorder) Finish(dst io.Writer) (Info, error) {
	if !r.stop() {
		return Info{}, ErrClosed
	}
	defer func() {
		r.closeFiles()
		if err := os.RemoveAll(r.dir); err != nil {
			r.log.Warn("recording: removing spool", "error", err)
		}
	}()
	end := r.now()
	frames := max(int64(end.Sub(r.start)/FramePeriod), r.ch[caller].end, r.ch[assistant].end, 0)
	info := Info{
		Frames:     frames,
		Duration:   time.Duration(frames) * FramePeriod,
		Size:       wavHeader + frames*2*frameBytes,
		Caller:     r.ch[caller].result(),
		Assistant:  r.ch[assistant].result(),
		Started:    r.start,
		FinishedAt: end,
	}
	if info.Caller.Lost+info.Assistant.Lost > 0 {
		r.log.Warn("recording: frames lost to a full buffer or a failed spool write",
			"caller", info.Caller.Lost, "assistant", info.Assistant.Lost)
	}
	if frames > maxFrames {
		return Info{}, fmt.Errorf("recording: %s is too long for a WAV file", info.Duration)
	}
	if err := r.writeWAV(dst, frames); err != nil {
		return Info{}, err
	}
	r.log.Debug("recording finished", "frames", frames,
		"caller_inserted", info.Caller.Inserted, "caller_skipped", info.Caller.Skipped,
		"assistant_inserted", info.Assistant.Inserted, "assistant_skipped", info.Assistant.Skipped)
	return info, nil
}

func (c *channel) result() ChannelInfo {
	i := c.info
	i.Lost += c.writeLost
	return i
}

// chunkFrames is how many frames Finish interleaves at a time (40 KB of
// output).
const chunkFrames = 64

func (r *Recorder) writeWAV(dst io.Writer, frames int64) error {
	dataSize := frames * 2 * frameBytes
	if dataSize > math.MaxUint32-36 {
		return fmt.Errorf("recording: %d frames do not fit in a WAV file", frames)
	}
	var h [wavHeader]byte
	copy(h[0:4], "RIFF")
	binary.LittleEndian.PutUint32(h[4:8], uint32(36+dataSize))
	copy(h[8:16], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:20], 16)
	binary.LittleEndian.PutUint16(h[20:22], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:24], 2) // channels
	binary.LittleEndian.PutUint32(h[24:28], Rate)
	binary.LittleEndian.PutUint32(h[28:32], Rate*4) // byte rate
	binary.LittleEndian.PutUint16(h[32:34], 4)      // block align
	binary.LittleEndian.PutUint16(h[34:36], 16)
	copy(h[36:40], "data")
	binary.LittleEndian.PutUint32(h[40:44], uint32(dataSize))
	if _, err := dst.Write(h[:]); err != nil {
		return fmt.Errorf("recording: writing WAV header: %w", err)
	}
	left := make([]byte, chunkFrames*frameBytes)
	right := make([]byte, chunkFrames*frameBytes)
	out := make([]byte, 2*chunkFrames*frameBytes)
	for off := int64(0); off < frames; off += chunkFrames {
		n := int(min(chunkFrames, frames-off)) * frameBytes
		if err := readSpool(r.ch[caller].file, left[:n], off*frameBytes); err != nil {
			return err
		}
		if err := readSpool(r.ch[assistant].file, right[:n], off*frameBytes); err != nil {
			return err
		}
		for i := 0; i < n; i += 2 {
			copy(out[2*i:2*i+2], left[i:i+2])
			copy(out[2*i+2:2*i+4], right[i:i+2])
		}
		if _, err := dst.Write(out[:2*n]); err != nil {
			return fmt.Errorf("recording: writing WAV data: %w", err)
		}
	}
	return nil
}

// readSpool fills b from f at off; what lies beyond the end of the file is
// silence.
func readSpool(f *os.File, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("recording: reading spool: %w", err)
	}
	clear(b[n:])
	return nil
}

// FinishFile is Finish into a new file at path (mode 0600; its directory is
// created with mode 0700 if missing), written to a temporary file in the same
// directory, synced and renamed into place, so the path never holds a partial
// WAV. When the temporary file cannot be created the recorder keeps running
// and the error is returned; otherwise the recorder is finished either way.
func (r *Recorder) FinishFile(path string) (Info, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Info{}, fmt.Errorf("recording: creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return Info{}, fmt.Errorf("recording: creating temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	info, err := r.Finish(f)
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("recording: syncing %s: %w", tmp, err)
		}
	}
	if cerr := f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("recording: closing %s: %w", tmp, cerr)
	}
	if err == nil {
		if err = os.Rename(tmp, path); err != nil {
			err = fmt.Errorf("recording: renaming into %s: %w", path, err)
		}
	}
	if err != nil {
		os.Remove(tmp)
		return Info{}, err
	}
	syncDir(dir)
	return info, nil
}

// syncDir makes a rename in dir durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
