package gladia

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/parley-voice/parley/internal/stt"
)

// msgStopRecording ends the audio; the server sends its last results and
// closes the socket.
const msgStopRecording = `{"type":"stop_recording"}`

// initRequest is the body of POST /v2/live (the fields this adapter sets).
type initRequest struct {
	Model                             string              `json:"model"`
	Encoding                          string              `json:"encoding"`
	SampleRate                        int                 `json:"sample_rate"`
	BitDepth                          int                 `json:"bit_depth"`
	Channels                          int                 `json:"channels"`
	Endpointing                       float64             `json:"endpointing,omitempty"`
	MaximumDurationWithoutEndpointing float64             `json:"maximum_duration_without_endpointing,omitempty"`
	LanguageConfig                    *languageConfig     `json:"language_config,omitempty"`
	RealtimeProcessing                *realtimeProcessing `json:"realtime_processing,omitempty"`
	MessagesConfig                    messagesConfig      `json:"messages_config"`
}

type languageConfig struct {
	Languages     []string `json:"languages"`
	CodeSwitching bool     `json:"code_switching"`
}

type realtimeProcessing struct {
	CustomVocabulary       bool                    `json:"custom_vocabulary"`
	CustomVocabularyConfig *customVocabularyConfig `json:"custom_vocabulary_config,omitempty"`
}

type customVocabularyConfig struct {
	Vocabulary []string `json:"vocabulary"`
}

// messagesConfig chooses the server messages: transcripts, speech events
// and errors only.
type messagesConfig struct {
	ReceivePartialTranscripts       bool `json:"receive_partial_transcripts"`
	ReceiveFinalTranscripts         bool `json:"receive_final_transcripts"`
	ReceiveSpeechEvents             bool `json:"receive_speech_events"`
	ReceivePreProcessingEvents      bool `json:"receive_pre_processing_events"`
	ReceiveRealtimeProcessingEvents bool `json:"receive_realtime_processing_events"`
	ReceivePostProcessingEvents     bool `json:"receive_post_processing_events"`
	ReceiveAcknowledgments          bool `json:"receive_acknowledgments"`
	ReceiveErrors                   bool `json:"receive_errors"`
	ReceiveLifecycleEvents          bool `json:"receive_lifecycle_events"`
}

// initResponse is the answer to POST /v2/live.
type initResponse struct {
	ID  string `json:"id"`
	URL string `json:"url"`
}

// apiError is Gladia's HTTP error body.
type apiError struct {
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
	RequestID  string `json:"request_id"`
}

// wireTranscript is the data of a "transcript" message.
type wireTranscript struct {
	IsFinal   bool `json:"is_final"`
	Utterance struct {
		Text       string  `json:"text"`
		Start      float64 `json:"start"`
		End        float64 `json:"end"`
		Confidence float64 `json:"confidence"`
		Language   string  `json:"language"`
	} `json:"utterance"`
}

// wireSpeechEvent is the data of "speech_start" and "speech_end".
type wireSpeechEvent struct {
	Time float64 `json:"time"`
}

// wireError is the error of an "error" message.
type wireError struct {
	Message string `json:"message"`
	Code    string `json:"code"`
}

// message is one decoded server message.
type message struct {
	kind     string    // the wire "type"
	event    stt.Event // valid when hasEvent
	hasEvent bool
	// serverError is the explanation of an "error" message, or of the
	// "error" object Gladia attaches to a refused action's acknowledgment
	// (audio_chunk, stop_recording) or a failed add-on.
	serverError string
}

// parseMessage maps one server text message to what the stream does with
// it. Unknown types yield a message without an event.
func parseMessage(data []byte) (message, error) {
	var env struct {
		Type  string          `json:"type"`
		Data  json.RawMessage `json:"data"`
		Error *wireError      `json:"error"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return message{}, fmt.Errorf("decoding server message: %w", err)
	}
	m := message{kind: env.Type}
	switch env.Type {
	case "transcript":
		var t wireTranscript
		if err := decodeData(env.Data, &t); err != nil {
			return m, fmt.Errorf("decoding transcript: %w", err)
		}
		m.event = transcriptEvent(t)
		m.hasEvent = m.event.Text != ""
	case "speech_start", "speech_end":
		var s wireSpeechEvent
		if err := decodeData(env.Data, &s); err != nil {
			return m, fmt.Errorf("decoding %s: %w", env.Type, err)
		}
		at := seconds(s.Time)
		m.event = stt.Event{Type: stt.SpeechStarted, Start: at, End: at}
		if env.Type == "speech_end" {
			m.event.Type = stt.UtteranceEnd
		}
		m.hasEvent = true
	case "error":
		m.serverError = errorText(env.Error, env.Data)
	default:
		if env.Error != nil {
			m.serverError = errorText(env.Error, nil)
		}
	}
	return m, nil
}

// transcriptEvent maps a transcript: a final one is a whole endpointed
// utterance, so it also ends the utterance (SpeechFinal).
func transcriptEvent(t wireTranscript) stt.Event {
	ev := stt.Event{
		Type:       stt.Interim,
		Text:       t.Utterance.Text,
		Start:      seconds(t.Utterance.Start),
		End:        seconds(t.Utterance.End),
		Confidence: t.Utterance.Confidence,
	}
	if t.IsFinal {
		ev.Type = stt.Final
		ev.SpeechFinal = true
	}
	return ev
}

// decodeData requires a message's data object to be present.
func decodeData(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return fmt.Errorf("no data")
	}
	return json.Unmarshal(raw, v)
}

// errorText picks the explanation out of an "error" message, which carries
// it in "error" or in "data".
func errorText(e *wireError, data json.RawMessage) string {
	if e == nil {
		e = &wireError{}
		_ = json.Unmarshal(data, e)
	}
	switch {
	case e.Message != "" && e.Code != "":
		return e.Code + ": " + e.Message
	case e.Message != "":
		return e.Message
	case e.Code != "":
		return e.Code
	}
	return "unspecified error"
}

// seconds converts Gladia's float seconds to a Duration rounded to the
// microsecond.
func seconds(s float64) time.Duration {
	if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 {
		return 0
	}
	return time.Duration(math.Round(s*1e6)) * time.Microsecond
}
