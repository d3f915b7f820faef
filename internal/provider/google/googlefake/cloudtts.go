package googlefake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/audio"
)

// SynthesizePath is Cloud Text-to-Speech's REST synthesis.
const SynthesizePath = "/v1/text:synthesize"

// synthesize answers text:synthesize for a Chirp 3 HD voice with LINEAR16
// (a WAV file) at the requested rate: a 330 Hz tone, 50 ms per character.
func (s *Server) synthesize(w http.ResponseWriter, r *http.Request) {
	call := Call{Service: "cloud-tts"}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, issued := s.issued[tok]
	s.mu.Unlock()
	switch key := r.Header.Get("x-goog-api-key"); {
	case issued && time.Now().Before(exp):
		call.Project = r.Header.Get("x-goog-user-project")
	case key != "" && (s.cfg.StudioKey == "" || key == s.cfg.StudioKey):
	default:
		googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
		return
	}
	var body struct {
		Input struct{ Text string } `json:"input"`
		Voice struct {
			LanguageCode string `json:"languageCode"`
			Name         string `json:"name"`
		} `json:"voice"`
		AudioConfig struct {
			AudioEncoding   string  `json:"audioEncoding"`
			SampleRateHertz int     `json:"sampleRateHertz"`
			SpeakingRate    float64 `json:"speakingRate"`
		} `json:"audioConfig"`
	}
	raw, err := readBody(r)
	if err != nil || json.Unmarshal(raw, &body) != nil {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "body is not JSON")
		return
	}
	ac := body.AudioConfig
	switch {
	case body.Input.Text == "":
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "input.text is required")
		return
	case !strings.HasPrefix(body.Voice.Name, body.Voice.LanguageCode+"-Chirp3-HD-"):
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "voice.name must be <languageCode>-Chirp3-HD-<voice>")
		return
	case ac.AudioEncoding != "LINEAR16" || ac.SampleRateHertz < 8000 || ac.SampleRateHertz > 48000:
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "this fake answers LINEAR16 at 8000–48000 Hz")
		return
	}
	call.Model, call.Voice, call.Text = "chirp-3-hd", body.Voice.Name, body.Input.Text
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	rate := ac.SampleRateHertz
	pcm := make([]int16, len(body.Input.Text)*rate/20)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*330*float64(i)/float64(rate)))
	}
	var wav bytes.Buffer
	if err := audio.WriteWAV(&wav, pcm, rate); err != nil {
		googleError(w, http.StatusInternalServerError, "INTERNAL", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"audioContent": base64.StdEncoding.EncodeToString(wav.Bytes())})
}
