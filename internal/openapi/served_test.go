package openapi

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/catalog"
)

// TestDocumentForNarrows: the document a server serves leaves out the
// providers and models it does not run, and its unions name them with the
// reason; what it runs is described as before.
func TestDocumentForNarrows(t *testing.T) {
	served := func(s catalog.Section, provider, model string) error {
		switch {
		case s == catalog.STT && provider == "gladia":
			return errors.New("no client")
		case s == catalog.LLM && provider == "xai_realtime":
			return errors.New("realtime not run")
		case s == catalog.TTS && provider == "google" && model == "gemini-3.1-flash-tts-preview":
			return errors.New("not yet")
		}
		return nil
	}
	raw, err := DocumentFor("test", served)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	s := obj(t, obj(t, doc["components"], "components")["schemas"], "schemas")
	mapping := func(union string) map[string]any {
		return obj(t, obj(t, obj(t, s[union], union)["discriminator"], union+".discriminator")["mapping"], union+" mapping")
	}
	if _, ok := mapping("STTConfig")["gladia"]; ok {
		t.Error("STTConfig still maps gladia")
	}
	if _, ok := mapping("STTConfig")["deepgram"]; !ok {
		t.Error("STTConfig lost deepgram")
	}
	if _, ok := mapping("LLMConfig")["xai_realtime"]; ok {
		t.Error("LLMConfig still maps xai_realtime")
	}
	for union, want := range map[string]string{"STTConfig": "gladia (no client)", "LLMConfig": "xai_realtime (realtime not run)"} {
		if d, _ := obj(t, s[union], union)["description"].(string); !strings.Contains(d, want) {
			t.Errorf("%s description %q does not name %q", union, d, want)
		}
	}
	for _, one := range obj(t, s["STTConfig"], "STTConfig")["oneOf"].([]any) {
		if ref, _ := one.(map[string]any)["$ref"].(string); strings.HasSuffix(ref, "/GladiaSTTConfig") {
			t.Error("STTConfig.oneOf still offers Gladia")
		}
	}
	models := docStrings(t, s, "GoogleTTSConfig", "properties", "model", "enum")
	if slices.Contains(models, "gemini-3.1-flash-tts-preview") || !slices.Contains(models, "chirp-3-hd") {
		t.Errorf("GoogleTTSConfig.model enum %v", models)
	}
	if def := obj(t, obj(t, obj(t, s["GoogleTTSConfig"], "GoogleTTSConfig")["properties"], "properties")["model"], "model")["default"]; def != models[0] {
		t.Errorf("GoogleTTSConfig.model default %v, want the first model left, %q", def, models[0])
	}
}
