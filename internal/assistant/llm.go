package assistant

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/fault"
)

// llmMessages describes llm_config.messages (the system prompt is a system message).
var llmMessages = &catalog.Field{Name: "messages", Type: catalog.List, Items: &catalog.Field{
	Type: catalog.Object, Fields: []*catalog.Field{
		{Name: "role", Type: catalog.Enum, Required: true, Values: []string{"system", "user", "assistant"}},
		{Name: "content", Type: catalog.String, Required: true},
	},
}}

var sectionNoun = map[catalog.Section]string{
	catalog.STT: "speech-to-text",
	catalog.LLM: "LLM",
	catalog.TTS: "text-to-speech",
}

// provider reads in["provider"] and resolves it (aliases included) in section s.
func (v *Validator) provider(f *fault.Fields, path string, in map[string]json.RawMessage, s catalog.Section) *catalog.Provider {
	pp := at(path, "provider")
	raw := in["provider"]
	if !given(raw) {
		f.Missing(pp)
		return nil
	}
	id, ok := asString(f, pp, raw)
	if !ok {
		return nil
	}
	p := v.c.Provider(s, id)
	if p == nil {
		f.Invalidf(pp, "%q is not a known %s provider; allowed: %s", id, sectionNoun[s], strings.Join(v.c.ProviderIDs(s, ""), ", "))
		return nil
	}
	if err := v.Available(s, p.ID, ""); err != nil {
		f.Invalidf(pp, "%q is not available on this server: %v", id, err)
		return nil
	}
	return p
}

// model writes provider p's model into out: the one sent, checked against
// the catalog (legacy models accepted), or the default when none was sent.
func (v *Validator) model(f *fault.Fields, path string, in map[string]json.RawMessage, p *catalog.Provider, out *obj) {
	raw := in["model"]
	mp := at(path, "model")
	if !p.HasModels() {
		if given(raw) {
			f.Add(mp, "unknown_field", fmt.Sprintf("is not supported: provider %q has no model choice; leave model out", p.ID))
		}
		return
	}
	id := p.DefaultModel()
	if given(raw) {
		var ok bool
		if id, ok = asString(f, mp, raw); !ok {
			return
		}
		if _, ok := p.Model(id); !ok {
			f.Invalidf(mp, "%q is not a model of provider %q; allowed: %s", id, p.ID, strings.Join(p.ModelIDs(), ", "))
			return
		}
	}
	if err := v.Available(p.Section, p.ID, id); err != nil {
		f.Invalidf(mp, "%q of provider %q is not available on this server: %v", id, p.ID, err)
		return
	}
	out.set("model", id)
}

// llmConfig validates an llm_config (spec §8.2, §8.4). The canonical form is
// provider, model, temperature, messages, tools (when sent), then the
// provider's own fields.
func (v *Validator) llmConfig(f *fault.Fields, path string, raw json.RawMessage) (*obj, *catalog.Provider) {
	in, ok := asObject(f, path, raw)
	if !ok {
		return nil, nil
	}
	before := f.Len()
	common := v.c.Common(catalog.LLM)
	p := v.provider(f, path, in, catalog.LLM)
	if p != nil {
		allowed := append([]string{"provider", "model"}, names(common)...)
		allowed = append(allowed, "messages", "tools")
		allowed = append(allowed, names(p.Fields)...)
		unknownKeys(f, path, in, allowed, nil, fmt.Sprintf("an llm_config with provider %q", p.ID))
	}
	out := newObj()
	if p != nil {
		out.set("provider", p.ID)
		v.model(f, path, in, p, out)
	}
	v.members(f, path, in, common, out)
	if raw := in["messages"]; given(raw) {
		if m, ok := v.value(f, at(path, "messages"), llmMessages, raw); ok {
			out.set("messages", m)
		}
	} else {
		out.set("messages", []any{})
	}
	if raw := in["tools"]; given(raw) {
		if t := v.tools(f, at(path, "tools"), raw); t != nil {
			out.set("tools", t)
		}
	}
	if p != nil {
		v.members(f, path, in, p.Fields, out)
	}
	if f.Len() != before {
		return nil, p
	}
	return out, p
}

// NodeLLM validates a workflow node's llm_config override: a partial
// {provider?, model?, temperature?}. The provider must be a text provider; a
// realtime one fails with Code "realtime_provider_not_allowed_per_node". When
// a provider is given without a model, its default model is filled in;
// nothing else is defaulted, since omitted fields inherit from the assistant.
// A model without a provider must be a model of some text provider. field is
// the path used in error messages, e.g. "nodes[2].llm_config". A null or
// empty raw returns JSON null and no error.
func (v *Validator) NodeLLM(raw json.RawMessage, field string) (json.RawMessage, error) {
	if !given(raw) {
		return jsonNull, nil
	}
	var f fault.Fields
	out := newObj()
	if in, ok := asObject(&f, field, raw); ok {
		v.nodeLLM(&f, field, in, out)
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	return marshal(out)
}

func (v *Validator) nodeLLM(f *fault.Fields, path string, in map[string]json.RawMessage, out *obj) {
	unknownKeys(f, path, in, []string{"provider", "model", "temperature"}, nil,
		"a workflow node's llm_config (a node overrides only provider, model and temperature)")
	texts := strings.Join(v.c.ProviderIDs(catalog.LLM, catalog.Text), ", ")
	var p *catalog.Provider
	providerOK := true
	if raw := in["provider"]; given(raw) {
		pp := at(path, "provider")
		id, ok := asString(f, pp, raw)
		if ok {
			p = v.c.Provider(catalog.LLM, id)
		}
		switch {
		case !ok:
		case p == nil:
			f.Invalidf(pp, "%q is not a known LLM provider; allowed on a workflow node: %s", id, texts)
		case p.Realtime():
			f.Add(pp, "realtime_provider_not_allowed_per_node", fmt.Sprintf(
				"%q is a realtime provider, which cannot be chosen per workflow node; allowed: %s (text providers, on a pipeline assistant)", id, texts))
			p = nil
		default:
			out.set("provider", p.ID)
		}
		providerOK = p != nil
	}
	raw := in["model"]
	switch {
	case p != nil:
		v.model(f, path, in, p, out)
	case given(raw) && providerOK:
		mp := at(path, "model")
		if id, ok := asString(f, mp, raw); ok {
			if v.isTextModel(id) {
				out.set("model", id)
			} else {
				f.Invalidf(mp, "%q is not a model of any text LLM provider (%s); send provider too to pick from its models", id, texts)
			}
		}
	}
	for _, s := range v.c.Common(catalog.LLM) {
		if s.Name == "temperature" {
			t := *s
			t.Fill = false // inherit the assistant's temperature
			v.members(f, path, in, []*catalog.Field{&t}, out)
		}
	}
}

func (v *Validator) isTextModel(id string) bool {
	for _, p := range v.c.Providers(catalog.LLM) {
		if _, ok := p.Model(id); ok && !p.Realtime() {
			return true
		}
	}
	return false
}
