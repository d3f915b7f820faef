package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/realtime"
	"github.com/parley-voice/parley/internal/stt"
	"github.com/parley-voice/parley/internal/voice"
)

// TestServedChoices: a running server serves every provider of the
// catalog, the realtime ones included, so every choice is accepted, GET
// /voices offers every voice set, and its OpenAPI document leaves nothing
// out; what it does not run would be refused where it is chosen
// (TestServedBy, and assistant.TestServedRefusals for the 400).
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
	for _, body := range []string{
		`{"name":"rt","llm_config":{"provider":"xai_realtime"}}`,
		`{"name":"g","llm_config":{"provider":"google_realtime"}}`,
		`{"name":"o","llm_config":{"provider":"openai_live"}}`,
	} {
		if status, got := post("/assistants", body); status != 201 && status != 200 {
			t.Errorf("POST /assistants %s = %d %s; want it accepted", body, status, got)
		}
	}
	// A google_vertex key is a service-account JSON key, checked as one.
	for _, key := range []string{`"AIzaSyExample"`, `"{\"type\": \"service_account\"}"`} {
		status, body := post("/byok", `{"provider":"google_vertex","api_key":`+key+`}`)
		if status != 400 || !strings.Contains(body, "api_key") || !strings.Contains(body, "service-account JSON key") {
			t.Errorf("POST /byok google_vertex %s = %d %s; want 400 naming api_key", key, status, body)
		}
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
	if !seen["openai_live"] || !seen["xai"] {
		t.Errorf("GET /voices offers voice sets %v; want xai and openai_live among them", seen)
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
	for _, id := range []string{"google", "xai_realtime", "openai_live", "google_realtime"} {
		if llm.Discriminator.Mapping[id] == "" {
			t.Errorf("OpenAPI LLMConfig mapping %v leaves out %s", llm.Discriminator.Mapping, id)
		}
	}
	// Every provider of the catalog runs here.
	for _, union := range []string{"STTConfig", "LLMConfig", "TTSConfig"} {
		if d := doc.Components.Schemas[union].Description; strings.Contains(d, "not run by this server") {
			t.Errorf("%s names providers this server does not run: %s", union, d)
		}
	}
}

// TestServedBy: what the server has no client for is refused, with why.
func TestServedBy(t *testing.T) {
	served := servedBy(voice.Providers{STT: map[string]stt.Provider{"deepgram": nil}, Realtime: map[string]realtime.Provider{"xai_realtime": nil}})
	if err := served(catalog.STT, "deepgram", "nova-3"); err != nil {
		t.Errorf("deepgram: %v", err)
	}
	if err := served(catalog.LLM, "xai_realtime", ""); err != nil {
		t.Errorf("xai_realtime: %v", err)
	}
	for _, c := range []struct {
		s  catalog.Section
		id string
	}{{catalog.STT, "gladia"}, {catalog.LLM, "openai_live"}, {catalog.TTS, "inworld"}} {
		if err := served(c.s, c.id, ""); err == nil || !strings.Contains(err.Error(), "no client") {
			t.Errorf("%s %s: %v, want a refusal saying why", c.s, c.id, err)
		}
	}
}
