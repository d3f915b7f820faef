package deepgram

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/parley-voice/parley/internal/stt"
)

// Client → server control messages.
const (
	msgKeepAlive   = `{"type":"KeepAlive"}`
	msgFinalize    = `{"type":"Finalize"}`
	msgCloseStream = `{"type":"CloseStream"}`
)

// wireResults is a Deepgram "Results" message (the fields this adapter uses).
type wireResults struct {
	Start        float64 `json:"start"`
	Duration     float64 `json:"duration"`
	IsFinal      bool    `json:"is_final"`
	SpeechFinal  bool    `json:"speech_final"`
	FromFinalize bool    `json:"from_finalize"`
	Channel      struct {
		Alternatives []struct {
			Transcript string  `json:"transcript"`
			Confidence float64 `json:"confidence"`
		} `json:"alternatives"`
	} `json:"channel"`
}

// wireUtteranceEnd is a Deepgram "UtteranceEnd" message.
type wireUtteranceEnd struct {
	LastWordEnd float64 `json:"last_word_end"`
}

// wireSpeechStarted is a Deepgram "SpeechStarted" message.
type wireSpeechStarted struct {
	Timestamp float64 `json:"timestamp"`
}

// wireMetadata is a Deepgram "Metadata" message.
type wireMetadata struct {
	RequestID string  `json:"request_id"`
	Duration  float64 `json:"duration"`
}

// wireError is an in-band error message some Deepgram versions send before
// closing the socket.
type wireError struct {
	Description string `json:"description"`
	Message     string `json:"message"`
	Variant     string `json:"variant"`
	ErrCode     string `json:"err_code"`
	ErrMsg      string `json:"err_msg"`
}

func (e wireError) String() string {
	for _, s := range []string{e.Description, e.Message, e.ErrMsg, e.Variant, e.ErrCode} {
		if s != "" {
			return s
		}
	}
	return "unspecified error"
}

// message is one decoded server message.
type message struct {
	kind  string    // the wire "type"
	event stt.Event // valid when hasEvent
	// hasEvent says the message maps to an stt.Event for Recv.
	hasEvent bool
	// info carries text worth logging or reporting (Metadata request id,
	// Error description).
	info string
}

// parseMessage maps one server text message to what the stream does with
// it. Unknown types yield a message without an event.
func parseMessage(data []byte) (message, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return message{}, fmt.Errorf("decoding server message: %w", err)
	}
	m := message{kind: head.Type}
	switch head.Type {
	case "Results":
		var r wireResults
		if err := json.Unmarshal(data, &r); err != nil {
			return m, fmt.Errorf("decoding Results: %w", err)
		}
		ev := stt.Event{
			Start: seconds(r.Start),
			End:   seconds(r.Start + r.Duration),
		}
		if len(r.Channel.Alternatives) > 0 {
			ev.Text = r.Channel.Alternatives[0].Transcript
			ev.Confidence = r.Channel.Alternatives[0].Confidence
		}
		switch {
		case !r.IsFinal:
			// Interim results with no words carry nothing to show.
			ev.Type = stt.Interim
			m.hasEvent = ev.Text != ""
		default:
			ev.Type = stt.Final
			ev.SpeechFinal = r.SpeechFinal
			// An empty final segment adds nothing unless it ends the
			// utterance.
			m.hasEvent = ev.Text != "" || r.SpeechFinal
		}
		m.event = ev
	case "UtteranceEnd":
		var u wireUtteranceEnd
		if err := json.Unmarshal(data, &u); err != nil {
			return m, fmt.Errorf("decoding UtteranceEnd: %w", err)
		}
		end := seconds(u.LastWordEnd)
		m.event = stt.Event{Type: stt.UtteranceEnd, Start: end, End: end}
		m.hasEvent = true
	case "SpeechStarted":
		var s wireSpeechStarted
		if err := json.Unmarshal(data, &s); err != nil {
			return m, fmt.Errorf("decoding SpeechStarted: %w", err)
		}
		at := seconds(s.Timestamp)
		m.event = stt.Event{Type: stt.SpeechStarted, Start: at, End: at}
		m.hasEvent = true
	case "Metadata":
		var md wireMetadata
		if err := json.Unmarshal(data, &md); err != nil {
			return m, fmt.Errorf("decoding Metadata: %w", err)
		}
		m.info = fmt.Sprintf("request_id=%s duration=%.3fs", md.RequestID, md.Duration)
	case "Error":
		var e wireError
		if err := json.Unmarshal(data, &e); err != nil {
			return m, fmt.Errorf("decoding Error: %w", err)
		}
		m.info = e.String()
	}
	return m, nil
}

// seconds converts Deepgram's float seconds to a Duration rounded to the
// microsecond, so 1.4 s stays exactly 1.4 s.
func seconds(s float64) time.Duration {
	if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 {
		return 0
	}
	return time.Duration(math.Round(s*1e6)) * time.Microsecond
}
