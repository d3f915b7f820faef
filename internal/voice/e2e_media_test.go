package voice

import (
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/store"
)

// inject sends to the call's media port from its own socket on ip what an
// attacker who guessed the port would: a loud 1 kHz tone under the
// caller's SSRC and sequence numbers, then RFC 4733 presses of 5. It
// returns how many RTP packets it sent.
func inject(t *testing.T, ip string, to *net.UDPAddr, d time.Duration) int {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tone := audio.Tone(1000, 8000, int(d.Seconds()*8000), 16000)
	hdr := rtp.Header{Version: 2, SSRC: 0x5eed1234, SequenceNumber: 1000, Timestamp: 160000}
	sent := 0
	write := func(h rtp.Header, payload []byte) {
		b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteToUDP(b, to); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	for i := 0; i+160 <= len(tone); i += 160 {
		hdr.PayloadType = 0
		write(hdr, audio.EncodeUlaw(nil, tone[i:i+160]))
		hdr.SequenceNumber++
		hdr.Timestamp += 160
		time.Sleep(20 * time.Millisecond)
	}
	for n := range 8 {
		h := hdr
		h.PayloadType, h.Marker = 101, n == 0
		write(h, []byte{5, 0x8a, 0, 160})
		hdr.SequenceNumber++
	}
	return sent
}

// TestE2ERTPInjection: while a call is live, two third parties send RTP
// to the call's media port: one from the caller's own IP (the address
// signalling allows), one from another. Neither reaches speech-to-text, the
// model, the transcript or the recording; the caller's own turn does; the
// call's end log counts every dropped packet.
func TestE2ERTPInjection(t *testing.T) {
	e := newE2E(t, e2eOptions{transcripts: []string{"I need an appointment"},
		chat: openaifake.Config{Replies: []openaifake.Reply{{Text: "Tuesday at nine works."}}}})
	aid, _ := e.assistant(t, map[string]any{"name": "Guarded line", "recording_enabled": true})
	num := e.number(t, "+31201230070", &aid, nil)
	c := dialRaw(t, e.srv, num.PhoneNumber)
	id := e.waitLive(t, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // the caller's silence has latched the stream

	var wg sync.WaitGroup
	sent := make([]int, 2)
	for i, ip := range []string{"127.0.0.1", "127.0.0.9"} {
		wg.Add(1)
		go func() { defer wg.Done(); sent[i] = inject(t, ip, c.media, 1500*time.Millisecond) }()
	}
	wg.Wait()
	time.Sleep(time.Second)
	if n := len(e.oa.Requests()); n != 0 {
		t.Fatalf("%d model requests while only the injectors spoke", n)
	}

	c.speak(time.Second)
	e.waitSaid(t, id, "Tuesday at nine works.", 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	c.hangup(t)
	row := e.waitFinal(t, id, 10*time.Second)
	if row.Status != call.StatusEnded {
		t.Fatalf("call %s/%s", row.Status, deref(row.EndReason))
	}
	msgs := transcript(t, row)
	if countEntries(msgs, "user") != 1 || !hasEntry(msgs, "user", "I need an appointment") || hasEntryContaining(msgs, "user", "[keypad]") {
		t.Fatalf("transcript %+v: want the caller's one turn and nothing injected", msgs)
	}

	left, _ := e.recordingOf(t, id)
	secs := float64(len(left)) / 8000
	var injected, spoken float64
	for s := 0.0; s+0.2 < secs; s += 0.1 {
		injected = max(injected, toneIn(left, 1000, s, s+0.2))
		spoken = max(spoken, toneIn(left, 300, s, s+0.2))
	}
	if injected > 1e4 || spoken < 1e6 {
		t.Fatalf("caller channel: 1 kHz (injected) power %.0f, want ~0; 300 Hz (caller) power %.0f, want > 1e6", injected, spoken)
	}

	dropped := droppedForeign(t, e)
	logs := e.logs.String()
	t.Logf("injected %d+%d RTP packets; rtp_dropped_foreign=%d", sent[0], sent[1], dropped)
	if dropped != sent[0]+sent[1] {
		t.Fatalf("rtp_dropped_foreign=%d, want the %d injected packets", dropped, sent[0]+sent[1])
	}
	if strings.Count(logs, "media from a foreign source dropped") != 1 {
		t.Fatal("the first foreign source is not logged exactly once")
	}
}

// droppedForeign waits for the call's end log line and returns its
// rtp_dropped_foreign (the end is logged just after the row is final).
func droppedForeign(t *testing.T, e *e2e) int {
	t.Helper()
	ended := regexp.MustCompile(`msg="call ended".*rtp_dropped_foreign=(\d+)`)
	deadline := time.Now().Add(5 * time.Second)
	m := ended.FindStringSubmatch(e.logs.String())
	for ; m == nil && time.Now().Before(deadline); m = ended.FindStringSubmatch(e.logs.String()) {
		time.Sleep(50 * time.Millisecond)
	}
	if m == nil {
		t.Fatalf("no rtp_dropped_foreign in the call's end log:\n%s", e.logs.String())
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestE2ETrunkMediaServers: the caller's RTP comes from 127.0.0.20 while
// its signalling and SDP say 127.0.0.1 (a carrier's media servers). The
// caller is heard when the number's trunk lists that network among its
// inbound_addresses, and not at all (every packet dropped and counted)
// when it lists only the signalling address.
func TestE2ETrunkMediaServers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		addresses []string
		heard     bool
	}{
		{"trunk lists the media network", []string{"127.0.0.1", "127.0.0.16/28"}, true},
		{"trunk lists signalling only", []string{"127.0.0.1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, e2eOptions{transcripts: []string{"I need an appointment"},
				chat: openaifake.Config{Replies: []openaifake.Reply{{Text: "Tuesday at nine works."}}}})
			aid, _ := e.assistant(t, map[string]any{"name": "Carrier line"})
			tr := e.trunk(t, "Carrier", "127.0.0.1:5999", "", "", map[string]any{"inbound_addresses": tc.addresses})
			num := e.number(t, "+31201230072", &aid, &tr)
			c := dialRaw(t, e.srv, num.PhoneNumber, rawOptions{rtpFrom: "127.0.0.20"})
			id := e.waitLive(t, 10*time.Second)
			time.Sleep(300 * time.Millisecond)
			c.speak(time.Second)
			if tc.heard {
				e.waitSaid(t, id, "Tuesday at nine works.", 10*time.Second)
			} else {
				time.Sleep(2 * time.Second)
			}
			c.hangup(t)
			row := e.waitFinal(t, id, 10*time.Second)
			msgs := transcriptOf(row) // none at all when the caller was never heard
			if got := hasEntry(msgs, "user", "I need an appointment"); got != tc.heard {
				t.Fatalf("caller heard = %v, want %v (transcript %+v)", got, tc.heard, msgs)
			}
			dropped := droppedForeign(t, e)
			t.Logf("rtp_dropped_foreign=%d", dropped)
			if (dropped == 0) != tc.heard {
				t.Fatalf("rtp_dropped_foreign=%d with the caller heard = %v", dropped, tc.heard)
			}
		})
	}
}

// TestE2EPlainCallToSRTPTrunk: a plain-RTP INVITE to a number whose trunk
// requires SRTP is refused with 488 before anything is recorded.
func TestE2EPlainCallToSRTPTrunk(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	aid, _ := e.assistant(t, map[string]any{"name": "Encrypted line"})
	tr := e.trunk(t, "Carrier", "127.0.0.1:5999", "", "", map[string]any{"media_encryption": "srtp"})
	num := e.number(t, "+31201230071", &aid, &tr)
	_, res := inviteRaw(t, e.srv, num.PhoneNumber)
	if res.StatusCode != 488 || !strings.Contains(res.Reason, "SRTP") {
		t.Fatalf("INVITE answered %d %s, want 488 naming SRTP", res.StatusCode, res.Reason)
	}
	rows, _, err := e.db.ListCalls(context.Background(), e.org.ID, store.CallFilter{Page: store.Page{Limit: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 0 {
		t.Fatalf("%d call rows for a refused call", len(rows))
	}
	if st := e.dg.Stats(); st.Connections != 0 {
		t.Fatal("speech-to-text was used")
	}
}
