package media

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

type digits struct {
	mu sync.Mutex
	b  strings.Builder
}

func (d *digits) DTMF(r rune) { d.mu.Lock(); d.b.WriteRune(r); d.mu.Unlock() }
func (d *digits) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.b.String()
}

// TestDTMFRoundTrip sends digits as RFC 4733 events from one session and
// reads them, once per key press, on another; audio keeps flowing around them.
func TestDTMFRoundTrip(t *testing.T) {
	cfg := Config{BindIP: netip.MustParseAddr("127.0.0.1"), Ports: PortRange{Min: 43000, Max: 43999}}
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
	got := &digits{}
	b.SetDTMFSink(got)
	sink := &collector{}
	b.SetSink(sink)
	a.SetSource(&counter{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.Run(ctx) }()
	go func() { defer wg.Done(); b.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	if _, err := a.SendDTMF("x"); err == nil {
		t.Fatal("a non-key was accepted")
	}
	done, err := a.SendDTMF("12#9")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("digits not sent within 3 s")
	}
	// 4 digits × (5 tone + 3 gap) slots + end packets ≈ 0.9 s of the stream.
	time.Sleep(100 * time.Millisecond)
	if s := got.String(); s != "12#9" {
		t.Fatalf("received %q, want 12#9", s)
	}
	if n := len(sink.values()); n < 10 {
		t.Fatalf("only %d audio frames around the digits", n)
	}
	b.InjectDTMF('5')
	if s := got.String(); s != "12#95" {
		t.Fatalf("after INFO digit: %q", s)
	}

	c, _ := Listen(cfg)
	defer c.Close()
	c.Negotiated(netip.AddrPortFrom(cfg.BindIP, 9), PCMA, 0)
	if _, err := c.SendDTMF("1"); !errors.Is(err, ErrNoTelephoneEvent) {
		t.Fatalf("without telephone-event: %v", err)
	}
}

func TestOfferSDPParses(t *testing.T) {
	o, err := ParseOffer(OfferSDP(netip.MustParseAddrPort("192.0.2.7:4444"), 7, nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.Codec != PCMU || o.EventPT != 101 || o.Addr != netip.MustParseAddrPort("192.0.2.7:4444") {
		t.Fatalf("offer = %+v", o)
	}
}

func TestPipe(t *testing.T) {
	p := NewPipe(3)
	f := make([]int16, FrameSamples)
	if p.ReadFrame(f) {
		t.Fatal("empty pipe gave a frame")
	}
	for i := 1; i <= 5; i++ {
		f[0] = int16(i)
		p.WriteFrame(f)
	}
	var got []int16
	for p.ReadFrame(f) {
		got = append(got, f[0])
	}
	if len(got) != 3 || got[0] != 3 || got[2] != 5 {
		t.Fatalf("pipe kept %v, want the newest three [3 4 5]", got)
	}
}
