// Command callload places many concurrent phone calls against a real
// `parley serve` process over loopback, with real SIP and RTP, and with the
// in-repo fake Deepgram, OpenAI and ElevenLabs servers as providers. Each
// simulated caller speaks two turns (tone bursts the fake speech-to-text
// "recognises"), listens to the replies and hangs up.
//
//	go build -o /tmp/parley ./cmd/parley
//	go run ./cmd/callload -parley /tmp/parley -calls 100
//	go run ./cmd/callload -parley /tmp/parley -calls 20 -background office
//
// -background gives the assistant background audio (the clip at volume
// 0.3), to compare the CPU per call-second with and without it.
//
// -realtime openai_live|xai_realtime|google_realtime answers the calls with
// a realtime (speech-to-speech) assistant instead, against that service's
// protocol fake (openaifake.NewRealtime, xaifake, googlefake.Live). The
// platform latency is then the server's figure from the first audio delta
// received from the service to the first RTP packet of the reply.
//
// It reports calls completed and failed, the server's CPU and resident
// memory per call (read from /proc), the interval between RTP packets the
// server sent (p50/p99, as received), packet loss, and the platform-added
// latency per turn: the server's own figure from the fake STT's final
// transcript to the first RTP packet of the reply (calls.metrics). It is a
// development harness, not part of the product binary.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/deepgram/deepgramfake"
	"github.com/parley-voice/parley/internal/provider/elevenlabs/elevenlabsfake"
	"github.com/parley-voice/parley/internal/provider/google/googlefake"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/provider/xai/xaifake"
	"github.com/parley-voice/parley/internal/realtime/realtimefake"
)

const apiKey = "callload-bootstrap-key-0123456789"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "callload:", err)
		os.Exit(1)
	}
}

type options struct {
	parley string
	calls  int
	ramp   time.Duration
	turns  int
	record bool
	// background is speech_config.background_audio.clip ("": none).
	background string
	// realtime is the realtime llm_config provider ("": a pipeline).
	realtime string
}

func run() error {
	var o options
	flag.StringVar(&o.parley, "parley", "", "path to a built parley binary (go build -o /tmp/parley ./cmd/parley)")
	flag.IntVar(&o.calls, "calls", 100, "concurrent calls")
	flag.DurationVar(&o.ramp, "ramp", 5*time.Second, "spread call starts over this long")
	flag.IntVar(&o.turns, "turns", 2, "caller turns per call")
	flag.BoolVar(&o.record, "record", false, "record every call (assistant recording_enabled): two-channel WAVs, uploaded to the recordings directory after each call")
	flag.StringVar(&o.background, "background", "", "background audio clip for the assistant (office, city, forest, crowded_room; empty: none), at volume 0.3")
	flag.StringVar(&o.realtime, "realtime", "", "answer with a realtime assistant of this provider: openai_live, xai_realtime or google_realtime (empty: the STT → LLM → TTS pipeline)")
	flag.Parse()
	if o.parley == "" {
		return errors.New("-parley is required")
	}
	ctx := context.Background()

	// Fake providers, in this process.
	mux := http.NewServeMux()
	transcripts, reply := []string{"I would like an appointment", "Tomorrow at nine"}, "Sure, noted."
	mux.Handle("/v1/listen", deepgramfake.New(deepgramfake.Config{Transcripts: transcripts}))
	mux.Handle("/v1/chat/completions", openaifake.New(openaifake.Config{Replies: []openaifake.Reply{{Text: reply}}}))
	el := elevenlabsfake.New(elevenlabsfake.Config{})
	mux.Handle(elevenlabsfake.Path, el)
	script := realtimefake.Script{Transcripts: transcripts, Replies: map[string]string{"appointment": reply, "nine": reply}}
	mux.Handle("/v1/realtime", openaifake.NewRealtime(openaifake.RealtimeConfig{Script: script}))
	mux.Handle("/xai/v1/realtime", xaifake.NewRealtime(openaifake.RealtimeConfig{Script: script}))
	mux.Handle("/ws/", googlefake.NewLive(googlefake.LiveConfig{Script: script}))
	fakes := httptest.NewServer(mux)
	defer fakes.Close()
	defer el.Close()

	srv, err := startServer(ctx, o, fakes.URL)
	if err != nil {
		return err
	}
	defer srv.stop()
	if err := srv.configure(o.record, o.background, o.realtime); err != nil {
		return err
	}
	time.Sleep(time.Second)
	idle := srv.sample()

	// The calls.
	results := make([]*callResult, o.calls)
	var wg sync.WaitGroup
	peak := idle
	stopSampling := make(chan struct{})
	var sampleWG sync.WaitGroup
	sampleWG.Add(1)
	go func() {
		defer sampleWG.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				if s := srv.sample(); s.rss > peak.rss {
					peak.rss = s.rss
				}
			}
		}
	}()
	started := time.Now()
	for i := range o.calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * o.ramp / time.Duration(o.calls))
			results[i] = placeCall(srv.sipAddr, o.turns, i)
		}()
	}
	wg.Wait()
	wall := time.Since(started)
	close(stopSampling)
	sampleWG.Wait()
	busy := srv.sample()
	time.Sleep(2 * time.Second) // call rows are finished after the BYE, recordings uploaded by jobs
	return report(o, srv, results, idle, peak, busy, wall)
}

// server is the parley process under test.
type server struct {
	cmd      *exec.Cmd
	base     string
	sipAddr  *net.UDPAddr
	dir      string
	log      *bytes.Buffer
	clockTck float64
}

func startServer(ctx context.Context, o options, fakes string) (*server, error) {
	dir, err := os.MkdirTemp("", "callload")
	if err != nil {
		return nil, err
	}
	httpAddr, sipAddr := freePort("tcp"), freePort("udp")
	s := &server{base: "http://" + httpAddr, dir: dir, log: &bytes.Buffer{}, clockTck: 100}
	s.sipAddr, _ = net.ResolveUDPAddr("udp", sipAddr)
	s.cmd = exec.CommandContext(ctx, o.parley, "serve")
	s.cmd.Env = append(os.Environ(),
		"PARLEY_DATA_DIR="+dir, "PARLEY_HTTP_ADDR="+httpAddr, "PARLEY_SIP_ADDR="+sipAddr,
		"PARLEY_BOOTSTRAP_API_KEY="+apiKey, "PARLEY_LOG_LEVEL=warn", "PARLEY_RATE_LIMIT=100000",
		"PARLEY_MAX_CALLS=10000", "PARLEY_RTP_PORTS=20000-29999",
		// Every simulated caller comes from 127.0.0.1: the per-source SIP
		// flood limit would ban it.
		"PARLEY_SIP_RATE_LIMIT=0",
		"PARLEY_DEEPGRAM_BASE_URL="+fakes, "PARLEY_DEEPGRAM_API_KEY=fake",
		"PARLEY_OPENAI_BASE_URL="+fakes+"/v1", "PARLEY_OPENAI_API_KEY=fake",
		"PARLEY_ELEVENLABS_BASE_URL="+fakes, "PARLEY_ELEVENLABS_API_KEY=fake",
		"PARLEY_XAI_REALTIME_URL="+strings.Replace(fakes, "http://", "ws://", 1)+"/xai/v1/realtime", "PARLEY_XAI_API_KEY=fake",
		"PARLEY_GOOGLE_LIVE_URL="+strings.Replace(fakes, "http://", "ws://", 1), "PARLEY_GOOGLE_API_KEY=fake",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := http.Get(s.base + "/api/v1/health"); err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("server did not start:\n%s", s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	s.cmd.Wait()
	os.RemoveAll(s.dir)
}

func (s *server) api(method, path, body string, out any) error {
	req, _ := http.NewRequest(method, s.base+"/api/v1"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// realtimeLLM is the llm_config of each realtime provider callload runs.
var realtimeLLM = map[string]string{
	"openai_live":     `{"provider":"openai_live","model":"gpt-live-1"}`,
	"xai_realtime":    `{"provider":"xai_realtime","model":"grok-voice-think-fast-2.0","turn_detection":{"silence_duration_ms":300}}`,
	"google_realtime": `{"provider":"google_realtime","model":"gemini-3.1-flash-live-preview"}`,
}

func (s *server) configure(record bool, background, rt string) error {
	var a struct{ Assistant struct{ ID string } }
	rec := ""
	if record {
		rec = `"recording_enabled":true,`
	}
	bg := ""
	if background != "" {
		bg = `,"background_audio":{"enabled":true,"clip":` + strconv.Quote(background) + `,"volume":0.3}`
	}
	body := `{"name":"Load","first_message":"Hello.",` + rec + `
		"llm_config":{"provider":"openai","model":"gpt-4.1","messages":[{"role":"system","content":"Be brief."}]},
		"stt_config":{"provider":"deepgram","model":"nova-3","language":"en","endpointing":300},
		"tts_config":{"provider":"elevenlabs","voice_id":"loadvoice"},
		"speech_config":{"turn_taking":{"endpointing_min_delay":0.1}` + bg + `}}`
	if rt != "" {
		llm, ok := realtimeLLM[rt]
		if !ok {
			return fmt.Errorf("-realtime %q: want openai_live, xai_realtime or google_realtime", rt)
		}
		body = `{"name":"Load realtime","first_message":"Hello.",` + rec + `"llm_config":` + llm + `,"tts_config":null` +
			`,"speech_config":{"turn_taking":{"endpointing_min_delay":0.1}` + bg + `}}`
	}
	err := s.api("POST", "/assistants", body, &a)
	if err != nil {
		return err
	}
	return s.api("POST", "/numbers", `{"phone_number":"+15550199","assistant_id":"`+a.Assistant.ID+`"}`, nil)
}

// usage is a /proc sample of the server process.
type usage struct {
	cpu time.Duration
	rss int64 // bytes
}

func (s *server) sample() usage {
	var u usage
	pid := strconv.Itoa(s.cmd.Process.Pid)
	if b, err := os.ReadFile(filepath.Join("/proc", pid, "stat")); err == nil {
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		u.cpu = time.Duration((ut + st) / s.clockTck * float64(time.Second))
	}
	if b, err := os.ReadFile(filepath.Join("/proc", pid, "status")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
				u.rss = kb * 1024
			}
		}
	}
	return u
}

func freePort(network string) string {
	if network == "udp" {
		c, _ := net.ListenPacket("udp", "127.0.0.1:0")
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	return l.Addr().String()
}

// callResult is one simulated caller's view.
type callResult struct {
	err       error
	intervals []time.Duration // between consecutive RTP packets received
	received  int
	lost      int // sequence gaps
}

// placeCall dials, talks `turns` times (1 s of tone, then 3 s of silence),
// hangs up, and measures the server's RTP as it arrives.
func placeCall(server *net.UDPAddr, turns, n int) *callResult {
	res := &callResult{}
	sipConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		res.err = err
		return res
	}
	defer sipConn.Close()
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		res.err = err
		return res
	}
	defer rtpConn.Close()
	rtpConn.SetReadBuffer(1 << 20)
	sipPort := sipConn.LocalAddr().(*net.UDPAddr).Port
	rtpPort := rtpConn.LocalAddr().(*net.UDPAddr).Port
	callID := fmt.Sprintf("load-%d-%d@callload", n, rand.Uint64())
	fromTag := fmt.Sprintf("f%d", rand.Uint32())
	body := fmt.Sprintf("v=0\r\no=load 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n", rtpPort)
	invite := fmt.Sprintf("INVITE sip:+15550199@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%d\r\nMax-Forwards: 70\r\nFrom: <sip:+1555%07d@127.0.0.1>;tag=%s\r\nTo: <sip:+15550199@%s>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:load@127.0.0.1:%d>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		server, sipPort, rand.Uint64(), n, fromTag, server, callID, sipPort, len(body), body)
	parser := sip.NewParser()
	var ok *sip.Response
	buf := make([]byte, 65535)
	for attempt := 0; ok == nil && attempt < 7; attempt++ {
		sipConn.WriteToUDP([]byte(invite), server)
		sipConn.SetReadDeadline(time.Now().Add(time.Duration(500<<attempt) * time.Millisecond))
		for ok == nil {
			k, _, err := sipConn.ReadFromUDP(buf)
			if err != nil {
				break
			}
			m, err := parser.ParseSIP(buf[:k])
			if r, isRes := m.(*sip.Response); err == nil && isRes {
				if r.StatusCode >= 300 {
					res.err = fmt.Errorf("INVITE answered %d %s", r.StatusCode, r.Reason)
					return res
				}
				if r.StatusCode == 200 {
					ok = r
				}
			}
		}
	}
	if ok == nil {
		res.err = errors.New("no answer to INVITE")
		return res
	}
	toTag, _ := ok.To().Params.Get("tag")
	var remote *net.UDPAddr
	for _, l := range strings.Split(string(ok.Body()), "\r\n") {
		if strings.HasPrefix(l, "m=audio ") {
			p, _ := strconv.Atoi(strings.Fields(l)[1])
			remote = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}
		}
	}
	if remote == nil {
		res.err = errors.New("no audio in the SDP answer")
		return res
	}
	inDialog := func(method string, cseq int) string {
		return fmt.Sprintf("%s sip:parley@%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%d\r\nMax-Forwards: 70\r\nFrom: <sip:+1555%07d@127.0.0.1>;tag=%s\r\nTo: <sip:+15550199@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContent-Length: 0\r\n\r\n",
			method, server, sipPort, rand.Uint64(), n, fromTag, server, toTag, callID, cseq, method)
	}
	sipConn.WriteToUDP([]byte(inDialog("ACK", 1)), server)

	// Receive the server's RTP.
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		rbuf := make([]byte, 1500)
		var pkt rtp.Packet
		var last time.Time
		var lastSeq uint16
		for {
			k, _, err := rtpConn.ReadFromUDP(rbuf)
			if err != nil {
				return
			}
			now := time.Now()
			if pkt.Unmarshal(rbuf[:k]) != nil {
				continue
			}
			if res.received > 0 {
				res.intervals = append(res.intervals, now.Sub(last))
				if gap := int(pkt.SequenceNumber - lastSeq - 1); gap > 0 && gap < 1000 {
					res.lost += gap
				}
			}
			res.received++
			last, lastSeq = now, pkt.SequenceNumber
		}
	}()

	// Send the caller's audio: 2 s of silence (the greeting), then per turn
	// 1 s of "speech" and 3 s of silence for the reply.
	var script []bool
	for range 100 {
		script = append(script, false)
	}
	for range turns {
		for range 50 {
			script = append(script, true)
		}
		for range 150 {
			script = append(script, false)
		}
	}
	speech := audio.EncodeUlaw(nil, audio.Tone(300, 8000, 160, 8000))
	silence := bytes.Repeat([]byte{audio.UlawSilence}, 160)
	pkt := make([]byte, 12+160)
	hdr := rtp.Header{Version: 2, PayloadType: 0, SSRC: rand.Uint32(), SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32()}
	next := time.Now()
	for _, talk := range script {
		next = next.Add(20 * time.Millisecond)
		time.Sleep(time.Until(next))
		h, _ := hdr.MarshalTo(pkt)
		if talk {
			copy(pkt[h:], speech)
		} else {
			copy(pkt[h:], silence)
		}
		rtpConn.WriteToUDP(pkt[:h+160], remote)
		hdr.SequenceNumber++
		hdr.Timestamp += 160
	}
	sipConn.WriteToUDP([]byte(inDialog("BYE", 2)), server)
	sipConn.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		k, _, err := sipConn.ReadFromUDP(buf)
		if err != nil {
			res.err = errors.New("no answer to BYE")
			break
		}
		if m, err := parser.ParseSIP(buf[:k]); err == nil {
			if r, isRes := m.(*sip.Response); isRes && r.CSeq().MethodName == sip.BYE {
				if r.StatusCode != 200 {
					res.err = fmt.Errorf("BYE answered %d", r.StatusCode)
				}
				break
			}
		}
	}
	rtpConn.Close()
	rwg.Wait()
	return res
}

func report(o options, srv *server, results []*callResult, idle, peak, busy usage, wall time.Duration) error {
	var failed []string
	var intervals []time.Duration
	received, lost := 0, 0
	for i, r := range results {
		if r.err != nil {
			failed = append(failed, fmt.Sprintf("call %d: %v", i, r.err))
		}
		intervals = append(intervals, r.intervals...)
		received += r.received
		lost += r.lost
	}
	var list struct {
		Calls []struct {
			Status       string  `json:"status"`
			EndReason    string  `json:"end_reason"`
			RecordingURL *string `json:"recording_url"`
			Messages     []any   `json:"messages"`
			Metrics      []struct {
				FinalToFirst int64 `json:"stt_final_to_first_packet_ms"`
				FirstPacket  int64 `json:"first_packet_ms"`
			} `json:"metrics"`
		}
	}
	if err := srv.api("GET", "/calls?limit=1000", "", &list); err != nil {
		return err
	}
	var platform, firstPkt []time.Duration
	complete, recorded := 0, 0
	for _, c := range list.Calls {
		if c.RecordingURL != nil {
			recorded++
		}
		if c.Status == "ended" && c.EndReason == "user_hangup" && len(c.Messages) == 1+2*o.turns {
			complete++
		}
		for _, m := range c.Metrics {
			platform = append(platform, time.Duration(m.FinalToFirst)*time.Millisecond)
			firstPkt = append(firstPkt, time.Duration(m.FirstPacket)*time.Millisecond)
		}
	}
	cpu := busy.cpu - idle.cpu
	fmt.Printf("calls: %d placed, %d failed, %d recorded with the full transcript (%d rows); %d with a stored recording\n", o.calls, len(failed), complete, len(list.Calls), recorded)
	for _, f := range failed[:min(len(failed), 5)] {
		fmt.Println("  ", f)
	}
	fmt.Printf("wall time %.1fs; server CPU %.1fs = %.0f%% of one core over the run, %.1f ms CPU per call-second\n",
		wall.Seconds(), cpu.Seconds(), 100*cpu.Seconds()/wall.Seconds(), 1000*cpu.Seconds()/(float64(o.calls)*wall.Seconds()))
	fmt.Printf("server RSS: idle %.1f MB, peak %.1f MB → %.0f KB per call\n", mb(idle.rss), mb(peak.rss), float64(peak.rss-idle.rss)/1024/float64(o.calls))
	fmt.Printf("RTP from server: %d packets, %d lost (%.3f%%); send interval p50 %s p99 %s p99.9 %s max %s\n",
		received, lost, 100*float64(lost)/float64(max(received+lost, 1)), pct(intervals, 50), pct(intervals, 99), pct(intervals, 99.9), pct(intervals, 100))
	from := "STT final"
	if o.realtime != "" {
		from = "service's first audio delta"
	}
	fmt.Printf("platform-added latency (%s → first reply RTP packet), %d turns: p50 %s p95 %s p99 %s\n", from, len(platform), pct(platform, 50), pct(platform, 95), pct(platform, 99))
	fmt.Printf("turn end → first reply packet: p50 %s p95 %s\n", pct(firstPkt, 50), pct(firstPkt, 95))
	if len(failed) > 0 {
		return fmt.Errorf("%d calls failed", len(failed))
	}
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i].Round(100 * time.Microsecond)
}
