package openapi

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/webhook"
)

func testCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// docStrings reads the string list at a path of member names in the
// document's component schemas; "" when a step is missing.
func docStrings(t *testing.T, schemas map[string]any, path ...string) []string {
	t.Helper()
	var cur any = schemas
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Errorf("%v: no object at %q", path, p)
			return nil
		}
		cur = m[p]
	}
	list, ok := cur.([]any)
	if !ok {
		t.Errorf("%v: not a list: %v", path, cur)
		return nil
	}
	var out []string
	for _, v := range list {
		if s, ok := v.(string); ok { // a nullable enum ends with null
			out = append(out, s)
		}
	}
	return out
}

func modelIDs(p *catalog.Provider) []string {
	var out []string
	for _, m := range p.Models {
		out = append(out, m.ID)
	}
	return out
}

func stringList[T fmt.Stringer](vs []T) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.String())
	}
	return out
}

// TestEnumsMatchCatalog fails when an enum of the OpenAPI document and the
// list the server validates with disagree: providers, models, voices,
// languages and BYOK providers (catalog), statuses, directions and webhook
// events (Go enums).
func TestEnumsMatchCatalog(t *testing.T) {
	cat := testCatalog(t)
	s := obj(t, obj(t, parsed(t)["components"], "components")["schemas"], "schemas")
	same := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: document has %v, the server %v", what, got, want)
		}
	}
	same("STTLanguage", docStrings(t, s, "STTLanguage", "enum"), cat.Languages())
	same("BYOKProvider", docStrings(t, s, "BYOKProvider", "enum"), cat.BYOKProviders())
	same("GoogleVoice", docStrings(t, s, "GoogleVoice", "enum"), cat.VoiceSet("google").IDs())
	same("XAIVoice", docStrings(t, s, "XAIVoice", "enum"), cat.VoiceSet("xai").IDs())
	same("OpenAILiveVoice", docStrings(t, s, "OpenAILiveVoice", "enum"), cat.VoiceSet("openai_live").IDs())
	same("CallStatus", docStrings(t, s, "CallStatus", "enum"), stringList(call.Statuses()))
	same("Call.direction", docStrings(t, s, "Call", "properties", "direction", "enum"), stringList(call.Directions()))
	same("CampaignStatus", docStrings(t, s, "CampaignStatus", "enum"), stringList(campaign.Statuses()))
	same("LeadStatus", docStrings(t, s, "LeadStatus", "enum"), stringList(campaign.LeadStatuses()))
	same("UsageLog.call_type", docStrings(t, s, "UsageLog", "properties", "call_type", "enum"), []string{call.Inbound.UsageType(), call.Web.UsageType()})
	same("WebhookEventType", docStrings(t, s, "WebhookEventType", "enum"), webhook.Events())

	// Every provider has a config schema, found through the discriminator,
	// whose model enum is the catalog's (default first).
	for _, sec := range []struct {
		section catalog.Section
		union   string
	}{{catalog.STT, "STTConfig"}, {catalog.LLM, "LLMConfig"}, {catalog.TTS, "TTSConfig"}} {
		mapping := obj(t, obj(t, s[sec.union], sec.union)["discriminator"], sec.union+".discriminator")["mapping"]
		m := obj(t, mapping, sec.union+" mapping")
		want := cat.ProviderIDs(sec.section, "")
		want = append(want, slices.Collect(maps.Keys(cat.Aliases(sec.section)))...)
		same(sec.union+" providers", slices.Sorted(maps.Keys(m)), slices.Sorted(slices.Values(want)))
		for _, p := range cat.Providers(sec.section) {
			ref, _ := m[p.ID].(string)
			name := ref[len("#/components/schemas/"):]
			if len(p.Models) == 0 {
				continue
			}
			same(name+".model", docStrings(t, s, name, "properties", "model", "enum"), modelIDs(p))
			if def := obj(t, obj(t, obj(t, s[name], name)["properties"], name)["model"], name+".model")["default"]; def != p.Models[0].ID {
				t.Errorf("%s.model default = %v, catalog default %s", name, def, p.Models[0].ID)
			}
		}
	}
	node := []string{"ConversationNode", "properties", "llm_config", "properties", "provider", "enum"}
	same("ConversationNode.llm_config.provider", docStrings(t, s, node...), cat.ProviderIDs(catalog.LLM, catalog.Text))
	same("ElevenLabsTTSConfig.provider", docStrings(t, s, "ElevenLabsTTSConfig", "properties", "provider", "enum"), []string{"elevenlabs", "11labs"})
}
