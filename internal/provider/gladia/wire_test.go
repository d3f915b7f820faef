package gladia

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/stt"
)

func TestParseMessage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    stt.Event
		has     bool
		srvErr  string
		wantErr bool
	}{
		{name: "partial", in: `{"type":"transcript","data":{"is_final":false,"utterance":{"text":"hel","start":0.5,"end":0.9,"confidence":0.7}}}`,
			want: stt.Event{Type: stt.Interim, Text: "hel", Start: 500 * time.Millisecond, End: 900 * time.Millisecond, Confidence: 0.7}, has: true},
		{name: "final", in: `{"type":"transcript","data":{"is_final":true,"utterance":{"text":"hello","start":0.5,"end":1.4,"confidence":0.9}}}`,
			want: stt.Event{Type: stt.Final, Text: "hello", SpeechFinal: true, Start: 500 * time.Millisecond, End: 1400 * time.Millisecond, Confidence: 0.9}, has: true},
		{name: "empty partial", in: `{"type":"transcript","data":{"is_final":false,"utterance":{"text":""}}}`},
		{name: "speech start", in: `{"type":"speech_start","data":{"time":1.25,"channel":0}}`,
			want: stt.Event{Type: stt.SpeechStarted, Start: 1250 * time.Millisecond, End: 1250 * time.Millisecond}, has: true},
		{name: "speech end", in: `{"type":"speech_end","data":{"time":2}}`,
			want: stt.Event{Type: stt.UtteranceEnd, Start: 2 * time.Second, End: 2 * time.Second}, has: true},
		{name: "error in error", in: `{"type":"error","error":{"message":"bad audio","code":"E1"}}`, srvErr: "E1: bad audio"},
		{name: "error in data", in: `{"type":"error","data":{"message":"bad audio"}}`, srvErr: "bad audio"},
		{name: "error without text", in: `{"type":"error"}`, srvErr: "unspecified error"},
		{name: "refused ack", in: `{"type":"stop_recording","acknowledged":false,"error":{"message":"already stopped"},"data":null}`,
			srvErr: "already stopped"},
		{name: "ack ignored", in: `{"type":"audio_chunk","acknowledged":true,"data":{"byte_range":[0,800]}}`},
		{name: "post final ignored", in: `{"type":"post_final_transcript","data":{"transcription":{"full_transcript":"x"}}}`},
		{name: "truncated", in: `{"type":"transcript","data":{"is_final":`, wantErr: true},
		{name: "transcript without data", in: `{"type":"transcript"}`, wantErr: true},
		{name: "speech start wrong type", in: `{"type":"speech_start","data":{"time":"soon"}}`, wantErr: true},
		{name: "not an object", in: `[1,2]`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseMessage([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if m.hasEvent != tc.has || (tc.has && m.event != tc.want) || m.serverError != tc.srvErr {
				t.Fatalf("got event %+v (has %v, error %q), want %+v (has %v, error %q)", m.event, m.hasEvent, m.serverError, tc.want, tc.has, tc.srvErr)
			}
		})
	}
}

func TestBuildInitRequest(t *testing.T) {
	ulaw, _ := newEncoder(8000)
	for _, tc := range []struct {
		name          string
		sc            stt.Config
		endpointing   float64
		languages     []string // nil: no language_config
		codeSwitching bool
		vocab         []string
	}{
		{name: "defaults", sc: stt.Config{}},
		{name: "language region stripped", sc: stt.Config{Language: "en-US"}, languages: []string{"en"}},
		{name: "multi is detection", sc: stt.Config{Language: "multi"}},
		{name: "languages option wins", sc: stt.Config{Language: "en", Options: map[string]any{"languages": []any{"de", "FR", "de"}}},
			languages: []string{"de", "fr"}, codeSwitching: true},
		{name: "code switching alone", sc: stt.Config{Options: map[string]any{"code_switching": true}}, languages: []string{}, codeSwitching: true},
		{name: "endpointing from config", sc: stt.Config{Endpointing: 250 * time.Millisecond}, endpointing: 0.25},
		{name: "endpointing clamped low", sc: stt.Config{Endpointing: time.Millisecond}, endpointing: 0.01},
		{name: "endpointing clamped high", sc: stt.Config{Endpointing: time.Minute}, endpointing: 10},
		{name: "negative endpointing is default", sc: stt.Config{Endpointing: -1}},
		{name: "endpointing option in seconds", sc: stt.Config{Endpointing: time.Second, Options: map[string]any{"endpointing": 0.2}}, endpointing: 0.2},
		{name: "keyterms", sc: stt.Config{Keyterms: []string{" a ", "", "b", "a"}}, vocab: []string{"a", "b"}},
		{name: "custom_vocabulary option", sc: stt.Config{Keyterms: []string{"a"}, Options: map[string]any{"custom_vocabulary": []string{"c"}}},
			vocab: []string{"a", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := buildInitRequest(tc.sc, ulaw)
			if r.Model != DefaultModel || r.Encoding != "wav/ulaw" || r.SampleRate != 8000 || r.BitDepth != 8 || r.Channels != 1 {
				t.Fatalf("audio/model fields %+v", r)
			}
			if r.Endpointing != tc.endpointing {
				t.Errorf("endpointing %v, want %v", r.Endpointing, tc.endpointing)
			}
			switch {
			case tc.languages == nil && r.LanguageConfig != nil:
				t.Errorf("language_config %+v, want none", r.LanguageConfig)
			case tc.languages != nil && (r.LanguageConfig == nil || !slices.Equal(r.LanguageConfig.Languages, tc.languages) ||
				r.LanguageConfig.CodeSwitching != tc.codeSwitching):
				t.Errorf("language_config %+v, want %v code_switching %v", r.LanguageConfig, tc.languages, tc.codeSwitching)
			}
			var vocab []string
			if r.RealtimeProcessing != nil {
				vocab = r.RealtimeProcessing.CustomVocabularyConfig.Vocabulary
			}
			if !slices.Equal(vocab, tc.vocab) {
				t.Errorf("vocabulary %q, want %q", vocab, tc.vocab)
			}
			b, err := json.Marshal(r)
			if err != nil || !strings.Contains(string(b), `"receive_final_transcripts":true`) {
				t.Errorf("json %s (err %v)", b, err)
			}
		})
	}
}

func TestInitURL(t *testing.T) {
	for _, tc := range []struct {
		base, region, want string
		wantErr            bool
	}{
		{base: "https://api.gladia.io", region: "eu-west", want: "https://api.gladia.io/v2/live?region=eu-west"},
		{base: "HTTP://localhost:8080/proxy/", region: "us-west", want: "http://localhost:8080/proxy/v2/live?region=us-west"},
		{base: "https://api.gladia.io", want: "https://api.gladia.io/v2/live"},
		{base: "wss://api.gladia.io", wantErr: true},
		{base: "https:///nohost", wantErr: true},
	} {
		got, err := initURL(tc.base, tc.region)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("initURL(%q, %q) = %q, %v; want %q (error %v)", tc.base, tc.region, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestNewEncoder(t *testing.T) {
	for _, tc := range []struct {
		rate      int
		encoding  string
		wireRate  int
		chunk     int
		resampled bool
		wantErr   bool
	}{
		{rate: 8000, encoding: "wav/ulaw", wireRate: 8000, chunk: 800},
		{rate: 16000, encoding: "wav/pcm", wireRate: 16000, chunk: 3200},
		{rate: 44100, encoding: "wav/pcm", wireRate: 44100, chunk: 8820},
		{rate: 24000, encoding: "wav/pcm", wireRate: 16000, chunk: 3200, resampled: true},
		{rate: 0, wantErr: true},
	} {
		e, err := newEncoder(tc.rate)
		if (err != nil) != tc.wantErr {
			t.Fatalf("rate %d: err %v", tc.rate, err)
		}
		if err != nil {
			continue
		}
		if e.wireEncoding != tc.encoding || e.wireRate != tc.wireRate || e.chunkBytes() != tc.chunk || (e.resampler != nil) != tc.resampled {
			t.Errorf("rate %d: %s %d Hz chunk %d resampled %v; want %s %d Hz chunk %d resampled %v", tc.rate,
				e.wireEncoding, e.wireRate, e.chunkBytes(), e.resampler != nil, tc.encoding, tc.wireRate, tc.chunk, tc.resampled)
		}
	}
}

// TestQueueDropsOldest: a full send queue drops its oldest chunks, keeps
// the newest and counts the drops; Close's flush queues a short last chunk.
func TestQueueDropsOldest(t *testing.T) {
	s := &Stream{maxChunks: 2}
	for i := range 5 {
		s.pending = append(s.pending, slices.Repeat([]byte{byte(i)}, 4)...)
	}
	s.pending = append(s.pending, 9, 9)
	if !s.queueChunksLocked(4) {
		t.Fatal("nothing queued")
	}
	if s.dropped != 3 || len(s.queue) != 2 || s.queue[0][0] != 3 || s.queue[1][0] != 4 || !slices.Equal(s.pending, []byte{9, 9}) {
		t.Fatalf("dropped %d, queue %v, pending %v", s.dropped, s.queue, s.pending)
	}
	s.queueChunksLocked(0)
	if len(s.queue) != 2 || !slices.Equal(s.queue[1], []byte{9, 9}) || len(s.pending) != 0 || s.dropped != 4 {
		t.Fatalf("after flush: dropped %d, queue %v, pending %v", s.dropped, s.queue, s.pending)
	}
}

// A websocket URL that does not parse is refused without quoting it: it
// carries the session token.
func TestCheckWebsocketURLHidesTheToken(t *testing.T) {
	err := checkWebsocketURL("wss://[api.gladia.io/v2/live?token=secret-session-token")
	if err == nil || strings.Contains(err.Error(), "secret-session-token") {
		t.Fatalf("checkWebsocketURL: %v, want an error without the token", err)
	}
}
