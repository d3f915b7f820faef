package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/media"
	"github.com/parley-voice/parley/internal/telephony"
)

// callCommand is `parley call`: a minimal headless softphone for trying
// Parley on a machine without a sound card. It dials a number on a Parley
// server (or, with --listen, answers one incoming call, such as an outbound
// call Parley places through a trunk pointing here), plays a WAV file as
// its side of the call, records what it hears, hangs up once the file has
// played and --linger has passed (or when the other side hangs up), and
// prints the outcome. It is the server's own SIP stack (package telephony
// on sipgo) and RTP (package media) run as a client, so it speaks exactly
// what Parley speaks.
func callCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("parley call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: parley call [flags] NUMBER|sip:URI   dial a number on a Parley server\n"+
			"       parley call --listen IP:PORT [flags]  answer one incoming call\n\nFlags:\n")
		fs.PrintDefaults()
	}
	server := fs.String("server", "127.0.0.1:5060", "SIP address (IP:port, UDP) of the Parley server to dial")
	from := fs.String("from", "+15550123", "the caller's number (From)")
	listen := fs.String("listen", "", "answer one incoming call on this IP:port instead of dialling")
	bind := fs.String("bind", "127.0.0.1:0", "local SIP address when dialling (IP:port; port 0 picks one): an address the server can reach")
	play := fs.String("play", "", "WAV file to play as this side's audio (mono or stereo, any rate: converted to 8 kHz)")
	record := fs.String("record", "", "WAV file to write what this side hears (8 kHz mono)")
	linger := fs.Duration("linger", 5*time.Second, "hang up this long after the played file ends (without --play: after this long)")
	maxDur := fs.Duration("max-duration", 2*time.Minute, "hang up after this long in any case")
	wait := fs.Duration("wait", 2*time.Minute, "with --listen: give up when no call arrives within this long")
	ports := fs.String("rtp-ports", "31000-31999", "UDP ports for this side's RTP")
	verbose := fs.Bool("verbose", false, "log SIP and media details to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dial := fs.Arg(0)
	switch {
	case *listen == "" && (fs.NArg() != 1 || dial == ""):
		fs.Usage()
		return errors.New("call: give the number (or sip: URI) to dial, or --listen")
	case *listen != "" && fs.NArg() > 0:
		return fmt.Errorf("call: --listen answers a call; it dials nothing (got %q)", dial)
	}
	if _, err := netip.ParseAddrPort(*server); err != nil && *listen == "" {
		return fmt.Errorf("call: --server %q: want IP:port", *server)
	}
	rtp, err := media.ParsePortRange(*ports)
	if err != nil {
		return fmt.Errorf("call: --rtp-ports: %w", err)
	}
	var pcm []int16
	if *play != "" {
		if pcm, err = readPlayFile(*play); err != nil {
			return fmt.Errorf("call: --play: %w", err)
		}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	phone := &softphone{play: pcm, linger: *linger, maxDur: *maxDur, done: make(chan callOutcome, 1), played: make(chan struct{})}
	addr := *bind
	var router telephony.Router = refuseCalls{}
	// arrived is closed when the call is set up: at once when dialling,
	// at the first INVITE with --listen.
	arrived := make(chan struct{})
	if *listen != "" {
		addr, router = *listen, &answerOnce{phone: phone, arrived: arrived}
	}
	srv, err := telephony.New(telephony.Config{
		ListenAddr: addr, Media: media.Config{Ports: rtp}, UserAgent: "parley-call", Logger: log,
		// Loopback media is the point of a local softphone; the server's
		// guard against link-local, metadata and reserved addresses stays.
		LoopbackMedia: true,
	}, router)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return fmt.Errorf("call: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	// Stopping the SIP stack waits for the call's BYE to be sent.
	defer func() { stop(); <-served }()

	started := time.Now()
	var waiting <-chan time.Time
	if *listen == "" {
		fmt.Fprintf(stdout, "calling %s via %s\n", dial, *server)
		if _, err := srv.Dial(ctx, telephony.Outbound{Trunk: telephony.Trunk{Address: *server}, From: *from, To: dial, RingTimeout: 30 * time.Second}, phone); err != nil {
			fmt.Fprintf(stdout, "not answered: %v\n", err)
			return fmt.Errorf("call: %s not answered: %w", dial, err)
		}
		close(arrived)
	} else {
		fmt.Fprintf(stdout, "waiting for one call on sip:%s (UDP and TCP)\n", srv.UDPAddr())
		waiting = time.After(*wait)
	}
	out, err := awaitOutcome(ctx, phone, arrived, waiting, stop)
	if err != nil {
		return fmt.Errorf("call: %w", err)
	}
	if out.err != nil {
		fmt.Fprintf(stdout, "not answered: %v\n", out.err)
		return fmt.Errorf("call: %w", out.err)
	}
	if *listen == "" {
		out.setup = out.answeredAt.Sub(started)
	}
	out.print(stdout, *play)
	if *record != "" {
		if err := writeRecording(*record, phone.heard()); err != nil {
			return fmt.Errorf("call: --record: %w", err)
		}
		fmt.Fprintf(stdout, "recorded what was heard to %s\n", *record)
	}
	return nil
}

// awaitOutcome waits for the call's outcome. Before a call has arrived,
// waiting (nil: no limit) or ctx ending gives up; once one is up, ctx
// ending (Ctrl-C) hangs it up through stopSIP and its outcome follows.
func awaitOutcome(ctx context.Context, phone *softphone, arrived <-chan struct{}, waiting <-chan time.Time, stopSIP func()) (callOutcome, error) {
	up := false
	for {
		select {
		case out := <-phone.done:
			return out, nil
		case <-arrived:
			up, arrived, waiting = true, nil, nil
		case <-waiting:
			return callOutcome{}, errors.New("no call arrived in time (--wait)")
		case <-ctx.Done():
			if !up {
				return callOutcome{}, ctx.Err()
			}
			stopSIP()
			return <-phone.done, nil
		}
	}
}

// readPlayFile reads a WAV file as 8 kHz mono PCM, the rate of a call.
func readPlayFile(path string) ([]int16, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pcm, rate, err := audio.ReadWAV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if rate != media.SampleRate {
		if pcm, err = audio.Resample(pcm, rate, media.SampleRate); err != nil {
			return nil, fmt.Errorf("%s: convert %d Hz to %d Hz: %w", path, rate, media.SampleRate, err)
		}
	}
	return pcm, nil
}

func writeRecording(path string, pcm []int16) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := audio.WriteWAV(f, pcm, media.SampleRate); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// softphone is the one call's handler: it plays the file (media.Source),
// keeps what it hears (media.Sink) and decides when to hang up.
type softphone struct {
	play   []int16
	linger time.Duration
	maxDur time.Duration
	done   chan callOutcome

	// pos is read and advanced only on the media sender's goroutine;
	// played is closed there when the file has been sent.
	pos        int
	played     chan struct{}
	playedOnce sync.Once

	mu  sync.Mutex
	buf []int16
}

// callOutcome is what happened on the call.
type callOutcome struct {
	err        error // not answered
	peer       string
	codec      string
	answeredAt time.Time
	setup      time.Duration // INVITE → answer, when dialling
	duration   time.Duration
	ended      string
	heard      time.Duration
	sound      time.Duration // of heard, the 20 ms frames above silence
	rtpIn      uint64
	rtpOut     uint64
}

func (p *softphone) ReadFrame(frame []int16) bool {
	if p.pos >= len(p.play) {
		p.playedOnce.Do(func() { close(p.played) })
		return false
	}
	n := copy(frame, p.play[p.pos:])
	clear(frame[n:])
	p.pos += len(frame)
	return true
}

func (p *softphone) WriteFrame(frame []int16) {
	p.mu.Lock()
	p.buf = append(p.buf, frame...)
	p.mu.Unlock()
}

func (p *softphone) heard() []int16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf
}

func (p *softphone) ServeCall(ctx context.Context, c *telephony.Call) {
	out := callOutcome{peer: c.In.Source, codec: c.Media.Codec().Name, answeredAt: c.AnsweredAt}
	c.Media.SetSink(p)
	c.Media.SetSource(p)
	limit := time.NewTimer(p.maxDur)
	defer limit.Stop()
	var lingering <-chan time.Time
	played := p.played
	for out.ended == "" {
		select {
		case <-played:
			played, lingering = nil, time.After(p.linger)
		case <-lingering:
			out.ended = "this side hung up (BYE) after the file and the linger time"
		case <-limit.C:
			out.ended = "this side hung up (BYE) at --max-duration"
		case <-ctx.Done():
			switch cause := context.Cause(ctx); {
			case errors.Is(cause, telephony.ErrRemoteHangup):
				out.ended = "the other side hung up (BYE)"
			case errors.Is(cause, media.ErrMediaTimeout):
				out.ended = "no audio from the other side (media timeout)"
			case errors.Is(cause, telephony.ErrShutdown):
				out.ended = "this side hung up (BYE): interrupted"
			default:
				out.ended = "ended: " + cause.Error()
			}
		}
	}
	c.Media.SetSource(nil)
	c.Media.SetSink(nil)
	out.duration = time.Since(c.AnsweredAt)
	heard := p.heard()
	out.heard = time.Duration(len(heard)) * time.Second / media.SampleRate
	for i := 0; i+media.FrameSamples <= len(heard); i += media.FrameSamples {
		if audio.RMS(heard[i:i+media.FrameSamples]) > soundLevel {
			out.sound += 20 * time.Millisecond
		}
	}
	st := c.Media.Stats()
	out.rtpIn, out.rtpOut = st.PacketsReceived, st.PacketsSent
	p.done <- out
}

// soundLevel is the RMS above which a heard frame counts as sound rather
// than silence (line noise and G.711 idle patterns stay well below).
const soundLevel = 200

func (p *softphone) NotAnswered(_ context.Context, err error) {
	p.done <- callOutcome{err: err}
}

func (o callOutcome) print(w io.Writer, played string) {
	fmt.Fprintf(w, "answered (peer %s, codec %s", o.peer, o.codec)
	if o.setup > 0 {
		fmt.Fprintf(w, ", after %s", o.setup.Round(time.Millisecond))
	}
	fmt.Fprintln(w, ")")
	if played != "" {
		fmt.Fprintf(w, "played %s\n", played)
	}
	fmt.Fprintf(w, "heard %.1f s, of which %.1f s of sound (RTP packets received %d, sent %d)\n",
		o.heard.Seconds(), o.sound.Seconds(), o.rtpIn, o.rtpOut)
	if o.rtpIn == 0 {
		fmt.Fprintln(w, "warning: no audio arrived from the other side (check its media address, or a firewall/NAT in between)")
	}
	fmt.Fprintf(w, "%s; call lasted %.1f s\n", o.ended, o.duration.Seconds())
}

// answerOnce routes the first incoming call to the softphone and refuses
// the rest as busy.
type answerOnce struct {
	phone   *softphone
	arrived chan struct{} // closed at the first call
	taken   atomic.Bool
}

func (a *answerOnce) Route(_ context.Context, _ telephony.Inbound) (telephony.Handler, error) {
	if !a.taken.CompareAndSwap(false, true) {
		return nil, &telephony.Reject{Code: 486, Reason: "Busy Here"}
	}
	close(a.arrived)
	return a.phone, nil
}

// refuseCalls answers incoming calls while dialling: this softphone takes none.
type refuseCalls struct{}

func (refuseCalls) Route(context.Context, telephony.Inbound) (telephony.Handler, error) {
	return nil, &telephony.Reject{Code: 486, Reason: "Busy Here"}
}
