package assistant

import (
	"encoding/json"
	"fmt"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/fault"
)

// TTS validates a complete tts_config (spec §8.3; the same rules as on an
// assistant, e.g. for a workflow node's full replacement) and returns its
// canonical form: provider (11labs becomes elevenlabs), model (for providers
// that have a model choice; the default when omitted), voice_id (the
// provider's default voice where it has one, else required), then the
// provider's other fields. field is the path used in error messages. A null
// or empty raw returns JSON null and no error.
func (v *Validator) TTS(raw json.RawMessage, field string) (json.RawMessage, error) {
	if !given(raw) {
		return jsonNull, nil
	}
	var f fault.Fields
	cfg := v.ttsConfig(&f, field, raw)
	if err := f.Err(); err != nil {
		return nil, err
	}
	return marshal(cfg)
}

func (v *Validator) ttsConfig(f *fault.Fields, path string, raw json.RawMessage) *obj {
	in, ok := asObject(f, path, raw)
	if !ok {
		return nil
	}
	before := f.Len()
	p := v.provider(f, path, in, catalog.TTS)
	if p == nil {
		return nil
	}
	// A model sent to a provider without a model choice is left to v.model,
	// which explains it better than the unknown-field message would.
	allowed := []string{"provider", "model"}
	var ignored []string
	if !p.HasModels() {
		allowed, ignored = allowed[:1], []string{"model"}
	}
	allowed = append(allowed, names(p.Fields)...)
	unknownKeys(f, path, in, allowed, ignored, fmt.Sprintf("a tts_config with provider %q", p.ID))
	out := newObj()
	out.set("provider", p.ID)
	v.model(f, path, in, p, out)
	v.members(f, path, in, p.Fields, out)
	if f.Len() != before {
		return nil
	}
	return out
}
