package voice

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
)

// A caller whose audio never arrives (a softphone without a sound device,
// media lost to NAT) is told apart from a normal hang-up: SIPp calls
// without sending one RTP packet, and the call ends as no_audio_received
// with a warning naming the call, whether the caller hangs up (BYE) or the
// media timeout ends the call. Calls with audio keep ending as user_hangup
// (TestE2EToolCall, TestE2ESayLatency and the others).
func TestE2ENoAudioReceived(t *testing.T) {
	requireSIPp(t)
	for _, tc := range []struct {
		name, scenario string
		mediaTimeout   time.Duration
		endedBy        call.EndReason
	}{
		{"caller hangs up", "uac_call_bye.xml", 0, call.EndUserHangup},
		{"media timeout", "uac_wait_bye.xml", 1500 * time.Millisecond, call.EndMediaTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, e2eOptions{mediaTimeout: tc.mediaTimeout})
			aid, _ := e.assistant(t, map[string]any{"name": "Silent caller", "first_message": "Hello?"})
			num := e.number(t, "+31201230077", &aid, nil)
			caller := startSIPp(t, tc.scenario, "-s", num.PhoneNumber, e.srv.UDPAddr().String())
			id := e.onlyCall(t)
			e.sippOK(t, caller, "silent caller")
			row := e.waitFinal(t, id, 15*time.Second)
			if row.Status != call.StatusEnded || deref(row.EndReason) != string(call.EndNoAudio) {
				t.Fatalf("call ended as %s / %s, want ended / %s", row.Status, deref(row.EndReason), call.EndNoAudio)
			}
			var warn string
			waitFor(t, 5*time.Second, "the no-audio warning", func() bool {
				for _, l := range strings.Split(e.logs.String(), "\n") {
					if strings.Contains(l, "level=WARN") && strings.Contains(l, "no audio arrived from the caller") {
						warn = l
						return true
					}
				}
				return false
			})
			if !strings.Contains(warn, "call_id="+id) || !strings.Contains(warn, "ended_by="+string(tc.endedBy)) {
				t.Fatalf("warning without the call id or what ended the call: %s", warn)
			}
		})
	}
}
