package telephony

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzGuard feeds arbitrary datagrams to the SIP guard (Server.filter,
// checkRequest, declaredLength, answerUnparsed) the way sipgo's UDP read loop
// does, and checks that:
//   - the guard's recover never fires (a panic in it would be logged and the
//     datagram dropped, so it is caught through the log);
//   - what it passes on is the datagram unchanged, and only something the
//     SIP parser accepts;
//   - every stateless answer is one well-formed SIP 4xx/5xx response with the
//     headers an answer needs, no body, and no control character (a bare CR
//     or LF would smuggle in a header, a NUL cuts C strings); ACK is never
//     answered;
//   - TCP datagrams pass through untouched (the guard is for UDP only).
//
// Seeds are in testdata/fuzz/FuzzGuard (RFC 4475 torture messages and
// ordinary INVITE, REGISTER, OPTIONS, BYE, ACK and responses).
func FuzzGuard(f *testing.F) {
	for _, seed := range guardSeeds {
		f.Add([]byte(seed))
	}
	logs := &panicLog{}
	s, err := New(Config{ListenAddr: "127.0.0.1:0", UserAgent: "Parley-fuzz", Logger: slog.New(logs)}, nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		f.Fatal(err)
	}
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		peer.Close()
		s.ua.Close()
		s.udp.Close()
		s.tcp.Close()
	})
	raw, err := peer.SyscallConn()
	if err != nil {
		f.Fatal(err)
	}
	parser := sip.NewParser()
	buf := make([]byte, 1<<17)
	// answers drains what the guard sent to peer. The guard writes with a
	// plain sendto on loopback, so an answer is queued before filter returns
	// and a non-blocking read finds it.
	answers := func() [][]byte {
		var out [][]byte
		for {
			var n int
			var rerr error
			if err := raw.Read(func(fd uintptr) bool {
				n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
				return true
			}); err != nil {
				f.Fatal(err)
			}
			if rerr != nil {
				return out
			}
			out = append(out, bytes.Clone(buf[:n]))
		}
	}
	info := sip.TransportReadProps{Transport: "udp", RemoteAddr: peer.LocalAddr()}

	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		out, err := s.filter(info, data)
		if err != nil {
			t.Fatalf("filter returned an error (it would stop sipgo's read loop): %v", err)
		}
		if p := logs.take(); p != "" {
			t.Fatalf("the guard panicked: %s", p)
		}
		if !bytes.Equal(data, in) {
			t.Fatalf("filter modified its input")
		}
		sent := answers()
		if out != nil {
			if !bytes.Equal(out, in) {
				t.Fatalf("filter passed on something other than the datagram:\n%q", out)
			}
			if _, err := parser.ParseSIP(in); err != nil {
				t.Fatalf("filter passed on a datagram the parser refuses: %v", err)
			}
			if len(sent) > 0 {
				t.Fatalf("filter both answered and passed on the datagram: %q", sent[0])
			}
		}
		if len(sent) > 1 {
			t.Fatalf("filter sent %d answers to one datagram", len(sent))
		}
		if len(sent) == 1 {
			if isACK(in) {
				t.Fatalf("filter answered an ACK: %q", sent[0])
			}
			if err := checkAnswer(sent[0]); err != "" {
				t.Fatalf("malformed answer (%s):\n%q\nto:\n%q", err, sent[0], in)
			}
		}

		tcp, err := s.filter(sip.TransportReadProps{Transport: "tcp", RemoteAddr: peer.LocalAddr()}, data)
		if err != nil || !bytes.Equal(tcp, in) || len(answers()) != 0 {
			t.Fatalf("filter touched a TCP message (err %v)", err)
		}
	})
}

var (
	statusLine = regexp.MustCompile(`^SIP/2\.0 [45][0-9][0-9] [^\x00-\x1f\x7f]+$`)
	headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// checkAnswer returns what is wrong with a stateless answer, or "".
func checkAnswer(b []byte) string {
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		return "no empty line after the headers"
	}
	if len(body) != 0 {
		return "a body"
	}
	lines := strings.Split(string(head), "\r\n")
	if !statusLine.MatchString(lines[0]) {
		return "status line " + strconv.Quote(lines[0])
	}
	seen := map[string]int{}
	for _, l := range lines[1:] {
		if strings.ContainsFunc(l, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) {
			return "a control character in " + strconv.Quote(l)
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || !headerName.MatchString(name) {
			return "header line " + strconv.Quote(l)
		}
		seen[strings.ToLower(name)]++
		if strings.EqualFold(name, "content-length") && strings.TrimSpace(value) != "0" {
			return "Content-Length " + strconv.Quote(value)
		}
	}
	// From, To and Call-ID are echoed when the request had them (RFC 4475
	// insuf is answered without); Via and CSeq route and match the answer.
	for _, h := range []string{"via", "cseq", "content-length"} {
		if seen[h] == 0 {
			return "no " + h
		}
	}
	for _, h := range []string{"from", "to", "call-id", "cseq", "content-length"} {
		if seen[h] > 1 {
			return "more than one " + h
		}
	}
	return ""
}

// isACK reports whether the request line's method is ACK, as answerUnparsed
// reads it (case-insensitively, after leading white space).
func isACK(b []byte) bool {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	f := strings.Fields(string(line))
	return len(f) > 0 && strings.EqualFold(f[0], "ACK")
}

// panicLog is a slog.Handler that keeps the guard's "panicked" records.
type panicLog struct {
	mu  sync.Mutex
	msg string
}

func (h *panicLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *panicLog) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *panicLog) WithGroup(string) slog.Handler                { return h }

func (h *panicLog) Handle(_ context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, "panicked") {
		return nil
	}
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString("\n" + a.Key + ": " + a.Value.String())
		return true
	})
	h.mu.Lock()
	h.msg += b.String()
	h.mu.Unlock()
	return nil
}

func (h *panicLog) take() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.msg
	h.msg = ""
	return m
}

// guardSeeds are ordinary messages; the RFC 4475 torture messages are in
// testdata/fuzz/FuzzGuard.
var guardSeeds = []string{
	"INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@127.0.0.1>;tag=a\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: c1@test\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\nContent-Length: 129\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
	"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2\r\nMax-Forwards: 70\r\nFrom: <sip:trunk@127.0.0.1>;tag=b\r\nTo: <sip:trunk@127.0.0.1>\r\nCall-ID: r1@test\r\nCSeq: 1 REGISTER\r\nContact: <sip:trunk@127.0.0.1:5070>\r\nExpires: 3600\r\nAuthorization: Digest username=\"parley\", realm=\"trunk.test\", nonce=\"n1\", uri=\"sip:127.0.0.1\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5\r\nContent-Length: 0\r\n\r\n",
	"OPTIONS sip:parley@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK3\r\nf: <sip:probe@127.0.0.1>;tag=c\r\nt: <sip:parley@127.0.0.1>\r\ni: o1@test\r\nCSeq: 7 OPTIONS\r\nAccept: application/sdp\r\nl: 0\r\n\r\n",
	"BYE sip:parley@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK4\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@127.0.0.1>;tag=a\r\nTo: <sip:100@127.0.0.1>;tag=p\r\nCall-ID: c1@test\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
	"ACK sip:parley@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK5\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@127.0.0.1>;tag=a\r\nTo: <sip:100@127.0.0.1>;tag=p\r\nCall-ID: c1@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
	"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK6\r\nFrom: <sip:parley@127.0.0.1>;tag=d\r\nTo: <sip:+15550002222@127.0.0.1>;tag=e\r\nCall-ID: out1@test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
	"INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK7\r\nFrom: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: c2@test\r\nCSeq: 1 INVITE\r\nContent-Length: -5\r\n\r\n",
	"\r\n\r\n",
}
