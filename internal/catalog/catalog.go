// Package catalog is Parley's provider catalog: which speech-to-text, LLM and
// text-to-speech providers exist, their models (default first, legacy ones
// still accepted), the BYOK secrets they need, their voices, the STT
// languages and the extra settings each provider accepts with their types,
// ranges, enums and defaults. It also describes the speech_config block.
//
// The data mirrors CATALOG v1 of the HMS Sovereign API (spec §8.1–§8.5, §10)
// plus one Parley extension, the key-less "local" STT (PocketSphinx) and TTS
// (eSpeak NG) provider. It is embedded from catalog.json; Load parses it.
// A Catalog is immutable after Load and safe for concurrent use; values it
// returns by pointer must be treated as read-only.
package catalog

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

//go:embed catalog.json
var catalogJSON []byte

// Section is a provider family.
type Section string

// The sections.
const (
	STT Section = "stt"
	LLM Section = "llm"
	TTS Section = "tts"
)

// Kind tells text LLM providers (used in the STT → LLM → TTS pipeline) from
// realtime ones (speech-to-speech: no STT or TTS config).
type Kind string

// The LLM provider kinds.
const (
	Text     Kind = "text"
	Realtime Kind = "realtime"
)

// Catalog is the parsed provider catalog.
type Catalog struct {
	version         int
	languages       []string
	defaultLanguage string
	bcp47           map[string][]string
	byok            []string
	voiceSets       []*VoiceSet
	sections        map[Section]*section
	speech          []*Field
}

type section struct {
	Common    []*Field          `json:"common"`
	Aliases   map[string]string `json:"aliases"`
	Providers []*Provider       `json:"providers"`
}

// Provider is one provider of a section.
type Provider struct {
	ID      string  `json:"id"`
	Label   string  `json:"label"`
	Section Section `json:"-"`
	Kind    Kind    `json:"kind,omitempty"` // LLM providers only

	// BYOKSecrets lists the BYOK secret fields (e.g. "openai_secret_id") of
	// which any one enables the provider; empty for the key-less local provider.
	BYOKSecrets []string `json:"byok_secrets,omitempty"`
	// ModelRequires names the one secret a model needs, where it matters.
	ModelRequires map[string]string `json:"model_requires,omitempty"`

	// Models lists the accepted models, default first. Empty when the
	// provider has no model choice (xAI TTS), and then "model" is not a field.
	Models []Model `json:"models,omitempty"`
	// Languages restricts stt_config.language; nil means every catalog language.
	Languages []string `json:"languages,omitempty"`

	// PostcallModel is the LLM used for summaries and analysis (LLM providers);
	// PostcallModels gives it per BYOK secret where that decides it.
	PostcallModel  string            `json:"postcall_model,omitempty"`
	PostcallModels map[string]string `json:"postcall_models,omitempty"`

	// Fields are the provider's own settings beyond the section's common ones.
	Fields []*Field `json:"fields,omitempty"`
}

// Model is one model of a provider.
type Model struct {
	ID             string `json:"id"`
	Legacy         bool   `json:"legacy,omitempty"`           // accepted, but not offered any more
	VertexLocation string `json:"vertex_location,omitempty"`  // Google models: Vertex AI location
	ReasoningPin   string `json:"reasoning_effort,omitempty"` // reasoning effort the platform pins, if any
}

// VoiceSet is a named, closed list of voices (Google Gemini, xAI, OpenAI GPT-Live).
type VoiceSet struct {
	Name   string  `json:"name"`
	Label  string  `json:"label"`
	Voices []Voice `json:"voices"`
}

// Voice is one selectable voice of a provider.
type Voice struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Provider string `json:"provider"` // "google", "xai" or "openai_live"
	Language string `json:"language"` // "multi": the voices speak every supported language
	Style    string `json:"style,omitempty"`
}

type file struct {
	Version         int                 `json:"version"`
	Languages       []string            `json:"languages"`
	DefaultLanguage string              `json:"default_language"`
	BCP47           map[string][]string `json:"bcp47"`
	BYOK            []string            `json:"byok_providers"`
	VoiceSets       []*VoiceSet         `json:"voice_sets"`
	STT             *section            `json:"stt"`
	LLM             *section            `json:"llm"`
	TTS             *section            `json:"tts"`
	Speech          []*Field            `json:"speech"`
}

// Load parses the embedded catalog and checks its consistency.
func Load() (*Catalog, error) { return parse(catalogJSON) }

func parse(data []byte) (*Catalog, error) {
	var f file
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("catalog: parse: %w", err)
	}
	c := &Catalog{
		version:         f.Version,
		languages:       f.Languages,
		defaultLanguage: f.DefaultLanguage,
		bcp47:           f.BCP47,
		byok:            f.BYOK,
		voiceSets:       f.VoiceSets,
		sections:        map[Section]*section{STT: f.STT, LLM: f.LLM, TTS: f.TTS},
		speech:          f.Speech,
	}
	for _, vs := range c.voiceSets {
		for i := range vs.Voices {
			v := &vs.Voices[i]
			v.Provider = vs.Name
			if v.Name == "" {
				v.Name = v.ID
			}
			if v.Language == "" {
				v.Language = "multi"
			}
		}
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return c, nil
}

func (c *Catalog) check() error {
	if !slices.Contains(c.languages, c.defaultLanguage) {
		return fmt.Errorf("default language %q is not a language", c.defaultLanguage)
	}
	for name, s := range c.sections {
		if s == nil || len(s.Providers) == 0 {
			return fmt.Errorf("section %s has no providers", name)
		}
		seen := map[string]bool{}
		for _, p := range s.Providers {
			p.Section = name
			if p.ID == "" || seen[p.ID] {
				return fmt.Errorf("%s: empty or duplicate provider id %q", name, p.ID)
			}
			seen[p.ID] = true
			if name == LLM && p.Kind != Text && p.Kind != Realtime {
				return fmt.Errorf("llm provider %s: kind %q", p.ID, p.Kind)
			}
			if name != TTS && len(p.Models) == 0 {
				return fmt.Errorf("%s provider %s has no models", name, p.ID)
			}
			for _, l := range p.Languages {
				if !slices.Contains(c.languages, l) {
					return fmt.Errorf("%s provider %s: unknown language %q", name, p.ID, l)
				}
			}
			for m, secret := range p.ModelRequires {
				if _, ok := p.Model(m); !ok || !slices.Contains(p.BYOKSecrets, secret) {
					return fmt.Errorf("%s provider %s: model_requires %s → %s does not fit", name, p.ID, m, secret)
				}
			}
			for _, fl := range p.Fields {
				if err := fl.check(c, string(name)+"."+p.ID+"."+fl.Name); err != nil {
					return err
				}
			}
		}
		for alias, target := range s.Aliases {
			if !seen[target] || seen[alias] {
				return fmt.Errorf("%s: alias %q → %q does not fit", name, alias, target)
			}
		}
		for _, fl := range s.Common {
			if err := fl.check(c, string(name)+"."+fl.Name); err != nil {
				return err
			}
		}
	}
	for _, fl := range c.speech {
		if err := fl.check(c, "speech."+fl.Name); err != nil {
			return err
		}
	}
	return nil
}

// Version is the catalog format version (1).
func (c *Catalog) Version() int { return c.version }

// Provider returns the provider id of section s, resolving aliases such as
// "11labs"; nil when there is no such provider.
func (c *Catalog) Provider(s Section, id string) *Provider {
	sec := c.sections[s]
	if sec == nil {
		return nil
	}
	if target, ok := sec.Aliases[id]; ok {
		id = target
	}
	for _, p := range sec.Providers {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// Providers lists the providers of section s in catalog order.
func (c *Catalog) Providers(s Section) []*Provider {
	if sec := c.sections[s]; sec != nil {
		return slices.Clone(sec.Providers)
	}
	return nil
}

// ProviderIDs lists the provider ids of section s (without aliases) in catalog
// order; with kind set, only LLM providers of that kind.
func (c *Catalog) ProviderIDs(s Section, kind Kind) []string {
	var out []string
	for _, p := range c.Providers(s) {
		if kind == "" || p.Kind == kind {
			out = append(out, p.ID)
		}
	}
	return out
}

// Aliases maps the alternative provider ids of section s to the ids they
// stand for (e.g. tts "11labs" → "elevenlabs").
func (c *Catalog) Aliases(s Section) map[string]string {
	if sec := c.sections[s]; sec != nil {
		return maps.Clone(sec.Aliases)
	}
	return nil
}

// Common lists the fields every provider of section s accepts beyond
// provider and model (e.g. llm temperature, stt keyterms).
func (c *Catalog) Common(s Section) []*Field {
	if sec := c.sections[s]; sec != nil {
		return sec.Common
	}
	return nil
}

// IsRealtime reports whether llmProvider is a realtime (speech-to-speech) LLM provider.
func (c *Catalog) IsRealtime(llmProvider string) bool {
	p := c.Provider(LLM, llmProvider)
	return p != nil && p.Kind == Realtime
}

// Languages lists the STT languages (spec §10.4) in catalog order.
func (c *Catalog) Languages() []string { return slices.Clone(c.languages) }

// DefaultLanguage is the STT language used when a config names none ("en").
func (c *Catalog) DefaultLanguage() string { return c.defaultLanguage }

// BCP47 maps an STT language to the BCP-47 tags used with providers
// ("multi" maps to several); nil for an unknown language.
func (c *Catalog) BCP47(lang string) []string { return slices.Clone(c.bcp47[lang]) }

// BYOKProviders lists the providers a BYOK key can be stored for, in API order.
func (c *Catalog) BYOKProviders() []string { return slices.Clone(c.byok) }

// VoiceSet returns the voice set called name ("google", "xai", "openai_live"), or nil.
func (c *Catalog) VoiceSet(name string) *VoiceSet {
	for _, vs := range c.voiceSets {
		if vs.Name == name {
			return vs
		}
	}
	return nil
}

// ProviderVoices lists every voice of the closed voice sets: the 30 Google
// Gemini voices (Gemini TTS and Gemini Live), the 26 xAI voices (Grok TTS
// and Grok Realtime) and the 5 OpenAI GPT-Live voices.
func (c *Catalog) ProviderVoices() []Voice {
	var out []Voice
	for _, vs := range c.voiceSets {
		out = append(out, vs.Voices...)
	}
	return out
}

// Speech lists the parts of an assistant's speech_config (spec §8.5).
func (c *Catalog) Speech() []*Field { return c.speech }

// IDs lists the voice ids of the set.
func (vs *VoiceSet) IDs() []string {
	out := make([]string, len(vs.Voices))
	for i, v := range vs.Voices {
		out[i] = v.ID
	}
	return out
}

// Has reports whether id is a voice of the set (exact, case-sensitive match).
func (vs *VoiceSet) Has(id string) bool {
	return slices.ContainsFunc(vs.Voices, func(v Voice) bool { return v.ID == id })
}

// Realtime reports whether p is a realtime LLM provider.
func (p *Provider) Realtime() bool { return p.Kind == Realtime }

// HasModels reports whether the provider has a model choice.
func (p *Provider) HasModels() bool { return len(p.Models) > 0 }

// DefaultModel is the model used when a config names none ("" without a model choice).
func (p *Provider) DefaultModel() string {
	if len(p.Models) == 0 {
		return ""
	}
	return p.Models[0].ID
}

// Model looks up a model, legacy ones included.
func (p *Provider) Model(id string) (Model, bool) {
	for _, m := range p.Models {
		if m.ID == id {
			return m, true
		}
	}
	return Model{}, false
}

// ModelIDs lists the current (non-legacy) models, default first.
func (p *Provider) ModelIDs() []string {
	var out []string
	for _, m := range p.Models {
		if !m.Legacy {
			out = append(out, m.ID)
		}
	}
	return out
}

// Field returns the provider's own field called name, or nil.
func (p *Provider) Field(name string) *Field { return findField(p.Fields, name) }

// SecretsFor lists the BYOK secret fields that enable model: the one of
// ModelRequires when set, otherwise any of BYOKSecrets.
func (p *Provider) SecretsFor(model string) []string {
	if s, ok := p.ModelRequires[model]; ok {
		return []string{s}
	}
	return slices.Clone(p.BYOKSecrets)
}

// AcceptsLanguage reports whether an STT provider supports lang.
func (c *Catalog) AcceptsLanguage(p *Provider, lang string) bool {
	if p.Languages != nil {
		return slices.Contains(p.Languages, lang)
	}
	return slices.Contains(c.languages, lang)
}

// LanguagesOf lists the STT languages provider p supports.
func (c *Catalog) LanguagesOf(p *Provider) []string {
	if p.Languages != nil {
		return slices.Clone(p.Languages)
	}
	return c.Languages()
}
