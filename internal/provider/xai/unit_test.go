package xai

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/tts"
)

func TestChooseFormat(t *testing.T) {
	tests := []struct {
		codec   string
		rate    int
		want    wireFormat
		wantErr string
	}{
		{CodecPCM, 8000, wireFormat{"pcm", 8000}, ""},
		{CodecMulaw, 8000, wireFormat{"mulaw", 8000}, ""},
		{CodecAlaw, 8000, wireFormat{"alaw", 8000}, ""},
		{CodecMulaw, 16000, wireFormat{"pcm", 16000}, ""},
		{CodecPCM, 48000, wireFormat{"pcm", 48000}, ""},
		{CodecPCM, 11025, wireFormat{"pcm", 16000}, ""},
		{CodecPCM, 32000, wireFormat{"pcm", 44100}, ""},
		{CodecPCM, 96000, wireFormat{"pcm", 48000}, ""},
		{CodecMulaw, 12000, wireFormat{"pcm", 16000}, ""},
		{CodecPCM, 0, wireFormat{}, "invalid sample rate"},
		{"mp3", 8000, wireFormat{}, "unsupported codec"},
	}
	for _, tc := range tests {
		got, err := chooseFormat(tc.codec, tc.rate)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("chooseFormat(%s, %d): %v, want error %q", tc.codec, tc.rate, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("chooseFormat(%s, %d) = %v, %v; want %v", tc.codec, tc.rate, got, err, tc.want)
		}
	}
}

func TestStreamURL(t *testing.T) {
	one, yes := 1, true
	tests := []struct {
		name, cfgBase string
		cfg           tts.Config
		want          string // scheme://host/path
		query         map[string]string
		absent        []string
		wantErr       string
	}{
		{name: "defaults", cfgBase: DefaultBaseURL, cfg: tts.Config{SampleRate: 8000},
			want: "wss://api.x.ai/v1/tts", query: map[string]string{"voice": "ara", "language": "auto", "codec": "pcm", "sample_rate": "8000"},
			absent: []string{"speed", "optimize_streaming_latency", "text_normalization"}},
		{name: "https base with path", cfgBase: "https://proxy.example/xai/", cfg: tts.Config{Voice: " EVE ", Language: "fr", SampleRate: 8000, Speed: 0.9},
			want: "wss://proxy.example/xai/v1/tts", query: map[string]string{"voice": "eve", "language": "fr", "speed": "0.9"}},
		{name: "options", cfgBase: "http://127.0.0.1:1", cfg: tts.Config{SampleRate: 8000, Options: map[string]any{
			"speed": 1.25, "optimize_streaming_latency": float64(one), "text_normalization": yes}},
			want: "ws://127.0.0.1:1/v1/tts", query: map[string]string{"speed": "1.25", "optimize_streaming_latency": "1", "text_normalization": "true"}},
		{name: "Speed wins over the option", cfgBase: DefaultBaseURL, cfg: tts.Config{SampleRate: 8000, Speed: 1.1, Options: map[string]any{"speed": 0.8}},
			want: "wss://api.x.ai/v1/tts", query: map[string]string{"speed": "1.1"}},
		{name: "json.Number option", cfgBase: DefaultBaseURL, cfg: tts.Config{SampleRate: 8000, Options: map[string]any{"optimize_streaming_latency": json.Number("2")}},
			want: "wss://api.x.ai/v1/tts", query: map[string]string{"optimize_streaming_latency": "2"}},
		{name: "bad scheme", cfgBase: "ftp://x", cfg: tts.Config{SampleRate: 8000}, wantErr: "scheme"},
		{name: "no host", cfgBase: "wss://", cfg: tts.Config{SampleRate: 8000}, wantErr: "no host"},
		{name: "speed not a number", cfgBase: DefaultBaseURL, cfg: tts.Config{Options: map[string]any{"speed": "fast"}}, wantErr: "option speed"},
		{name: "latency not an integer", cfgBase: DefaultBaseURL, cfg: tts.Config{Options: map[string]any{"optimize_streaming_latency": 1.5}}, wantErr: "optimize_streaming_latency"},
		{name: "normalization not a bool", cfgBase: DefaultBaseURL, cfg: tts.Config{Options: map[string]any{"text_normalization": "yes"}}, wantErr: "text_normalization"},
		{name: "negative speed", cfgBase: DefaultBaseURL, cfg: tts.Config{Speed: -1}, wantErr: "invalid speed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := buildURL(tc.cfgBase, tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if base := u.Scheme + "://" + u.Host + u.Path; base != tc.want {
				t.Errorf("address %s, want %s", base, tc.want)
			}
			q := u.Query()
			for k, v := range tc.query {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, q.Get(k), v)
				}
			}
			for _, k := range tc.absent {
				if q.Has(k) {
					t.Errorf("%s present: %q", k, q.Get(k))
				}
			}
		})
	}
}

// buildURL is Open's URL construction without the dial.
func buildURL(base string, cfg tts.Config) (string, error) {
	p, err := streamParams(cfg)
	if err != nil {
		return "", err
	}
	f, err := chooseFormat(CodecPCM, max(cfg.SampleRate, 8000))
	if err != nil {
		return "", err
	}
	return streamURL(base, p, f)
}

func TestBodyMessage(t *testing.T) {
	tests := []struct {
		body, code, msg string
	}{
		{`{"code":"Client specified an invalid argument","error":"Incorrect API key provided"}`, "Client specified an invalid argument", "Incorrect API key provided"},
		{`{"error":{"message":"slow down","code":"rate_limit"}}`, "rate_limit", "slow down"},
		{`{"message":"bad voice","code":400}`, "400", "bad voice"},
		{"  upstream timeout \n", "", "upstream timeout"},
		{"", "", ""},
		{strings.Repeat("x", 1000), "", strings.Repeat("x", maxErrorMessage) + "…"},
	}
	for _, tc := range tests {
		code, msg := bodyMessage([]byte(tc.body))
		if code != tc.code || msg != tc.msg {
			t.Errorf("bodyMessage(%.40q) = %q, %q; want %q, %q", tc.body, code, msg, tc.code, tc.msg)
		}
	}
}

// TestDecodePCMCarry: a sample split at any byte boundary is rebuilt.
func TestDecodePCMCarry(t *testing.T) {
	want := []int16{1, -2, 300, -32768, 32767, 0x1234}
	raw := make([]byte, 0, 2*len(want))
	for _, v := range want {
		raw = append(raw, byte(uint16(v)), byte(uint16(v)>>8))
	}
	for _, cuts := range [][]int{{1}, {3, 4}, {1, 2, 3, 5, 11}, {0, 12}} {
		d := &decoder{codec: CodecPCM}
		var got []int16
		prev := 0
		for _, c := range append(cuts, len(raw)) {
			got = append(got, d.decode(raw[prev:c])...)
			prev = c
		}
		if !slices.Equal(got, want) || d.pcm.Pending() {
			t.Errorf("cuts %v: got %v (pending %v), want %v", cuts, got, d.pcm.Pending(), want)
		}
	}
}

func TestAPIErrorText(t *testing.T) {
	tests := []struct {
		err  APIError
		want string
	}{
		{APIError{StatusCode: 401, Message: "Incorrect API key provided"}, "xai: the xAI API key was rejected (HTTP 401 Unauthorized): Incorrect API key provided"},
		{APIError{StatusCode: 429, Code: "rate_limit"}, "xai: websocket upgrade refused: HTTP 429 Too Many Requests [rate_limit]"},
		{APIError{CloseStatus: 1011, Message: "boom"}, "xai: stream closed by the service with status 1011: boom"},
		{APIError{Message: "bad text"}, "xai: service error: bad text"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
