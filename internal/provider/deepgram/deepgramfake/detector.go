package deepgramfake

import (
	"math"
	"time"
)

// detKind is what the detector observed.
type detKind uint8

const (
	detSpeechStarted detKind = iota + 1
	detInterim
	detFinal
	detUtteranceEnd
)

// detEvent is one observation, with times as offsets in the audio.
type detEvent struct {
	kind detKind
	// start and end: the speech so far (interim), the speech span (final),
	// the speech onset (speech started) or the last word's end (utterance
	// end, in both).
	start, end time.Duration
	// tick counts interim events within one utterance, from 1.
	tick int
	// fromFinalize marks a final forced by Finalize.
	fromFinalize bool
}

// detector is a deterministic energy-based speech detector working on
// 20 ms windows of one channel. It knows nothing of the network: it is fed
// samples and returns what happened, with times counted in samples.
type detector struct {
	rate         int
	window       int // samples per window
	threshold    float64
	endpointing  time.Duration
	utteranceEnd time.Duration // 0 = no utterance-end events
	interim      bool

	// Current, possibly partial, window.
	sumSquares float64
	filled     int
	pos        int64 // samples consumed, including the partial window

	runStart    int64 // first sample of the current loud run; -1 = none
	speaking    bool
	speechStart int64
	lastLoud    int64 // end of the last loud window of the utterance
	ticks       int
	ueAt        int64 // sample at which to report utterance end; -1 = none
	ueWordEnd   int64
}

func newDetector(rate int, threshold float64, endpointing, utteranceEnd time.Duration, interim bool) *detector {
	window := rate * int(windowLength/time.Millisecond) / 1000
	if window < 1 {
		window = 1
	}
	return &detector{
		rate:         rate,
		window:       window,
		threshold:    threshold,
		endpointing:  endpointing,
		utteranceEnd: utteranceEnd,
		interim:      interim,
		runStart:     -1,
		ueAt:         -1,
	}
}

// duration converts a sample count to time.
func (d *detector) duration(samples int64) time.Duration {
	return time.Duration(samples) * time.Second / time.Duration(d.rate)
}

// samples converts time to a sample count.
func (d *detector) samples(t time.Duration) int64 {
	return int64(t) * int64(d.rate) / int64(time.Second)
}

// elapsed is the audio consumed so far.
func (d *detector) elapsed() time.Duration { return d.duration(d.pos) }

// feed consumes samples and appends what they revealed to out.
func (d *detector) feed(samples []int16, out []detEvent) []detEvent {
	for _, s := range samples {
		v := float64(s)
		d.sumSquares += v * v
		d.filled++
		d.pos++
		if d.filled == d.window {
			rms := math.Sqrt(d.sumSquares / float64(d.window))
			d.sumSquares, d.filled = 0, 0
			out = d.step(rms >= d.threshold, d.pos-int64(d.window), d.pos, out)
		}
	}
	return out
}

// step advances the state machine by one window [start, end).
func (d *detector) step(loud bool, start, end int64, out []detEvent) []detEvent {
	if !d.speaking {
		if d.ueAt >= 0 && end >= d.ueAt {
			out = append(out, d.utteranceEndEvent())
		}
		if !loud {
			d.runStart = -1
			return out
		}
		if d.runStart < 0 {
			d.runStart = start
		}
		if d.duration(end-d.runStart) < speechOnset {
			return out
		}
		d.speaking = true
		d.speechStart = d.runStart
		d.lastLoud = end
		d.runStart = -1
		d.ueAt = -1
		d.ticks = 0
		at := d.duration(d.speechStart)
		return append(out, detEvent{kind: detSpeechStarted, start: at, end: at})
	}

	if loud {
		d.lastLoud = end
	} else if d.duration(end-d.lastLoud) >= d.endpointing {
		out = d.endSpeech(false, out)
		if d.ueAt >= 0 && end >= d.ueAt {
			out = append(out, d.utteranceEndEvent())
		}
		return out
	}
	if d.interim && d.duration(end-d.speechStart) >= time.Duration(d.ticks+1)*interimEvery {
		d.ticks++
		out = append(out, detEvent{
			kind:  detInterim,
			start: d.duration(d.speechStart),
			end:   d.duration(end),
			tick:  d.ticks,
		})
	}
	return out
}

// finish ends the utterance in progress now (Finalize, CloseStream).
func (d *detector) finish(fromFinalize bool, out []detEvent) []detEvent {
	d.runStart = -1
	if !d.speaking {
		return out
	}
	return d.endSpeech(fromFinalize, out)
}

func (d *detector) endSpeech(fromFinalize bool, out []detEvent) []detEvent {
	d.speaking = false
	d.runStart = -1
	if d.utteranceEnd > 0 {
		d.ueAt = d.lastLoud + d.samples(d.utteranceEnd)
		d.ueWordEnd = d.lastLoud
	}
	return append(out, detEvent{
		kind:         detFinal,
		start:        d.duration(d.speechStart),
		end:          d.duration(d.lastLoud),
		fromFinalize: fromFinalize,
	})
}

func (d *detector) utteranceEndEvent() detEvent {
	at := d.duration(d.ueWordEnd)
	d.ueAt = -1
	return detEvent{kind: detUtteranceEnd, start: at, end: at}
}
