package inworld

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/tts"
)

func TestServiceRate(t *testing.T) {
	tests := []struct {
		pipeline, forced, want int
		wantErr                bool
	}{
		{8000, 0, 8000, false},
		{16000, 0, 16000, false},
		{11025, 0, 16000, false},
		{48000, 0, 48000, false},
		{8000, 24000, 24000, false},
		{96000, 0, 0, true},
		{0, 0, 0, true},
		{-8000, 24000, 0, true},
	}
	for _, tt := range tests {
		got, err := serviceRate(tt.pipeline, tt.forced)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("serviceRate(%d, %d) = %d, %v; want %d, error %v", tt.pipeline, tt.forced, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestStreamURL(t *testing.T) {
	tests := []struct {
		base, want string
		wantErr    bool
	}{
		{DefaultBaseURL, "wss://api.inworld.ai/tts/v1/voice:streamBidirectional", false},
		{"https://api.inworld.ai/", "wss://api.inworld.ai/tts/v1/voice:streamBidirectional", false},
		{"http://127.0.0.1:8080/prefix", "ws://127.0.0.1:8080/prefix/tts/v1/voice:streamBidirectional", false},
		{"ws://h?x=1#f", "ws://h/tts/v1/voice:streamBidirectional", false},
		{"ftp://h", "", true},
		{"https://", "", true},
		{"://bad", "", true},
	}
	for _, tt := range tests {
		got, err := streamURL(tt.base)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("streamURL(%q) = %q, %v; want %q, error %v", tt.base, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCreateRequest(t *testing.T) {
	p := NewTTS(Config{})
	tests := []struct {
		name    string
		cfg     tts.Config
		want    string // the create body as JSON
		wantErr string
	}{
		{"defaults", tts.Config{Voice: "Ashley", SampleRate: 8000},
			`{"voiceId":"Ashley","modelId":"inworld-tts-2","audioConfig":{"audioEncoding":"LINEAR16","sampleRateHertz":8000}}`, ""},
		{"speed option when Speed is zero", tts.Config{Voice: "v", SampleRate: 8000, Options: map[string]any{"speed": json.Number("0.5")}},
			`{"voiceId":"v","modelId":"inworld-tts-2","audioConfig":{"audioEncoding":"LINEAR16","sampleRateHertz":8000,"speakingRate":0.5}}`, ""},
		{"Speed wins over the option", tts.Config{Voice: "v", SampleRate: 8000, Speed: 2, Options: map[string]any{"speed": 0.7}},
			`{"voiceId":"v","modelId":"inworld-tts-2","audioConfig":{"audioEncoding":"LINEAR16","sampleRateHertz":8000,"speakingRate":2}}`, ""},
		{"null options ignored", tts.Config{Voice: "v", SampleRate: 8000, Options: map[string]any{"temperature": nil, "delivery_mode": nil}},
			`{"voiceId":"v","modelId":"inworld-tts-2","audioConfig":{"audioEncoding":"LINEAR16","sampleRateHertz":8000}}`, ""},
		{"temperature zero is sent", tts.Config{Voice: "v", SampleRate: 8000, Options: map[string]any{"temperature": 0}},
			`{"voiceId":"v","modelId":"inworld-tts-2","audioConfig":{"audioEncoding":"LINEAR16","sampleRateHertz":8000},"temperature":0}`, ""},
		{"blank voice", tts.Config{Voice: " ", SampleRate: 8000}, "", "no voice"},
		{"slow", tts.Config{Voice: "v", SampleRate: 8000, Speed: 0.4}, "", "speed 0.4"},
		{"temperature type", tts.Config{Voice: "v", SampleRate: 8000, Options: map[string]any{"temperature": "hot"}}, "", "option temperature"},
		{"delivery type", tts.Config{Voice: "v", SampleRate: 8000, Options: map[string]any{"delivery_mode": 1}}, "", "want a string"},
		{"normalization value", tts.Config{Voice: "v", SampleRate: 8000, Options: map[string]any{"apply_text_normalization": "maybe"}}, "", "ON, OFF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := p.createRequest(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(c)
			if string(b) != tt.want {
				t.Errorf("create =\n%s\nwant\n%s", b, tt.want)
			}
		})
	}
}

func TestClientMessageShapes(t *testing.T) {
	tests := []struct {
		m    clientMessage
		want string
	}{
		{clientMessage{ContextID: "c1", SendText: &sendText{Text: "Hi. "}}, `{"contextId":"c1","send_text":{"text":"Hi. "}}`},
		{clientMessage{ContextID: "c1", FlushContext: &struct{}{}}, `{"contextId":"c1","flush_context":{}}`},
		{clientMessage{ContextID: "c1", CloseContext: &struct{}{}}, `{"contextId":"c1","close_context":{}}`},
	}
	for _, tt := range tests {
		b, _ := json.Marshal(tt.m)
		if string(b) != tt.want {
			t.Errorf("got %s, want %s", b, tt.want)
		}
	}
}

func TestBodyMessage(t *testing.T) {
	tests := []struct {
		body     string
		wantCode int
		wantMsg  string
	}{
		{`{"code":16,"message":"Unauthenticated","details":[]}`, 16, "Unauthenticated"},
		{`{"error":{"code":8,"message":"quota"}}`, 8, "quota"},
		{`upstream connect error`, 0, "upstream connect error"},
		{``, 0, ""},
		{strings.Repeat("x", 300), 0, strings.Repeat("x", 200) + "…"},
	}
	for _, tt := range tests {
		code, msg := bodyMessage([]byte(tt.body))
		if code != tt.wantCode || msg != tt.wantMsg {
			t.Errorf("bodyMessage(%.30q) = %d, %q; want %d, %q", tt.body, code, msg, tt.wantCode, tt.wantMsg)
		}
	}
}

func TestServerErrorText(t *testing.T) {
	tests := []struct {
		err  ServerError
		want string
	}{
		{ServerError{HTTPStatus: 401, Code: 16, Message: "bad"}, "inworld: websocket upgrade refused: HTTP 401 Unauthorized [UNAUTHENTICATED]: bad (check the Inworld API key)"},
		{ServerError{Code: 3, Message: "unknown voice"}, "inworld: service error [INVALID_ARGUMENT]: unknown voice"},
		{ServerError{CloseStatus: 1011}, "inworld: stream closed by the service with status 1011 (StatusInternalError)"},
		{ServerError{Code: 42}, "inworld: service error [code 42]"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
}

// b64 encodes PCM16 LE samples, optionally behind a WAV header at rate.
func b64(pcm []int16, headerRate int) string {
	var buf bytes.Buffer
	if headerRate > 0 {
		_ = audio.WriteWAV(&buf, nil, headerRate)
	}
	for _, s := range pcm {
		_ = binary.Write(&buf, binary.LittleEndian, s)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

func TestConverter(t *testing.T) {
	ramp := make([]int16, 10)
	for i := range ramp {
		ramp[i] = int16(i*3001 - 15000)
	}
	raw := make([]byte, 0, 20)
	for _, s := range ramp {
		raw = binary.LittleEndian.AppendUint16(raw, uint16(s))
	}
	c, err := newConverter(8000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	// Split a sample: 5 bytes, then 15.
	var got []int16
	for _, piece := range [][]byte{raw[:5], raw[5:]} {
		pcm, err := c.decode(base64.StdEncoding.EncodeToString(piece))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pcm...)
	}
	if !slices.Equal(got, ramp) {
		t.Errorf("split sample: got %v, want %v", got, ramp)
	}
	// A header at the same rate is stripped.
	pcm, err := c.decode(b64(ramp, 8000))
	if err != nil || !slices.Equal(pcm, ramp) {
		t.Errorf("with header: %v, %v", pcm, err)
	}
	if tail, partial := c.finish(); len(tail) != 0 || partial {
		t.Errorf("finish = %v, %v", tail, partial)
	}
	// A trailing odd byte is reported.
	if _, err := c.decode(base64.StdEncoding.EncodeToString(raw[:3])); err != nil {
		t.Fatal(err)
	}
	if _, partial := c.finish(); !partial {
		t.Error("half a sample not reported")
	}
	if _, err := c.decode("!!!"); err == nil {
		t.Error("bad base64 accepted")
	}
	if _, err := c.decode(base64.StdEncoding.EncodeToString([]byte("RIFF\x00\x00\x00\x00WAVEjunk"))); err == nil {
		t.Error("truncated WAV header accepted")
	}
}

func TestConverterFollowsHeaderRate(t *testing.T) {
	// The service was asked for 8000 Hz but a header says 16000: the audio
	// is resampled from the header's rate.
	tone := audio.Tone(440, 16000, 1600, 8000)
	c, err := newConverter(8000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := c.decode(b64(tone, 16000))
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := c.finish()
	pcm = append(pcm, tail...)
	if len(pcm) != 800 {
		t.Fatalf("%d samples, want 800 (100 ms at 8 kHz)", len(pcm))
	}
	if g := audio.Goertzel(pcm, 8000, 440); g < 1000 {
		t.Errorf("tone lost (Goertzel %.0f)", g)
	}
}
