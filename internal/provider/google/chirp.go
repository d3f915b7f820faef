package google

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/parley-voice/parley/internal/audio"
)

// ChirpModel is the catalog's model id of Cloud Text-to-Speech's Chirp 3 HD
// voices.
const ChirpModel = "chirp-3-hd"

// speakChirp synthesises one batch with Cloud Text-to-Speech's REST
// text:synthesize (providers-2.md §6b: per-sentence REST is simpler than
// the gRPC stream and speaks the call's rate natively), as LINEAR16 at the
// call's rate: the voice is "<locale>-Chirp3-HD-<voice>".
func (s *ttsStream) speakChirp(text string) error {
	c := s.t.chat.cfg
	lang := s.cfg.Language
	if lang == "" {
		lang = "en"
	}
	if c.Locale != nil {
		lang = c.Locale(lang)
	}
	audioCfg := map[string]any{"audioEncoding": "LINEAR16", "sampleRateHertz": s.cfg.SampleRate}
	if rate, ok := s.cfg.Options["speaking_rate"].(float64); ok && rate > 0 {
		audioCfg["speakingRate"] = rate
	}
	body, _ := json.Marshal(map[string]any{
		"input":       map[string]string{"text": text},
		"voice":       map[string]string{"languageCode": lang, "name": lang + "-Chirp3-HD-" + s.cfg.Voice},
		"audioConfig": audioCfg,
	})
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, strings.TrimRight(c.CloudTTSURL, "/")+"/v1/text:synthesize", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("google: Chirp 3 HD request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := s.authorize(s.ctx, req); err != nil {
		return err
	}
	resp, err := s.t.chat.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("google: Chirp 3 HD request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(resp)
	}
	var out struct {
		AudioContent string `json:"audioContent"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(&out); err != nil {
		return fmt.Errorf("google: Chirp 3 HD answer is not JSON: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(out.AudioContent)
	if err != nil {
		return fmt.Errorf("google: Chirp 3 HD audio is not base64: %w", err)
	}
	pcm, rate, err := audio.ReadWAV(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("google: Chirp 3 HD audio: %w", err)
	}
	if rate != s.cfg.SampleRate {
		return fmt.Errorf("google: Chirp 3 HD answered %d Hz, asked %d", rate, s.cfg.SampleRate)
	}
	if !s.emit(pcm) {
		return s.ctx.Err()
	}
	return nil
}

// authorize adds the key: a service account's access token (and its
// project for quota), or an API key.
func (s *ttsStream) authorize(ctx context.Context, req *http.Request) error {
	if !s.key.IsServiceAccount() {
		req.Header.Set("x-goog-api-key", s.key.apiKey)
		return nil
	}
	token, err := s.t.chat.tokens.token(ctx, s.key.account)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("x-goog-user-project", s.key.Project())
	return nil
}
