package local

import (
	"time"

	"github.com/parley-voice/parley/internal/audio"
)

// Utterance cutting.
const (
	// prerollFrames of audio before the detected start of speech go with an
	// utterance, so its first sound is not clipped (200 ms).
	prerollFrames = 10
	// maxUtterance cuts an utterance that never ends (steady noise, a
	// monologue) so that memory and recognition time stay bounded.
	maxUtterance = 30 * time.Second
)

// utterance is a stretch of speech cut from the stream, with its margins.
type utterance struct {
	pcm        []int16       // audio at the stream's rate, pre-roll included
	start, end time.Duration // the speech itself, from the start of the stream
}

// segmenter cuts a stream of PCM into utterances with a VAD. It calls
// started when speech begins and done with each finished utterance. It is
// used by one goroutine.
type segmenter struct {
	rate      int
	frameLen  int // samples in one 20 ms frame
	vad       *audio.VAD
	startRun  int // the VAD's StartFrames
	endRun    int // the VAD's EndFrames
	endpoint  int // frames of extra silence after the VAD's end of speech
	maxFrames int

	started func(start time.Duration)
	done    func(utterance)

	carry []int16 // the start of an incomplete frame
	frame int64   // index of the next frame

	ring     [][]int16 // recent frames while idle: the pre-roll
	speaking bool      // inside an utterance (including its endpoint wait)
	ending   bool      // the VAD said speech ended; waiting endpoint frames
	waited   int       // endpoint frames waited so far
	pcm      []int16
	start    int64 // first frame of speech
	end      int64 // first frame after speech
}

func newSegmenter(rate int, endpointing time.Duration, started func(time.Duration), done func(utterance)) *segmenter {
	cfg := audio.DefaultVADConfig()
	frame := audio.FrameDuration * time.Millisecond
	return &segmenter{
		rate:      rate,
		frameLen:  audio.FrameSamples(rate),
		vad:       audio.NewVAD(cfg),
		startRun:  cfg.StartFrames,
		endRun:    cfg.EndFrames,
		endpoint:  int((endpointing + frame - 1) / frame),
		maxFrames: int(maxUtterance / frame),
		started:   started,
		done:      done,
	}
}

// at returns the time of the start of frame i.
func (g *segmenter) at(i int64) time.Duration {
	return time.Duration(i) * audio.FrameDuration * time.Millisecond
}

// write feeds audio; whole frames are processed at once.
func (g *segmenter) write(pcm []int16) {
	if len(g.carry) > 0 {
		need := g.frameLen - len(g.carry)
		if len(pcm) < need {
			g.carry = append(g.carry, pcm...)
			return
		}
		g.carry = append(g.carry, pcm[:need]...)
		pcm = pcm[need:]
		g.process(g.carry)
		g.carry = g.carry[:0]
	}
	for len(pcm) >= g.frameLen {
		g.process(pcm[:g.frameLen])
		pcm = pcm[g.frameLen:]
	}
	g.carry = append(g.carry, pcm...)
}

// process handles one frame. frame is not kept.
func (g *segmenter) process(frame []int16) {
	i := g.frame
	g.frame++
	res := g.vad.Process(frame)

	if !g.speaking {
		g.ring = append(g.ring, append([]int16(nil), frame...))
		if len(g.ring) > prerollFrames+g.startRun {
			g.ring = g.ring[1:]
		}
		if res.Event != audio.SpeechStart {
			return
		}
		g.speaking, g.ending = true, false
		g.start = i - int64(g.startRun) + 1
		g.pcm = g.pcm[:0]
		for _, f := range g.ring {
			g.pcm = append(g.pcm, f...)
		}
		g.ring = g.ring[:0]
		g.started(g.at(g.start))
		return
	}

	g.pcm = append(g.pcm, frame...)
	switch {
	case res.Event == audio.SpeechEnd:
		g.end = i - int64(g.endRun) + 1
		g.ending, g.waited = true, 0
	case res.Event == audio.SpeechStart: // speech resumed during the endpoint wait
		g.ending = false
	case g.ending:
		g.waited++
	}
	switch {
	case g.ending && g.waited >= g.endpoint:
		g.finish()
	case len(g.pcm) >= g.maxFrames*g.frameLen:
		// Too long: cut here and go on with a new utterance at once.
		wasEnding := g.ending
		g.finish()
		if !wasEnding {
			g.speaking, g.start = true, g.frame
		}
	}
}

// finish hands the utterance to done and returns to idle.
func (g *segmenter) finish() {
	if !g.ending {
		g.end = g.frame
	}
	g.done(utterance{pcm: g.pcm, start: g.at(g.start), end: g.at(g.end)})
	g.pcm = nil
	g.speaking, g.ending = false, false
}

// flush ends an utterance in progress at the end of the audio.
func (g *segmenter) flush() {
	if len(g.carry) > 0 && g.speaking {
		g.pcm = append(g.pcm, g.carry...)
	}
	g.carry = g.carry[:0]
	if g.speaking {
		g.finish()
	}
}
