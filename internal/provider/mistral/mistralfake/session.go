package mistralfake

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
)

const (
	writeTimeout   = 10 * time.Second
	maxAppendBytes = 262144
	readLimit      = 1 << 20
	window         = 20 * time.Millisecond
)

var sampleRates = map[int]bool{8000: true, 16000: true, 22050: true, 44100: true, 48000: true}

// connection is one websocket session. It runs on the ServeHTTP goroutine
// and starts no other.
type connection struct {
	srv  *Server
	conn *websocket.Conn
	idx  int
	ctx  context.Context

	encoding string
	rate     int
	win      []int16 // the current 20 ms analysis window

	audioSeen bool
	speech    time.Duration // speech heard in the current utterance
	revealed  int           // words of the current transcript sent as deltas
	utterance int           // index of the current transcript
	said      string        // text of every finished utterance, for CumulativeDone
	appends   int
}

func newConnection(srv *Server, conn *websocket.Conn, idx int) *connection {
	return &connection{srv: srv, conn: conn, idx: idx, encoding: "pcm_s16le", rate: 16000}
}

// clientMsg is the union of the client messages.
type clientMsg struct {
	Type    string `json:"type"`
	Audio   string `json:"audio"`
	Session *struct {
		AudioFormat *struct {
			Encoding   string `json:"encoding"`
			SampleRate int    `json:"sample_rate"`
		} `json:"audio_format"`
		TargetStreamingDelayMs *int `json:"target_streaming_delay_ms"`
	} `json:"session"`
}

func (c *connection) run(parent context.Context) {
	ctx, cancel := runCtx(parent)
	defer cancel()
	defer c.conn.CloseNow()
	c.ctx = ctx

	c.send(map[string]any{"type": "session.created", "session": map[string]any{
		"request_id": newID(), "model": c.srv.session(c.idx).Model,
		"audio_format":              map[string]any{"encoding": c.encoding, "sample_rate": c.rate},
		"target_streaming_delay_ms": DefaultTargetDelayMs,
	}})
	for {
		typ, data, err := c.conn.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			c.protocolError("binary messages are not accepted")
			continue
		}
		if !c.handle(data) {
			return
		}
	}
}

// handle applies one client message; false ends the session.
func (c *connection) handle(data []byte) bool {
	var m clientMsg
	if err := json.Unmarshal(data, &m); err != nil {
		c.protocolError("invalid JSON: " + err.Error())
		return true
	}
	switch m.Type {
	case "session.update":
		c.sessionUpdate(m)
	case "input_audio.append":
		return c.appendAudio(m.Audio)
	case "input_audio.flush":
		c.srv.update(c.idx, func(s *Session) { s.Flushes++ })
		c.finishUtterance(!c.srv.cfg.NoDoneOnFlush)
	case "input_audio.end":
		c.srv.update(c.idx, func(s *Session) { s.Ended = true })
		c.finishUtterance(true)
	default:
		c.protocolError(fmt.Sprintf("unknown message type %q", m.Type))
	}
	return true
}

func (c *connection) sessionUpdate(m clientMsg) {
	switch {
	case c.audioSeen:
		c.protocolError("session.update after audio is not allowed")
		return
	case m.Session == nil || m.Session.AudioFormat == nil || m.Session.TargetStreamingDelayMs == nil:
		c.protocolError("session.update needs audio_format and target_streaming_delay_ms")
		return
	}
	f := m.Session.AudioFormat
	if !decodable(f.Encoding) || !sampleRates[f.SampleRate] {
		c.protocolError(fmt.Sprintf("unsupported audio format %s at %d Hz", f.Encoding, f.SampleRate))
		return
	}
	c.encoding, c.rate = f.Encoding, f.SampleRate
	delay := *m.Session.TargetStreamingDelayMs
	c.srv.update(c.idx, func(s *Session) {
		s.Updates++
		s.Encoding, s.SampleRate, s.TargetDelayMs = c.encoding, c.rate, delay
	})
	c.send(map[string]any{"type": "session.updated", "session": map[string]any{
		"audio_format":              map[string]any{"encoding": c.encoding, "sample_rate": c.rate},
		"target_streaming_delay_ms": delay,
	}})
}

// appendAudio decodes one chunk, runs the faults and the speech script.
func (c *connection) appendAudio(b64 string) bool {
	raw, err := base64.StdEncoding.DecodeString(b64)
	switch {
	case err != nil:
		c.protocolError("audio is not base64")
		return true
	case len(raw) > maxAppendBytes:
		c.protocolError("audio chunk exceeds 262144 bytes")
		return true
	}
	c.audioSeen = true
	c.appends++
	pcm := decode(c.encoding, raw)
	c.srv.update(c.idx, func(s *Session) { s.Appends++; s.Samples += len(pcm) })
	if !c.injectFaults() {
		return false
	}
	c.listen(pcm)
	return true
}

// injectFaults runs the scripted faults; false drops the connection.
func (c *connection) injectFaults() bool {
	cfg := c.srv.cfg
	switch c.appends {
	case cfg.DisconnectAfter:
		return false
	case cfg.MalformedAfter:
		_ = c.write([]byte(`{"type":"transcription.text.delta","text":`))
	case cfg.ErrorAfter:
		c.send(map[string]any{"type": "error", "error": map[string]any{"message": "injected error", "code": 3000}})
	}
	return true
}

// listen measures each 20 ms window and reveals words while speech lasts.
func (c *connection) listen(pcm []int16) {
	n := c.rate * int(window/time.Millisecond) / 1000
	for _, v := range pcm {
		c.win = append(c.win, v)
		if len(c.win) < n {
			continue
		}
		if audio.RMS(c.win) >= SpeechRMS {
			c.speech += window
			c.reveal(int(c.speech / c.srv.cfg.WordEvery))
		}
		c.win = c.win[:0]
	}
}

// reveal sends deltas until upTo words of the transcript are out.
func (c *connection) reveal(upTo int) {
	ws := words(c.srv.transcript(c.utterance))
	for c.revealed < min(upTo, len(ws)) {
		text := ws[c.revealed]
		if c.revealed > 0 {
			text = " " + text
		}
		c.send(map[string]any{"type": "transcription.text.delta", "text": text})
		c.revealed++
	}
}

// finishUtterance pushes out the utterance's remaining words and, with
// done, sends transcription.done. Without speech there is no utterance.
func (c *connection) finishUtterance(done bool) {
	if c.speech == 0 {
		if done && c.srv.session(c.idx).Ended {
			c.sendDone("")
		}
		return
	}
	c.reveal(math.MaxInt)
	text := strings.Join(words(c.srv.transcript(c.utterance)), " ")
	if done {
		c.sendDone(text)
	}
	c.said = strings.TrimSpace(c.said + " " + text)
	c.utterance++
	c.speech, c.revealed = 0, 0
}

func (c *connection) sendDone(text string) {
	if c.srv.cfg.CumulativeDone {
		text = strings.TrimSpace(c.said + " " + text)
	}
	c.send(map[string]any{"type": "transcription.done", "text": text, "model": c.srv.session(c.idx).Model,
		"language": c.srv.session(c.idx).Language, "usage": map[string]any{"prompt_audio_seconds": 1}})
}

func (c *connection) protocolError(msg string) {
	c.srv.update(c.idx, func(s *Session) { s.Errors = append(s.Errors, msg) })
	c.send(map[string]any{"type": "error", "error": map[string]any{"message": msg}})
}

func (c *connection) send(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	_ = c.write(data)
}

func (c *connection) write(data []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, data)
}

func decodable(enc string) bool {
	return enc == "pcm_s16le" || enc == "pcm_mulaw" || enc == "pcm_alaw"
}

// decode turns one chunk in enc into samples.
func decode(enc string, raw []byte) []int16 {
	switch enc {
	case "pcm_mulaw":
		return audio.DecodeUlaw(nil, raw)
	case "pcm_alaw":
		return audio.DecodeAlaw(nil, raw)
	}
	out := make([]int16, len(raw)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	return out
}
