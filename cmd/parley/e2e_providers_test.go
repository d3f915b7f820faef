package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// simulatedProvider is one assistant of TestE2EProvidersSimulated: the
// speech providers it chooses.
type simulatedProvider struct {
	number   string
	stt, tts string // stt_config and tts_config JSON
	llm      string // llm_config JSON; "" is OpenAI
}

// TestE2EProvidersSimulated: one phone call per pipeline provider that
// `parley simulate-providers` fakes beside Deepgram and ElevenLabs TTS, each
// through the real `parley serve` binary and the `parley call` softphone.
// The server has keys for those providers and OpenAI only (no Deepgram key;
// ElevenLabs only for Scribe, as no assistant speaks through it), so a call
// that reached another provider would fail. Each
// call must end normally with the caller's words heard through its STT and
// the assistant's replies spoken through its TTS.
func TestE2EProvidersSimulated(t *testing.T) {
	bin := parleyBinary(t)
	caller, err := filepath.Abs("../../docs/quickstart/caller.wav")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sim := freeAddr(t)
	googleKey := filepath.Join(dir, "google-key.json")
	simulated := startProc(t, bin, nil, "simulate-providers", "--addr", sim, "--google-key", googleKey)
	waitFor(t, 15*time.Second, "the simulated providers", func() bool { return strings.Contains(simulated.stdout.String(), "Start the server with") })
	speechAddr := regexp.MustCompile(`PARLEY_GOOGLE_SPEECH_ADDR=(\S+)`).FindStringSubmatch(simulated.stdout.String())
	if speechAddr == nil {
		t.Fatalf("simulate-providers printed no Speech-to-Text address:\n%s", simulated.stdout.String())
	}

	httpAddr, sipAddr := freeAddr(t), freeAddr(t)
	const key = "e2e-providers-key-0123456789abcdef"
	startProc(t, bin, []string{
		"PARLEY_DATA_DIR=" + filepath.Join(dir, "data"), "PARLEY_HTTP_ADDR=" + httpAddr, "PARLEY_SIP_ADDR=" + sipAddr,
		"PARLEY_RTP_PORTS=44000-44999", "PARLEY_BOOTSTRAP_API_KEY=" + key,
		"PARLEY_OPENAI_BASE_URL=http://" + sim + "/v1", "PARLEY_OPENAI_API_KEY=simulated",
		"PARLEY_GLADIA_BASE_URL=http://" + sim, "PARLEY_GLADIA_API_KEY=simulated",
		"PARLEY_XAI_BASE_URL=http://" + sim + "/v1", "PARLEY_XAI_API_KEY=simulated",
		"PARLEY_INWORLD_BASE_URL=ws://" + sim, "PARLEY_INWORLD_API_KEY=simulated",
		"PARLEY_ELEVENLABS_BASE_URL=ws://" + sim, "PARLEY_ELEVENLABS_API_KEY=simulated",
		"PARLEY_MISTRAL_BASE_URL=http://" + sim + "/v1", "PARLEY_MISTRAL_API_KEY=simulated",
		"PARLEY_GOOGLE_VERTEX_URL=http://" + sim, "PARLEY_GOOGLE_TOKEN_URL=http://" + sim + "/token",
		"PARLEY_GOOGLE_TTS_URL=http://" + sim, "PARLEY_GOOGLE_SPEECH_ADDR=" + speechAddr[1],
		"PARLEY_XAI_REALTIME_URL=ws://" + sim + "/xai/v1/realtime",
		"PARLEY_MAX_WRITE_LATENCY=-1ms", "PARLEY_MAX_SCHED_LATENCY=-1ms",
	}, "serve")
	base := "http://" + httpAddr
	waitFor(t, 30*time.Second, "the server", func() bool {
		resp, err := http.Get(base + "/api/v1/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	api := func(method, path, body string, out any) {
		t.Helper()
		apiRequest(t, base, key, method, path, body, out)
	}
	// Google's service account, as simulate-providers wrote it, stored as
	// the organization's Vertex AI key.
	saJSON, err := os.ReadFile(googleKey)
	if err != nil {
		t.Fatal(err)
	}
	byok, _ := json.Marshal(map[string]string{"provider": "google_vertex", "api_key": string(saJSON)})
	api("POST", "/byok", string(byok), nil)

	cases := map[string]simulatedProvider{
		"stt gladia, tts xai":                         {"+15550201", `{"provider":"gladia","model":"solaria-1","language":"en"}`, `{"provider":"xai","voice_id":"eve"}`, ""},
		"stt gladia, tts inworld":                     {"+15550202", `{"provider":"gladia","language":"en"}`, `{"provider":"inworld","model":"inworld-tts-2","voice_id":"Ashley"}`, ""},
		"stt gladia, tts openai":                      {"+15550203", `{"provider":"gladia","language":"en"}`, `{"provider":"openai","model":"gpt-4o-mini-tts","voice_id":"coral"}`, ""},
		"stt mistral (Voxtral), tts inworld":          {"+15550205", `{"provider":"mistral","language":"en"}`, `{"provider":"inworld","voice_id":"Dennis"}`, ""},
		"google stt, llm and tts (Chirp 3 HD)":        {"+15550206", `{"provider":"google","model":"chirp_3","language":"en"}`, `{"provider":"google","model":"chirp-3-hd","voice_id":"Kore","language":"en"}`, `{"provider":"google","model":"gemini-2.5-flash"}`},
		"stt gladia, llm and tts google (Gemini TTS)": {"+15550207", `{"provider":"gladia","language":"en"}`, `{"provider":"google","model":"gemini-2.5-flash-preview-tts","voice_id":"Puck"}`, `{"provider":"google","model":"gemini-2.5-flash"}`},
		"stt elevenlabs (Scribe), tts openai":         {"+15550204", `{"provider":"elevenlabs","model":"scribe_v2_realtime","language":"en"}`, `{"provider":"openai","model":"tts-1","voice_id":"nova"}`, ""},
		"realtime openai_live":                        {"+15550208", "null", "null", `{"provider":"openai_live","model":"gpt-live-1"}`},
		"realtime xai_realtime":                       {"+15550209", "null", "null", `{"provider":"xai_realtime","model":"grok-voice-think-fast-2.0"}`},
		"realtime google_realtime (Vertex AI)":        {"+15550210", "null", "null", `{"provider":"google_realtime","model":"gemini-live-2.5-flash-native-audio"}`},
	}
	procs := map[string]*proc{}
	for name, c := range cases {
		var a struct{ Assistant struct{ ID string } }
		llmJSON := cmp.Or(c.llm, `{"provider":"openai","model":"gpt-4.1"}`)
		api("POST", "/assistants", fmt.Sprintf(`{"name":%q,"first_message":"Hello! How can I help?","llm_config":%s,"stt_config":%s,"tts_config":%s}`, name, llmJSON, c.stt, c.tts), &a)
		api("POST", "/numbers", `{"phone_number":"`+c.number+`","assistant_id":"`+a.Assistant.ID+`"}`, nil)
		heard := filepath.Join(dir, c.number+".wav")
		procs[name] = startProc(t, bin, nil, "call", "--server", sipAddr, "--play", caller, "--record", heard, "--linger", "3s", c.number)
	}
	for name, p := range procs {
		p.wait(t, 90*time.Second)
		if s := soundIn(t, filepath.Join(dir, cases[name].number+".wav")); s < time.Second {
			t.Errorf("%s: %v of sound heard, want the assistant's greeting and replies", name, s)
		}
	}
	type listed struct {
		ID, Status, EndReason string
		To                    string `json:"to_number"`
		Messages              []struct{ Role, Content string }
	}
	var calls struct{ Calls []listed }
	waitFor(t, 15*time.Second, "every call to end", func() bool {
		api("GET", "/calls", "", &calls)
		ended := 0
		for _, c := range calls.Calls {
			if c.Status != "in-progress" && c.Status != "ringing" && c.Status != "queued" {
				ended++
			}
		}
		return ended == len(cases)
	})
	greeting := regexp.MustCompile(`^Hello! How can I help\?$`)
	for _, c := range calls.Calls {
		said := map[string][]string{}
		for _, m := range c.Messages {
			said[m.Role] = append(said[m.Role], m.Content)
		}
		if c.Status != "ended" || len(said["user"]) < 2 || len(said["assistant"]) < 2 || said["user"][0] != "I would like to book an appointment." || !greeting.MatchString(said["assistant"][0]) {
			b, _ := json.MarshalIndent(c, "", "  ")
			t.Errorf("call %s ended as %s / %s with transcript %s; want ended, both of the caller's sentences and the assistant's replies", c.ID, c.Status, c.EndReason, b)
		}
	}
}
