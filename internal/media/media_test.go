package media

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/audio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP %s\r\n%s"

func TestParseOffer(t *testing.T) {
	tests := []struct {
		name, formats, attrs string
		codec                string
		pt, event            uint8
		hold                 bool
		err                  error
	}{
		{"pcmu first", "0 8 101", "a=rtpmap:101 telephone-event/8000\r\n", "PCMU", 0, 101, false, nil},
		{"peer prefers pcma", "8 0", "", "PCMA", 8, 0, false, nil},
		{"static types without rtpmap", "18 0", "", "PCMU", 0, 0, false, nil},
		{"dynamic mapping", "9 96 97", "a=rtpmap:96 PCMA/8000\r\na=rtpmap:97 telephone-event/8000\r\n", "PCMA", 96, 97, false, nil},
		{"on hold", "0", "a=sendonly\r\n", "PCMU", 0, 0, true, nil},
		{"no g711", "9 18", "", "", 0, 0, false, ErrNotAcceptable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(strings.Replace(offer, "%s", tc.formats, 1), "%s", tc.attrs, 1)
			o, err := ParseOffer([]byte(body))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Codec.Name != tc.codec || o.Codec.PayloadType != tc.pt || o.EventPT != tc.event || o.OnHold != tc.hold {
				t.Fatalf("offer = %+v", o)
			}
			if o.Addr != netip.MustParseAddrPort("192.0.2.1:4000") {
				t.Fatalf("addr = %v", o.Addr)
			}
		})
	}
	if _, err := ParseOffer([]byte("not sdp")); err == nil || errors.Is(err, ErrNotAcceptable) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestAnswerRoundTrips(t *testing.T) {
	a := Answer(netip.MustParseAddrPort("198.51.100.7:12000"), 42, PCMA, 101, nil)
	o, err := ParseOffer(a)
	if err != nil {
		t.Fatalf("our answer does not parse: %v\n%s", err, a)
	}
	if o.Codec.Name != "PCMA" || o.EventPT != 101 || o.Addr.Port() != 12000 || o.Addr.Addr().String() != "198.51.100.7" {
		t.Fatalf("answer read back as %+v", o)
	}
}

func TestReorder(t *testing.T) {
	payload := func(v byte) []byte { b := make([]byte, FrameSamples); b[0] = v; return b }
	tests := []struct {
		name     string
		seqs     []uint16
		want     []byte // first μ-law byte of each frame delivered; 0xFF = concealment
		lost     int
		late     int
		skipLast bool
	}{
		{"in order", []uint16{1, 2, 3}, []byte{1, 2, 3}, 0, 0, false},
		{"swapped", []uint16{1, 3, 2, 4}, []byte{1, 2, 3, 4}, 0, 0, false},
		{"duplicate", []uint16{1, 2, 2, 3}, []byte{1, 2, 3}, 0, 1, false},
		{"late after conceal", []uint16{1, 3, 4, 5, 2}, []byte{1, 0xFF, 3, 4, 5}, 1, 1, false},
		{"gap flushed by timeout", []uint16{1, 3}, []byte{1, 0xFF, 3}, 1, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []byte
			r := newReorder(3, PCMU, func(f []int16) {
				got = append(got, audio.EncodeUlaw(nil, f[:1])[0])
			})
			var res pushResult
			for _, s := range tc.seqs {
				// Payload bytes are μ-law codes; 0xFF decodes to 0 (silence).
				p := r.push(s, uint32(s)*FrameSamples, payload(byte(s)), time.Now())
				res.lost += p.lost
				res.late += p.late
			}
			if tc.skipLast {
				p := r.skipGap()
				res.lost += p.lost
			}
			want := make([]byte, len(tc.want))
			for i, v := range tc.want {
				if v == 0xFF {
					want[i] = 0xFF
				} else {
					want[i] = audio.EncodeUlaw(nil, audio.DecodeUlaw(nil, []byte{v}))[0]
				}
			}
			if string(got) != string(want) || res.lost != tc.lost || res.late != tc.late {
				t.Fatalf("frames %v lost %d late %d; want %v lost %d late %d", got, res.lost, res.late, want, tc.lost, tc.late)
			}
		})
	}
}

// TestSessionLoopback runs two sessions against each other: audio sent by
// one arrives in order at the other, paced at 20 ms, and a silent peer
// ends the session with ErrMediaTimeout.
func TestSessionLoopback(t *testing.T) {
	cfg := Config{BindIP: netip.MustParseAddr("127.0.0.1"), Ports: PortRange{Min: 42000, Max: 42999}, Timeout: 400 * time.Millisecond}
	a, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Negotiated(netip.AddrPortFrom(cfg.BindIP, uint16(b.LocalPort())), PCMU, 101)
	b.Negotiated(netip.AddrPortFrom(cfg.BindIP, uint16(a.LocalPort())), PCMU, 101)
	src := &counter{}
	sink := &collector{}
	a.SetSource(src)
	b.SetSink(sink)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); errA = a.Run(ctx) }()
	go func() { defer wg.Done(); errB = b.Run(ctx) }()
	time.Sleep(500 * time.Millisecond)
	cancel()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("run: %v, %v", errA, errB)
	}
	frames := sink.values()
	if len(frames) < 20 || len(frames) > 28 {
		t.Fatalf("%d frames in 500 ms", len(frames))
	}
	for i := 1; i < len(frames); i++ {
		if frames[i] != frames[i-1]+1 {
			t.Fatalf("frames out of order: %v", frames)
		}
	}

	// A peer that sends nothing: the media timeout fires.
	c, _ := Listen(cfg)
	sock, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer sock.Close()
	c.Negotiated(sock.LocalAddr().(*net.UDPAddr).AddrPort(), PCMU, 0)
	start := time.Now()
	if err := c.Run(context.Background()); !errors.Is(err, ErrMediaTimeout) {
		t.Fatalf("err = %v, want ErrMediaTimeout", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("timeout after %s", d)
	}
	// And it was sending all along, with RTP the peer can parse.
	buf := make([]byte, 1500)
	sock.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	n, _, err := sock.ReadFromUDP(buf)
	var p rtp.Packet
	if err != nil || p.Unmarshal(buf[:n]) != nil || p.PayloadType != 0 || len(p.Payload) != FrameSamples {
		t.Fatalf("no valid RTP from the session: %v", err)
	}
}

// counter is a Source whose frames carry their index in the first sample.
type counter struct{ n int16 }

func (c *counter) ReadFrame(f []int16) bool {
	c.n++
	for i := range f {
		f[i] = 0
	}
	f[0] = c.n * 64 // survives μ-law exactly enough to be told apart
	return true
}

type collector struct {
	mu sync.Mutex
	v  []int
}

func (c *collector) WriteFrame(f []int16) {
	c.mu.Lock()
	c.v = append(c.v, int(f[0]+32)/64)
	c.mu.Unlock()
}

func (c *collector) values() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.v...)
}
