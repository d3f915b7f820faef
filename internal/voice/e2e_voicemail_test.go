package voice

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/call"
)

// TestE2EOutboundVoicemail dials an answering machine: a SIPp far end that
// answers and plays a synthetic greeting (espeak-ng, "…please leave a
// message after the beep", from internal/voicemail/testdata) followed by a
// 1 kHz beep. Parley holds its first message, detects the machine, speaks
// voicemail_message once the beep has ended and hangs up with end_reason
// voicemail; the first message is never said.
func TestE2EOutboundVoicemail(t *testing.T) {
	requireSIPp(t)
	const greetingFile = "machine_01_en.wav"
	const greetingText = "Hi, you've reached John Smith. I can't take your call right now. Please leave a message after the beep."
	f, err := os.Open(filepath.Join("..", "voicemail", "testdata", greetingFile))
	if err != nil {
		t.Fatal(err)
	}
	pcm, _, err := audio.ReadWAV(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The file ends with the beep and 1.5 s of quiet.
	beepEnd := time.Duration(len(pcm)-12000) * time.Second / 8000
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "greeting.ulaw"), audio.EncodeUlaw(nil, pcm), 0o644); err != nil {
		t.Fatal(err)
	}
	dest := startSIPpIn(t, dir, "127.0.0.1", "uas_voicemail.xml")

	e := newE2E(t, e2eOptions{transcripts: []string{greetingText}})
	ctx := context.Background()
	trunk := e.trunk(t, "Open trunk", dest.addr, "", "")
	num := e.number(t, "+31201230031", nil, &trunk)
	const first, message = "Hello, this is the clinic calling.", "Hi, this is the clinic. Please call us back about your appointment."
	aid, doc := e.assistant(t, map[string]any{
		"name": "Reminder", "first_message": first,
		"voicemail_detection": true, "voicemail_message": message,
	})
	id, err := e.engine.Dial(ctx, call.Dial{OrgID: e.org.ID, Destination: "+31201234568", NumberID: num.ID, AssistantID: aid, Assistant: doc})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	e.waitLive(t, 10*time.Second)
	live := time.Now() // the far end starts its greeting on our ACK, about now
	var spoken time.Duration
	waitFor(t, 20*time.Second, "the voicemail message sent to TTS", func() bool {
		if e.ttsSaid(message) {
			spoken = time.Since(live)
			return true
		}
		return false
	})
	row := e.waitFinal(t, id, 20*time.Second)
	ended := time.Since(live)
	if err := dest.wait(10 * time.Second); err != nil {
		t.Fatalf("answering machine side: %v", err)
	}
	t.Logf("beep ends %.2fs into the greeting; message sent to TTS after %.2fs; call ended after %.2fs",
		beepEnd.Seconds(), spoken.Seconds(), ended.Seconds())
	if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndVoicemail) {
		t.Fatalf("call ended as %s / %s (error %q), want ended / voicemail", row.Status, deref(row.EndReason), deref(row.Error))
	}
	// Generous bounds: not before the beep has ended (less the time from
	// ACK to our "live" reading), and not long after.
	if spoken < beepEnd-500*time.Millisecond || spoken > beepEnd+3*time.Second {
		t.Errorf("message spoken %.2fs after answer, want just after the beep (%.2fs)", spoken.Seconds(), beepEnd.Seconds())
	}
	msgs := transcript(t, row)
	if !hasEntry(msgs, "assistant", message) {
		t.Errorf("transcript %+v lacks the voicemail message", msgs)
	}
	if hasEntry(msgs, "assistant", first) || e.ttsSaid(first) {
		t.Errorf("the first message was spoken to the machine: %+v", msgs)
	}
}
