package announce

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/media"
)

func TestUnavailablePlaysOnceThenSilence(t *testing.T) {
	c, err := Unavailable()
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Duration(); d < 3*time.Second || d > 10*time.Second {
		t.Fatalf("embedded message lasts %s", d)
	}
	p := c.Play()
	frame := make([]int16, media.FrameSamples)
	frames, loud := 0, false
	for p.ReadFrame(frame) {
		frames++
		for _, s := range frame {
			if s > 1000 || s < -1000 {
				loud = true
			}
		}
	}
	want := (len(c.pcm) + media.FrameSamples - 1) / media.FrameSamples
	if frames != want || !loud {
		t.Fatalf("played %d frames (want %d), audible %v", frames, want, loud)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after the clip ended")
	}
	if p.ReadFrame(frame) {
		t.Fatal("a finished player still sends audio")
	}
}

func TestLoadResamplesAndRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	pcm := make([]int16, 16000) // 1 s at 16 kHz
	for i := range pcm {
		pcm[i] = int16(i % 2000)
	}
	var b bytes.Buffer
	if err := audio.WriteWAV(&b, pcm, 16000); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "msg.wav")
	os.WriteFile(good, b.Bytes(), 0o600)
	c, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Duration(); d < 990*time.Millisecond || d > 1010*time.Millisecond {
		t.Fatalf("resampled clip lasts %s, want 1 s", d)
	}
	bad := filepath.Join(dir, "bad.wav")
	os.WriteFile(bad, []byte("not a wav"), 0o600)
	if _, err := Load(bad); err == nil {
		t.Fatal("a file that is not a WAV was accepted")
	}
	if _, err := Load(filepath.Join(dir, "missing.wav")); err == nil {
		t.Fatal("a missing file was accepted")
	}
}
