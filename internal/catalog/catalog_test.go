package catalog

import (
	"slices"
	"strings"
	"testing"
)

func load(t *testing.T) *Catalog {
	t.Helper()
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestProviders(t *testing.T) {
	c := load(t)
	tests := []struct {
		section Section
		kind    Kind
		want    []string
	}{
		{STT, "", []string{"deepgram", "elevenlabs", "gladia", "mistral", "google", "local"}},
		{LLM, "", []string{"openai", "xai", "mistral", "google", "google_realtime", "xai_realtime", "openai_live"}},
		{LLM, Text, []string{"openai", "xai", "mistral", "google"}},
		{LLM, Realtime, []string{"google_realtime", "xai_realtime", "openai_live"}},
		{TTS, "", []string{"elevenlabs", "inworld", "google", "xai", "openai", "local"}},
	}
	for _, tt := range tests {
		if got := c.ProviderIDs(tt.section, tt.kind); !slices.Equal(got, tt.want) {
			t.Errorf("ProviderIDs(%s, %q) = %v, want %v", tt.section, tt.kind, got, tt.want)
		}
	}
}

func TestProviderLookup(t *testing.T) {
	c := load(t)
	tests := []struct {
		section      Section
		id           string
		wantID       string // "" = not found
		defaultModel string
	}{
		{TTS, "11labs", "elevenlabs", "eleven_flash_v2_5"},
		{TTS, "elevenlabs", "elevenlabs", "eleven_flash_v2_5"},
		{TTS, "xai", "xai", ""},
		{TTS, "local", "local", "espeak-ng"},
		{TTS, "openai", "openai", "gpt-4o-mini-tts"},
		{TTS, "azure", "", ""},
		{STT, "11labs", "", ""}, // the alias is a TTS alias only
		{STT, "deepgram", "deepgram", "nova-3"},
		{STT, "local", "local", "pocketsphinx"},
		{LLM, "openai", "openai", "gpt-5.4"},
		{LLM, "google", "google", "gemini-3.5-flash-lite"},
		{LLM, "google_realtime", "google_realtime", "gemini-live-2.5-flash-native-audio"},
		{LLM, "xai_realtime", "xai_realtime", "grok-voice-think-fast-2.0"},
		{LLM, "openai_live", "openai_live", "gpt-live-1"},
		{LLM, "OpenAI", "", ""},
	}
	for _, tt := range tests {
		p := c.Provider(tt.section, tt.id)
		if tt.wantID == "" {
			if p != nil {
				t.Errorf("Provider(%s, %q) = %s, want none", tt.section, tt.id, p.ID)
			}
			continue
		}
		if p == nil || p.ID != tt.wantID {
			t.Errorf("Provider(%s, %q) = %v, want %s", tt.section, tt.id, p, tt.wantID)
			continue
		}
		if got := p.DefaultModel(); got != tt.defaultModel {
			t.Errorf("%s/%s default model = %q, want %q", tt.section, tt.id, got, tt.defaultModel)
		}
	}
}

func TestModels(t *testing.T) {
	c := load(t)
	tests := []struct {
		section       Section
		provider, mdl string
		ok, legacy    bool
	}{
		{LLM, "openai", "gpt-5.4-nano", true, false},
		{LLM, "openai", "gpt-4o-mini", true, true},
		{LLM, "openai", "gpt-4o", true, true},
		{LLM, "openai", "gpt-9", false, false},
		{LLM, "xai_realtime", "grok-realtime-v1", true, true},
		{LLM, "xai_realtime", "grok-voice-latest", true, true},
		{LLM, "google_realtime", "gemini-2.5-flash-native-audio-preview-12-2025", true, true},
		{STT, "deepgram", "nova-2", true, true},
		{TTS, "inworld", "inworld-tts-1.5-mini", true, true},
		{TTS, "google", "chirp-3-hd", true, false},
	}
	for _, tt := range tests {
		m, ok := c.Provider(tt.section, tt.provider).Model(tt.mdl)
		if ok != tt.ok || m.Legacy != tt.legacy {
			t.Errorf("%s/%s model %s: ok=%v legacy=%v, want ok=%v legacy=%v", tt.section, tt.provider, tt.mdl, ok, m.Legacy, tt.ok, tt.legacy)
		}
	}
	got := c.Provider(LLM, "openai").ModelIDs()
	if slices.Contains(got, "gpt-4o-mini") || got[0] != "gpt-5.4" || len(got) != 14 {
		t.Errorf("openai ModelIDs = %v", got)
	}
}

func TestSecrets(t *testing.T) {
	c := load(t)
	tests := []struct {
		section       Section
		provider, mdl string
		want          []string
	}{
		{LLM, "google_realtime", "gemini-live-2.5-flash-native-audio", []string{"google_vertex_secret_id"}},
		{LLM, "google_realtime", "gemini-3.1-flash-live-preview", []string{"google_secret_id"}},
		{TTS, "google", "chirp-3-hd", []string{"google_vertex_secret_id"}},
		{TTS, "google", "gemini-2.5-pro-preview-tts", []string{"google_secret_id"}},
		{LLM, "google", "gemini-2.5-flash", []string{"google_vertex_secret_id"}},
		{STT, "deepgram", "nova-3", []string{"deepgram_secret_id"}},
		{STT, "local", "pocketsphinx", nil},
		{TTS, "local", "espeak-ng", nil},
	}
	for _, tt := range tests {
		if got := c.Provider(tt.section, tt.provider).SecretsFor(tt.mdl); !slices.Equal(got, tt.want) {
			t.Errorf("%s/%s SecretsFor(%s) = %v, want %v", tt.section, tt.provider, tt.mdl, got, tt.want)
		}
	}
}

func TestIsRealtime(t *testing.T) {
	c := load(t)
	for id, want := range map[string]bool{
		"openai": false, "xai": false, "mistral": false, "google": false,
		"google_realtime": true, "xai_realtime": true, "openai_live": true, "nope": false,
	} {
		if got := c.IsRealtime(id); got != want {
			t.Errorf("IsRealtime(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestBYOKProviders(t *testing.T) {
	want := []string{"deepgram", "openai", "elevenlabs", "inworld", "resend", "xai", "gladia", "mistral", "google", "google_vertex"}
	if got := load(t).BYOKProviders(); !slices.Equal(got, want) {
		t.Errorf("BYOKProviders = %v, want %v", got, want)
	}
}

func TestLanguages(t *testing.T) {
	c := load(t)
	got := c.Languages()
	if len(got) != 28 || got[0] != "multi" || got[27] != "vi" {
		t.Errorf("Languages = %v", got)
	}
	got[0] = "mutated"
	if c.Languages()[0] != "multi" {
		t.Error("Languages exposes the catalog's slice")
	}
	if c.DefaultLanguage() != "en" {
		t.Errorf("DefaultLanguage = %q", c.DefaultLanguage())
	}
	local := c.Provider(STT, "local")
	if !c.AcceptsLanguage(local, "en") || c.AcceptsLanguage(local, "nl") {
		t.Error("local STT must accept en only")
	}
	if !c.AcceptsLanguage(c.Provider(STT, "gladia"), "vi") {
		t.Error("gladia must accept vi")
	}
	if got := c.BCP47("zh"); !slices.Equal(got, []string{"cmn-Hans-CN"}) {
		t.Errorf("BCP47(zh) = %v", got)
	}
	if got := c.BCP47("multi"); !slices.Equal(got, []string{"nl-NL", "en-US"}) {
		t.Errorf("BCP47(multi) = %v", got)
	}
}

func TestProviderVoices(t *testing.T) {
	c := load(t)
	voices := c.ProviderVoices()
	count := map[string]int{}
	for _, v := range voices {
		count[v.Provider]++
		if v.ID == "" || v.Name == "" || v.Language != "multi" {
			t.Errorf("incomplete voice %+v", v)
		}
	}
	if count["google"] != 30 || count["xai"] != 26 || count["openai_live"] != 5 || len(count) != 3 {
		t.Errorf("voice counts = %v", count)
	}
	want := map[string]Voice{
		"Puck":  {ID: "Puck", Name: "Puck", Provider: "google", Language: "multi", Style: "Upbeat"},
		"ara":   {ID: "ara", Name: "Ara", Provider: "xai", Language: "multi", Style: "Warm, friendly"},
		"marin": {ID: "marin", Name: "Marin", Provider: "openai_live", Language: "multi"},
	}
	for _, v := range voices {
		if w, ok := want[v.ID]; ok && v != w {
			t.Errorf("voice %s = %+v, want %+v", v.ID, v, w)
		}
	}
	if vs := c.VoiceSet("google"); !vs.Has("Kore") || vs.Has("kore") {
		t.Error("google voice set: Kore must match exactly")
	}
}

func TestFields(t *testing.T) {
	c := load(t)
	dg := c.Provider(STT, "deepgram").Field("endpointing")
	if dg == nil || dg.Type != Int || *dg.Min != 0 || *dg.Max != 5000 {
		t.Errorf("deepgram endpointing = %+v", dg)
	}
	gl := c.Provider(STT, "gladia").Field("endpointing")
	if gl == nil || gl.Type != Number || *gl.Min != 0.01 || *gl.Max != 1 {
		t.Errorf("gladia endpointing = %+v", gl)
	}
	td := c.Provider(LLM, "xai_realtime").Field("turn_detection")
	if td == nil || !td.Member("threshold").Clamp {
		t.Errorf("xai turn_detection = %+v", td)
	}
	pt := c.Provider(LLM, "xai_realtime").Field("provider_tools")
	if got := pt.Items.TagValues(); !slices.Equal(got, []string{"web_search", "x_search", "file_search"}) {
		t.Errorf("provider_tools variants = %v", got)
	}
	if tt := c.Provider(TTS, "xai"); tt.HasModels() {
		t.Error("xAI TTS has no model choice")
	}
	var speech []string
	for _, f := range c.Speech() {
		speech = append(speech, f.Name)
	}
	if strings.Join(speech, ",") != "turn_taking,pronunciation,background_audio,silence,end_call_message,first_message_outbound" {
		t.Errorf("speech parts = %v", speech)
	}
	temp := c.Common(LLM)[0]
	if temp.Name != "temperature" || string(temp.Default) != "0.7" || !temp.Fill {
		t.Errorf("llm common = %+v", temp)
	}
}

func TestParseRejectsInconsistentCatalogs(t *testing.T) {
	tests := map[string]struct{ old, new string }{
		"unknown voice set":  {`"voice_set": "xai", "required": true`, `"voice_set": "nope", "required": true`},
		"unknown field type": {`"name": "no_delay", "type": "bool"`, `"name": "no_delay", "type": "boolean"`},
		"bad alias":          {`{"11labs": "elevenlabs"}`, `{"11labs": "eleven"}`},
		"unknown key":        {`"version": 1,`, `"version": 1, "extra": true,`},
		"bad language":       {`"languages": ["en"]`, `"languages": ["xx"]`},
	}
	for name, tt := range tests {
		data := strings.Replace(string(catalogJSON), tt.old, tt.new, 1)
		if data == string(catalogJSON) {
			t.Fatalf("%s: replacement did not apply", name)
		}
		if _, err := parse([]byte(data)); err == nil {
			t.Errorf("%s: parse succeeded, want an error", name)
		}
	}
}
