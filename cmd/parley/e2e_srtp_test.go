package main

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/parley-voice/parley/internal/certfile/certtest"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

// capture runs tshark on loopback for Parley's RTP/RTCP ports until stop
// is called, then returns every captured UDP payload.
func capture(t *testing.T) (stop func() [][]byte) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark is required (apt-get install tshark)")
	}
	file := filepath.Join(t.TempDir(), "media.pcap")
	cmd := exec.Command("tshark", "-i", "lo", "-f", "udp portrange 40000-40999", "-w", file, "-q")
	var errOut lockedBuffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(45 * time.Second) // tshark starts slowly on a loaded machine
	for !strings.Contains(errOut.String(), "Capturing on") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("tshark did not start: %s", errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() [][]byte {
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "udp.payload").Output()
		if err != nil {
			t.Fatalf("read capture: %v", err)
		}
		var payloads [][]byte
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(l), ":", "")); err == nil && len(b) > 0 {
				payloads = append(payloads, b)
			}
		}
		return payloads
	}
}

// TestE2EBaresipSRTP: baresip with its srtp module (mediaenc=srtp-mand)
// calls a number whose trunk requires SRTP: over SIP over TLS (how SDES
// keys are meant to travel), and over UDP signalling with the development
// allowance. The conversation works both ways — the caller's speech is
// transcribed and answered, baresip hears the first message — and no
// packet on the wire is plain PCMU: every RTP packet carries an
// authentication tag and none of the caller's opening silence is readable.
func TestE2EBaresipSRTP(t *testing.T) {
	if inNetns(t) {
		return
	}
	for _, transport := range []string{"tls", "udp"} {
		t.Run(transport, func(t *testing.T) { testBaresipSRTP(t, transport) })
	}
}

func testBaresipSRTP(t *testing.T, transport string) {
	reply := "Sure, I can book tomorrow morning for you."
	env := []string{"PARLEY_SIP_SDES_WITHOUT_TLS=true"}
	var tlsAddr, caConf string
	if transport == "tls" {
		dir := t.TempDir()
		ca := certtest.NewCA(t, "Parley e2e CA")
		certFile, keyFile := ca.WriteFiles(t, dir, "sip", "parley", "127.0.0.1")
		caConf = "sip_cafile " + ca.WriteCA(t, dir, "ca.pem") + "\n"
		env = []string{"PARLEY_SIP_TLS_ADDR=" + pickAddr, "PARLEY_SIP_TLS_CERT=" + certFile, "PARLEY_SIP_TLS_KEY=" + keyFile}
	}
	s := startE2EWith(t, openaifake.Config{Replies: []openaifake.Reply{{Text: reply}}}, env...)
	tlsAddr = s.setting("PARLEY_SIP_TLS_ADDR")
	s.setupNumber(t, "")
	var tr struct{ Trunk struct{ ID string } }
	s.api(t, "POST", "/sip-trunks", `{"name":"Carrier","address":"127.0.0.1:5999","media_encryption":"srtp"}`, &tr)
	var nums struct{ Numbers []struct{ ID string } }
	s.api(t, "GET", "/numbers", "", &nums)
	if len(nums.Numbers) != 1 {
		t.Fatalf("numbers: %+v", nums)
	}
	s.api(t, "PATCH", "/numbers/"+nums.Numbers[0].ID, `{"transfer_trunk_id":"`+tr.Trunk.ID+`"}`, nil)

	wav := callerWAV(t, t.TempDir(), []segment{{silence: 4 * time.Second}, {say: "book an appointment for tomorrow morning"}, {silence: 7 * time.Second}})
	bc := baresipCall{target: "sip:+15550100@" + s.sip, account: ";mediaenc=srtp-mand", conf: caConf + "module srtp.so"}
	if transport == "tls" {
		bc.target, bc.accountParams = "sip:+15550100@"+tlsAddr+";transport=tls", ";transport=tls"
	}
	stop := capture(t)
	heard := dialWith(t, wav, bc)
	packets := stop()
	time.Sleep(300 * time.Millisecond)

	c := s.onlyCall(t)
	if c.Status != "ended" || c.EndReason != "user_hangup" {
		t.Fatalf("call status %q, end_reason %q", c.Status, c.EndReason)
	}
	wantConversation(t, c, reply)
	p := speechProfile(heard)
	t.Logf("heard (100 ms windows): %s", spans(p))
	// Latency is not the point here (the first synthesis is cold, the
	// machine shared): the first message (2.1 s) within the first 3.5 s,
	// the reply (2.5 s) after the caller's turn (4.0–6.3 s).
	if speechIn(p, 0.2, 3.5) < 0.3 || speechIn(p, 6.3, 13) < 0.15 {
		t.Errorf("baresip did not hear the first message and the reply through SRTP")
	}
	if !strings.Contains(s.stderr.String(), "srtp=true") {
		t.Error("the call's end log does not say srtp=true")
	}

	// On the wire: RTP headers in clear (RFC 3711), payloads not PCMU.
	var rtpPackets, plainSize, silent int
	for _, b := range packets {
		var h rtp.Header
		n, err := h.Unmarshal(b)
		if err != nil || h.Version != 2 || h.PayloadType != 0 {
			continue // RTCP, or telephone-events
		}
		rtpPackets++
		payload := b[n:]
		if len(payload) == 160 {
			plainSize++
		}
		if allSilent(payload[:min(len(payload), 160)]) {
			silent++
		}
	}
	t.Logf("captured %d UDP datagrams, %d PCMU-typed RTP packets: %d of plain PCMU size, %d readable as silence", len(packets), rtpPackets, plainSize, silent)
	if rtpPackets < 500 {
		t.Fatalf("only %d RTP packets captured for a ~13 s call both ways", rtpPackets)
	}
	if plainSize != 0 || silent != 0 {
		t.Fatalf("%d packets without an SRTP tag and %d readable PCMU silence on the wire", plainSize, silent)
	}
}

// allSilent reports whether a PCMU payload decodes to silence (0xFF/0x7F,
// or the ±1 codes near zero that a resampled silence produces).
func allSilent(p []byte) bool {
	for _, b := range p {
		if b&0x7F < 0x7D {
			return false
		}
	}
	return true
}
