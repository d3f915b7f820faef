package voice

import (
	"encoding/json"

	"github.com/parley-voice/parley/internal/ambience"
	"github.com/parley-voice/parley/internal/media"
)

// backgroundAudio is speech_config.background_audio (spec §8.5).
type backgroundAudio struct {
	Enabled bool     `json:"enabled"`
	Clip    string   `json:"clip"`
	Volume  *float64 `json:"volume"`
}

// Defaults of background_audio (catalog: speech_config.background_audio).
const (
	defaultBackgroundClip   = ambience.Office
	defaultBackgroundVolume = 0.3
)

// backgroundPlan reads the assistant's background audio: the clip and its
// volume, or ok false when it is off.
func backgroundPlan(doc []byte) (clip string, volume float64, ok bool) {
	var a struct {
		Speech *struct {
			Background *backgroundAudio `json:"background_audio"`
		} `json:"speech_config"`
	}
	if json.Unmarshal(doc, &a) != nil || a.Speech == nil || a.Speech.Background == nil || !a.Speech.Background.Enabled {
		return "", 0, false
	}
	b := a.Speech.Background
	clip, volume = b.Clip, defaultBackgroundVolume
	if clip == "" {
		clip = defaultBackgroundClip
	}
	if b.Volume != nil {
		volume = *b.Volume
	}
	return clip, volume, true
}

// withAmbience wraps the call's outgoing audio in the assistant's background
// audio, when it has some: the clip under the voice and in every silence.
// The recorder wraps the result, so the recording holds what was sent. A
// clip that cannot be had is logged and the call goes on without it.
func (h *handler) withAmbience(src media.Source) media.Source {
	clip, volume, ok := backgroundPlan(h.plan.doc)
	if !ok {
		return src
	}
	m, err := h.e.clips.Mixer(src, clip, volume)
	if err != nil {
		h.log.Warn("background audio unavailable; the call goes on without it", "clip", clip, "error", err)
		return src
	}
	h.log.Debug("background audio", "clip", clip, "volume", volume)
	return m
}
