package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/certfile/certtest"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

// TestE2EBaresipTLS: baresip (a transport=tls account, the test CA in its
// sip_cafile) calls `parley serve` over SIP over TLS, twice: the first call
// is transcribed and the caller hangs up; in the second the assistant's
// maximum duration makes Parley hang up, its BYE going to baresip over TLS.
// tshark on lo sees TLS records on the TLS port and no SIP in clear text.
func TestE2EBaresipTLS(t *testing.T) {
	if inNetns(t) {
		return
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark is required inside the namespace")
	}
	dir := t.TempDir()
	ca := certtest.NewCA(t, "Parley e2e CA")
	certFile, keyFile := ca.WriteFiles(t, dir, "sip", "parley", "127.0.0.1")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	s := startE2EWith(t, openaifake.Config{Replies: []openaifake.Reply{{Text: "Sure, tomorrow morning it is."}}},
		"PARLEY_SIP_TLS_ADDR="+pickAddr, "PARLEY_SIP_TLS_CERT="+certFile, "PARLEY_SIP_TLS_KEY="+keyFile)
	tlsAddr := s.setting("PARLEY_SIP_TLS_ADDR")
	tlsPort := tlsAddr[strings.LastIndex(tlsAddr, ":")+1:]
	s.setupNumber(t, `,"max_duration_seconds":10`)

	pcap := filepath.Join(dir, "lo.pcap")
	// -P -l prints each packet as it is written: a probe connection that
	// shows up there proves the capture is running (before the calls) and
	// has everything sent before it (after them).
	capture := exec.Command("tshark", "-i", "lo", "-f", "tcp port "+tlsPort, "-w", pcap, "-P", "-l")
	var capLog, capOut lockedBuffer
	capture.Stderr, capture.Stdout = &capLog, &capOut
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	defer capture.Process.Kill()
	probe := func() {
		t.Helper()
		before := strings.Count(capOut.String(), "\n")
		deadline := time.Now().Add(45 * time.Second) // tshark starts slowly on a loaded machine
		for strings.Count(capOut.String(), "\n") == before {
			if time.Now().After(deadline) {
				t.Fatalf("tshark captures nothing: %s", capLog.String())
			}
			if conn, err := net.Dial("tcp", tlsAddr); err == nil {
				conn.Close()
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	probe()

	bc := baresipCall{target: "sip:+15550100@" + tlsAddr + ";transport=tls", accountParams: ";transport=tls", conf: "sip_cafile " + caFile}
	dialWith(t, callerWAV(t, t.TempDir(), []segment{{silence: 2 * time.Second}, {say: "book an appointment for tomorrow morning"}, {silence: 4 * time.Second}}), bc)
	time.Sleep(300 * time.Millisecond)
	first := s.onlyCall(t)
	if first.Status != "ended" || first.EndReason != "user_hangup" {
		t.Fatalf("first call: status %q, end_reason %q", first.Status, first.EndReason)
	}
	said := false
	for _, m := range first.Messages {
		said = said || (m.Role == "user" && strings.Contains(m.Content, "appointment"))
	}
	if !said {
		t.Errorf("the caller's words are not in the transcript: %+v", first.Messages)
	}

	start := time.Now()
	dialWith(t, callerWAV(t, t.TempDir(), []segment{{silence: 20 * time.Second}}), bc)
	if took := time.Since(start); took > 16*time.Second {
		t.Errorf("second call lasted %v: Parley's BYE did not reach baresip at 10 s", took.Round(time.Second))
	}
	time.Sleep(300 * time.Millisecond)
	var list struct{ Calls []e2eCall }
	s.api(t, "GET", "/calls", "", &list)
	if len(list.Calls) != 2 {
		t.Fatalf("%d calls recorded", len(list.Calls))
	}
	reasons := list.Calls[0].EndReason + "," + list.Calls[1].EndReason
	if !strings.Contains(reasons, "max_duration") {
		t.Errorf("end reasons %s: want one max_duration (Parley hung up)", reasons)
	}

	probe()
	capture.Process.Signal(os.Interrupt)
	capture.Wait()
	raw, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"INVITE sip:", "SIP/2.0", "BYE sip:", "m=audio"} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Errorf("%q in clear text on the TLS port", clear)
		}
	}
	count := func(filter string) int {
		out, err := exec.Command("tshark", "-r", pcap, "-d", "tcp.port=="+tlsPort+",tls", "-Y", filter).Output()
		if err != nil {
			t.Fatalf("tshark -Y %s: %v", filter, err)
		}
		return strings.Count(string(out), "\n")
	}
	hellos, appData := count("tls.handshake.type == 1"), count("tls.app_data")
	t.Logf("capture on the TLS port: %d bytes, %d ClientHello, %d packets with application data", len(raw), hellos, appData)
	if hellos < 2 || appData < 10 {
		t.Errorf("want a TLS handshake per call and encrypted SIP: %d ClientHello, %d application data", hellos, appData)
	}
}
