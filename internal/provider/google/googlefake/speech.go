package googlefake

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
)

// SpeechRate is Gemini TTS's fixed output rate.
const SpeechRate = 24000

// DefaultSynth is a 440 Hz tone, 50 ms per character.
func DefaultSynth(text string) []int16 {
	n := len(text) * SpeechRate / 20
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/SpeechRate))
	}
	return pcm
}

// studioModels is the AI Studio path prefix of a Gemini model.
const studioModels = "/v1beta/models/"

// speech answers streamGenerateContent with the AUDIO modality: the
// synthesised text as base64 audio/L16 parts, 100 ms per event.
func (s *Server) speech(w http.ResponseWriter, r *http.Request) {
	call, ok := s.speechCaller(w, r)
	if !ok {
		return
	}
	if r.URL.Query().Get("alt") != "sse" {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "this fake only streams (alt=sse)")
		return
	}
	var body struct {
		Contents []struct {
			Parts []struct{ Text string } `json:"parts"`
		} `json:"contents"`
		GenerationConfig struct {
			ResponseModalities []string `json:"responseModalities"`
			SpeechConfig       struct {
				VoiceConfig struct {
					PrebuiltVoiceConfig struct {
						VoiceName string `json:"voiceName"`
					} `json:"prebuiltVoiceConfig"`
				} `json:"voiceConfig"`
			} `json:"speechConfig"`
		} `json:"generationConfig"`
	}
	raw, err := readBody(r)
	if err != nil || json.Unmarshal(raw, &body) != nil || len(body.Contents) == 0 || len(body.Contents[0].Parts) == 0 {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "contents[0].parts[0].text is required")
		return
	}
	gc := body.GenerationConfig
	if len(gc.ResponseModalities) != 1 || gc.ResponseModalities[0] != "AUDIO" || gc.SpeechConfig.VoiceConfig.PrebuiltVoiceConfig.VoiceName == "" {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "responseModalities [AUDIO] and a prebuilt voice are required")
		return
	}
	call.Voice, call.Text = gc.SpeechConfig.VoiceConfig.PrebuiltVoiceConfig.VoiceName, body.Contents[0].Parts[0].Text
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	if s.cfg.TTSStatus != 0 {
		googleError(w, s.cfg.TTSStatus, "UNAVAILABLE", "injected failure")
		return
	}
	synth := s.cfg.Synth
	if synth == nil {
		synth = DefaultSynth
	}
	pcm := synth(call.Text)
	w.Header().Set("Content-Type", "text/event-stream")
	flusher, _ := w.(http.Flusher)
	const chunk = SpeechRate / 10
	for i := 0; i < len(pcm); i += chunk {
		part := pcm[i:min(i+chunk, len(pcm))]
		b := make([]byte, 2*len(part))
		for j, v := range part {
			binary.LittleEndian.PutUint16(b[2*j:], uint16(v))
		}
		ev, _ := json.Marshal(map[string]any{"candidates": []any{map[string]any{"content": map[string]any{"role": "model",
			"parts": []any{map[string]any{"inlineData": map[string]string{"mimeType": "audio/L16;codec=pcm;rate=24000", "data": base64.StdEncoding.EncodeToString(b)}}}}}}})
		if _, err := fmt.Fprintf(w, "data: %s\r\n\r\n", ev); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		switch s.cfg.TTSFault {
		case FaultMalformed:
			fmt.Fprint(w, "data: {\"candidates\": [\r\n\r\n")
			return
		case FaultCut:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
				}
			}
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// speechCaller checks the caller of a speech request: an issued token on
// a Vertex publisher path, or an API key in x-goog-api-key on AI Studio's.
func (s *Server) speechCaller(w http.ResponseWriter, r *http.Request) (Call, bool) {
	path := strings.TrimSuffix(r.URL.Path, ":streamGenerateContent")
	if model, ok := strings.CutPrefix(path, studioModels); ok {
		key := r.Header.Get("x-goog-api-key")
		if key == "" || (s.cfg.StudioKey != "" && key != s.cfg.StudioKey) {
			googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "API key not valid. Please pass a valid API key.")
			return Call{}, false
		}
		return Call{Service: "studio-tts", Model: model}, true
	}
	// /v1/projects/P/locations/L/publishers/google/models/M
	seg := strings.Split(strings.TrimPrefix(path, VertexPrefix), "/")
	if !strings.HasPrefix(path, VertexPrefix) || len(seg) != 7 || seg[1] != "locations" || seg[3] != "publishers" || seg[4] != "google" || seg[5] != "models" {
		googleError(w, http.StatusNotFound, "NOT_FOUND", "no such model path: "+r.URL.Path)
		return Call{}, false
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, ok := s.issued[tok]
	s.mu.Unlock()
	if !ok || time.Now().After(exp) {
		googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
		return Call{}, false
	}
	return Call{Service: "vertex-tts", Project: seg[0], Location: seg[2], Model: seg[6]}, true
}
