package deepgram

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/stt"
)

func TestParseMessage(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name      string
		in        string
		wantKind  string
		wantEvent *stt.Event // nil: no event
		wantInfo  string
		wantErr   bool
	}{
		{
			name: "final speech_final",
			in: `{"type":"Results","channel_index":[0,1],"start":1.02,"duration":1.4,"is_final":true,"speech_final":true,
				"from_finalize":false,"channel":{"alternatives":[{"transcript":"hello there","confidence":0.98,
				"words":[{"word":"hello","start":1.02,"end":1.3,"confidence":0.99,"punctuated_word":"Hello"}]}]},
				"metadata":{"request_id":"r","model_uuid":"u","model_info":{"name":"n","version":"v","arch":"a"}}}`,
			wantKind:  "Results",
			wantEvent: &stt.Event{Type: stt.Final, Text: "hello there", SpeechFinal: true, Start: 1020 * ms, End: 2420 * ms, Confidence: 0.98},
		},
		{
			name:      "final segment without speech_final",
			in:        `{"type":"Results","start":0,"duration":0.5,"is_final":true,"speech_final":false,"channel":{"alternatives":[{"transcript":"so","confidence":0.5}]}}`,
			wantKind:  "Results",
			wantEvent: &stt.Event{Type: stt.Final, Text: "so", Start: 0, End: 500 * ms, Confidence: 0.5},
		},
		{
			name:      "empty speech_final still ends the utterance",
			in:        `{"type":"Results","start":2,"duration":0.3,"is_final":true,"speech_final":true,"channel":{"alternatives":[{"transcript":"","confidence":0}]}}`,
			wantKind:  "Results",
			wantEvent: &stt.Event{Type: stt.Final, SpeechFinal: true, Start: 2 * time.Second, End: 2300 * ms},
		},
		{
			name:     "empty final segment is dropped",
			in:       `{"type":"Results","start":2,"duration":0.3,"is_final":true,"speech_final":false,"channel":{"alternatives":[{"transcript":""}]}}`,
			wantKind: "Results",
		},
		{
			name:      "interim",
			in:        `{"type":"Results","start":0.5,"duration":0.2,"is_final":false,"speech_final":false,"channel":{"alternatives":[{"transcript":"hel","confidence":0.7}]}}`,
			wantKind:  "Results",
			wantEvent: &stt.Event{Type: stt.Interim, Text: "hel", Start: 500 * ms, End: 700 * ms, Confidence: 0.7},
		},
		{
			name:     "empty interim is dropped",
			in:       `{"type":"Results","start":0.5,"duration":0.2,"is_final":false,"channel":{"alternatives":[{"transcript":""}]}}`,
			wantKind: "Results",
		},
		{
			name:      "speech_final without alternatives",
			in:        `{"type":"Results","start":1,"duration":1,"is_final":true,"speech_final":true,"channel":{"alternatives":[]}}`,
			wantKind:  "Results",
			wantEvent: &stt.Event{Type: stt.Final, SpeechFinal: true, Start: time.Second, End: 2 * time.Second},
		},
		{
			name:      "utterance end",
			in:        `{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.4}`,
			wantKind:  "UtteranceEnd",
			wantEvent: &stt.Event{Type: stt.UtteranceEnd, Start: 2400 * ms, End: 2400 * ms},
		},
		{
			name:      "speech started",
			in:        `{"type":"SpeechStarted","channel":[0,1],"timestamp":0.9}`,
			wantKind:  "SpeechStarted",
			wantEvent: &stt.Event{Type: stt.SpeechStarted, Start: 900 * ms, End: 900 * ms},
		},
		{
			name:     "metadata",
			in:       `{"type":"Metadata","request_id":"abc","created":"2024-01-01T00:00:00Z","duration":3.2,"channels":1}`,
			wantKind: "Metadata",
			wantInfo: "request_id=abc duration=3.200s",
		},
		{
			name:     "in-band error",
			in:       `{"type":"Error","description":"Failed to decode audio.","variant":"DATA-0000"}`,
			wantKind: "Error",
			wantInfo: "Failed to decode audio.",
		},
		{
			name:     "unknown type is ignored",
			in:       `{"type":"SomethingNew","foo":1}`,
			wantKind: "SomethingNew",
		},
		{name: "not JSON", in: `nope`, wantErr: true},
		{name: "wrong shape", in: `{"type":"Results","start":"soon"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMessage([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.kind != tt.wantKind {
				t.Errorf("kind = %q, want %q", got.kind, tt.wantKind)
			}
			if (tt.wantEvent != nil) != got.hasEvent {
				t.Fatalf("hasEvent = %v, event %+v", got.hasEvent, got.event)
			}
			if tt.wantEvent != nil && got.event != *tt.wantEvent {
				t.Errorf("event = %+v\nwant    %+v", got.event, *tt.wantEvent)
			}
			if got.info != tt.wantInfo {
				t.Errorf("info = %q, want %q", got.info, tt.wantInfo)
			}
		})
	}
}

func TestCloseErrorText(t *testing.T) {
	tests := []struct {
		err  CloseError
		want []string
	}{
		{CloseError{Code: 1011, Reason: "NET-0001"}, []string{"1011", "internal error", `"NET-0001"`, "no audio or KeepAlive"}},
		{CloseError{Code: 1008, Reason: "DATA-0000", Detail: "Failed to decode audio."}, []string{"1008", "policy violation", "decode", "Failed to decode audio."}},
		{CloseError{Code: 4000}, []string{"status 4000"}},
	}
	for _, tt := range tests {
		msg := tt.err.Error()
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q lacks %q", msg, w)
			}
		}
	}
}

func TestSeconds(t *testing.T) {
	tests := []struct {
		in   float64
		want time.Duration
	}{
		{0, 0},
		{1.4, 1400 * time.Millisecond},
		{1.4 + 0.8, 2200 * time.Millisecond},
		{0.0000004, 0},
		{-1, 0},
	}
	for _, tt := range tests {
		if got := seconds(tt.in); got != tt.want {
			t.Errorf("seconds(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
