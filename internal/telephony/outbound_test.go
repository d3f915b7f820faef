package telephony

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sipp starts SIPp with a scenario from testdata/sipp as a trunk on a free
// port and returns its address and a channel with its exit error. Its media
// ports are SIPp's own choice (ten tries from 6000 up): a single -mp port
// found free a moment before can be taken by the time SIPp binds it and the
// port above it.
func sipp(t *testing.T, scenario string, extra ...string) (string, <-chan error) {
	t.Helper()
	bin, err := osexec.LookPath("sipp")
	if err != nil {
		if os.Getenv("PARLEY_REQUIRE_E2E") != "" {
			t.Fatal("sipp is required (apt-get install sip-tester)")
		}
		t.Skip("sipp not installed")
	}
	port := freeUDPPort(t)
	dir := t.TempDir()
	sf, err := filepath.Abs(filepath.Join("testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-sf", sf, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-mi", "127.0.0.1", "-m", "1", "-timeout", "20s", "-nostdin", "-trace_err", "-error_file", filepath.Join(dir, "err.log")}, extra...)
	cmd := osexec.Command(bin, args...)
	cmd.Dir = dir
	out := &lockedLog{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		if err != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "err.log"))
			err = fmt.Errorf("sipp: %w\n%s", err, b)
		}
		done <- err
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	time.Sleep(300 * time.Millisecond) // let it bind
	return fmt.Sprintf("127.0.0.1:%d", port), done
}

type lockedLog struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

type digitSink struct{ ch chan rune }

func (d digitSink) DTMF(r rune) {
	select {
	case d.ch <- r:
	default:
	}
}

// TestDialTrunkDigest places a call through a SIPp trunk that demands
// digest authentication: the INVITE is retried with credentials, 180 is
// reported, the 200's SDP sets up media, the trunk's RFC 4733 DTMF reaches
// the handler, and Parley's BYE ends the call.
func TestDialTrunkDigest(t *testing.T) {
	addr, sippDone := sipp(t, "uas_digest.xml")
	srv := startServer(t, &fakeRouter{}, nil)
	digits := digitSink{make(chan rune, 4)}
	heard := make(chan struct{})
	h := &fakeHandler{served: make(chan struct{}), done: make(chan error, 1), serve: func(ctx context.Context, c *Call) {
		c.Media.SetDTMFSink(digits)
		select {
		case <-heard:
		case <-time.After(8 * time.Second):
		case <-ctx.Done():
		}
	}}
	var progress []int
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := srv.Dial(ctx, Outbound{
		Trunk: Trunk{Address: addr, Username: "parley", Password: "s3cret"},
		From:  "+31201234567", To: "+31612345678",
		Progress: func(code int) { mu.Lock(); progress = append(progress, code); mu.Unlock() },
	}, h)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if !c.Outbound || c.Media.Codec().Name != "PCMU" {
		t.Fatalf("call = %+v", c)
	}
	select {
	case d := <-digits.ch:
		if d != '1' {
			t.Fatalf("digit %q, want 1", d)
		}
		close(heard)
	case <-time.After(8 * time.Second):
		t.Fatal("no DTMF from the trunk")
	}
	select {
	case <-c.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("call did not end")
	}
	if err := <-sippDone; err != nil {
		t.Fatalf("trunk side failed: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) == 0 || progress[0] != 180 {
		t.Fatalf("progress = %v, want 180", progress)
	}
}

func TestDialTrunkWrongPassword(t *testing.T) {
	addr, _ := sipp(t, "uas_digest.xml")
	srv := startServer(t, &fakeRouter{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err := srv.Dial(ctx, Outbound{Trunk: Trunk{Address: addr, Username: "parley", Password: "wrong"}, From: "+31201234567", To: "+31612345678"}, &fakeHandler{})
	var de *DialError
	if !errors.As(err, &de) || de.Code != 403 {
		t.Fatalf("err = %v, want sip 403", err)
	}
	if n := srv.ActiveCalls(); n != 0 {
		t.Fatalf("%d active calls after a failed dial", n)
	}
}

// TestDialFailures covers answers a trunk gives without SIPp: busy, a ring
// timeout (CANCEL), and silence (unreachable).
func TestDialFailures(t *testing.T) {
	srv := startServer(t, &fakeRouter{}, nil)
	trunk, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer trunk.Close()
	p := &peer{t: t, conn: trunk, server: net.UDPAddrFromAddrPort(srv.UDPAddr())}
	addr := trunk.LocalAddr().String()
	inviteFrom := make(chan netip.AddrPort, 16)
	answer := func(code int, reason string) {
		go serveTrunk(trunk, func(msg string, from *net.UDPAddr) {
			if len(msg) > 6 && msg[:6] == "INVITE" {
				inviteFrom <- from.AddrPort()
				// Answer the source, not Via: a trunk behind NAT
				// handling, or one that applies rport.
				p.server = from
				p.send(reply(msg, code, reason))
			}
			if len(msg) > 6 && msg[:6] == "CANCEL" {
				p.server = from
				p.send(reply(msg, 200, "OK"))
			}
		})
	}
	t.Run("busy", func(t *testing.T) {
		answer(486, "Busy Here")
		_, err := srv.Dial(context.Background(), Outbound{Trunk: Trunk{Address: addr}, From: "+1", To: "+2"}, &fakeHandler{})
		var de *DialError
		if !errors.As(err, &de) || de.Code != 486 {
			t.Fatalf("err = %v, want 486", err)
		}
		// The INVITE left from the listening socket, where the trunk's
		// later requests (BYE) and NAT bindings point.
		if got := <-inviteFrom; got != srv.UDPAddr() {
			t.Fatalf("INVITE sent from %s, want the listening socket %s", got, srv.UDPAddr())
		}
	})
}

// serveTrunk hands each datagram the trunk socket receives to handle,
// until nothing arrives for 5 s or the socket closes.
func serveTrunk(trunk *net.UDPConn, handle func(msg string, from *net.UDPAddr)) {
	buf := make([]byte, 65535)
	for {
		trunk.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := trunk.ReadFromUDP(buf)
		if err != nil {
			return
		}
		handle(string(buf[:n]), from)
	}
}

// reply builds a response to a raw request, echoing its dialog headers.
func reply(req string, code int, reason string) string {
	out := fmt.Sprintf("SIP/2.0 %d %s\r\n", code, reason)
	for _, l := range splitLines(req)[1:] {
		if l == "" {
			break
		}
		for _, h := range []string{"Via:", "From:", "Call-ID:", "CSeq:"} {
			if len(l) >= len(h) && l[:len(h)] == h {
				out += l + "\r\n"
			}
		}
		if len(l) >= 3 && l[:3] == "To:" {
			out += l + ";tag=trunk1\r\n"
		}
	}
	return out + "Content-Length: 0\r\n\r\n"
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		line := s[:i]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		out = append(out, line)
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// TestDialAnswerMediaAddress: a trunk whose 200 OK points RTP at the cloud
// metadata address is confirmed and hung up at once (488), like an offer
// naming it would be; no RTP goes there.
func TestDialAnswerMediaAddress(t *testing.T) {
	srv := startServer(t, &fakeRouter{}, nil)
	trunk, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer trunk.Close()
	byes := make(chan struct{}, 1)
	go serveTrunk(trunk, func(msg string, from *net.UDPAddr) {
		switch {
		case strings.HasPrefix(msg, "INVITE"):
			body := "v=0\r\no=t 1 1 IN IP4 169.254.169.254\r\ns=-\r\nc=IN IP4 169.254.169.254\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
			res := strings.TrimSuffix(reply(msg, 200, "OK"), "Content-Length: 0\r\n\r\n")
			res += fmt.Sprintf("Contact: <sip:trunk@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", trunk.LocalAddr(), len(body), body)
			trunk.WriteToUDP([]byte(res), from)
		case strings.HasPrefix(msg, "BYE"):
			trunk.WriteToUDP([]byte(reply(msg, 200, "OK")), from)
			byes <- struct{}{}
		}
	})
	_, err = srv.Dial(context.Background(), Outbound{Trunk: Trunk{Address: trunk.LocalAddr().String()}, From: "+1", To: "+2"}, &fakeHandler{})
	var de *DialError
	if !errors.As(err, &de) || de.Code != 488 || !strings.Contains(de.Reason, "169.254.169.254") {
		t.Fatalf("err = %v, want a 488 DialError naming the address", err)
	}
	select {
	case <-byes:
	case <-time.After(3 * time.Second):
		t.Fatal("the answered call was not hung up")
	}
}
