package voice

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/provider/xai"
	"github.com/parley-voice/parley/internal/provider/xai/xaifake"
	"github.com/parley-voice/parley/internal/realtime"
	"github.com/parley-voice/parley/internal/realtime/realtimefake"
)

// realtimeAssistant is an xai_realtime assistant document.
func realtimeAssistant(first string) map[string]any {
	return map[string]any{
		"name":          "Grok",
		"first_message": first,
		"llm_config": map[string]any{"provider": "xai_realtime", "model": "grok-voice-think-fast-2.0", "voice": "eve",
			"messages":       []any{map[string]any{"role": "system", "content": "You are a realtime test assistant."}},
			"turn_detection": map[string]any{"threshold": 1.7, "silence_duration_ms": 400}},
		"stt_config": nil, "tts_config": nil, "speech_config": nil,
	}
}

// TestE2ERealtimeCall: a SIP call answered by a realtime assistant. The
// first message is said, the caller's turn is answered, the caller barges
// in on a long answer (playback stops, the item is truncated where it was
// cut), and the control API's say and end-call reach the model; the
// transcript, the turn metrics and the end reason are those of any call.
func TestE2ERealtimeCall(t *testing.T) {
	const long = "Our opening hours are from nine in the morning to five in the afternoon on weekdays, and from ten to two on Saturdays."
	p := &realtimefake.Provider{Silence: 300 * time.Millisecond, Script: realtimefake.Script{
		Transcripts: []string{"what are your opening hours", "thanks that is enough"},
		Replies:     map[string]string{"opening hours": long, "enough": "You are welcome."},
	}}
	e := newE2E(t, e2eOptions{realtime: p})
	ctx := context.Background()
	doc := realtimeAssistant("Hello from Grok.")
	doc["recording_enabled"] = true
	aid, _ := e.assistant(t, doc)
	num := e.number(t, "+31201239001", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	id := e.waitLive(t, 10*time.Second)

	// The first message, in the model's voice (1 s of the fake's tone).
	waitAudio(t, c, 5*time.Second)
	waitSilence(t, c, "the end of the first message")
	cfgs := p.Configs()
	if len(cfgs) != 1 {
		t.Fatalf("%d sessions opened, want 1", len(cfgs))
	}
	got := cfgs[0]
	if got.Model != "grok-voice-think-fast-2.0" || got.Voice != "eve" || got.APIKey != "xai-test-key" ||
		!strings.Contains(got.Instructions, "realtime test assistant") || got.Turn.Threshold != 1 || got.Turn.Silence != 400*time.Millisecond {
		t.Errorf("session config %+v: want the assistant's model, voice, prompt, the server's xAI key and the clamped turn detection", got)
	}

	// A turn: the caller asks, the long answer starts; the caller cuts in.
	c.drain()
	c.speak(700 * time.Millisecond)
	waitAudio(t, c, 5*time.Second)
	time.Sleep(time.Second)
	c.drain()
	cutAt := time.Now()
	c.speak(700 * time.Millisecond)
	waitSilence(t, c, "playback to stop on the barge-in")
	// The Ear needs its 60 ms onset, the audio a frame or two more.
	if d := time.Since(cutAt); d > 600*time.Millisecond {
		t.Errorf("playback stopped %v after the caller cut in", d)
	}
	truncated := ""
	waitFor(t, 5*time.Second, "the interrupted item to be truncated", func() bool {
		for _, r := range p.Requests() {
			if strings.HasPrefix(r, "truncate:") {
				truncated = r
				return true
			}
		}
		return false
	})
	ms, _ := strconv.Atoi(truncated[strings.LastIndex(truncated, ":")+1:])
	if ms < 700 || ms > 2500 {
		t.Errorf("%s: want the item cut at about the 1–1.5 s played", truncated)
	}
	waitAudio(t, c, 5*time.Second)
	waitSilence(t, c, "the end of that answer")

	// Control: say, then end-call with a goodbye.
	const said = "Your table is booked."
	time.Sleep(100 * time.Millisecond)
	c.drain()
	start := time.Now()
	if err := e.engine.Control(ctx, e.org.ID, id, call.Command{Type: call.CmdSay, Content: said}); err != nil {
		t.Fatalf("say: %v", err)
	}
	at := waitAudio(t, c, 5*time.Second)
	t.Logf("say → first audio at the caller: %v", at.Sub(start))
	waitSilence(t, c, "the end of the say")
	if err := e.engine.Control(ctx, e.org.ID, id, call.Command{Type: call.CmdEndCall, Message: "Goodbye."}); err != nil {
		t.Fatalf("end-call: %v", err)
	}
	row := e.waitFinal(t, id, 15*time.Second)
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndAPIRequest) {
		t.Fatalf("call ended as %s / %s, want ended / api_request", row.Status, deref(row.EndReason))
	}
	reqs := strings.Join(p.Requests(), "\n")
	for _, want := range []string{"respond:" + realtime.Verbatim("Hello from Grok."), "respond:" + realtime.Verbatim(said), "respond:" + realtime.Verbatim("Goodbye.")} {
		if !strings.Contains(reqs, want) {
			t.Errorf("the model was never asked %q; requests:\n%s", want, reqs)
		}
	}
	msgs := transcript(t, row)
	var roles []string
	for _, m := range msgs {
		roles = append(roles, m.Role)
	}
	wantRoles := "assistant user assistant user assistant assistant assistant"
	if strings.Join(roles, " ") != wantRoles {
		t.Fatalf("transcript roles %v, want %s: %+v", roles, wantRoles, msgs)
	}
	if msgs[0].Content != "Hello from Grok." || msgs[1].Content != "what are your opening hours" ||
		msgs[4].Content != "You are welcome." || msgs[5].Content != said || msgs[6].Content != "Goodbye." {
		t.Errorf("transcript %+v", msgs)
	}
	if cut := msgs[2].Content; cut == long || !strings.HasPrefix(long, cut) || cut == "" {
		t.Errorf("the interrupted answer is recorded as %q: want the part heard, a prefix of the answer", cut)
	}
	// The recording holds both sides, as on any call.
	waitFor(t, 5*time.Second, "the recording", func() bool {
		_, err := os.Stat(doneFile(e.spool, id))
		return err == nil
	})
	left, right := e.recordingOf(t, id)
	if loud(left) < time.Second || loud(right) < 2*time.Second {
		t.Errorf("recording: %v of sound on the left, %v on the right; want the caller's turns and the model's speech", loud(left), loud(right))
	}
}

// loud is how much of 8 kHz pcm is louder than -40 dBFS.
func loud(pcm []int16) time.Duration {
	n := 0
	for _, v := range pcm {
		if v > 300 || v < -300 {
			n++
		}
	}
	return time.Duration(n) * time.Second / 8000
}

// waitSilence waits for the caller's audio to stop.
func waitSilence(t *testing.T, c *rawCaller, what string) time.Time {
	t.Helper()
	select {
	case at := <-c.audioOff:
		return at
	case <-time.After(15 * time.Second):
		t.Fatalf("audio did not stop for %s within 15 s", what)
		return time.Time{}
	}
}

// xaiOverTheWire is the xAI realtime adapter talking to the protocol fake.
func xaiOverTheWire(t *testing.T, cfg openaifake.RealtimeConfig) (*openaifake.RealtimeServer, realtime.Provider) {
	t.Helper()
	fake := xaifake.NewRealtime(cfg)
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { fake.Close(); srv.Close() })
	return fake, xai.NewRealtime(xai.RealtimeConfig{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/realtime"})
}

// TestE2ERealtimeSayLatency measures, on one call answered by the xAI
// adapter over its protocol fake, the time from each say command to the
// first RTP packet of its audio at the caller's socket.
func TestE2ERealtimeSayLatency(t *testing.T) {
	_, p := xaiOverTheWire(t, openaifake.RealtimeConfig{})
	e := newE2E(t, e2eOptions{realtime: p})
	ctx := context.Background()
	aid, _ := e.assistant(t, realtimeAssistant(""))
	num := e.number(t, "+31201239002", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	id := e.waitLive(t, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	c.drain()
	const n = 20
	var lat []time.Duration
	for i := range n {
		start := time.Now()
		if err := e.engine.Control(ctx, e.org.ID, id, call.Command{Type: call.CmdSay, Content: fmt.Sprintf("Code %d.", i)}); err != nil {
			t.Fatalf("say %d: %v", i, err)
		}
		lat = append(lat, waitAudio(t, c, 3*time.Second).Sub(start))
		waitSilence(t, c, fmt.Sprintf("say %d to end", i))
		time.Sleep(40 * time.Millisecond)
		c.drain()
	}
	c.hangup(t)
	row := e.waitFinal(t, id, 10*time.Second)
	if got := countEntries(transcript(t, row), "assistant"); got != n {
		t.Fatalf("%d assistant entries in the transcript, want %d", got, n)
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	p50, p95 := percentile(sorted, 50), percentile(sorted, 95)
	t.Logf("realtime say→first audio p50=%v p95=%v n=%d", p50, p95, len(lat))
	if p95 > time.Second {
		t.Fatalf("say→first audio p95 %v is over a second: %v", p95, lat)
	}
}

// TestE2ERealtimeServiceDrops: the realtime service drops the connection
// in the middle of an answer. The caller hears the apology in the server's
// fallback voice, and the call ends with llm_error and the reason.
func TestE2ERealtimeServiceDrops(t *testing.T) {
	fake, p := xaiOverTheWire(t, openaifake.RealtimeConfig{Fault: openaifake.FaultDisconnect, FaultAfter: 1,
		Script: realtimefake.Script{Replies: map[string]string{"hello": "Let me tell you a long story about our opening hours."}}})
	e := newE2E(t, e2eOptions{realtime: p})
	aid, _ := e.assistant(t, realtimeAssistant("Hi."))
	num := e.number(t, "+31201239003", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	id := e.waitLive(t, 10*time.Second)
	waitAudio(t, c, 5*time.Second)
	waitSilence(t, c, "the greeting")
	c.speak(700 * time.Millisecond)
	row := e.waitFinal(t, id, 20*time.Second)
	if row.Status != call.StatusEndedWithError || deref(row.EndReason) != string(call.EndLLMError) {
		t.Fatalf("call ended as %s / %s, want ended-with-error / llm_error", row.Status, deref(row.EndReason))
	}
	if !e.ttsSaid(pipeline.DefaultApology) {
		t.Errorf("the apology was never spoken: %v", e.ttsTexts())
	}
	if len(fake.Sessions()) != 1 {
		t.Errorf("%d sessions, want 1", len(fake.Sessions()))
	}
	msgs := transcript(t, row)
	if last := msgs[len(msgs)-1]; last.Role != "assistant" || last.Content != pipeline.DefaultApology {
		t.Errorf("transcript ends %+v, want the apology", last)
	}
}
