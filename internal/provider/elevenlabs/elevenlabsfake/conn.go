package elevenlabsfake

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

const (
	// writeTimeout bounds one server message.
	writeTimeout = 10 * time.Second
	// maxInactivity is the largest inactivity_timeout the service accepts.
	maxInactivity = 180 * time.Second
	// queueLen is how many client messages may wait while audio is sent.
	queueLen = 256
)

// errFinished stops a connection that has been closed on purpose.
var errFinished = errors.New("elevenlabsfake: connection finished")

// clientMessage is any message from the client.
type clientMessage struct {
	Text                 *string `json:"text"`
	Flush                bool    `json:"flush"`
	TryTriggerGeneration bool    `json:"try_trigger_generation"`
	GenerationConfig     *struct {
		ChunkLengthSchedule []int `json:"chunk_length_schedule"`
	} `json:"generation_config"`
}

// audioMessage is one piece of generated audio. IsFinal is always null, as
// the real service sends it.
type audioMessage struct {
	Audio               string     `json:"audio"`
	IsFinal             *bool      `json:"isFinal"`
	NormalizedAlignment *alignment `json:"normalizedAlignment"`
	Alignment           *alignment `json:"alignment"`
}

// errorMessage reports a refused request before the close frame.
type errorMessage struct {
	Message string `json:"message"`
	Error   string `json:"error"`
	Code    int    `json:"code"`
}

// conn is one client connection; only its handler goroutine touches it.
type conn struct {
	srv        *Server
	ws         *websocket.Conn
	rec        *Session
	log        *slog.Logger
	format     audioFormat
	inactivity time.Duration

	initDone    bool
	schedule    []int
	buf         strings.Builder
	bufChars    int
	generations int
	audioSent   int
}

// serveStream handles one stream-input websocket.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	if !s.conns.Enter() {
		http.Error(w, "fake ElevenLabs server closed", http.StatusServiceUnavailable)
		return
	}
	defer s.conns.Leave()
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debug("elevenlabsfake: upgrade failed", "err", err)
		return
	}
	rec := s.open(r)
	defer s.ended(rec)

	ctx, release := s.conns.Bind(r.Context())
	defer release()
	defer func() { _ = ws.CloseNow() }()

	c := &conn{
		srv:      s,
		ws:       ws,
		rec:      rec,
		log:      s.log.With("conn", rec.ID, "voice", rec.VoiceID),
		schedule: []int{120, 160, 250, 290},
	}
	ws.SetReadLimit(1 << 20)
	if !c.admit(ctx, r) {
		return
	}
	c.log.Debug("elevenlabsfake: connection open", "format", c.format.name)
	err = c.serve(ctx, release)
	c.log.Debug("elevenlabsfake: connection done", "err", err)
}

// admit checks the key and the query; on failure it closes the websocket.
func (c *conn) admit(ctx context.Context, r *http.Request) bool {
	if key := c.srv.cfg.APIKey; key != "" {
		got := r.Header.Get("xi-api-key")
		if subtle.ConstantTimeCompare([]byte(got), []byte(key)) != 1 {
			c.log.Debug("elevenlabsfake: refused a wrong or missing API key")
			_ = c.ws.Close(websocket.StatusPolicyViolation, "Invalid API key")
			return false
		}
	}
	q := r.URL.Query()
	format, err := parseOutputFormat(q.Get("output_format"))
	if err != nil {
		c.reject(ctx, "invalid_output_format", err.Error())
		return false
	}
	c.format = format
	c.inactivity = c.srv.cfg.InactivityTimeout
	if v := q.Get("inactivity_timeout"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil || secs <= 0 || time.Duration(secs)*time.Second > maxInactivity {
			c.reject(ctx, "invalid_request", fmt.Sprintf("inactivity_timeout must be 1 to 180 seconds, got %q", v))
			return false
		}
		c.inactivity = time.Duration(secs) * time.Second
	}
	return true
}

// serve runs the message loop. A reader goroutine queues client messages so
// that close frames and pings are handled while audio is being sent; it
// cancels ctx when the client goes away.
func (c *conn) serve(ctx context.Context, cancel context.CancelFunc) error {
	msgs := make(chan []byte, queueLen)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer cancel()
		for {
			typ, data, err := c.ws.Read(ctx)
			if err != nil {
				return
			}
			if typ != websocket.MessageText {
				continue
			}
			select {
			case msgs <- data:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		cancel()
		_ = c.ws.CloseNow()
		<-readerDone
	}()

	idle := time.NewTimer(c.inactivity)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-idle.C:
			c.closeWith(websocket.StatusPolicyViolation, fmt.Sprintf(
				"Have not received a new text input within the timeout of %s. Streaming input terminated.", seconds(c.inactivity)))
			return errors.New("inactivity timeout")
		case data := <-msgs:
			if err := c.handle(ctx, data); err != nil {
				return err
			}
			idle.Reset(c.inactivity)
		}
	}
}

// handle processes one client message.
func (c *conn) handle(ctx context.Context, data []byte) error {
	var m clientMessage
	if err := json.Unmarshal(data, &m); err != nil {
		c.reject(ctx, "invalid_message", "Invalid JSON message")
		return fmt.Errorf("decoding client message: %w", err)
	}
	if !c.initDone {
		return c.init(ctx, m, data)
	}
	if m.Text == nil {
		c.reject(ctx, "invalid_message", `Message has no "text" field`)
		return errors.New(`message without "text"`)
	}
	text := *m.Text
	if text == "" {
		return c.finish(ctx)
	}
	n := utf8.RuneCountInString(text)
	c.srv.update(func(st *Stats) { st.Characters += n })
	c.buf.WriteString(text)
	c.bufChars += n
	if m.Flush || m.TryTriggerGeneration || c.bufChars >= c.threshold() {
		return c.generate(ctx)
	}
	return nil
}

// init checks and records the init message.
func (c *conn) init(ctx context.Context, m clientMessage, data []byte) error {
	if m.Text == nil || *m.Text != " " {
		c.reject(ctx, "invalid_message", `The first message must be the init message, with "text": " "`)
		return errors.New("first message is not an init message")
	}
	if g := m.GenerationConfig; g != nil && len(g.ChunkLengthSchedule) > 0 {
		for _, v := range g.ChunkLengthSchedule {
			if v <= 0 {
				c.reject(ctx, "invalid_message", "chunk_length_schedule values must be positive")
				return errors.New("bad chunk_length_schedule")
			}
		}
		c.schedule = g.ChunkLengthSchedule
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("decoding init message: %w", err)
	}
	c.srv.update(func(*Stats) { c.rec.Init = raw })
	c.initDone = true
	return nil
}

// threshold is the buffered length that triggers the next generation: the
// schedule's entry for it, the last entry repeating.
func (c *conn) threshold() int {
	return c.schedule[min(c.generations, len(c.schedule)-1)]
}

// finish handles the end of input: the rest of the text, isFinal, close.
func (c *conn) finish(ctx context.Context) error {
	if err := c.generate(ctx); err != nil {
		return err
	}
	final := true
	if err := c.write(ctx, struct {
		IsFinal *bool `json:"isFinal"`
	}{&final}); err != nil {
		return fmt.Errorf("sending isFinal: %w", err)
	}
	c.closeWith(websocket.StatusNormalClosure, "")
	return errFinished
}

// generate speaks the buffered text, if any.
func (c *conn) generate(ctx context.Context) error {
	text := strings.TrimSpace(c.buf.String())
	c.buf.Reset()
	c.bufChars = 0
	if text == "" {
		return nil
	}
	c.generations++
	c.srv.update(func(*Stats) { c.rec.Texts = append(c.rec.Texts, text) })

	rate, bps := c.format.rate, c.format.bytesPerSample()
	audio := c.format.encode(c.srv.cfg.Synth(text, rate))
	if len(audio) == 0 {
		return nil
	}
	size := c.format.chunkBytes(c.srv.cfg.ChunkDuration)
	bounds := []int{0}
	for off := size; ; off += size {
		off = min(off, len(audio))
		bounds = append(bounds, off)
		if off == len(audio) {
			break
		}
	}
	edgesMs := make([]int, len(bounds))
	for i, b := range bounds {
		edgesMs[i] = b * 1000 / (rate * bps)
	}
	align := spreadAlignment(text, edgesMs)

	due := time.Now().Add(c.srv.cfg.FirstAudioDelay)
	for k := range len(bounds) - 1 {
		piece := audio[bounds[k]:bounds[k+1]]
		if err := sleepUntil(ctx, due); err != nil {
			return err
		}
		msg := audioMessage{
			Audio:               base64.StdEncoding.EncodeToString(piece),
			NormalizedAlignment: align[k],
			Alignment:           align[k],
		}
		if err := c.write(ctx, msg); err != nil {
			return fmt.Errorf("sending audio: %w", err)
		}
		sent := time.Now()
		c.audioSent++
		c.srv.update(func(st *Stats) { st.AudioMessages++ })
		if c.audioSent == 1 && c.srv.cfg.OnFirstAudio != nil {
			c.srv.cfg.OnFirstAudio(sent)
		}
		if fa := c.srv.cfg.FailAfter; fa > 0 && c.audioSent >= fa {
			c.closeWith(websocket.StatusInternalError, "fake failure")
			return errFinished
		}
		if c.srv.cfg.RealTime {
			due = due.Add(time.Duration(int64(len(piece)) * int64(time.Second) / int64(rate*bps)))
		}
	}
	return nil
}

// reject sends an error message and closes with 1008.
func (c *conn) reject(ctx context.Context, kind, msg string) {
	c.log.Debug("elevenlabsfake: rejected", "error", kind, "message", msg)
	_ = c.write(ctx, errorMessage{Message: msg, Error: kind, Code: int(websocket.StatusPolicyViolation)})
	c.closeWith(websocket.StatusPolicyViolation, msg)
}

// closeWith closes with a status and a reason cut to what a close frame
// holds.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	if len(reason) > 123 {
		reason = reason[:120] + "..."
	}
	_ = c.ws.Close(code, reason)
}

// write sends one JSON message.
func (c *conn) write(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// sleepUntil waits until t or the end of ctx.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// seconds renders a timeout as the service does ("20 seconds").
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d seconds", d/time.Second)
	}
	return d.String()
}
