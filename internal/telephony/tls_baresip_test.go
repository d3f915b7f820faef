package telephony

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/certfile/certtest"
)

// baresipTrunk runs baresip as a TLS trunk that answers every call, with a
// certificate for localhost issued by issuer. It returns the TLS port and
// baresip's output.
func baresipTrunk(t *testing.T, issuer *certtest.CA) (int, *lockedLog) {
	t.Helper()
	if _, err := osexec.LookPath("baresip"); err != nil {
		if os.Getenv("PARLEY_REQUIRE_E2E") != "" {
			t.Fatal("baresip is required (apt-get install baresip-core)")
		}
		t.Skip("baresip not installed")
	}
	dir := t.TempDir()
	c, k := issuer.Issue(t, "trunk", "localhost")
	pem := filepath.Join(dir, "cert.pem") // baresip wants the certificate and key in one file
	if err := os.WriteFile(pem, append(c, k...), 0o600); err != nil {
		t.Fatal(err)
	}
	wav := filepath.Join(dir, "silence.wav")
	f, err := os.Create(wav)
	if err != nil {
		t.Fatal(err)
	}
	if err := audio.WriteWAV(f, make([]int16, 8000*30), 8000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	port := freeTCPPair(t) // baresip listens for TLS one port above sip_listen
	conf := fmt.Sprintf("poll_method epoll\nnet_interface 127.0.0.1\nsip_listen 127.0.0.1:%d\nsip_certificate %s\naudio_player alsa,null\naudio_source aufile,%s\naudio_alert alsa,null\n"+
		"ausrc_srate 8000\nauplay_srate 8000\nausrc_channels 1\nauplay_channels 1\n"+
		"module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule alsa.so\nmodule aufile.so\nmodule_tmp account.so\nmodule_app menu.so\n", port, pem, wav)
	os.WriteFile(filepath.Join(dir, "config"), []byte(conf), 0o644)
	os.WriteFile(filepath.Join(dir, "accounts"), []byte(fmt.Sprintf("<sip:trunk@127.0.0.1:%d;transport=tls>;regint=0;answermode=auto;audio_codecs=pcmu\n", port)), 0o644)
	cmd := osexec.Command("baresip", "-f", dir, "-t", "60")
	out := &lockedLog{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "baresip is ready"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("baresip did not start:\n%s", out.String())
		}
	}
	return port + 1, out
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// freeTCPPair finds a port p with p and p+1 free on 127.0.0.1.
func freeTCPPair(t *testing.T) int {
	t.Helper()
	for range 50 {
		a, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.Addr().(*net.TCPAddr).Port
		b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		a.Close()
		if err == nil {
			b.Close()
			return p
		}
	}
	t.Fatal("no two adjacent free ports")
	return 0
}

// TestDialTLSToBaresip places calls over TLS to baresip, a real SIP stack
// from Debian: with its certificate issued by the CA we trust, it answers
// and our BYE ends its call over the same TLS connection; with a
// certificate from another CA the handshake is refused and baresip never
// sees an INVITE.
func TestDialTLSToBaresip(t *testing.T) {
	ca := certtest.NewCA(t, "trunk CA")
	other := certtest.NewCA(t, "someone else")
	for _, tc := range []struct {
		name   string
		issuer *certtest.CA
	}{{"trusted", ca}, {"untrusted", other}} {
		t.Run(tc.name, func(t *testing.T) {
			port, out := baresipTrunk(t, tc.issuer)
			s, _, _ := tlsServer(t, &fakeRouter{}, ca, func(c *Config) { c.TLSClient = &tls.Config{RootCAs: ca.Pool()} }, "127.0.0.1")
			h := &fakeHandler{served: make(chan struct{}), done: make(chan error, 1), serve: func(ctx context.Context, c *Call) {
				time.Sleep(time.Second)
			}}
			ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
			defer stop()
			c, err := s.Dial(ctx, Outbound{Trunk: Trunk{Address: fmt.Sprintf("localhost:%d", port), Transport: "tls"}, From: "+15550001111", To: "trunk"}, h)
			if tc.issuer == other {
				var te *TLSError
				if !errors.As(err, &te) || !strings.Contains(err.Error(), "unknown authority") {
					t.Fatalf("dial: %v, want a TLSError for an unknown authority", err)
				}
				time.Sleep(300 * time.Millisecond)
				if strings.Contains(out.String(), "Incoming call") || strings.Contains(out.String(), "incoming call") {
					t.Errorf("baresip saw a call:\n%s", out.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v\nbaresip:\n%s", err, out.String())
			}
			if c.In.Transport != "tls" {
				t.Errorf("transport %q", c.In.Transport)
			}
			<-c.Ended()
			deadline := time.Now().Add(5 * time.Second)
			// baresip reports a BYE it received as "session closed: Connection reset by peer".
			for !strings.Contains(out.String(), "session closed") {
				if time.Now().After(deadline) {
					t.Fatalf("baresip's call did not end on our BYE:\n%s", out.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if !strings.Contains(out.String(), "established") {
				t.Errorf("baresip never established the call:\n%s", out.String())
			}
			t.Logf("baresip:\n%s", out.String())
		})
	}
}
