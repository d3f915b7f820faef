package elevenlabsfake

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseOutputFormat(t *testing.T) {
	tests := []struct {
		in      string
		rate    int
		ulaw    bool
		wantErr bool
	}{
		{"pcm_8000", 8000, false, false},
		{"pcm_16000", 16000, false, false},
		{"pcm_22050", 22050, false, false},
		{"pcm_24000", 24000, false, false},
		{"pcm_44100", 44100, false, false},
		{"pcm_48000", 48000, false, false},
		{"ulaw_8000", 8000, true, false},
		{"pcm_11025", 0, false, true},
		{"pcm_", 0, false, true},
		{"mp3_44100_128", 0, false, true},
		{"alaw_8000", 0, false, true},
		{"", 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := parseOutputFormat(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseOutputFormat(%q) = %+v, want an error", tt.in, f)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.rate != tt.rate || f.ulaw != tt.ulaw || f.name != tt.in {
				t.Errorf("parseOutputFormat(%q) = %+v", tt.in, f)
			}
		})
	}
}

func TestULawEncode(t *testing.T) {
	tests := []struct {
		in   int16
		want byte
	}{
		{0, 0xFF},
		{-1, 0x7F},
		{32767, 0x80},
		{-32768, 0x00},
		{1000, 0xCE},
		{-1000, 0x4E},
	}
	for _, tt := range tests {
		if got := ulawEncode(tt.in); got != tt.want {
			t.Errorf("ulawEncode(%d) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}

func TestDefaultSynth(t *testing.T) {
	tests := []struct {
		text string
		rate int
		want int // samples
	}{
		{"Hi", 8000, 1600},             // 120 ms < 200 ms minimum
		{"Hello", 8000, 2400},          // 5 × 60 ms
		{"Hello", 24000, 7200},         //
		{"héllo wörld", 16000, 10560},  // 11 characters, not bytes
		{"", 8000, 1600},               //
		{"abc", 22050, 22050 * 2 / 10}, // minimum again
		{"x", 0, 0},                    // no rate, no audio
	}
	for _, tt := range tests {
		got := DefaultSynth(tt.text, tt.rate)
		if len(got) != tt.want {
			t.Errorf("DefaultSynth(%q, %d): %d samples, want %d", tt.text, tt.rate, len(got), tt.want)
			continue
		}
		if len(got) == 0 {
			continue
		}
		var peak int
		for _, v := range got {
			peak = max(peak, int(math.Abs(float64(v))))
		}
		if peak > 6000 || peak < 5900 {
			t.Errorf("DefaultSynth(%q, %d): peak %d, want about 6000", tt.text, tt.rate, peak)
		}
		if got[0] != 0 || got[len(got)-1] != 0 {
			t.Errorf("DefaultSynth(%q, %d): not faded: first %d, last %d", tt.text, tt.rate, got[0], got[len(got)-1])
		}
	}
}

func TestChunkBytes(t *testing.T) {
	tests := []struct {
		format string
		d      time.Duration
		want   int
	}{
		{"pcm_8000", 100 * time.Millisecond, 1600},
		{"pcm_24000", 100 * time.Millisecond, 4800},
		{"ulaw_8000", 100 * time.Millisecond, 800},
		{"pcm_8000", 101 * 62500 * time.Nanosecond, 101}, // odd: splits samples
		{"pcm_8000", time.Nanosecond, 1},
	}
	for _, tt := range tests {
		f, err := parseOutputFormat(tt.format)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.chunkBytes(tt.d); got != tt.want {
			t.Errorf("%s chunkBytes(%v) = %d, want %d", tt.format, tt.d, got, tt.want)
		}
	}
}

func TestSpreadAlignment(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		bounds []int
		want   []*alignment
	}{
		{
			name:   "one message",
			text:   "Hi!",
			bounds: []int{0, 300},
			want: []*alignment{
				{Chars: []string{"H", "i", "!"}, CharStartTimesMs: []int{0, 100, 200}, CharDurationsMs: []int{100, 100, 100}},
			},
		},
		{
			name:   "relative to each message",
			text:   "abcd",
			bounds: []int{0, 100, 200, 400},
			want: []*alignment{
				{Chars: []string{"a"}, CharStartTimesMs: []int{0}, CharDurationsMs: []int{100}},
				{Chars: []string{"b"}, CharStartTimesMs: []int{0}, CharDurationsMs: []int{100}},
				{Chars: []string{"c", "d"}, CharStartTimesMs: []int{0, 100}, CharDurationsMs: []int{100, 100}},
			},
		},
		{
			name:   "message without characters",
			text:   "ab",
			bounds: []int{0, 50, 100, 150, 200},
			want: []*alignment{
				{Chars: []string{"a"}, CharStartTimesMs: []int{0}, CharDurationsMs: []int{100}},
				nil,
				{Chars: []string{"b"}, CharStartTimesMs: []int{0}, CharDurationsMs: []int{100}},
				nil,
			},
		},
		{
			name:   "runes",
			text:   "né",
			bounds: []int{0, 200},
			want: []*alignment{
				{Chars: []string{"n", "é"}, CharStartTimesMs: []int{0, 100}, CharDurationsMs: []int{100, 100}},
			},
		},
		{name: "no messages", text: "x", bounds: []int{0}, want: []*alignment{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := spreadAlignment(tt.text, tt.bounds)
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if string(g) != string(w) {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}

// newFake serves a fake on a test server; cleanup closes both.
func newFake(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	srv := New(cfg)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Close()
		ts.Close()
	})
	return srv, ts
}

// dial opens a client websocket; query is appended to the stream path.
func dial(t *testing.T, ts *httptest.Server, voice, query, key string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hdr := http.Header{}
	if key != "" {
		hdr.Set("xi-api-key", key)
	}
	u := ts.URL + "/v1/text-to-speech/" + voice + "/stream-input?" + query
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write %s: %v", msg, err)
	}
}

// serverMsg is what a client reads.
type serverMsg struct {
	Audio     string          `json:"audio"`
	IsFinal   *bool           `json:"isFinal"`
	Alignment *alignment      `json:"alignment"`
	Normal    *alignment      `json:"normalizedAlignment"`
	Message   string          `json:"message"`
	Error     string          `json:"error"`
	Code      int             `json:"code"`
	Raw       json.RawMessage `json:"-"`
}

// readOne reads one message.
func readOne(t *testing.T, c *websocket.Conn, timeout time.Duration) (serverMsg, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, data, err := c.Read(ctx)
	if err != nil {
		return serverMsg{}, err
	}
	var m serverMsg
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	m.Raw = data
	return m, nil
}

// readAll reads messages until the connection ends and returns them with
// the error that ended it.
func readAll(t *testing.T, c *websocket.Conn) ([]serverMsg, error) {
	t.Helper()
	var msgs []serverMsg
	for {
		m, err := readOne(t, c, 10*time.Second)
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
}

// audioOf concatenates the audio of msgs.
func audioOf(t *testing.T, msgs []serverMsg) []byte {
	t.Helper()
	var out []byte
	for _, m := range msgs {
		b, err := base64.StdEncoding.DecodeString(m.Audio)
		if err != nil {
			t.Fatalf("audio is not base64: %v", err)
		}
		out = append(out, b...)
	}
	return out
}

func closeCode(err error) (websocket.StatusCode, string) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Reason
	}
	return -1, ""
}

const initMsg = `{"text":" ","voice_settings":{"stability":0.5},"generation_config":{"chunk_length_schedule":[120,160,250,290]}}`

func TestStreamEndToEnd(t *testing.T) {
	srv, ts := newFake(t, Config{APIKey: "k"})
	c := dial(t, ts, "voice1", "model_id=eleven_flash_v2_5&output_format=pcm_16000", "k")
	send(t, c, initMsg)
	send(t, c, `{"text":"Hello ","flush":true}`)
	send(t, c, `{"text":"world. "}`)
	send(t, c, `{"text":"Bye. "}`)
	send(t, c, `{"text":""}`)
	msgs, err := readAll(t, c)
	if code, _ := closeCode(err); code != websocket.StatusNormalClosure {
		t.Fatalf("ended with %v, want a normal close", err)
	}
	last := msgs[len(msgs)-1]
	if last.IsFinal == nil || !*last.IsFinal || last.Audio != "" {
		t.Fatalf("last message = %s, want isFinal", last.Raw)
	}
	msgs = msgs[:len(msgs)-1]

	f, _ := parseOutputFormat("pcm_16000")
	want := append(f.encode(DefaultSynth("Hello", 16000)), f.encode(DefaultSynth("world. Bye.", 16000))...)
	if got := audioOf(t, msgs); !slices.Equal(got, want) {
		t.Errorf("audio: %d bytes, want %d", len(got), len(want))
	}
	var chars strings.Builder
	for _, m := range msgs {
		if m.IsFinal != nil {
			t.Errorf("audio message isFinal = %v, want null", *m.IsFinal)
		}
		if len(base64Decode(t, m.Audio)) > f.chunkBytes(100*time.Millisecond) {
			t.Errorf("audio message larger than 100 ms")
		}
		if m.Alignment != nil {
			chars.WriteString(strings.Join(m.Alignment.Chars, ""))
			if len(m.Alignment.Chars) != len(m.Normal.Chars) {
				t.Errorf("normalizedAlignment differs from alignment")
			}
		}
	}
	if chars.String() != "Helloworld. Bye." {
		t.Errorf("alignment chars = %q", chars.String())
	}

	if got := srv.Texts(); len(got) != 1 || !slices.Equal(got[0], []string{"Hello", "world. Bye."}) {
		t.Errorf("Texts() = %q", got)
	}
	waitFor(t, func() bool { return srv.Stats().Active == 0 })
	st := srv.Stats()
	if st.Connections != 1 || st.Characters != len("Hello world. Bye. ") || st.AudioMessages != len(msgs) {
		t.Errorf("Stats() = %+v, want 1 connection, %d characters, %d audio messages", st, len("Hello world. Bye. "), len(msgs))
	}
	sess := srv.Sessions()
	if len(sess) != 1 || sess[0].VoiceID != "voice1" || sess[0].Query.Get("model_id") != "eleven_flash_v2_5" || !sess[0].Closed || sess[0].ID != 1 {
		t.Errorf("Sessions() = %+v", sess)
	}
	if vs, _ := sess[0].Init["voice_settings"].(map[string]any); vs["stability"] != 0.5 {
		t.Errorf("Init = %v", sess[0].Init)
	}
}

func base64Decode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestULawOutput(t *testing.T) {
	_, ts := newFake(t, Config{})
	c := dial(t, ts, "v", "output_format=ulaw_8000", "")
	send(t, c, initMsg)
	send(t, c, `{"text":"Hello there. "}`)
	send(t, c, `{"text":""}`)
	msgs, _ := readAll(t, c)
	got := audioOf(t, msgs)
	pcm := DefaultSynth("Hello there.", 8000)
	if len(got) != len(pcm) {
		t.Fatalf("%d bytes of μ-law, want one per sample (%d)", len(got), len(pcm))
	}
	if got[0] != ulawEncode(pcm[0]) || got[100] != ulawEncode(pcm[100]) {
		t.Errorf("audio is not μ-law")
	}
}

func TestGenerationTriggers(t *testing.T) {
	tests := []struct {
		name string
		init string
		text string
	}{
		{"flush", initMsg, `{"text":"Hi. ","flush":true}`},
		{"try_trigger_generation", initMsg, `{"text":"Hi. ","try_trigger_generation":true}`},
		{"schedule threshold", `{"text":" ","generation_config":{"chunk_length_schedule":[10]}}`, `{"text":"Twelve chars"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts := newFake(t, Config{})
			c := dial(t, ts, "v", "output_format=pcm_8000", "")
			send(t, c, tt.init)
			send(t, c, tt.text)
			// Audio arrives without the end of input.
			m, err := readOne(t, c, 5*time.Second)
			if err != nil || m.Audio == "" {
				t.Fatalf("got %s, %v; want audio", m.Raw, err)
			}
		})
	}
}

func TestNoTriggerBelowThreshold(t *testing.T) {
	srv, ts := newFake(t, Config{})
	c := dial(t, ts, "v", "output_format=pcm_8000", "")
	send(t, c, initMsg)
	send(t, c, `{"text":"Short. "}`)
	if m, err := readOne(t, c, 200*time.Millisecond); err == nil {
		t.Fatalf("got %s before the end of input", m.Raw)
	}
	// The timed-out read closed the connection; the fake notices.
	waitFor(t, func() bool { return srv.Stats().Active == 0 })
	if got := srv.Texts(); len(got[0]) != 0 {
		t.Errorf("Texts() = %q, want nothing generated", got)
	}
}

func TestRejections(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		query     string
		key       string
		first     string // message sent after connecting, if any
		wantCode  websocket.StatusCode
		wantError string // error message's "error" field, "" for none
		reason    string // part of the close reason
	}{
		{"wrong key", Config{APIKey: "right"}, "output_format=pcm_8000", "wrong", "", websocket.StatusPolicyViolation, "", "Invalid API key"},
		{"missing key", Config{APIKey: "right"}, "output_format=pcm_8000", "", "", websocket.StatusPolicyViolation, "", "Invalid API key"},
		{"mp3", Config{}, "output_format=mp3_44100_128", "", "", websocket.StatusPolicyViolation, "invalid_output_format", "mp3_44100_128"},
		{"no format", Config{}, "", "", "", websocket.StatusPolicyViolation, "invalid_output_format", "output_format"},
		{"bad inactivity", Config{}, "output_format=pcm_8000&inactivity_timeout=500", "", "", websocket.StatusPolicyViolation, "invalid_request", "inactivity_timeout"},
		{"no init", Config{}, "output_format=pcm_8000", "", `{"text":"Hello. "}`, websocket.StatusPolicyViolation, "invalid_message", "init message"},
		{"not json", Config{}, "output_format=pcm_8000", "", `hello`, websocket.StatusPolicyViolation, "invalid_message", "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, ts := newFake(t, tt.cfg)
			c := dial(t, ts, "v", tt.query, tt.key)
			if tt.first != "" {
				send(t, c, tt.first)
			}
			msgs, err := readAll(t, c)
			code, reason := closeCode(err)
			if code != tt.wantCode || !strings.Contains(reason, tt.reason) {
				t.Errorf("closed with %v, want %d %q", err, tt.wantCode, tt.reason)
			}
			if tt.wantError == "" {
				if len(msgs) != 0 {
					t.Errorf("got messages %s", msgs[0].Raw)
				}
			} else if len(msgs) != 1 || msgs[0].Error != tt.wantError || msgs[0].Code != 1008 || msgs[0].Message == "" {
				t.Errorf("got messages %+v, want one error %q", msgs, tt.wantError)
			}
			if tt.key != "" && strings.Contains(reason, tt.key) {
				t.Errorf("close reason %q repeats the key", reason)
			}
			waitFor(t, func() bool { return srv.Stats().Active == 0 })
		})
	}
}

func TestInactivityTimeout(t *testing.T) {
	_, ts := newFake(t, Config{InactivityTimeout: 150 * time.Millisecond})
	c := dial(t, ts, "v", "output_format=pcm_8000", "")
	send(t, c, initMsg)
	start := time.Now()
	_, err := readAll(t, c)
	code, reason := closeCode(err)
	if code != websocket.StatusPolicyViolation || !strings.Contains(reason, "timeout") {
		t.Fatalf("closed with %v, want 1008 timeout", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Errorf("timed out after %v, want about 150ms", d)
	}
}

func TestFailAfter(t *testing.T) {
	srv, ts := newFake(t, Config{FailAfter: 2})
	c := dial(t, ts, "v", "output_format=pcm_8000", "")
	send(t, c, initMsg)
	send(t, c, `{"text":"A rather long sentence to make many chunks. ","flush":true}`)
	msgs, err := readAll(t, c)
	if code, reason := closeCode(err); code != websocket.StatusInternalError || reason != "fake failure" {
		t.Fatalf("closed with %v, want 1011 fake failure", err)
	}
	if len(msgs) != 2 || srv.Stats().AudioMessages != 2 {
		t.Errorf("got %d messages (stats %+v), want 2", len(msgs), srv.Stats())
	}
}

func TestRealTimeAndFirstAudio(t *testing.T) {
	var firsts atomic.Int32
	var firstAt atomic.Int64
	srv, ts := newFake(t, Config{
		RealTime:        true,
		FirstAudioDelay: 100 * time.Millisecond,
		ChunkDuration:   50 * time.Millisecond,
		OnFirstAudio: func(at time.Time) {
			firsts.Add(1)
			firstAt.Store(at.UnixNano())
		},
	})
	c := dial(t, ts, "v", "output_format=pcm_8000", "")
	send(t, c, initMsg)
	start := time.Now()
	send(t, c, `{"text":"Hi. ","flush":true}`) // 200 ms of audio: 4 messages
	m, err := readOne(t, c, 5*time.Second)
	if err != nil || m.Audio == "" {
		t.Fatalf("got %s, %v", m.Raw, err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("first audio after %v, want FirstAudioDelay 100ms", d)
	}
	first := time.Now()
	for range 3 {
		if _, err := readOne(t, c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(first); d < 130*time.Millisecond {
		t.Errorf("3 more 50 ms messages came within %v, want real-time pacing", d)
	}
	send(t, c, `{"text":"Again. ","flush":true}`)
	if _, err := readOne(t, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := firsts.Load(); n != 1 {
		t.Errorf("OnFirstAudio called %d times, want once per connection", n)
	}
	if at := time.Unix(0, firstAt.Load()); at.Before(start) {
		t.Errorf("OnFirstAudio at %v, before the text was sent", at)
	}
	_ = c.CloseNow()
	waitFor(t, func() bool { return srv.Stats().Active == 0 })
}

func TestServerClose(t *testing.T) {
	srv := New(Config{RealTime: true})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c := dial(t, ts, "v", "output_format=pcm_8000", "")
	send(t, c, initMsg)
	send(t, c, `{"text":"A sentence long enough to take a couple of seconds. ","flush":true}`)
	if _, err := readOne(t, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, c); err == nil {
		t.Fatal("connection still open after Close")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if st := srv.Stats(); st.Active != 0 {
		t.Errorf("Stats() = %+v after Close", st)
	}
	resp, err := http.Get(ts.URL + "/v1/text-to-speech/v/stream-input")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: HTTP %d, want 503", resp.StatusCode)
	}
}

func TestRouting(t *testing.T) {
	srv, ts := newFake(t, Config{})
	c := dial(t, ts, "team%2Fvoice%20one", "output_format=pcm_8000", "")
	send(t, c, initMsg)
	_ = c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, func() bool { return srv.Stats().Active == 0 })
	if got := srv.Sessions()[0].VoiceID; got != "team/voice one" {
		t.Errorf("VoiceID = %q", got)
	}

	resp, err := http.Get(ts.URL + "/v1/text-to-speech/v/stream")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("other path: HTTP %d, want 404", resp.StatusCode)
	}
}

func TestMaxRecorded(t *testing.T) {
	srv, ts := newFake(t, Config{MaxRecorded: 2})
	for range 3 {
		c := dial(t, ts, "v", "output_format=pcm_8000", "")
		send(t, c, initMsg)
		send(t, c, `{"text":""}`)
		_, _ = readAll(t, c)
	}
	waitFor(t, func() bool { return srv.Stats().Active == 0 })
	sess := srv.Sessions()
	if len(sess) != 2 || sess[0].ID != 2 || sess[1].ID != 3 || len(srv.Texts()) != 2 {
		t.Errorf("Sessions() = %+v, want connections 2 and 3", sess)
	}
	if st := srv.Stats(); st.Connections != 3 {
		t.Errorf("Stats() = %+v", st)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
