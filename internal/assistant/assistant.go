// Package assistant validates and normalises assistant documents and the
// configs that travel with them: provider configs (stt_config, llm_config,
// tts_config), speech_config, analysis_plan, llm_config.tools, tool templates
// and analysis templates.
//
// Documents are top-level JSON objects held as map[string]json.RawMessage.
// Every normaliser takes the complete document (on PATCH: the stored
// canonical document with the client's fields laid over it, so a JSON null
// means "clear") and returns the canonical document, written in the newest
// spelling of every field, with defaults filled in. Older spellings of the
// HMS Sovereign API (camelCase tool types, flat and nested tool shapes,
// legacy template generations, 11labs, ...) are accepted on the way in and
// never written out.
//
// Every validation failure is a *fault.Error of Kind fault.Invalid that lists
// every problem in Details; the first one names its field by dotted path,
// e.g. "llm_config.tools[2].function.name".
//
// Provider models, languages, voices, ranges and enums come from the
// catalog package. BYOK keys and model_requires are not checked here: they
// depend on the organization, not on the document.
package assistant

import (
	"encoding/json"
	"fmt"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/fault"
)

// Validator validates documents against a catalog. It is immutable and safe
// for concurrent use.
type Validator struct {
	c             *catalog.Catalog
	head          []*catalog.Field // name .. webhook_events
	transientHead []*catalog.Field // the same for transient assistants
	speech        []*catalog.Field // speech_config

	defaultSTT, defaultLLM, defaultTTS json.RawMessage

	// checkURL, when set, vets every URL Parley will call (webhook_url, a
	// tool's url and server.url, a tool template's url).
	checkURL func(string) (string, error)
	// served, when set, says which catalog providers and models this
	// server can run (WithServed).
	served Served
}

// Served says whether this server can run a catalog provider (model "") or
// one of its models: nil when it can, else an error saying why not, written
// to follow `"<id>" is not available on this server: `.
type Served func(s catalog.Section, provider, model string) error

// WithServed returns a copy of v that refuses, with a 400 naming the field,
// the providers and models served rejects: a choice the server cannot run
// is refused where it is made (assistant save, outbound call, an
// assistant-request answer), not accepted and then failed on every call.
func (v *Validator) WithServed(served Served) *Validator {
	c := *v
	c.served = served
	return &c
}

// Available reports whether this server runs provider p of section s (nil)
// or why not.
func (v *Validator) Available(s catalog.Section, provider, model string) error {
	if v.served == nil {
		return nil
	}
	return v.served(s, provider, model)
}

// ServesVoiceSet reports whether some provider that speaks with the named
// voice set (spec §10.3) runs on this server, so GET /voices offers only
// voices a call here can use.
func (v *Validator) ServesVoiceSet(set string) bool {
	for _, s := range []catalog.Section{catalog.TTS, catalog.LLM} {
		for _, p := range v.c.Providers(s) {
			for _, f := range p.Fields {
				if f.VoiceSet == set && v.Available(s, p.ID, "") == nil {
					return true
				}
			}
		}
	}
	return false
}

// WithURLCheck returns a copy of v that also passes every URL Parley will
// call (webhook_url, tools' url and server.url, tool templates' url) to
// check, which returns an error written to follow the field's name
// (netguard.URLCheck.Check). The URL is stored as sent.
func (v *Validator) WithURLCheck(check func(string) (string, error)) *Validator {
	c := *v
	c.checkURL = check
	return &c
}

// CheckURL vets one URL Parley will call with the check set by WithURLCheck
// (nil without one); workflows use it for their tool nodes' url.
func (v *Validator) CheckURL(raw string) error {
	if v.checkURL == nil {
		return nil
	}
	_, err := v.checkURL(raw)
	return err
}

// Options change how Normalize treats a document.
type Options struct {
	// Transient marks a one-off assistant (outbound call, web call,
	// assistant-request reply): name is optional and metadata is accepted.
	Transient bool
}

// The provider configs of an assistant that sends none (pipeline assistants
// only). NewValidator completes them from the catalog (e.g. messages: []).
const (
	defaultSTTSeed = `{"provider":"deepgram","model":"nova-3","language":"en"}`
	defaultLLMSeed = `{"provider":"openai","model":"gpt-5.4","temperature":0.7}`
	defaultTTSSeed = `{"provider":"elevenlabs","model":"eleven_flash_v2_5","voice_id":"21m00Tcm4TlvDq8ikWAM"}`
)

// webhookEvents are the events an assistant's webhook may subscribe to.
var webhookEvents = []string{"assistant-request", "tool-calls", "status-update", "end-of-call-report"}

// NewValidator returns a Validator for c. It panics if c cannot express the
// documented default configs (deepgram, openai and elevenlabs), which only
// happens with a broken catalog.
func NewValidator(c *catalog.Catalog) *Validator {
	v := &Validator{c: c}
	v.head, v.transientHead = assistantFields()
	v.speech = []*catalog.Field{{
		Name: "speech_config", Type: catalog.Object, Nullable: true, Default: jsonNull, Fill: true,
		Fields: c.Speech(),
	}}
	seeds := []struct {
		dst  *json.RawMessage
		seed string
		run  func(*fault.Fields, string, json.RawMessage) *obj
	}{
		{&v.defaultSTT, defaultSTTSeed, v.sttConfig},
		{&v.defaultLLM, defaultLLMSeed, func(f *fault.Fields, p string, raw json.RawMessage) *obj { o, _ := v.llmConfig(f, p, raw); return o }},
		{&v.defaultTTS, defaultTTSSeed, v.ttsConfig},
	}
	for _, s := range seeds {
		var f fault.Fields
		cfg := s.run(&f, "default", json.RawMessage(s.seed))
		if err := f.Err(); err != nil || cfg == nil {
			panic(fmt.Sprintf("assistant: catalog cannot express the default %s: %v", s.seed, err))
		}
		b, err := marshal(cfg)
		if err != nil {
			panic(fmt.Sprintf("assistant: marshal default %s: %v", s.seed, err))
		}
		*s.dst = b
	}
	return v
}

// assistantFields describes the assistant's own fields (spec §8.8) up to
// webhook_events; the provider configs and analysis_plan have their own code.
func assistantFields() (head, transient []*catalog.Field) {
	nullable := func(f *catalog.Field) *catalog.Field {
		f.Nullable, f.Default, f.Fill = true, jsonNull, true
		return f
	}
	withDefault := func(f *catalog.Field, d json.RawMessage) *catalog.Field {
		f.Default, f.Fill = d, true
		return f
	}
	email := &catalog.Field{Type: catalog.String, Format: catalog.FormatEmail}
	head = []*catalog.Field{
		{Name: "name", Type: catalog.String, Required: true, MinLen: count(1)},
		nullable(&catalog.Field{Name: "business_name", Type: catalog.String}),
		nullable(&catalog.Field{Name: "notification_email", Type: catalog.String, Format: catalog.FormatEmail}),
		nullable(&catalog.Field{Name: "notification_emails", Type: catalog.List, MaxItems: count(5), Items: email}),
		nullable(&catalog.Field{Name: "recording_consent", Type: catalog.Object, Fields: []*catalog.Field{
			{Name: "enabled", Type: catalog.Bool, Required: true},
			{Name: "message", Type: catalog.String, Required: true, MinLen: count(1)},
		}}),
		nullable(&catalog.Field{Name: "first_message", Type: catalog.String}),
		withDefault(&catalog.Field{Name: "is_active", Type: catalog.Bool}, jsonTrue),
		nullable(&catalog.Field{Name: "max_duration_seconds", Type: catalog.Int, Min: num(10), Max: num(43200)}),
		withDefault(&catalog.Field{Name: "autonomous_silence_handling", Type: catalog.Bool}, jsonFalse),
		withDefault(&catalog.Field{Name: "silence_timeout_seconds", Type: catalog.Int, Min: num(1), Max: num(600)}, json.RawMessage("8")),
		withDefault(&catalog.Field{Name: "voicemail_detection", Type: catalog.Bool}, jsonFalse),
		nullable(&catalog.Field{Name: "voicemail_message", Type: catalog.String}),
		withDefault(&catalog.Field{Name: "gdpr_mode", Type: catalog.Bool}, jsonFalse),
		// Parley's own: record the call (a two-channel WAV, recording_url).
		withDefault(&catalog.Field{Name: "recording_enabled", Type: catalog.Bool}, jsonFalse),
		nullable(&catalog.Field{Name: "webhook_url", Type: catalog.String, Format: catalog.FormatURL}),
		nullable(&catalog.Field{Name: "webhook_secret", Type: catalog.String}),
		nullable(&catalog.Field{Name: "webhook_events", Type: catalog.List, Unique: true,
			Items: &catalog.Field{Type: catalog.Enum, Values: webhookEvents}}),
	}
	transient = append([]*catalog.Field{
		{Name: "name", Type: catalog.String, MinLen: count(1)},
		{Name: "metadata", Type: catalog.JSONObject},
	}, head[1:]...)
	return head, transient
}

// Normalize validates a complete assistant document (spec §8.8) and returns
// its canonical form. Absent fields get their defaults, nullable fields
// absent or null become null, and the server-owned keys id, org_id,
// created_at and updated_at are dropped. For a realtime llm_config provider,
// tts_config must be null or absent and stt_config is optional (null when absent).
func (v *Validator) Normalize(doc map[string]json.RawMessage, opts Options) (map[string]json.RawMessage, error) {
	var f fault.Fields
	head := v.head
	if opts.Transient {
		head = v.transientHead
	}
	allowed := append(names(head), "analysis_plan", "stt_config", "llm_config", "tts_config", "speech_config")
	unknownKeys(&f, "", doc, allowed, ignoredKeys, "an assistant")

	out := newObj()
	v.members(&f, "", doc, head, out)

	if raw := doc["analysis_plan"]; given(raw) {
		if plan := v.analysisPlan(&f, "analysis_plan", raw); plan != nil {
			out.set("analysis_plan", plan)
		}
	} else {
		out.set("analysis_plan", nil)
	}

	realtime := v.realtimeProvider(doc["llm_config"])
	switch raw := doc["stt_config"]; {
	case given(raw):
		if cfg := v.sttConfig(&f, "stt_config", raw); cfg != nil {
			out.set("stt_config", cfg)
		}
	case realtime != "":
		out.set("stt_config", nil)
	default:
		out.set("stt_config", v.defaultSTT)
	}

	if raw := doc["llm_config"]; given(raw) {
		if cfg, _ := v.llmConfig(&f, "llm_config", raw); cfg != nil {
			out.set("llm_config", cfg)
		}
	} else {
		out.set("llm_config", v.defaultLLM)
	}

	switch raw := doc["tts_config"]; {
	case realtime != "" && given(raw):
		f.Invalidf("tts_config", "must be null for a realtime assistant: llm_config.provider %q speaks by itself; send \"tts_config\": null or leave it out", realtime)
	case realtime != "":
		out.set("tts_config", nil)
	case given(raw):
		if cfg := v.ttsConfig(&f, "tts_config", raw); cfg != nil {
			out.set("tts_config", cfg)
		}
	default:
		out.set("tts_config", v.defaultTTS)
	}

	v.members(&f, "", doc, v.speech, out)
	if err := f.Err(); err != nil {
		return nil, err
	}
	return out.rawMap()
}

// realtimeProvider returns the canonical id of llm_config's provider when it
// is a realtime provider, else "".
func (v *Validator) realtimeProvider(raw json.RawMessage) string {
	in, ok := decodeObject(raw)
	if !ok {
		return ""
	}
	id, _ := decodeString(in["provider"])
	if p := v.c.Provider(catalog.LLM, id); p != nil && p.Realtime() {
		return p.ID
	}
	return ""
}

// MCPServerIDs lists, in order of first appearance, the distinct
// mcp_server_id values of the mcp tools in a canonical document's
// llm_config.tools. It returns nil when there are none.
func MCPServerIDs(doc map[string]json.RawMessage) []string {
	llm, ok := decodeObject(doc["llm_config"])
	if !ok {
		return nil
	}
	var tools []json.RawMessage
	if json.Unmarshal(llm["tools"], &tools) != nil {
		return nil
	}
	var ids []string
	seen := map[string]bool{}
	for _, raw := range tools {
		t, ok := decodeObject(raw)
		if !ok {
			continue
		}
		if typ, _ := decodeString(t["type"]); typ != "mcp" {
			continue
		}
		if id, ok := decodeString(t["mcp_server_id"]); ok && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}
