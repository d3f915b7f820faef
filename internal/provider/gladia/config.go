package gladia

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/stt"
)

// buildInitRequest turns the stream configuration into the session request
// body. It is pure so that it can be table-tested.
func buildInitRequest(sc stt.Config, enc *encoder) initRequest {
	req := initRequest{
		Model:      modelOrDefault(sc.Model),
		Encoding:   enc.wireEncoding,
		SampleRate: enc.wireRate,
		BitDepth:   enc.bitDepth,
		Channels:   1,
		MessagesConfig: messagesConfig{
			ReceivePartialTranscripts: true,
			ReceiveFinalTranscripts:   true,
			ReceiveSpeechEvents:       true,
			ReceiveErrors:             true,
		},
	}
	req.Endpointing = endpointingSeconds(sc.Endpointing, sc.Options["endpointing"])
	req.LanguageConfig = languageFor(sc.Language, sc.Options)
	if vocab := vocabulary(sc.Keyterms, sc.Options["custom_vocabulary"]); len(vocab) > 0 {
		req.RealtimeProcessing = &realtimeProcessing{
			CustomVocabulary:       true,
			CustomVocabularyConfig: &customVocabularyConfig{Vocabulary: vocab},
		}
	}
	return req
}

func modelOrDefault(model string) string {
	if m := strings.TrimSpace(model); m != "" {
		return m
	}
	return DefaultModel
}

// regionFor picks the session region: the "region" option, else the
// client's.
func regionFor(def string, opts map[string]any) string {
	if r, ok := opts["region"].(string); ok && strings.TrimSpace(r) != "" {
		return strings.TrimSpace(r)
	}
	return def
}

// endpointingSeconds renders the silence that ends an utterance, in
// seconds within Gladia's 0.01–10 range. The "endpointing" option (seconds,
// as the API exposes it) wins over stt.Config.Endpointing; zero or negative
// leaves Gladia's default (0 = omitted), since Gladia cannot disable it.
func endpointingSeconds(d time.Duration, opt any) float64 {
	secs := d.Seconds()
	if v, ok := optionFloat(opt); ok {
		secs = v
	}
	if secs <= 0 || math.IsNaN(secs) {
		return 0
	}
	secs = math.Round(secs*1000) / 1000
	return min(max(secs, minEndpointing), maxEndpointing)
}

// languageFor builds language_config: the "languages" option if given,
// else stt.Config.Language reduced to its ISO 639-1 part ("en-US" → "en").
// An empty language or "multi" leaves detection to Gladia (nil).
func languageFor(lang string, opts map[string]any) *languageConfig {
	var langs []string
	if list, ok := opts["languages"].([]any); ok {
		for _, v := range list {
			if s, ok := v.(string); ok {
				langs = appendLanguage(langs, s)
			}
		}
	} else if list, ok := opts["languages"].([]string); ok {
		for _, s := range list {
			langs = appendLanguage(langs, s)
		}
	}
	if len(langs) == 0 {
		langs = appendLanguage(langs, lang)
	}
	codeSwitching, _ := opts["code_switching"].(bool)
	if len(langs) == 0 && !codeSwitching {
		return nil
	}
	if langs == nil {
		langs = []string{}
	}
	return &languageConfig{Languages: langs, CodeSwitching: codeSwitching || len(langs) > 1}
}

func appendLanguage(langs []string, s string) []string {
	s = strings.ToLower(strings.TrimSpace(s))
	base, _, _ := strings.Cut(strings.ReplaceAll(s, "_", "-"), "-")
	if base == "" || base == "multi" {
		return langs
	}
	for _, l := range langs {
		if l == base {
			return langs
		}
	}
	return append(langs, base)
}

// vocabulary merges stt.Config.Keyterms and the "custom_vocabulary" option,
// trimmed and without duplicates.
func vocabulary(keyterms []string, opt any) []string {
	terms := append([]string(nil), keyterms...)
	if list, ok := opt.([]any); ok {
		for _, v := range list {
			if s, ok := v.(string); ok {
				terms = append(terms, s)
			}
		}
	} else if list, ok := opt.([]string); ok {
		terms = append(terms, list...)
	}
	var out []string
	seen := make(map[string]bool, len(terms))
	for _, t := range terms {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			continue
		}
		seen[t] = true
		out = append(out, t)
	}
	return out
}

// optionFloat reads a number decoded from JSON, a Go number or a numeric
// string.
func optionFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}
