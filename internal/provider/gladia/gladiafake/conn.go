package gladiafake

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
)

const (
	// writeTimeout bounds one server message so that a client that stopped
	// reading cannot hold a session forever.
	writeTimeout = 10 * time.Second
	window       = 20 * time.Millisecond
	interimEvery = 200 * time.Millisecond
)

// connection is one websocket session. It runs on the ServeHTTP goroutine
// and starts no other.
type connection struct {
	srv   *Server
	conn  *websocket.Conn
	token string
	id    string
	req   InitRequest
	log   *slog.Logger

	rate        int
	endpointing time.Duration
	carry       []byte  // an incomplete PCM sample
	win         []int16 // samples of the current 20 ms window
	winLen      int
	pos         time.Duration // audio time at the start of win

	speaking   bool
	uttStart   time.Duration
	lastSpeech time.Duration // end of the last loud window
	speechDur  time.Duration
	revealed   int
	next       int // index of the next scripted transcript
	finals     int
	sentBad    bool
	disconnect bool // DisconnectAfter reached
}

func newConnection(srv *Server, conn *websocket.Conn, token string) *connection {
	c := &connection{srv: srv, conn: conn, token: token, log: srv.log}
	srv.update(token, func(s *Session) { c.id, c.req = s.ID, s.Request })
	c.rate = c.req.SampleRate
	c.winLen = c.rate * int(window/time.Millisecond) / 1000
	c.endpointing = cmp.Or(srv.cfg.Endpointing, DefaultEndpointing)
	if c.req.Endpointing > 0 {
		c.endpointing = time.Duration(c.req.Endpointing * float64(time.Second))
	}
	return c
}

// run reads client messages until stop_recording, a fault or the client
// goes away.
func (c *connection) run(parent context.Context) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	defer cancel()
	defer c.conn.CloseNow()

	for {
		typ, data, err := c.conn.Read(ctx)
		if err != nil {
			c.log.Debug("session read ended", "session_id", c.id, "err", err)
			return
		}
		if typ == websocket.MessageBinary {
			c.srv.update(c.token, func(s *Session) { s.BinaryFrames++ })
			if !c.audio(ctx, data) {
				return
			}
			continue
		}
		if !c.control(ctx, data) {
			return
		}
	}
}

// control handles a JSON message; it returns false when the session ended.
func (c *connection) control(ctx context.Context, data []byte) bool {
	var msg struct {
		Type string `json:"type"`
		Data struct {
			Chunk string `json:"chunk"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &msg); err != nil {
		c.sendError(ctx, "invalid JSON message")
		return true
	}
	switch msg.Type {
	case "audio_chunk":
		raw, err := base64.StdEncoding.DecodeString(msg.Data.Chunk)
		if err != nil {
			c.sendError(ctx, "audio_chunk data.chunk is not base64")
			return true
		}
		c.srv.update(c.token, func(s *Session) { s.JSONChunks++ })
		return c.audio(ctx, raw)
	case "stop_recording":
		c.stop(ctx)
		return false
	default:
		c.sendError(ctx, "unknown message type "+msg.Type)
		return true
	}
}

// stop ends the utterance in progress, sends post_final_transcript and
// closes normally.
func (c *connection) stop(ctx context.Context) {
	c.srv.update(c.token, func(s *Session) { s.Stopped = true })
	if c.speaking && !c.endUtterance(ctx, c.pos) {
		return
	}
	if c.disconnect {
		return
	}
	full := c.scripted(max(c.next-1, 0))
	if c.finals == 0 {
		full = ""
	}
	if !c.send(ctx, "post_final_transcript", map[string]any{
		"transcription": map[string]any{"full_transcript": full},
	}) {
		return
	}
	_ = c.conn.Close(websocket.StatusNormalClosure, "")
}

// audio decodes data and runs the detector; false means the session ended.
func (c *connection) audio(ctx context.Context, data []byte) bool {
	pcm := c.decode(data)
	c.srv.update(c.token, func(s *Session) {
		s.AudioBytes += int64(len(data))
		if room := maxKeptSamples - len(s.Samples); room > 0 {
			s.Samples = append(s.Samples, pcm[:min(room, len(pcm))]...)
		}
	})
	for _, v := range pcm {
		c.win = append(c.win, v)
		if len(c.win) == c.winLen {
			if !c.window(ctx, rms(c.win)) {
				return false
			}
			c.win = c.win[:0]
			c.pos += window
		}
	}
	return true
}

// decode turns wire bytes into samples per the session's encoding.
func (c *connection) decode(data []byte) []int16 {
	switch c.req.Encoding {
	case "wav/ulaw":
		return audio.DecodeUlaw(nil, data)
	case "wav/alaw":
		return audio.DecodeAlaw(nil, data)
	}
	data = append(c.carry, data...)
	n := len(data) / 2
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
	}
	c.carry = append([]byte(nil), data[2*n:]...)
	return pcm
}

// window advances the detector by one 20 ms window.
func (c *connection) window(ctx context.Context, level float64) bool {
	end := c.pos + window
	loud := level >= c.srv.cfg.Threshold
	switch {
	case loud && !c.speaking:
		c.speaking, c.uttStart, c.speechDur, c.revealed = true, c.pos, 0, 0
		c.lastSpeech = end
		if !c.sendSpeechEvent(ctx, "speech_start", c.pos) {
			return false
		}
		return c.maybeMalformed(ctx)
	case loud:
		c.lastSpeech = end
		c.speechDur += window
		return c.maybeInterim(ctx)
	case c.speaking && end-c.lastSpeech >= c.endpointing:
		return c.endUtterance(ctx, c.lastSpeech)
	}
	return true
}

func (c *connection) maybeMalformed(ctx context.Context) bool {
	if !c.srv.cfg.Malformed || c.sentBad {
		return true
	}
	c.sentBad = true
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return c.conn.Write(wctx, websocket.MessageText, []byte(`{"type":"transcript","data":{"is_final":`)) == nil
}

// maybeInterim reveals one more word every 200 ms of speech.
func (c *connection) maybeInterim(ctx context.Context) bool {
	if !c.srv.cfg.Interim || !c.req.MessagesConfig.ReceivePartialTranscripts || c.speechDur%interimEvery != 0 {
		return true
	}
	words := strings.Fields(c.scripted(c.next))
	if c.revealed >= len(words)-1 {
		return true
	}
	c.revealed++
	text := strings.Join(words[:c.revealed], " ")
	return c.sendTranscript(ctx, false, text, c.uttStart, c.pos+window)
}

// endUtterance sends the final transcript and speech_end. false means the
// session ended (write failure or DisconnectAfter).
func (c *connection) endUtterance(ctx context.Context, end time.Duration) bool {
	text := c.scripted(c.next)
	c.next++
	c.speaking = false
	if c.wantsFinals() && !c.sendTranscript(ctx, true, text, c.uttStart, end) {
		return false
	}
	c.finals++
	c.srv.update(c.token, func(s *Session) { s.Finals++ })
	if !c.sendSpeechEvent(ctx, "speech_end", end) {
		return false
	}
	if n := c.srv.cfg.DisconnectAfter; n > 0 && c.finals >= n {
		c.disconnect = true
		_ = c.conn.CloseNow()
		return false
	}
	if n := c.srv.cfg.FailAfter; n > 0 && c.finals >= n {
		c.disconnect = true
		c.sendError(ctx, FailMessage)
		_ = c.conn.Close(websocket.StatusInternalError, "fake failure")
		return false
	}
	return true
}

func (c *connection) wantsFinals() bool {
	f := c.req.MessagesConfig.ReceiveFinalTranscripts
	return f == nil || *f
}

func (c *connection) scripted(i int) string {
	t := c.srv.cfg.Transcripts
	return t[i%len(t)]
}

// sendTranscript sends a transcript message with evenly spread words.
func (c *connection) sendTranscript(ctx context.Context, final bool, text string, start, end time.Duration) bool {
	lang := "en"
	if l := c.req.Languages(); len(l) > 0 {
		lang = l[0]
	}
	fields := strings.Fields(text)
	words := make([]map[string]any, len(fields))
	step := (end - start) / time.Duration(max(len(fields), 1))
	for i, w := range fields {
		ws := start + time.Duration(i)*step
		words[i] = map[string]any{"word": w, "start": ws.Seconds(), "end": (ws + step).Seconds(), "confidence": 0.95}
	}
	return c.send(ctx, "transcript", map[string]any{
		"id":       fmt.Sprintf("%s-%d", c.id, c.next),
		"is_final": final,
		"utterance": map[string]any{
			"text": text, "start": start.Seconds(), "end": end.Seconds(),
			"confidence": 0.95, "language": lang, "channel": 0, "words": words,
		},
	})
}

// sendSpeechEvent sends speech_start or speech_end when the client asked
// for speech events.
func (c *connection) sendSpeechEvent(ctx context.Context, typ string, at time.Duration) bool {
	if !c.req.MessagesConfig.ReceiveSpeechEvents {
		return true
	}
	return c.send(ctx, typ, map[string]any{"time": at.Seconds(), "channel": 0})
}

func (c *connection) sendError(ctx context.Context, msg string) {
	c.send(ctx, "error", map[string]any{"message": msg})
}

// send writes one Gladia-shaped message; false means the write failed.
func (c *connection) send(ctx context.Context, typ string, data any) bool {
	b, err := json.Marshal(map[string]any{
		"session_id": c.id,
		"created_at": time.Now().UTC().Format(time.RFC3339Nano),
		"type":       typ,
		"data":       data,
	})
	if err != nil {
		return false
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := c.conn.Write(wctx, websocket.MessageText, b); err != nil {
		c.log.Debug("session write failed", "session_id", c.id, "err", err)
		return false
	}
	return true
}

func rms(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var sum float64
	for _, v := range pcm {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(pcm)))
}
