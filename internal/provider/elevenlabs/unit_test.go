package elevenlabs

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/tts"
)

func TestOutputFormat(t *testing.T) {
	tests := []struct {
		rate    int
		want    string
		wantErr bool
	}{
		{8000, "pcm_8000", false},
		{16000, "pcm_16000", false},
		{22050, "pcm_22050", false},
		{24000, "pcm_24000", false},
		{44100, "pcm_44100", false},
		{48000, "pcm_48000", false},
		{0, "", true},
		{11025, "", true},
		{-8000, "", true},
	}
	for _, tt := range tests {
		got, err := outputFormat(tt.rate)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("outputFormat(%d) = %q, %v", tt.rate, got, err)
		}
	}
}

func TestVoiceSettings(t *testing.T) {
	tests := []struct {
		name    string
		cfg     tts.Config
		want    map[string]any
		wantErr string
	}{
		{name: "nothing", cfg: tts.Config{}, want: nil},
		{name: "unrelated keys", cfg: tts.Config{Options: map[string]any{"voice_name": "Rachel"}}, want: nil},
		{
			name: "all keys",
			cfg: tts.Config{Options: map[string]any{
				"stability": 0.5, "similarity_boost": 0.8, "style": 0, "use_speaker_boost": true, "speed": 1.0,
			}},
			want: map[string]any{"stability": 0.5, "similarity_boost": 0.8, "style": 0.0, "use_speaker_boost": true, "speed": 1.0},
		},
		{name: "Speed wins", cfg: tts.Config{Speed: 1.2, Options: map[string]any{"speed": 0.9}}, want: map[string]any{"speed": 1.2}},
		{name: "Speed alone", cfg: tts.Config{Speed: 0.7}, want: map[string]any{"speed": 0.7}},
		{name: "null is absent", cfg: tts.Config{Options: map[string]any{"stability": nil, "use_speaker_boost": nil}}, want: nil},
		{name: "json.Number", cfg: tts.Config{Options: map[string]any{"style": json.Number("0.25")}}, want: map[string]any{"style": 0.25}},
		{name: "float32 and int64", cfg: tts.Config{Options: map[string]any{"style": float32(0.5), "stability": int64(1)}}, want: map[string]any{"style": 0.5, "stability": 1.0}},
		{name: "string number", cfg: tts.Config{Options: map[string]any{"stability": "0.5"}}, wantErr: "stability"},
		{name: "bad json.Number", cfg: tts.Config{Options: map[string]any{"stability": json.Number("x")}}, wantErr: "stability"},
		{name: "boolean as number", cfg: tts.Config{Options: map[string]any{"use_speaker_boost": 1.0}}, wantErr: "use_speaker_boost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := voiceSettings(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tt.want == nil) || !mapsEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStreamURL(t *testing.T) {
	tests := []struct {
		base, voice, model, format, lang string
		want                             string
		wantErr                          bool
	}{
		{
			base: DefaultBaseURL, voice: "21m00Tcm4TlvDq8ikWAM", model: DefaultModel, format: "pcm_8000",
			want: "wss://api.elevenlabs.io/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream-input?model_id=eleven_flash_v2_5&output_format=pcm_8000",
		},
		{
			base: "http://127.0.0.1:8080/", voice: "a/b c", model: "m", format: "pcm_16000", lang: "pt",
			want: "ws://127.0.0.1:8080/v1/text-to-speech/a%2Fb%20c/stream-input?language_code=pt&model_id=m&output_format=pcm_16000",
		},
		{
			base: "https://proxy.example.com/eleven", voice: "x?y#z%", model: "m", format: "pcm_24000",
			want: "wss://proxy.example.com/eleven/v1/text-to-speech/x%3Fy%23z%25/stream-input?model_id=m&output_format=pcm_24000",
		},
		{
			base: "ws://host", voice: "v", model: "m", format: "pcm_8000",
			want: "ws://host/v1/text-to-speech/v/stream-input?model_id=m&output_format=pcm_8000",
		},
		{base: "ftp://host", voice: "v", wantErr: true},
		{base: "wss://", voice: "v", wantErr: true},
		{base: "::bad", voice: "v", wantErr: true},
	}
	for _, tt := range tests {
		got, err := streamURL(tt.base, tt.voice, tt.model, tt.format, tt.lang)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("streamURL(%q, %q) = %q, %v; want %q", tt.base, tt.voice, got, err, tt.want)
		}
	}
}

func pcmBytes(samples ...int16) []byte {
	b := make([]byte, 2*len(samples))
	for i, s := range samples {
		b[2*i] = byte(uint16(s))
		b[2*i+1] = byte(uint16(s) >> 8)
	}
	return b
}

func TestPCMDecoder(t *testing.T) {
	all := pcmBytes(1, -1, 256, -32768, 32767, 0x1234)
	tests := []struct {
		name   string
		pieces [][]byte
		want   [][]int16 // per piece
	}{
		{"whole samples", [][]byte{all}, [][]int16{{1, -1, 256, -32768, 32767, 0x1234}}},
		{"odd split", [][]byte{all[:3], all[3:]}, [][]int16{{1}, {-1, 256, -32768, 32767, 0x1234}}},
		{"byte by byte", [][]byte{all[:1], all[1:2], all[2:3], all[3:4]}, [][]int16{{}, {1}, {}, {-1}}},
		{"odd, odd", [][]byte{all[:5], all[5:7], all[7:]}, [][]int16{{1, -1}, {256}, {-32768, 32767, 0x1234}}},
		{"empty piece keeps the carry", [][]byte{all[:1], {}, all[1:4]}, [][]int16{{}, {}, {1, -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d pcmDecoder
			for i, p := range tt.pieces {
				got, err := d.decode(base64.StdEncoding.EncodeToString(p))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, tt.want[i]) {
					t.Errorf("piece %d: %v, want %v", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestPCMDecoderOwnsNothing(t *testing.T) {
	var d pcmDecoder
	a, _ := d.decode(base64.StdEncoding.EncodeToString(pcmBytes(1, 2)))
	b, _ := d.decode(base64.StdEncoding.EncodeToString(pcmBytes(3, 4)))
	if !slices.Equal(a, []int16{1, 2}) || !slices.Equal(b, []int16{3, 4}) {
		t.Errorf("chunks share memory: %v %v", a, b)
	}
	if _, err := d.decode("not base64!"); err == nil {
		t.Error("decoded garbage")
	}
}

func TestBodyMessage(t *testing.T) {
	tests := []struct {
		body, kind, msg string
	}{
		{`{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}`, "invalid_api_key", "Invalid API key"},
		{`{"detail":"Not found"}`, "", "Not found"},
		{`{"message":"Slow down","error":"rate_limited"}`, "rate_limited", "Slow down"},
		{`{"message":"Oops","error":{"x":1}}`, `{"x":1}`, "Oops"},
		{"  Bad Gateway\n", "", "Bad Gateway"},
		{"", "", ""},
		{strings.Repeat("x", 300), "", strings.Repeat("x", 200) + "…"},
		{`{"other":1}`, "", `{"other":1}`},
	}
	for _, tt := range tests {
		kind, msg := bodyMessage([]byte(tt.body))
		if kind != tt.kind || msg != tt.msg {
			t.Errorf("bodyMessage(%q) = %q, %q; want %q, %q", tt.body, kind, msg, tt.kind, tt.msg)
		}
	}
}

func TestRawInt(t *testing.T) {
	tests := []struct {
		raw  string
		want int
	}{
		{`1008`, 1008}, {`"1011"`, 1011}, {`null`, 0}, {``, 0}, {`1.5`, 0}, {`{}`, 0},
	}
	for _, tt := range tests {
		if got := rawInt(json.RawMessage(tt.raw)); got != tt.want {
			t.Errorf("rawInt(%s) = %d, want %d", tt.raw, got, tt.want)
		}
	}
}

func TestServerErrorText(t *testing.T) {
	tests := []struct {
		err  ServerError
		want string
	}{
		{ServerError{HTTPStatus: 401, Kind: "invalid_api_key", Message: "Invalid API key"},
			"elevenlabs: websocket upgrade refused: HTTP 401 Unauthorized [invalid_api_key]: Invalid API key (check the ElevenLabs API key)"},
		{ServerError{CloseStatus: 1008, Message: "Invalid API key"},
			"elevenlabs: stream closed by the service with status 1008 (StatusPolicyViolation): Invalid API key"},
		{ServerError{Kind: "auth_error", Message: "bad key"},
			"elevenlabs: service error [auth_error]: bad key (check the ElevenLabs API key)"},
		{ServerError{Kind: "quota_exceeded", Code: 1008, Message: "Quota exceeded"},
			"elevenlabs: service error [quota_exceeded] code 1008: Quota exceeded"},
		{ServerError{CloseStatus: 1011}, "elevenlabs: stream closed by the service with status 1011 (StatusInternalError)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
}

func TestIsErrorMessage(t *testing.T) {
	tests := []struct {
		msg  string
		want bool
	}{
		{`{"audio":"AAA=","isFinal":null}`, false},
		{`{"isFinal":true}`, false},
		{`{"error":"x"}`, true},
		{`{"error":null,"audio":"AAA="}`, false},
		{`{"message":"Invalid"}`, true},
		{`{"message":"info","audio":"AAA="}`, false},
	}
	for _, tt := range tests {
		var m serverMessage
		if err := json.Unmarshal([]byte(tt.msg), &m); err != nil {
			t.Fatal(err)
		}
		if got := m.isError(); got != tt.want {
			t.Errorf("isError(%s) = %v", tt.msg, got)
		}
	}
}

// oneSecond returns 1 s of 24 kHz PCM as ten 100 ms base64 pieces and as
// the audio messages carrying them.
func oneSecond(b *testing.B) ([]string, [][]byte) {
	const rate = 24000
	samples := make([]int16, rate)
	for i := range samples {
		samples[i] = int16(6000 * math.Sin(2*math.Pi*440*float64(i)/rate))
	}
	raw := pcmBytes(samples...)
	var pieces []string
	var msgs [][]byte
	for off := 0; off < len(raw); off += len(raw) / 10 {
		p := base64.StdEncoding.EncodeToString(raw[off : off+len(raw)/10])
		pieces = append(pieces, p)
		m, err := json.Marshal(map[string]any{
			"audio": p, "isFinal": nil,
			"alignment": map[string]any{"chars": []string{"a", "b"}, "charStartTimesMs": []int{0, 50}, "charDurationsMs": []int{50, 50}},
		})
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	return pieces, msgs
}

// BenchmarkDecodeAudio decodes 1 s of 24 kHz base64 PCM.
func BenchmarkDecodeAudio(b *testing.B) {
	pieces, _ := oneSecond(b)
	b.SetBytes(2 * 24000)
	b.ReportAllocs()
	var d pcmDecoder
	for b.Loop() {
		for _, p := range pieces {
			if _, err := d.decode(p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDecodeMessages decodes 1 s of 24 kHz audio messages, JSON
// included, as the reader does.
func BenchmarkDecodeMessages(b *testing.B) {
	_, msgs := oneSecond(b)
	b.SetBytes(2 * 24000)
	b.ReportAllocs()
	var d pcmDecoder
	for b.Loop() {
		for _, data := range msgs {
			var m serverMessage
			if err := json.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
			if _, err := d.decode(m.Audio); err != nil {
				b.Fatal(err)
			}
		}
	}
}
