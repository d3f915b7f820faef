package recording

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/media"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a manual clock for Config.Now. The tests produce frames far
// faster than real time, so after each step it lets the recorder's flusher
// drain the rings (as it would in real time) when sync is set.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	sync func()
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	sync := c.sync
	c.mu.Unlock()
	if sync != nil {
		sync()
	}
}

func start(t *testing.T, clk *clock, cfg Config) *Recorder {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.Now = clk.Now
	r, err := Start(cfg, "call-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Abort)
	clk.mu.Lock()
	clk.sync = r.sync
	clk.mu.Unlock()
	return r
}

// wav parses a recording back into its two channels, checking the header.
func wav(t *testing.T, b []byte) (left, right []int16) {
	t.Helper()
	rd := bytes.NewReader(b)
	h, err := audio.ReadWAVHeader(rd)
	if err != nil {
		t.Fatal(err)
	}
	if h.Format != audio.WAVFormatPCM || h.Channels != 2 || h.Rate != 8000 || h.BitsPerSample != 16 {
		t.Fatalf("header %+v, want stereo 16-bit PCM at 8 kHz", h)
	}
	data, _ := io.ReadAll(rd)
	if h.DataSize >= 0 && int64(len(data)) != h.DataSize {
		t.Fatalf("data chunk says %d bytes, %d follow", h.DataSize, len(data))
	}
	if len(data)%4 != 0 {
		t.Fatalf("%d data bytes: not whole stereo frames", len(data))
	}
	for i := 0; i < len(data); i += 4 {
		left = append(left, int16(binary.LittleEndian.Uint16(data[i:])))
		right = append(right, int16(binary.LittleEndian.Uint16(data[i+2:])))
	}
	return left, right
}

func finish(t *testing.T, r *Recorder) (Info, []int16, []int16) {
	t.Helper()
	var buf bytes.Buffer
	info, err := r.Finish(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != info.Size {
		t.Fatalf("Info.Size %d, wrote %d bytes", info.Size, buf.Len())
	}
	left, right := wav(t, buf.Bytes())
	if int64(len(left)) != info.Frames*frameSamples {
		t.Fatalf("%d samples per channel, Info.Frames %d", len(left), info.Frames)
	}
	if info.Duration != time.Duration(info.Frames)*FramePeriod {
		t.Fatalf("Duration %v for %d frames", info.Duration, info.Frames)
	}
	if info.Caller.Lost+info.Assistant.Lost != 0 {
		t.Fatalf("frames lost: %+v", info)
	}
	return info, left, right
}

// frames is a fixed Source answering from a list (nil: nothing to send).
type frames struct {
	list [][]int16
	i    int
}

func (f *frames) ReadFrame(frame []int16) bool {
	if f.i >= len(f.list) {
		return false
	}
	fr := f.list[f.i]
	f.i++
	if fr == nil {
		return false
	}
	copy(frame, fr)
	return true
}

// collect is a Sink keeping copies of what it receives.
type collect struct{ got [][]int16 }

func (c *collect) WriteFrame(frame []int16) { c.got = append(c.got, append([]int16(nil), frame...)) }

// constant returns a frame holding v in every sample.
func constant(v int16) []int16 {
	f := make([]int16, frameSamples)
	for i := range f {
		f[i] = v
	}
	return f
}

// slots returns, for each frame of ch, its first sample (0 for silence).
func slots(ch []int16) []int16 {
	out := make([]int16, len(ch)/frameSamples)
	for i := range out {
		out[i] = ch[i*frameSamples]
	}
	return out
}

// TestChannelsHoldTheirOwnAudio: a 300 Hz tone from the caller and a 440 Hz
// tone from the assistant, in different windows, each land on their own
// channel in their own window, sample-exact, with silence elsewhere.
func TestChannelsHoldTheirOwnAudio(t *testing.T) {
	clk := newClock()
	r := start(t, clk, Config{})
	const total = 150 // 3 s
	callerTone := audio.Tone(300, Rate, 50*frameSamples, 8000)
	assistantTone := audio.Tone(440, Rate, 50*frameSamples, 8000)
	// Caller speaks in slots 10–59 (0.2–1.2 s), the assistant in 70–119.
	src := &frames{list: make([][]int16, total)}
	for k := 70; k < 120; k++ {
		src.list[k] = assistantTone[(k-70)*frameSamples : (k-69)*frameSamples]
	}
	inner := &collect{}
	sink, source := r.Sink(inner), r.Source(src)
	clk.Advance(FramePeriod / 2) // mid-slot, like a real pacer
	out := make([]int16, frameSamples)
	sent := 0
	for k := range total {
		if source.ReadFrame(out) {
			sent++
		}
		in := make([]int16, frameSamples)
		if k >= 10 && k < 60 {
			copy(in, callerTone[(k-10)*frameSamples:])
		}
		sink.WriteFrame(in)
		clk.Advance(FramePeriod)
	}
	if sent != 50 {
		t.Fatalf("the wrapped source reported audio %d times, want 50", sent)
	}
	if len(inner.got) != total || !equal(inner.got[20], callerTone[10*frameSamples:11*frameSamples]) {
		t.Fatalf("the inner sink got %d frames (or altered ones), want %d", len(inner.got), total)
	}
	info, left, right := finish(t, r)
	if info.Frames != total {
		t.Fatalf("%d frames, want %d", info.Frames, total)
	}
	if info.Caller.Audio != 50 || info.Assistant.Audio != 50 || info.Caller.Inserted+info.Assistant.Inserted != 0 {
		t.Fatalf("info %+v", info)
	}
	cw := [2]int{10 * frameSamples, 60 * frameSamples}
	aw := [2]int{70 * frameSamples, 120 * frameSamples}
	if !equal(left[cw[0]:cw[1]], callerTone) || !equal(right[aw[0]:aw[1]], assistantTone) {
		t.Fatal("the tones are not where they were sent")
	}
	for _, c := range []struct {
		name   string
		pcm    []int16
		want   float64
		other  float64
		silent bool
	}{
		{"left, caller window", left[cw[0]:cw[1]], 300, 440, false},
		{"right, assistant window", right[aw[0]:aw[1]], 440, 300, false},
		{"left, assistant window", left[aw[0]:aw[1]], 0, 0, true},
		{"right, caller window", right[cw[0]:cw[1]], 0, 0, true},
		{"left, before", left[:cw[0]], 0, 0, true},
		{"right, after", right[aw[1]:], 0, 0, true},
	} {
		if c.silent {
			if rms := audio.RMS(c.pcm); rms != 0 {
				t.Errorf("%s: RMS %.1f, want silence", c.name, rms)
			}
			continue
		}
		p, q := audio.Goertzel(c.pcm, Rate, c.want), audio.Goertzel(c.pcm, Rate, c.other)
		rms := audio.RMS(c.pcm)
		// A sine of amplitude 8000: power 3.2e7 at its frequency.
		if p < 0.9*rms*rms || q > 0.01*p {
			t.Errorf("%s: power %.3g at %v Hz, %.3g at %v Hz (RMS² %.3g)", c.name, p, c.want, q, c.other, rms*rms)
		}
	}
}

func equal(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCallerGapIsPadded: the caller's RTP stops for 2 s (hold); when it
// resumes, its frames are placed at the wall-clock slot, the gap is silence,
// and the channels stay aligned.
func TestCallerGapIsPadded(t *testing.T) {
	clk := newClock()
	r := start(t, clk, Config{})
	sink, source := r.Sink(nil), r.Source(nil)
	out := make([]int16, frameSamples)
	clk.Advance(FramePeriod / 2)
	for k := range 250 { // 5 s; the caller is silent (no RTP) in slots 50–149
		source.ReadFrame(out)
		if k < 50 || k >= 150 {
			sink.WriteFrame(constant(int16(k + 1)))
		}
		clk.Advance(FramePeriod)
	}
	info, left, right := finish(t, r)
	if info.Frames != 250 {
		t.Fatalf("%d frames, want 250", info.Frames)
	}
	if info.Caller.Inserted != 100 {
		t.Errorf("caller: %d frames inserted, want 100", info.Caller.Inserted)
	}
	got := slots(left)
	for k := range 250 {
		want := int16(k + 1)
		if k >= 50 && k < 150 {
			want = 0
		}
		if got[k] != want {
			t.Fatalf("caller slot %d holds %d, want %d", k, got[k], want)
		}
	}
	if audio.RMS(right) != 0 {
		t.Error("the assistant channel is not silent")
	}
}

// TestBurstIsNotDropped: frames delayed beyond the slack arrive together;
// the channel catches up with the clock once, then every frame of the burst
// is kept, in order. The following pause (digital silence) brings the
// channel back within the slack of the clock.
func TestBurstIsNotDropped(t *testing.T) {
	clk := newClock()
	r := start(t, clk, Config{})
	sink := r.Sink(nil)
	clk.Advance(FramePeriod / 2)
	next := int16(1)
	send := func() { sink.WriteFrame(constant(next)); next++ }
	for range 50 {
		send()
		clk.Advance(FramePeriod)
	}
	// Slots 50–59: nothing arrives; at slot 60 ten frames arrive at once,
	// then the stream goes on at its pace (each 10 slots late).
	clk.Advance(10 * FramePeriod)
	for range 10 {
		send()
	}
	for range 40 {
		clk.Advance(FramePeriod)
		send()
	}
	// Then digital silence (the caller pauses) for 1 s.
	for range 50 {
		clk.Advance(FramePeriod)
		sink.WriteFrame(make([]int16, frameSamples))
	}
	clk.Advance(FramePeriod / 2)
	info, left, _ := finish(t, r)
	got := slots(left)
	// 1..50 at slots 0..49, silence 50..59, then 51..100 at slots 60..109.
	for k := range 110 {
		want := int16(0)
		switch {
		case k < 50:
			want = int16(k + 1)
		case k >= 60:
			want = int16(k - 9)
		}
		if got[k] != want {
			t.Fatalf("caller slot %d holds %d, want %d", k, got[k], want)
		}
	}
	if info.Caller.Audio != 100 || info.Caller.Inserted != 10 {
		t.Errorf("caller %+v, want 100 audio frames and 10 inserted", info.Caller)
	}
	// The clock is at slot 150. The last audio frame went to slot 109 in
	// wall-clock slot 100; the silent frames of slots 101–109 were dropped,
	// and the channel is back on the clock from slot 110.
	wall := int64(150)
	if info.Caller.Skipped != 9 {
		t.Errorf("caller: %d silent frames skipped, want 9", info.Caller.Skipped)
	}
	if got[110] != 0 || r.ch[caller].pos != info.Frames {
		t.Errorf("caller ends at slot %d, want %d", r.ch[caller].pos, info.Frames)
	}
	if info.Frames < wall || info.Frames > wall+2 {
		t.Errorf("%d frames, want the wall clock's %d (+2)", info.Frames, wall)
	}
}

// TestJitterWithinSlackChangesNothing: frames up to Slack slots late are
// appended without inserting silence.
func TestJitterWithinSlackChangesNothing(t *testing.T) {
	clk := newClock()
	r := start(t, clk, Config{})
	sink := r.Sink(nil)
	clk.Advance(FramePeriod / 2)
	v := int16(1)
	for range 20 {
		// Three slots pass, then three frames arrive together.
		clk.Advance(3 * FramePeriod)
		for range 3 {
			sink.WriteFrame(constant(v))
			v++
		}
	}
	info, left, _ := finish(t, r)
	if info.Caller.Inserted != 0 || info.Caller.Skipped != 0 {
		t.Fatalf("caller %+v: jitter within the slack was corrected", info.Caller)
	}
	got := slots(left)
	for k := range 60 {
		if got[k] != int16(k+1) {
			t.Fatalf("slot %d holds %d, want %d", k, got[k], k+1)
		}
	}
	if info.Frames != 60 {
		t.Fatalf("%d frames, want 60", info.Frames)
	}
}

// TestEarlyWakeDriftIsAbsorbed: a sender woken early reads a reply's first
// frame in the same slot as the silent frame before it, so each reply pushes
// the assistant channel one frame ahead of the clock. No audio is lost, the
// pauses bring the channel back, and every reply is recorded within a frame
// of when it was sent, the last one included (it ends past the clock).
func TestEarlyWakeDriftIsAbsorbed(t *testing.T) {
	clk := newClock()
	r := start(t, clk, Config{})
	src := &frames{}
	source := r.Source(src)
	out := make([]int16, frameSamples)
	read := func() { source.ReadFrame(out) }
	wall := int64(0)
	tick := func() { clk.Advance(FramePeriod); wall++ }
	clk.Advance(FramePeriod / 2)
	replyAt := map[int16]int64{} // first value of each reply → slot it was sent in
	v := int16(1)
	for range 20 {
		// A pause of 1 s: one silent frame per slot.
		src.list = nil
		for j := range 50 {
			if j > 0 {
				tick()
			}
			read()
		}
		// The reply: woken early, its first frame goes out in the slot
		// of the last silent one; then one frame per slot.
		src.list, src.i = nil, 0
		for range 10 {
			src.list = append(src.list, constant(v))
			v++
		}
		replyAt[src.list[0][0]] = wall
		read()
		for range 9 {
			tick()
			read()
		}
		tick()
	}
	info, _, right := finish(t, r)
	if info.Assistant.Audio != 200 {
		t.Fatalf("assistant: %d audio frames, want 200", info.Assistant.Audio)
	}
	got := slots(right)
	seen := 0
	for k, s := range got {
		if s == 0 {
			continue
		}
		seen++
		if at, ok := replyAt[s]; ok {
			if d := int64(k) - at; d < 0 || d > 1 {
				t.Errorf("reply starting with %d sent in slot %d, recorded in %d", s, at, k)
			}
		}
	}
	if seen != 200 {
		t.Fatalf("%d audio frames in the file, want 200", seen)
	}
	if info.Assistant.Skipped != 19 {
		t.Errorf("assistant: %d silent frames skipped, want 19 (one per pause after a reply)", info.Assistant.Skipped)
	}
	// The last reply ran one frame past the clock; the file holds it.
	if info.Frames != wall+1 {
		t.Errorf("%d frames, want %d", info.Frames, wall+1)
	}
}

// fillerFrames is frames whose silences are filled with a constant filler
// frame (background audio), flagged as such (Filler).
type fillerFrames struct {
	frames
	fill bool
}

func (f *fillerFrames) ReadFrame(frame []int16) bool {
	if f.fill = !f.frames.ReadFrame(frame); f.fill {
		copy(frame, constant(fillValue))
	}
	return true
}

func (f *fillerFrames) Filler() bool { return f.fill }

const fillValue = -7

// TestEarlyWakeDriftIsAbsorbedUnderFiller: as TestEarlyWakeDriftIsAbsorbed,
// with background audio filling every pause, so the assistant's Source
// never has a silent frame. The filler frames are recorded, yet the
// channel still falls back onto the clock in each pause: the replies are
// recorded where they were sent, and the file is no longer than the call.
func TestEarlyWakeDriftIsAbsorbedUnderFiller(t *testing.T) {
	clk := newClock()
	r := start(t, clk, Config{})
	src := &fillerFrames{}
	source := r.Source(src)
	out := make([]int16, frameSamples)
	read := func() { source.ReadFrame(out) }
	wall := int64(0)
	tick := func() { clk.Advance(FramePeriod); wall++ }
	clk.Advance(FramePeriod / 2)
	replyAt := map[int16]int64{}
	v := int16(1)
	for range 20 {
		src.list = nil
		for j := range 50 {
			if j > 0 {
				tick()
			}
			read()
		}
		src.list, src.i = nil, 0
		for range 10 {
			src.list = append(src.list, constant(v))
			v++
		}
		replyAt[src.list[0][0]] = wall
		read()
		for range 9 {
			tick()
			read()
		}
		tick()
	}
	info, _, right := finish(t, r)
	got := slots(right)
	replies, fill := 0, 0
	for k, s := range got {
		switch {
		case s == fillValue:
			fill++
		case s > 0:
			replies++
			if at, ok := replyAt[s]; ok {
				if d := int64(k) - at; d < 0 || d > 1 {
					t.Errorf("reply starting with %d sent in slot %d, recorded in %d", s, at, k)
				}
			}
		}
	}
	if replies != 200 {
		t.Fatalf("%d reply frames in the file, want 200", replies)
	}
	if info.Assistant.Skipped != 19 || fill != 20*50-19 {
		t.Errorf("assistant: %d filler frames skipped, %d recorded; want 19 (one per pause after a reply) and %d", info.Assistant.Skipped, fill, 20*50-19)
	}
	if info.Frames != wall+1 {
		t.Errorf("%d frames, want %d", info.Frames, wall+1)
	}
}

// TestFullRingLosesFramesNotTime: when the flusher cannot keep up, frames
// that find the ring full become silence; the channel keeps its place.
// put is exercised without a flusher so the ring stays full.
func TestFullRingLosesFramesNotTime(t *testing.T) {
	clk := newClock()
	r := &Recorder{now: clk.Now, start: clk.Now(), kick: make(chan struct{}, 1)}
	c := &r.ch[caller]
	c.data, c.at = make([]int16, minRing*frameSamples), make([]int64, minRing)
	for k := range minRing + 4 {
		r.put(c, constant(int16(k+1)), true)
		clk.Advance(FramePeriod)
	}
	if c.info.Lost != 4 || c.info.Audio != minRing+4 || c.pos != minRing+4 || c.head != minRing {
		t.Fatalf("channel %+v pos %d head %d", c.info, c.pos, c.head)
	}
	if len(r.kick) != 1 {
		t.Fatal("the flusher was not asked to flush")
	}
}

// TestLongRecordingStaysBounded: 60 s of audio on both channels with a
// short flush interval. The ring holds 16 frames whatever the length; the
// audio is on disk as it goes, and comes back complete and in place.
func TestLongRecordingStaysBounded(t *testing.T) {
	clk := newClock()
	spool := t.TempDir()
	r := start(t, clk, Config{Dir: spool, FlushInterval: time.Millisecond})
	if n := len(r.ch[caller].at); n != minRing {
		t.Fatalf("ring of %d frames, want %d", n, minRing)
	}
	clk.sync = nil // flush every half ring, as the ticker would
	src := &frames{list: [][]int16{nil}}
	sink, source := r.Sink(nil), r.Source(src)
	out := make([]int16, frameSamples)
	clk.Advance(FramePeriod / 2)
	const total = 3000
	// Every 7th frame of the caller and every 5th of the assistant is
	// silent, so the spool is written in runs with holes between them.
	val := func(k int) int16 {
		if k%7 == 3 {
			return 0
		}
		return int16(k%20000 + 1)
	}
	aval := func(k int) int16 {
		if k%5 == 1 {
			return 0
		}
		return -int16(k%20000 + 1)
	}
	for k := range total {
		src.list[0], src.i = constant(aval(k)), 0
		if k%5 == 1 {
			src.list[0] = nil
		}
		source.ReadFrame(out)
		sink.WriteFrame(constant(val(k)))
		clk.Advance(FramePeriod)
		if k%(minRing/2) == minRing/2-1 {
			r.sync()
		}
		if k == total/2-1 {
			// Half way, everything so far is in the spool files.
			r.sync()
			files, _ := filepath.Glob(filepath.Join(spool, "*", "*.pcm"))
			if len(files) != 2 {
				t.Fatalf("spool files %v", files)
			}
			for _, f := range files {
				st, err := os.Stat(f)
				if err != nil || st.Size() != total/2*frameBytes {
					t.Fatalf("%s: %v bytes (%v), want %d", f, st.Size(), err, total/2*frameBytes)
				}
			}
		}
	}
	for i := range r.ch {
		if h := r.ch[i].high; h > minRing/2 {
			t.Errorf("channel %d buffered %d frames at once", i, h)
		}
	}
	info, left, right := finish(t, r)
	if info.Frames != total || info.Caller.Lost+info.Assistant.Lost != 0 {
		t.Fatalf("info %+v", info)
	}
	l, rr := slots(left), slots(right)
	for k := range total {
		if l[k] != val(k) || rr[k] != aval(k) {
			t.Fatalf("slot %d: %d/%d, want %d/%d", k, l[k], rr[k], val(k), aval(k))
		}
	}
}

// TestAbortDeletesSpool: Abort removes the spool and ends the goroutine;
// later calls pass audio through and do nothing else.
func TestAbortDeletesSpool(t *testing.T) {
	clk := newClock()
	spool := t.TempDir()
	r := start(t, clk, Config{Dir: spool})
	inner := &collect{}
	sink := r.Sink(inner)
	for range 10 {
		sink.WriteFrame(constant(7))
		clk.Advance(FramePeriod)
	}
	r.sync()
	if files, _ := filepath.Glob(filepath.Join(spool, "*", "*.pcm")); len(files) != 2 {
		t.Fatalf("spool files %v, want 2", files)
	}
	r.Abort()
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Fatalf("spool still holds %v", ents)
	}
	goleak.VerifyNone(t)
	sink.WriteFrame(constant(8))
	if len(inner.got) != 11 || inner.got[10][0] != 8 {
		t.Fatal("the sink stopped passing frames through after Abort")
	}
	if ok := r.Source(&frames{list: [][]int16{constant(1)}}).ReadFrame(make([]int16, frameSamples)); !ok {
		t.Fatal("the source stopped passing frames through after Abort")
	}
	r.Abort()
	if _, err := r.Finish(io.Discard); !errors.Is(err, ErrClosed) {
		t.Fatalf("Finish after Abort: %v", err)
	}
}

// TestFinishFile: the WAV appears at its path complete (mode 0600), the
// spool is gone, no temporary file is left, and a second Finish is refused.
func TestFinishFile(t *testing.T) {
	clk := newClock()
	spool := t.TempDir()
	r := start(t, clk, Config{Dir: spool})
	sink := r.Sink(nil)
	for range 25 {
		clk.Advance(FramePeriod)
		sink.WriteFrame(constant(100))
	}
	out := filepath.Join(t.TempDir(), "rec", "call-1.wav")
	info, err := r.FinishFile(out)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != info.Size || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %d bytes mode %v; Info.Size %d", out, st.Size(), st.Mode().Perm(), info.Size)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Fatalf("%s holds %v", filepath.Dir(out), ents)
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Fatalf("spool still holds %v", ents)
	}
	b, _ := os.ReadFile(out)
	left, _ := wav(t, b)
	if len(left) != 25*frameSamples || left[24*frameSamples] != 100 {
		t.Fatalf("%d samples", len(left))
	}
	if _, err := r.FinishFile(out + "2"); !errors.Is(err, ErrClosed) {
		t.Fatalf("second FinishFile: %v", err)
	}
	if _, err := os.Stat(out + "2"); !os.IsNotExist(err) {
		t.Fatalf("second FinishFile left a file: %v", err)
	}
}

// TestEmptyRecording: no frames at all gives a valid WAV: empty when no time
// passed, silence as long as the call otherwise.
func TestEmptyRecording(t *testing.T) {
	clk := newClock()
	r := start(t, clk, Config{})
	info, left, _ := finish(t, r)
	if info.Frames != 0 || len(left) != 0 || info.Size != 44 {
		t.Fatalf("info %+v", info)
	}

	r = start(t, clk, Config{})
	clk.Advance(time.Second + FramePeriod/2)
	info, left, right := finish(t, r)
	if info.Frames != 50 || audio.RMS(left) != 0 || audio.RMS(right) != 0 {
		t.Fatalf("info %+v", info)
	}
}

// TestWake: the Source wrapper is a media.Waker delegating to its inner
// source, or never ready.
func TestWake(t *testing.T) {
	clk := newClock()
	r := start(t, clk, Config{})
	w := &waker{ch: make(chan struct{})}
	src, ok := r.Source(w).(media.Waker)
	if !ok {
		t.Fatal("the source wrapper is not a media.Waker")
	}
	if src.Wake() != w.ch {
		t.Fatal("Wake is not the inner source's channel")
	}
	for _, inner := range []media.Source{&frames{}, nil} {
		if c := r.Source(inner).(media.Waker).Wake(); c != nil {
			t.Fatalf("Wake for %T: %v, want nil", inner, c)
		}
	}
	if r.Source(nil).ReadFrame(make([]int16, frameSamples)) {
		t.Fatal("a nil source sent audio")
	}
}

type waker struct{ ch chan struct{} }

func (w *waker) ReadFrame([]int16) bool { return false }
func (w *waker) Wake() <-chan struct{}  { return w.ch }

// TestConcurrentUse: the receive and send goroutines keep going while the
// owner finishes and aborts at the same time (run with -race); frames after
// the end are still passed through.
func TestConcurrentUse(t *testing.T) {
	r, err := Start(Config{Dir: t.TempDir(), FlushInterval: time.Millisecond}, "c")
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	var running, wg sync.WaitGroup
	running.Add(2)
	wg.Add(2)
	var afterEnd [2]bool
	go func() {
		defer wg.Done()
		inner := &collect{}
		s := r.Sink(inner)
		for i := 0; ; i++ {
			if i == 100 {
				running.Done()
			}
			if i == 5000 { // enough: wait for the end
				<-ended
			}
			select {
			case <-ended:
				s.WriteFrame(constant(-3))
				afterEnd[0] = inner.got[len(inner.got)-1][0] == -3
				return
			default:
				s.WriteFrame(constant(3))
			}
		}
	}()
	go func() {
		defer wg.Done()
		src := &frames{}
		s := r.Source(src)
		out := make([]int16, frameSamples)
		for i := 0; ; i++ {
			if i == 100 {
				running.Done()
			}
			if i == 5000 { // enough: wait for the end
				<-ended
			}
			select {
			case <-ended:
				src.list, src.i = [][]int16{constant(-4)}, 0
				afterEnd[1] = s.ReadFrame(out) && out[0] == -4
				return
			default:
				src.list, src.i = [][]int16{constant(4)}, 0
				s.ReadFrame(out)
			}
		}
	}()
	running.Wait()
	var bufs [2]bytes.Buffer
	var errs [2]error
	var owners sync.WaitGroup
	for i := range 3 {
		owners.Add(1)
		go func() {
			defer owners.Done()
			if i == 2 {
				r.Abort()
				return
			}
			_, errs[i] = r.Finish(&bufs[i])
		}()
	}
	owners.Wait()
	close(ended)
	wg.Wait()
	finished := 0
	for i, err := range errs {
		switch {
		case err == nil:
			finished++
			wav(t, bufs[i].Bytes())
		case !errors.Is(err, ErrClosed):
			t.Fatal(err)
		}
	}
	if finished > 1 {
		t.Fatal("two Finish calls succeeded")
	}
	if afterEnd != [2]bool{true, true} {
		t.Fatalf("frames passed through after the end: %v", afterEnd)
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"3f2a-11ef_b.x":         "3f2a-11ef_b.x",
		"../../etc/passwd":      "etc_passwd",
		"":                      "recording",
		"/":                     "recording",
		".hidden":               "hidden",
		"a b\\c\x00d":           "a_b_c_d",
		"été":                   "t",
		strings.Repeat("x", 99): strings.Repeat("x", 64),
	} {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMediaPathDoesNotAllocate: recording a frame on each channel allocates
// nothing in steady state.
func TestMediaPathDoesNotAllocate(t *testing.T) {
	clk := newClock()
	r := start(t, clk, Config{})
	src := &frames{list: [][]int16{constant(9)}}
	inner := &nop{}
	sink, source := r.Sink(inner), r.Source(src)
	in, out := constant(5), make([]int16, frameSamples)
	allocs := testing.AllocsPerRun(2000, func() {
		src.i = 0
		sink.WriteFrame(in)
		source.ReadFrame(out)
		clk.Advance(FramePeriod)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame pair", allocs)
	}
}

type nop struct{}

func (nop) WriteFrame([]int16) {}

// BenchmarkRecorderFrame: one caller frame and one assistant frame through
// the wrappers, with the flusher spooling them to disk (it is made to drain
// the rings every half ring, as its ticker would in real time). This is the
// whole cost of recording a 20 ms frame pair, flushing included.
func BenchmarkRecorderFrame(b *testing.B) {
	clk := newClock()
	r, err := Start(Config{Dir: b.TempDir(), Now: clk.Now}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer r.Abort()
	src := &frames{list: [][]int16{audio.Tone(440, Rate, frameSamples, 8000)}}
	sink, source := r.Sink(nop{}), r.Source(src)
	in, out := audio.Tone(300, Rate, frameSamples, 8000), make([]int16, frameSamples)
	half := len(r.ch[caller].at) / 2
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		src.i = 0
		sink.WriteFrame(in)
		source.ReadFrame(out)
		clk.Advance(FramePeriod)
		if i%half == half-1 {
			r.sync()
		}
	}
	b.StopTimer()
	if lost := r.ch[caller].info.Lost + r.ch[assistant].info.Lost; lost != 0 {
		b.Fatalf("%d frames lost", lost)
	}
}

// BenchmarkRecorderPut: what the media path itself does for one frame (clock
// read, lock, copy into the ring), without a flusher.
func BenchmarkRecorderPut(b *testing.B) {
	r := &Recorder{now: time.Now, start: time.Now(), kick: make(chan struct{}, 1)}
	c := &r.ch[caller]
	c.data, c.at = make([]int16, minRing*frameSamples), make([]int64, minRing)
	f := audio.Tone(300, Rate, frameSamples, 8000)
	b.ReportAllocs()
	for range b.N {
		r.put(c, f, true)
		c.tail = c.head // drained
	}
}

// TestShortFrameIsPadded: a frame shorter than 20 ms is padded with silence,
// even in a ring slot that held a full frame before.
func TestShortFrameIsPadded(t *testing.T) {
	clk := newClock()
	r := start(t, clk, Config{})
	sink := r.Sink(nil)
	clk.Advance(FramePeriod / 2)
	n := len(r.ch[caller].at)
	for range n {
		sink.WriteFrame(constant(9))
		clk.Advance(FramePeriod)
	}
	sink.WriteFrame(constant(5)[:frameSamples/2]) // lands in slot 0 of the ring again
	clk.Advance(FramePeriod)
	_, left, _ := finish(t, r)
	last := left[n*frameSamples:]
	if len(last) != frameSamples || last[0] != 5 || last[frameSamples/2-1] != 5 || audio.RMS(last[frameSamples/2:]) != 0 {
		t.Fatalf("short frame recorded as %v", last)
	}
}

// TestCleanSpool removes what an interrupted recording left, and nothing
// else.
func TestCleanSpool(t *testing.T) {
	dir := t.TempDir()
	r, err := Start(Config{Dir: dir}, "crashed")
	if err != nil {
		t.Fatal(err)
	}
	spool := r.dir
	writeSome(t, r)
	// Simulate a crash: the goroutine ends but the spool stays.
	r.stop()
	r.closeFiles()
	other := filepath.Join(dir, "keep")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CleanSpool(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spool); !os.IsNotExist(err) {
		t.Fatalf("spool %s still there: %v", spool, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("unrelated directory removed: %v", err)
	}
	if err := CleanSpool(filepath.Join(dir, "missing")); err != nil {
		t.Fatal(err)
	}
}

// writeSome writes a few frames and flushes them.
func writeSome(t *testing.T, r *Recorder) {
	t.Helper()
	s := r.Sink(nil)
	for range 5 {
		s.WriteFrame(constant(1))
	}
	r.sync()
}
