package assistant

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/fault"
)

// STT validates a complete stt_config (spec §8.1; the same rules as on an
// assistant, e.g. for a workflow node's full replacement) and returns its
// canonical form: provider, model, language, then common and provider
// fields. model defaults to the provider's default model and language to
// "en". field is the path used in error messages. A null or empty raw
// returns JSON null and no error.
func (v *Validator) STT(raw json.RawMessage, field string) (json.RawMessage, error) {
	if !given(raw) {
		return jsonNull, nil
	}
	var f fault.Fields
	cfg := v.sttConfig(&f, field, raw)
	if err := f.Err(); err != nil {
		return nil, err
	}
	return marshal(cfg)
}

func (v *Validator) sttConfig(f *fault.Fields, path string, raw json.RawMessage) *obj {
	in, ok := asObject(f, path, raw)
	if !ok {
		return nil
	}
	before := f.Len()
	common := v.c.Common(catalog.STT)
	p := v.provider(f, path, in, catalog.STT)
	if p != nil {
		allowed := append([]string{"provider", "model", "language"}, names(common)...)
		allowed = append(allowed, names(p.Fields)...)
		unknownKeys(f, path, in, allowed, nil, fmt.Sprintf("an stt_config with provider %q", p.ID))
	}
	out := newObj()
	if p != nil {
		out.set("provider", p.ID)
		v.model(f, path, in, p, out)
		v.language(f, path, in, p, out)
	}
	v.members(f, path, in, common, out)
	if p != nil {
		v.members(f, path, in, p.Fields, out)
	}
	if f.Len() != before {
		return nil
	}
	return out
}

// language writes stt_config.language: one of the provider's languages (spec
// §10.4), or the catalog default when none was sent.
func (v *Validator) language(f *fault.Fields, path string, in map[string]json.RawMessage, p *catalog.Provider, out *obj) {
	raw := in["language"]
	lp := at(path, "language")
	if !given(raw) {
		lang := v.c.DefaultLanguage()
		if !v.c.AcceptsLanguage(p, lang) {
			lang = v.c.LanguagesOf(p)[0]
		}
		out.set("language", lang)
		return
	}
	lang, ok := asString(f, lp, raw)
	if !ok {
		return
	}
	if !v.c.AcceptsLanguage(p, lang) {
		f.Invalidf(lp, "%q is not a language of provider %q; allowed: %s", lang, p.ID, strings.Join(v.c.LanguagesOf(p), ", "))
		return
	}
	out.set("language", lang)
}
