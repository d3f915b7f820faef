package voice

// End-to-end tests of recording consent (spec §12.8) on a real SIP call: the
// raw Go caller dials Parley, hears the consent message (the fake ElevenLabs
// voice, a 440 Hz tone), and presses 1, 2 or nothing. Before the caller
// agrees nothing reaches speech-to-text, the model or the recording.

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/store"
)

const consentMessage = "This call is recorded. Press 1 to agree, 2 to decline."

// consentCall sets up a number whose assistant asks for consent and dials it.
func consentCall(t *testing.T, e *e2e, phone string, over map[string]any) (*rawCaller, string) {
	t.Helper()
	doc := map[string]any{"name": "Consent desk", "first_message": "Hello, how can I help?",
		"recording_consent": map[string]any{"enabled": true, "message": consentMessage}}
	for k, v := range over {
		doc[k] = v
	}
	aid, _ := e.assistant(t, doc)
	e.number(t, phone, &aid, nil)
	c := dialRaw(t, e.srv, phone)
	return c, e.onlyCall(t)
}

// waitAudio waits for the caller to hear audio start (a silence→audio
// transition) and returns when.
func waitAudio(t *testing.T, c *rawCaller, timeout time.Duration) time.Time {
	t.Helper()
	select {
	case at := <-c.audioOn:
		return at
	case <-time.After(timeout):
		t.Fatal("the caller heard nothing")
	}
	return time.Time{}
}

// ttsTexts is every text the fake voice was given, in order.
func (e *e2e) ttsTexts() []string {
	var out []string
	for _, texts := range e.el.Texts() {
		out = append(out, texts...)
	}
	return out
}

// recordingOf reads the finished recording the call left in the spool.
func (e *e2e) recordingOf(t *testing.T, id string) (left, right []int16) {
	t.Helper()
	b, err := os.ReadFile(doneFile(e.spool, id))
	if err != nil {
		t.Fatalf("recording of %s: %v", id, err)
	}
	r := bytes.NewReader(b)
	hdr, err := audio.ReadWAVHeader(r)
	if err != nil || hdr.Channels != 2 || hdr.Rate != 8000 || hdr.BitsPerSample != 16 {
		t.Fatalf("recording header %+v, %v", hdr, err)
	}
	data, _ := io.ReadAll(r)
	for i := 0; i+3 < len(data); i += 4 {
		left = append(left, int16(binary.LittleEndian.Uint16(data[i:])))
		right = append(right, int16(binary.LittleEndian.Uint16(data[i+2:])))
	}
	return left, right
}

// toneIn is the Goertzel power of freq in pcm[from:to] seconds.
func toneIn(pcm []int16, freq, from, to float64) float64 {
	a, b := int(from*8000), min(int(to*8000), len(pcm))
	if b <= a {
		return 0
	}
	return audio.Goertzel(pcm[a:b], 8000, freq)
}

// TestE2EConsentAgree: the caller hears the consent message and talks over
// it — that speech reaches neither speech-to-text nor the recording — then
// presses 1: the conversation starts with the first message, is recorded
// from that moment (caller left, assistant right), and the row says agreed.
func TestE2EConsentAgree(t *testing.T) {
	e := newE2E(t, e2eOptions{transcripts: []string{"I need an appointment"},
		chat: openaifake.Config{Replies: []openaifake.Reply{{Text: "Tuesday at nine works."}}}})
	c, id := consentCall(t, e, "+31201230090", nil)
	heardAt := waitAudio(t, c, 5*time.Second)
	c.speak(time.Second) // over the consent message
	time.Sleep(1500 * time.Millisecond)
	if st := e.dg.Stats(); st.Connections != 0 || st.AudioBytes != 0 {
		t.Fatalf("speech-to-text got %d connections and %d bytes before consent", st.Connections, st.AudioBytes)
	}
	if n := len(e.oa.Requests()); n != 0 {
		t.Fatalf("%d model requests before consent", n)
	}
	if texts := e.ttsTexts(); len(texts) != 1 || texts[0] != consentMessage {
		t.Fatalf("the voice said %q before consent, want only the consent message", texts)
	}
	pressed := time.Now()
	c.pressKeys("1")
	e.waitSaid(t, id, "Hello, how can I help?", 5*time.Second)
	t.Logf("1 pressed %v after the consent message began", pressed.Sub(heardAt).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	c.speak(time.Second)
	e.waitSaid(t, id, "Tuesday at nine works.", 8*time.Second)
	time.Sleep(300 * time.Millisecond)
	c.hangup(t)

	row := e.waitFinal(t, id, 5*time.Second)
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndUserHangup) || deref(row.Consent) != "agreed" {
		t.Fatalf("call %s/%s consent %q", row.Status, deref(row.EndReason), deref(row.Consent))
	}
	msgs := transcript(t, row)
	if len(msgs) == 0 || msgs[0].Content != "Hello, how can I help?" || hasEntry(msgs, "assistant", consentMessage) {
		t.Fatalf("transcript %+v: it starts with the first message; the consent prompt is not part of the conversation", msgs)
	}
	if st := e.dg.Stats(); st.Connections != 1 {
		t.Fatalf("speech-to-text connections %d, want 1 (after consent)", st.Connections)
	}

	// The recording starts at consent: the caller's talk over the consent
	// message is not in it; the first message opens the right channel and
	// the caller's second turn is on the left.
	left, right := e.recordingOf(t, id)
	secs := float64(len(left)) / 8000
	total := row.EndedAt.Sub(*row.StartedAt).Seconds()
	t.Logf("recording %.2f s of a %.2f s call (consent phase %.2f s)", secs, total, total-secs)
	if secs > total-1.5 || secs < total-6 {
		t.Fatalf("recording of %.2f s for a %.2f s call whose consent phase took more than 1.5 s", secs, total)
	}
	if p := toneIn(right, 440, 0, 1); p < 1e6 {
		t.Errorf("first message not at the start of the right channel (440 Hz power %.0f)", p)
	}
	if p := toneIn(left, 300, 0, 0.4); p > 1e4 {
		t.Errorf("caller audio at the start of the recording (300 Hz power %.0f): speech from before consent was recorded", p)
	}
	var callerTurn float64
	for s := 0.0; s+0.2 < secs; s += 0.1 {
		callerTurn = max(callerTurn, toneIn(left, 300, s, s+0.2))
	}
	if callerTurn < 1e6 {
		t.Errorf("the caller's turn after consent is not on the left channel (max 300 Hz power %.0f)", callerTurn)
	}
}

// TestE2EConsentDecline: 2 ends the call at once; nothing but the consent
// message was synthesised, no speech-to-text, no model, no recording.
func TestE2EConsentDecline(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	c, id := consentCall(t, e, "+31201230091", map[string]any{"recording_enabled": true})
	waitAudio(t, c, 5*time.Second)
	pressed := time.Now()
	c.pressKeys("2")
	select {
	case <-c.bye:
	case <-time.After(5 * time.Second):
		t.Fatal("Parley did not hang up after 2")
	}
	t.Logf("BYE %v after 2 was pressed", time.Since(pressed).Round(time.Millisecond))
	row := e.waitFinal(t, id, 5*time.Second)
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndConsentDeclined) || deref(row.Consent) != "declined" {
		t.Fatalf("call %s/%s consent %q", row.Status, deref(row.EndReason), deref(row.Consent))
	}
	if row.Messages != nil || row.RecordingState != store.RecordingNone {
		t.Fatalf("declined call has a transcript %s or recording %q", row.Messages, row.RecordingState)
	}
	if st := e.dg.Stats(); st.Connections != 0 {
		t.Fatalf("speech-to-text opened %d times for a declined call", st.Connections)
	}
	if n := len(e.oa.Requests()); n != 0 {
		t.Fatalf("%d model requests for a declined call", n)
	}
	if texts := e.ttsTexts(); strings.Join(texts, "|") != consentMessage {
		t.Fatalf("the voice said %q, want only the consent message", texts)
	}
	if _, err := os.Stat(doneFile(e.spool, id)); !os.IsNotExist(err) {
		t.Fatalf("a declined call left a recording (%v)", err)
	}
}

// TestE2EConsentNoAnswer: no key — the message is said again after the
// wait (same audio, one synthesis), then Parley hangs up.
func TestE2EConsentNoAnswer(t *testing.T) {
	e := newE2E(t, e2eOptions{consentWait: 800 * time.Millisecond})
	c, id := consentCall(t, e, "+31201230092", nil)
	first := waitAudio(t, c, 5*time.Second)
	var second time.Time
	select {
	case second = <-c.audioOn:
	case <-time.After(15 * time.Second):
		t.Fatal("the consent message was not said again")
	}
	select {
	case <-c.bye:
	case <-time.After(15 * time.Second):
		t.Fatal("Parley did not hang up after the second wait")
	}
	byeAt := time.Now()
	t.Logf("consent message heard at 0 and again at %v; BYE at %v", second.Sub(first).Round(time.Millisecond), byeAt.Sub(first).Round(time.Millisecond))
	// The message lasts about 60 ms per character in the fake voice.
	msgLen := time.Duration(len(consentMessage)) * 60 * time.Millisecond
	if gap := second.Sub(first); gap < msgLen+800*time.Millisecond-300*time.Millisecond {
		t.Fatalf("the message was repeated %v after it started; it lasts about %v and the wait is 800 ms", gap, msgLen)
	}
	select {
	case <-c.audioOn:
		t.Fatal("the message was said a third time")
	default:
	}
	row := e.waitFinal(t, id, 5*time.Second)
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndConsentTimeout) || deref(row.Consent) != "no_answer" {
		t.Fatalf("call %s/%s consent %q", row.Status, deref(row.EndReason), deref(row.Consent))
	}
	if sessions := len(e.el.Sessions()); sessions != 1 {
		t.Fatalf("%d TTS sessions; the repeat must replay the first synthesis", sessions)
	}
	if st := e.dg.Stats(); st.Connections != 0 || len(e.oa.Requests()) != 0 {
		t.Fatalf("speech-to-text %d connections, %d model requests without consent", st.Connections, len(e.oa.Requests()))
	}
}

// TestE2EGDPRModeNotRecorded: a GDPR-mode assistant is never recorded, even
// with recording_enabled, and its call's content gets an expiry: the
// organization's content retention (30 days when unset) after the end.
func TestE2EGDPRModeNotRecorded(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	aid, _ := e.assistant(t, map[string]any{"name": "Private desk", "first_message": "Hello.", "recording_enabled": true, "gdpr_mode": true})
	e.number(t, "+31201230093", &aid, nil)
	c := dialRaw(t, e.srv, "+31201230093")
	id := e.onlyCall(t)
	e.waitSaid(t, id, "Hello.", 5*time.Second)
	c.hangup(t)
	row := e.waitFinal(t, id, 5*time.Second)
	if row.RecordingState != store.RecordingNone {
		t.Fatalf("GDPR-mode call recording state %q", row.RecordingState)
	}
	if _, err := os.Stat(doneFile(e.spool, id)); !os.IsNotExist(err) {
		t.Fatalf("a GDPR-mode call left a recording (%v)", err)
	}
	if row.ContentExpiresAt == nil || row.ContentExpiresAt.Sub(*row.EndedAt) != 30*24*time.Hour {
		t.Fatalf("content expires at %v for a call that ended at %v; want 30 days later", row.ContentExpiresAt, row.EndedAt)
	}
	if strings.Contains(id, callerNumber) {
		t.Fatalf("GDPR-mode call id %q shows the caller's number", id)
	}
}
