package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

// TestServedChoices: a running server refuses, where the choice is made and
// with a 400 naming the field, a provider it does not run (today the
// realtime ones), and leaves those out of GET /voices and its OpenAPI
// document.
func TestServedChoices(t *testing.T) {
	s := startE2EWith(t, openaifake.Config{})
	post := func(path, body string) (int, string) {
		req, _ := http.NewRequest("POST", s.base+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e2eKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct{ body, field, why string }{
		{`{"name":"rt","llm_config":{"provider":"xai_realtime"}}`, "llm_config.provider", "realtime"},
		{`{"name":"g","llm_config":{"provider":"google_realtime"}}`, "llm_config.provider", "realtime"},
	} {
		status, body := post("/assistants", tc.body)
		if status != 400 || !strings.Contains(body, tc.field) || !strings.Contains(body, "not available on this server") || !strings.Contains(body, tc.why) {
			t.Errorf("POST /assistants %s = %d %s; want 400 naming %s and why (%s)", tc.body, status, body, tc.field, tc.why)
		}
	}
	// A google_vertex key is a service-account JSON key, checked as one.
	for _, key := range []string{`"AIzaSyExample"`, `"{\"type\": \"service_account\"}"`} {
		status, body := post("/byok", `{"provider":"google_vertex","api_key":`+key+`}`)
		if status != 400 || !strings.Contains(body, "api_key") || !strings.Contains(body, "service-account JSON key") {
			t.Errorf("POST /byok google_vertex %s = %d %s; want 400 naming api_key", key, status, body)
		}
	}
	// A transient assistant of an outbound call is checked the same way.
	status, body := post("/calls/outbound", `{"destination":"+15550100","assistant":{"llm_config":{"provider":"openai_live"}}}`)
	if status != 400 || !strings.Contains(body, "llm_config.provider") {
		t.Errorf("POST /calls/outbound with openai_live = %d %s; want 400 naming assistant llm_config.provider", status, body)
	}
	// What the server runs is accepted.
	if status, body := post("/assistants", `{"name":"ok","stt_config":{"provider":"gladia"},"tts_config":{"provider":"xai","voice_id":"ara"}}`); status != 201 && status != 200 {
		t.Errorf("POST /assistants with gladia and xai = %d %s", status, body)
	}

	var voices struct {
		Voices []struct{ ID, Provider string }
	}
	s.api(t, "GET", "/voices", "", &voices)
	seen := map[string]bool{}
	for _, v := range voices.Voices {
		seen[v.Provider] = true
	}
	if seen["openai_live"] || !seen["xai"] {
		t.Errorf("GET /voices offers voice sets %v; want xai (xAI TTS runs here) and not openai_live (realtime does not)", seen)
	}

	resp, err := http.Get(s.base + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Description   string
				Discriminator struct{ Mapping map[string]string }
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	llm := doc.Components.Schemas["LLMConfig"]
	if _, ok := llm.Discriminator.Mapping["xai_realtime"]; ok || llm.Discriminator.Mapping["google"] == "" || !strings.Contains(llm.Description, "xai_realtime (") {
		t.Errorf("OpenAPI LLMConfig mapping %v, description %q: want google offered and xai_realtime named as not run", llm.Discriminator.Mapping, llm.Description)
	}
	// Every pipeline provider of the catalog runs here.
	for _, union := range []string{"STTConfig", "TTSConfig"} {
		if d := doc.Components.Schemas[union].Description; strings.Contains(d, "not run by this server") {
			t.Errorf("%s names providers this server does not run: %s", union, d)
		}
	}
}
