package main

import (
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/speech/apiv2/speechpb"
	"google.golang.org/grpc"

	"github.com/parley-voice/parley/internal/provider/google"
	"github.com/parley-voice/parley/internal/provider/google/googlefake"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

// TestE2EGoogleVertex: an organization stores a Vertex AI service-account
// key (BYOK google_vertex) and its assistant uses Gemini. The call's model
// requests reach Vertex AI's OpenAI-compatible endpoint in the EU location,
// for the key's project, with an access token the token endpoint issued for
// a signed assertion (not the key itself as a bearer token), and the
// caller hears the answer, spoken with the same key by Gemini TTS on Vertex
// AI, or by a Chirp 3 HD voice of Cloud Text-to-Speech.
func TestE2EGoogleVertex(t *testing.T) {
	for _, bin := range []string{"espeak-ng", "pocketsphinx_continuous"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("PARLEY_REQUIRE_E2E") != "" {
				t.Fatalf("end-to-end test needs %s", bin)
			}
			t.Skipf("end-to-end test needs %s", bin)
		}
	}
	bin := parleyBinary(t)
	local := `{"provider":"local","model":"pocketsphinx","language":"en","keyterms":["book an appointment for tomorrow morning"]}`
	for _, v := range []struct{ name, stt, tts, service, model, voice string }{
		{"gemini tts", local, `{"provider":"google","model":"gemini-2.5-flash-preview-tts","voice_id":"Kore"}`, "vertex-tts", "gemini-2.5-flash-preview-tts", "Kore"},
		{"chirp 3 stt and hd voice", `{"provider":"google","model":"chirp_3","language":"en"}`, `{"provider":"google","model":"chirp-3-hd","voice_id":"Aoede","language":"en"}`, "cloud-tts", "chirp-3-hd", "en-US-Chirp3-HD-Aoede"},
	} {
		t.Run(v.name, func(t *testing.T) { googleCall(t, bin, v.stt, v.tts, v.service, v.model, v.voice) })
	}
}

// googleCall is one call of TestE2EGoogleVertex, heard with stt and spoken
// with tts (stt_config and tts_config JSON); the speech must reach service
// with model and voice.
func googleCall(t *testing.T, bin, sttJSON, tts, service, model, voice string) {
	acct, err := googlefake.NewAccount("eu-voice-project", "parley@eu-voice-project.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	answer := "Your appointment is booked for tomorrow morning."
	fake := googlefake.New(googlefake.Config{Account: acct, Chat: openaifake.Config{Replies: []openaifake.Reply{{Text: answer}}}})
	gsrv := httptest.NewServer(fake)
	t.Cleanup(gsrv.Close)
	// Speech-to-Text v2 is gRPC: the same fake on its own listener.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	speechpb.RegisterSpeechServer(g, fake.Speech(googlefake.SpeechConfig{Transcripts: []string{"book an appointment for tomorrow morning"}}))
	go g.Serve(ln)
	t.Cleanup(g.Stop)

	s := startE2EWith(t, openaifake.Config{}, "PARLEY_GOOGLE_VERTEX_URL="+gsrv.URL, "PARLEY_GOOGLE_TOKEN_URL="+gsrv.URL+googlefake.TokenPath,
		"PARLEY_GOOGLE_TTS_URL="+gsrv.URL, "PARLEY_GOOGLE_SPEECH_ADDR="+ln.Addr().String())
	body, _ := json.Marshal(map[string]string{"provider": "google_vertex", "api_key": acct.JSON})
	s.api(t, "POST", "/byok", string(body), nil)
	var a struct{ Assistant struct{ ID string } }
	s.api(t, "POST", "/assistants", `{"name":"Gemini desk","first_message":"Hello, this is the dental office.",
		"llm_config":{"provider":"google","model":"gemini-2.5-flash"},
		"stt_config":`+sttJSON+`,"tts_config":`+tts+`}`, &a)
	s.api(t, "POST", "/numbers", `{"phone_number":"+15550100","assistant_id":"`+a.Assistant.ID+`"}`, nil)

	dir := t.TempDir()
	wav := callerWAV(t, dir, []segment{{silence: 3 * time.Second}, {say: "book an appointment for tomorrow morning"}, {silence: 7 * time.Second}})
	heard := filepath.Join(dir, "heard.wav")
	call := startProc(t, bin, nil, "call", "--server", s.sip, "--play", wav, "--record", heard, "--linger", "1s", "+15550100")
	call.wait(t, 60*time.Second)
	time.Sleep(300 * time.Millisecond)

	c := s.onlyCall(t)
	said := map[string][]string{}
	for _, m := range c.Messages {
		said[m.Role] = append(said[m.Role], m.Content)
	}
	if len(said["user"]) == 0 || len(said["assistant"]) < 2 || said["assistant"][1] != answer {
		t.Fatalf("transcript %+v; want the caller's request and Gemini's answer", c.Messages)
	}
	if s := soundIn(t, heard); s < 3*time.Second {
		t.Errorf("%v of sound heard, want the greeting and the answer", s)
	}
	calls := fake.Calls()
	if len(calls) == 0 {
		t.Fatal("no request reached Vertex AI")
	}
	// The conversation's model, then the post-call summary's (the
	// catalog's post-call model for google), all on Vertex AI; and the
	// greeting and answer spoken there.
	conversation := false
	spoken := map[string]bool{}
	for _, cl := range calls {
		if strings.HasSuffix(cl.Service, "-tts") {
			if cl.Service != service || cl.Project != "eu-voice-project" || cl.Model != model || cl.Voice != voice {
				t.Errorf("speech request %+v", cl)
			}
			spoken[cl.Text] = true
			continue
		}
		if cl.Service != "vertex" || cl.Project != "eu-voice-project" || cl.Location != google.DefaultLocation || !strings.HasPrefix(cl.Model, "google/gemini-") {
			t.Errorf("model request %+v", cl)
		}
		conversation = conversation || cl.Model == "google/gemini-2.5-flash"
	}
	if !conversation {
		t.Errorf("no request with the assistant's model: %+v", calls)
	}
	if !spoken["Hello, this is the dental office."] || !spoken[answer] {
		t.Errorf("Gemini TTS spoke %v; want the greeting and the answer", spoken)
	}
	if fake.Grants() != 1 {
		t.Errorf("%d token grants, want 1", fake.Grants())
	}
	if recs := fake.Recognitions(); strings.Contains(sttJSON, `"google"`) != (len(recs) == 1) {
		t.Errorf("Speech-to-Text streams %+v for stt_config %s", recs, sttJSON)
	}
	if strings.Contains(s.stderr.String(), "PRIVATE KEY") {
		t.Error("the service-account key is in the server log")
	}
}
