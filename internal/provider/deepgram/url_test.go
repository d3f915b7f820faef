package deepgram

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/stt"
)

func TestListenURL(t *testing.T) {
	base := url.Values{
		"model":           {"nova-3"},
		"language":        {"en"},
		"encoding":        {"linear16"},
		"sample_rate":     {"8000"},
		"channels":        {"1"},
		"interim_results": {"true"},
		"vad_events":      {"true"},
		"punctuate":       {"true"},
		"endpointing":     {"300"},
	}
	with := func(changes map[string][]string) url.Values {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		for k, vs := range changes {
			if vs == nil {
				delete(v, k)
				continue
			}
			v[k] = vs
		}
		return v
	}

	tests := []struct {
		name       string
		base       string
		cfg        stt.Config
		wantPrefix string
		wantQuery  url.Values
		wantRaw    string // substring of the raw query, when encoding matters
		wantErr    string
	}{
		{
			name:       "defaults",
			cfg:        stt.Config{SampleRate: 8000},
			wantPrefix: "wss://api.deepgram.com/v1/listen?",
			wantQuery:  base,
		},
		{
			name:       "http base with a path maps to ws",
			base:       "http://127.0.0.1:8080/proxy/",
			cfg:        stt.Config{SampleRate: 8000},
			wantPrefix: "ws://127.0.0.1:8080/proxy/v1/listen?",
			wantQuery:  base,
		},
		{
			name:       "https base maps to wss",
			base:       "https://dg.example.com",
			cfg:        stt.Config{SampleRate: 16000, Model: "nova-3-medical", Language: "en-US"},
			wantPrefix: "wss://dg.example.com/v1/listen?",
			wantQuery:  with(map[string][]string{"sample_rate": {"16000"}, "model": {"nova-3-medical"}, "language": {"en-US"}}),
		},
		{
			name:      "nova-3 keyterms repeat and encode spaces as %20",
			cfg:       stt.Config{SampleRate: 8000, Keyterms: []string{"Parley Voice", " ", "SIP+RTP"}},
			wantQuery: with(map[string][]string{"keyterm": {"Parley Voice", "SIP+RTP"}}),
			wantRaw:   "keyterm=Parley%20Voice&keyterm=SIP%2BRTP",
		},
		{
			name:      "other models use keywords",
			cfg:       stt.Config{SampleRate: 8000, Model: "nova-2-phonecall", Keyterms: []string{"parley:2"}},
			wantQuery: with(map[string][]string{"model": {"nova-2-phonecall"}, "keywords": {"parley:2"}}),
		},
		{
			name:      "endpointing and utterance end from config",
			cfg:       stt.Config{SampleRate: 8000, Endpointing: 500 * time.Millisecond, UtteranceEnd: 1500 * time.Millisecond},
			wantQuery: with(map[string][]string{"endpointing": {"500"}, "utterance_end_ms": {"1500"}}),
		},
		{
			name:      "utterance end below 1000 ms is off, negative endpointing disables",
			cfg:       stt.Config{SampleRate: 8000, Endpointing: -1, UtteranceEnd: 999 * time.Millisecond},
			wantQuery: with(map[string][]string{"endpointing": {"false"}}),
		},
		{
			name: "options",
			cfg: stt.Config{SampleRate: 8000, Options: map[string]any{
				"smart_format":     true,
				"numerals":         "true",
				"filler_words":     false,
				"no_delay":         1.0, // not a boolean: ignored
				"diarize":          true,
				"endpointing":      float64(200),
				"utterance_end_ms": float64(2000),
			}},
			wantQuery: with(map[string][]string{
				"smart_format":     {"true"},
				"numerals":         {"true"},
				"filler_words":     {"false"},
				"endpointing":      {"200"},
				"utterance_end_ms": {"2000"},
			}),
		},
		{
			name: "options disable endpointing and utterance end",
			cfg: stt.Config{SampleRate: 8000, UtteranceEnd: 2 * time.Second, Options: map[string]any{
				"endpointing":      false,
				"utterance_end_ms": float64(0),
			}},
			wantQuery: with(map[string][]string{"endpointing": {"false"}}),
		},
		{
			name:      "fractional option numbers are ignored",
			cfg:       stt.Config{SampleRate: 8000, Options: map[string]any{"endpointing": 12.5, "utterance_end_ms": 500.0}},
			wantQuery: base,
		},
		{name: "sample rate required", cfg: stt.Config{}, wantErr: "sample rate"},
		{name: "bad scheme", base: "ftp://example.com", cfg: stt.Config{SampleRate: 8000}, wantErr: "scheme"},
		{name: "no host", base: "wss://", cfg: stt.Config{SampleRate: 8000}, wantErr: "no host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := listenURL(tt.base, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			prefix := tt.wantPrefix
			if prefix == "" {
				prefix = "wss://api.deepgram.com/v1/listen?"
			}
			if !strings.HasPrefix(got, prefix) {
				t.Fatalf("url = %s, want prefix %s", got, prefix)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if q := u.Query(); q.Encode() != tt.wantQuery.Encode() {
				t.Fatalf("query\n got %s\nwant %s", q.Encode(), tt.wantQuery.Encode())
			}
			if tt.wantRaw != "" && !strings.Contains(u.RawQuery, tt.wantRaw) {
				t.Fatalf("raw query %s lacks %s", u.RawQuery, tt.wantRaw)
			}
			if strings.Contains(u.RawQuery, "+") {
				t.Fatalf("raw query %s contains '+'", u.RawQuery)
			}
		})
	}
}
