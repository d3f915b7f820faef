package deepgramfake

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/provider/providertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const rate = 8000

func concat(parts ...[]int16) []int16 {
	var out []int16
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func le16(pcm []int16) []byte {
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

// startServer serves fake on an httptest server and, at cleanup, waits for
// every handler (including hijacked websocket sessions) to return.
func startServer(t *testing.T, cfg Config) (*Server, string) {
	fake, srv := startHTTPServer(t, cfg)
	return fake, srv.URL
}

// startHTTPServer is startServer returning the httptest server, whose
// Client is closed with it.
func startHTTPServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	fake := New(cfg)
	return fake, providertest.Serve(t, fake)
}

const defaultQuery = "encoding=linear16&sample_rate=8000&channels=1&vad_events=true"

func dial(t *testing.T, base, query, key string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Token "+key)
	}
	conn, _, err := websocket.Dial(ctx, base+ListenPath+"?"+query, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.CloseNow() })
	return conn
}

// sendPCM writes pcm in 20 ms binary frames, as fast as possible.
func sendPCM(t *testing.T, conn *websocket.Conn, pcm []int16) {
	t.Helper()
	sendBytes(t, conn, le16(pcm), 320)
}

func sendBytes(t *testing.T, conn *websocket.Conn, b []byte, chunk int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for len(b) > 0 {
		n := min(chunk, len(b))
		if err := conn.Write(ctx, websocket.MessageBinary, b[:n]); err != nil {
			t.Fatalf("write audio: %v", err)
		}
		b = b[n:]
	}
}

func sendControl(t *testing.T, conn *websocket.Conn, typ string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"type":"`+typ+`"}`)); err != nil {
		t.Fatalf("write %s: %v", typ, err)
	}
}

// msg is a decoded server message with the fields the tests look at.
type msg struct {
	Type         string  `json:"type"`
	IsFinal      bool    `json:"is_final"`
	SpeechFinal  bool    `json:"speech_final"`
	FromFinalize bool    `json:"from_finalize"`
	Start        float64 `json:"start"`
	Duration     float64 `json:"duration"`
	Timestamp    float64 `json:"timestamp"`
	LastWordEnd  float64 `json:"last_word_end"`
	Channel      json.RawMessage
	RequestID    string `json:"request_id"`
	Channels     int    `json:"channels"`
	SHA256       string `json:"sha256"`
}

type results struct {
	Channel struct {
		Alternatives []struct {
			Transcript string `json:"transcript"`
			Words      []struct {
				Word           string  `json:"word"`
				Start          float64 `json:"start"`
				End            float64 `json:"end"`
				PunctuatedWord string  `json:"punctuated_word"`
			} `json:"words"`
		} `json:"alternatives"`
	} `json:"channel"`
}

func (m msg) transcript(t *testing.T) string {
	t.Helper()
	var r results
	if err := json.Unmarshal(m.Channel, &r.Channel); err != nil {
		t.Fatalf("decoding channel: %v", err)
	}
	if len(r.Channel.Alternatives) == 0 {
		t.Fatal("no alternatives")
	}
	return r.Channel.Alternatives[0].Transcript
}

// readAll reads messages until the server closes the connection.
func readAll(t *testing.T, conn *websocket.Conn) ([]msg, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []msg
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return out, err
		}
		if typ != websocket.MessageText {
			t.Fatalf("unexpected binary message")
		}
		var m msg
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("decoding %s: %v", data, err)
		}
		out = append(out, m)
	}
}

func types(ms []msg) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Type)
	}
	return out
}

func wantClose(t *testing.T, err error, code websocket.StatusCode, reason string) {
	t.Helper()
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("read error = %v, want close %d", err, code)
	}
	if ce.Code != code || ce.Reason != reason {
		t.Fatalf("close = %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
	}
}

func TestParseParams(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		want    params
		wantErr string
	}{
		{
			name:  "defaults",
			query: "encoding=linear16&sample_rate=8000",
			want:  params{model: "nova-3", encoding: "linear16", sampleRate: 8000, channels: 1, endpointing: 300 * time.Millisecond},
		},
		{
			name:  "everything",
			query: "model=nova-2&encoding=mulaw&sample_rate=16000&channels=2&interim_results=true&vad_events=true&endpointing=500&utterance_end_ms=1000",
			want: params{model: "nova-2", encoding: "mulaw", sampleRate: 16000, channels: 2, interim: true, vadEvents: true,
				endpointing: 500 * time.Millisecond, utteranceEnd: time.Second},
		},
		{
			name:  "endpointing false",
			query: "encoding=alaw&sample_rate=8000&endpointing=false",
			want:  params{model: "nova-3", encoding: "alaw", sampleRate: 8000, channels: 1, endpointing: 10 * time.Millisecond},
		},
		{name: "missing encoding", query: "sample_rate=8000", wantErr: "encoding"},
		{name: "bad encoding", query: "encoding=opus&sample_rate=8000", wantErr: "encoding"},
		{name: "missing sample rate", query: "encoding=linear16", wantErr: "sample_rate"},
		{name: "zero sample rate", query: "encoding=linear16&sample_rate=0", wantErr: "sample_rate"},
		{name: "bad endpointing", query: "encoding=linear16&sample_rate=8000&endpointing=soon", wantErr: "endpointing"},
		{name: "bad bool", query: "encoding=linear16&sample_rate=8000&vad_events=yes", wantErr: "vad_events"},
		{name: "bad channels", query: "encoding=linear16&sample_rate=8000&channels=0", wantErr: "channels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseParams(q)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestG711Decode(t *testing.T) {
	tests := []struct {
		name string
		fn   func(byte) int16
		in   byte
		want int16
	}{
		{"mulaw zero", mulawToLinear, 0xff, 0},
		{"mulaw negative zero", mulawToLinear, 0x7f, 0},
		{"mulaw max", mulawToLinear, 0x80, 32124},
		{"mulaw min", mulawToLinear, 0x00, -32124},
		{"mulaw small", mulawToLinear, 0xfe, 8},
		{"alaw small positive", alawToLinear, 0xd5, 8},
		{"alaw small negative", alawToLinear, 0x55, -8},
		{"alaw max", alawToLinear, 0xaa, 32256},
		{"alaw min", alawToLinear, 0x2a, -32256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fn(tt.in); got != tt.want {
				t.Fatalf("decode(%#x) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestDetector(t *testing.T) {
	ms := time.Millisecond
	type seg struct {
		loud bool
		d    time.Duration
	}
	type ev struct {
		kind       detKind
		start, end time.Duration
	}
	tests := []struct {
		name         string
		segs         []seg
		endpointing  time.Duration
		utteranceEnd time.Duration
		interim      bool
		finish       bool
		want         []ev
	}{
		{
			name:        "one utterance",
			segs:        []seg{{true, 800 * ms}, {false, 400 * ms}},
			endpointing: 300 * ms,
			want:        []ev{{detSpeechStarted, 0, 0}, {detFinal, 0, 800 * ms}},
		},
		{
			name:        "blip shorter than onset is ignored",
			segs:        []seg{{false, 100 * ms}, {true, 40 * ms}, {false, 500 * ms}},
			endpointing: 300 * ms,
		},
		{
			name:        "short pause does not end speech",
			segs:        []seg{{false, 200 * ms}, {true, 300 * ms}, {false, 200 * ms}, {true, 300 * ms}, {false, 300 * ms}},
			endpointing: 300 * ms,
			want:        []ev{{detSpeechStarted, 200 * ms, 200 * ms}, {detFinal, 200 * ms, 1000 * ms}},
		},
		{
			name:         "utterance end after the gap",
			segs:         []seg{{true, 400 * ms}, {false, 1200 * ms}},
			endpointing:  300 * ms,
			utteranceEnd: time.Second,
			want:         []ev{{detSpeechStarted, 0, 0}, {detFinal, 0, 400 * ms}, {detUtteranceEnd, 400 * ms, 400 * ms}},
		},
		{
			name:         "speech resuming cancels utterance end",
			segs:         []seg{{true, 400 * ms}, {false, 500 * ms}, {true, 400 * ms}},
			endpointing:  300 * ms,
			utteranceEnd: time.Second,
			want:         []ev{{detSpeechStarted, 0, 0}, {detFinal, 0, 400 * ms}, {detSpeechStarted, 900 * ms, 900 * ms}},
		},
		{
			name:        "interim every 200 ms",
			segs:        []seg{{true, 500 * ms}, {false, 300 * ms}},
			endpointing: 300 * ms,
			interim:     true,
			want: []ev{{detSpeechStarted, 0, 0}, {detInterim, 0, 200 * ms}, {detInterim, 0, 400 * ms},
				{detInterim, 0, 600 * ms}, {detFinal, 0, 500 * ms}},
		},
		{
			name:        "finish ends speech in progress",
			segs:        []seg{{true, 300 * ms}},
			endpointing: 300 * ms,
			finish:      true,
			want:        []ev{{detSpeechStarted, 0, 0}, {detFinal, 0, 300 * ms}},
		},
		{
			name:        "endpointing disabled ends on the first quiet window",
			segs:        []seg{{true, 100 * ms}, {false, 20 * ms}},
			endpointing: 10 * ms,
			want:        []ev{{detSpeechStarted, 0, 0}, {detFinal, 0, 100 * ms}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDetector(rate, DefaultThreshold, tt.endpointing, tt.utteranceEnd, tt.interim)
			var got []detEvent
			for _, s := range tt.segs {
				pcm := providertest.Silence(rate, s.d)
				if s.loud {
					pcm = providertest.Tone(rate, s.d)
				}
				// Odd chunk sizes check that windows span feeds.
				for len(pcm) > 0 {
					n := min(37, len(pcm))
					got = d.feed(pcm[:n], got)
					pcm = pcm[n:]
				}
			}
			if tt.finish {
				got = d.finish(false, got)
			}
			var simple []ev
			for _, e := range got {
				simple = append(simple, ev{e.kind, e.start, e.end})
			}
			if !slices.Equal(simple, tt.want) {
				t.Fatalf("events = %+v\nwant     %+v", simple, tt.want)
			}
		})
	}
}

func TestUpgradeRejected(t *testing.T) {
	_, srv := startHTTPServer(t, Config{APIKey: "sekrit"})
	tests := []struct {
		name     string
		path     string
		auth     string
		status   int
		wantCode string
	}{
		{"no key", ListenPath + "?" + defaultQuery, "", http.StatusUnauthorized, "INVALID_AUTH"},
		{"wrong key", ListenPath + "?" + defaultQuery, "Token nope", http.StatusUnauthorized, "INVALID_AUTH"},
		{"wrong scheme", ListenPath + "?" + defaultQuery, "Bearer sekrit", http.StatusUnauthorized, "INVALID_AUTH"},
		{"bad encoding", ListenPath + "?encoding=flac&sample_rate=8000", "Token sekrit", http.StatusBadRequest, "Bad Request"},
		{"no sample rate", ListenPath + "?encoding=linear16", "Token sekrit", http.StatusBadRequest, "Bad Request"},
		{"wrong path", "/v1/speak?" + defaultQuery, "Token sekrit", http.StatusNotFound, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			h := http.Header{}
			if tt.auth != "" {
				h.Set("Authorization", tt.auth)
			}
			conn, resp, err := websocket.Dial(ctx, srv.URL+tt.path, &websocket.DialOptions{
				HTTPHeader: h,
				HTTPClient: srv.Client(),
			})
			if err == nil {
				_ = conn.CloseNow()
				t.Fatal("dial succeeded")
			}
			if resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("resp = %v, want status %d", resp, tt.status)
			}
			body, _ := io.ReadAll(resp.Body)
			var dg struct {
				ErrCode   string `json:"err_code"`
				ErrMsg    string `json:"err_msg"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(body, &dg); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if dg.ErrCode != tt.wantCode || dg.ErrMsg == "" || dg.RequestID == "" {
				t.Fatalf("body = %+v", dg)
			}
		})
	}
}

func TestUtterancesAndCloseStream(t *testing.T) {
	var mu sync.Mutex
	var onFinal []string
	fake, base := startServer(t, Config{
		APIKey:      "k",
		Transcripts: []string{"Hello there.", "second one"},
		OnFinal: func(text string, at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			onFinal = append(onFinal, text)
		},
	})
	conn := dial(t, base, defaultQuery, "k")
	audio := concat(providertest.Tone(rate, 800*time.Millisecond), providertest.Silence(rate, 600*time.Millisecond),
		providertest.Tone(rate, 800*time.Millisecond), providertest.Silence(rate, 600*time.Millisecond))
	sendPCM(t, conn, audio)
	sendControl(t, conn, "CloseStream")
	got, err := readAll(t, conn)
	wantClose(t, err, websocket.StatusNormalClosure, "")

	if want := []string{"SpeechStarted", "Results", "SpeechStarted", "Results", "Metadata"}; !slices.Equal(types(got), want) {
		t.Fatalf("messages = %v, want %v", types(got), want)
	}
	if got[0].Timestamp != 0 || got[2].Timestamp != 1.4 {
		t.Errorf("SpeechStarted timestamps = %v, %v", got[0].Timestamp, got[2].Timestamp)
	}
	for i, want := range map[int]struct {
		text            string
		start, duration float64
	}{1: {"Hello there.", 0, 0.8}, 3: {"second one", 1.4, 0.8}} {
		m := got[i]
		if !m.IsFinal || !m.SpeechFinal || m.FromFinalize {
			t.Errorf("message %d flags = %+v", i, m)
		}
		if text := m.transcript(t); text != want.text || m.Start != want.start || m.Duration != want.duration {
			t.Errorf("message %d = %q %v+%v, want %+v", i, text, m.Start, m.Duration, want)
		}
	}
	var r results
	if err := json.Unmarshal(got[1].Channel, &r.Channel); err != nil {
		t.Fatal(err)
	}
	words := r.Channel.Alternatives[0].Words
	if len(words) != 2 || words[0].Word != "hello" || words[0].PunctuatedWord != "Hello" ||
		words[0].Start != 0 || words[0].End != 0.4 || words[1].Start != 0.4 || words[1].End != 0.8 {
		t.Errorf("words = %+v", words)
	}
	if md := got[4]; md.Channels != 1 || md.RequestID == "" || len(md.SHA256) != 64 || md.Duration != 2.8 {
		t.Errorf("metadata = %+v", md)
	}

	mu.Lock()
	if !slices.Equal(onFinal, []string{"Hello there.", "second one"}) {
		t.Errorf("OnFinal saw %q", onFinal)
	}
	mu.Unlock()
	st := fake.Stats()
	if st.Connections != 1 || st.Finals != 2 || st.AudioBytes != int64(2*len(audio)) {
		t.Errorf("stats = %+v", st)
	}
}

func TestTranscriptsCyclePerConnection(t *testing.T) {
	_, base := startServer(t, Config{Transcripts: []string{"a", "b"}})
	utterance := concat(providertest.Tone(rate, 200*time.Millisecond), providertest.Silence(rate, 400*time.Millisecond))
	for conns := range 2 {
		conn := dial(t, base, "encoding=linear16&sample_rate=8000", "")
		sendPCM(t, conn, concat(utterance, utterance, utterance))
		sendControl(t, conn, "CloseStream")
		got, err := readAll(t, conn)
		wantClose(t, err, websocket.StatusNormalClosure, "")
		var texts []string
		for _, m := range got {
			if m.Type == "Results" {
				texts = append(texts, m.transcript(t))
			}
		}
		if !slices.Equal(texts, []string{"a", "b", "a"}) {
			t.Fatalf("connection %d: transcripts = %q", conns, texts)
		}
	}
}

func TestFinalize(t *testing.T) {
	_, base := startServer(t, Config{Transcripts: []string{"cut short"}})
	conn := dial(t, base, defaultQuery, "")
	sendPCM(t, conn, providertest.Tone(rate, 400*time.Millisecond))
	sendControl(t, conn, "Finalize")
	sendControl(t, conn, "CloseStream")
	got, err := readAll(t, conn)
	wantClose(t, err, websocket.StatusNormalClosure, "")
	if want := []string{"SpeechStarted", "Results", "Metadata"}; !slices.Equal(types(got), want) {
		t.Fatalf("messages = %v, want %v", types(got), want)
	}
	r := got[1]
	if !r.IsFinal || !r.SpeechFinal || !r.FromFinalize || r.transcript(t) != "cut short" || r.Duration != 0.4 {
		t.Fatalf("finalized result = %+v %q", r, r.transcript(t))
	}
}

func TestInterimRevealsWords(t *testing.T) {
	_, base := startServer(t, Config{Interim: true, Transcripts: []string{"one two three"}})
	conn := dial(t, base, defaultQuery+"&interim_results=true", "")
	sendPCM(t, conn, concat(providertest.Tone(rate, 800*time.Millisecond), providertest.Silence(rate, 400*time.Millisecond)))
	sendControl(t, conn, "CloseStream")
	got, err := readAll(t, conn)
	wantClose(t, err, websocket.StatusNormalClosure, "")
	var interims []string
	var final string
	for _, m := range got {
		if m.Type != "Results" {
			continue
		}
		if m.IsFinal {
			final = m.transcript(t)
			continue
		}
		if final != "" {
			t.Fatal("interim after final")
		}
		interims = append(interims, m.transcript(t))
	}
	if want := []string{"one", "one two", "one two three"}; !slices.Equal(interims, want) {
		t.Fatalf("interims = %q, want %q", interims, want)
	}
	if final != "one two three" {
		t.Fatalf("final = %q", final)
	}
}

func TestInterimOnlyWhenRequested(t *testing.T) {
	_, base := startServer(t, Config{Interim: true})
	conn := dial(t, base, defaultQuery, "")
	sendPCM(t, conn, concat(providertest.Tone(rate, 800*time.Millisecond), providertest.Silence(rate, 400*time.Millisecond)))
	sendControl(t, conn, "CloseStream")
	got, err := readAll(t, conn)
	wantClose(t, err, websocket.StatusNormalClosure, "")
	if want := []string{"SpeechStarted", "Results", "Metadata"}; !slices.Equal(types(got), want) {
		t.Fatalf("messages = %v, want %v", types(got), want)
	}
}

func TestUtteranceEndMessage(t *testing.T) {
	_, base := startServer(t, Config{})
	conn := dial(t, base, "encoding=linear16&sample_rate=8000&interim_results=true&utterance_end_ms=1000", "")
	sendPCM(t, conn, concat(providertest.Tone(rate, 500*time.Millisecond), providertest.Silence(rate, 1200*time.Millisecond)))
	sendControl(t, conn, "CloseStream")
	got, err := readAll(t, conn)
	wantClose(t, err, websocket.StatusNormalClosure, "")
	if want := []string{"Results", "UtteranceEnd", "Metadata"}; !slices.Equal(types(got), want) {
		t.Fatalf("messages = %v, want %v (vad_events off: no SpeechStarted)", types(got), want)
	}
	if got[1].LastWordEnd != 0.5 {
		t.Fatalf("last_word_end = %v", got[1].LastWordEnd)
	}
}

func TestCompandedEncodings(t *testing.T) {
	tests := []struct {
		encoding      string
		loud, quiet   []byte
		wantDurations float64
	}{
		// Alternating full-scale bytes make a loud square wave; the
		// encodings' zero bytes make silence.
		{"mulaw", []byte{0x80, 0x00}, []byte{0xff}, 0.5},
		{"alaw", []byte{0xaa, 0x2a}, []byte{0xd5}, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.encoding, func(t *testing.T) {
			fake, base := startServer(t, Config{})
			conn := dial(t, base, "encoding="+tt.encoding+"&sample_rate=8000", "")
			audio := append(repeat(tt.loud, 4000), repeat(tt.quiet, 4000)...) // 0.5 s + 0.5 s
			sendBytes(t, conn, audio, 160)
			sendControl(t, conn, "CloseStream")
			got, err := readAll(t, conn)
			wantClose(t, err, websocket.StatusNormalClosure, "")
			if want := []string{"Results", "Metadata"}; !slices.Equal(types(got), want) {
				t.Fatalf("messages = %v, want %v", types(got), want)
			}
			if got[0].Duration != tt.wantDurations || got[1].Duration != 1 {
				t.Fatalf("speech %v s, stream %v s", got[0].Duration, got[1].Duration)
			}
			if st := fake.Stats(); st.AudioBytes != 8000 {
				t.Fatalf("audio bytes = %d", st.AudioBytes)
			}
		})
	}
}

func repeat(pattern []byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = pattern[i%len(pattern)]
	}
	return out
}

func TestIdleTimeout(t *testing.T) {
	_, base := startServer(t, Config{IdleTimeout: 100 * time.Millisecond})
	conn := dial(t, base, defaultQuery, "")
	start := time.Now()
	_, err := readAll(t, conn)
	wantClose(t, err, websocket.StatusInternalError, IdleReason)
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("idle close took %v", el)
	}
}

func TestKeepAliveDefersIdleTimeout(t *testing.T) {
	_, base := startServer(t, Config{IdleTimeout: 300 * time.Millisecond})
	conn := dial(t, base, defaultQuery, "")
	for range 8 {
		time.Sleep(100 * time.Millisecond)
		sendControl(t, conn, "KeepAlive")
	}
	sendControl(t, conn, "CloseStream")
	got, err := readAll(t, conn)
	wantClose(t, err, websocket.StatusNormalClosure, "")
	if want := []string{"Metadata"}; !slices.Equal(types(got), want) {
		t.Fatalf("messages = %v, want %v", types(got), want)
	}
}

func TestFailAfter(t *testing.T) {
	fake, base := startServer(t, Config{FailAfter: 1})
	conn := dial(t, base, defaultQuery, "")
	utterance := concat(providertest.Tone(rate, 300*time.Millisecond), providertest.Silence(rate, 400*time.Millisecond))
	sendPCM(t, conn, utterance)
	got, err := readAll(t, conn)
	wantClose(t, err, websocket.StatusInternalError, FailReason)
	if want := []string{"SpeechStarted", "Results"}; !slices.Equal(types(got), want) {
		t.Fatalf("messages = %v, want %v", types(got), want)
	}
	if st := fake.Stats(); st.Finals != 1 || st.Connections != 1 {
		t.Fatalf("stats = %+v", st)
	}
}
