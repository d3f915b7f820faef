package inworldfake

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"
)

const (
	// writeTimeout bounds one server message.
	writeTimeout = 10 * time.Second
	// maxContexts is how many contexts one connection may hold.
	maxContexts = 5
	// readLimit bounds one client message.
	readLimit = 1 << 20
)

// gRPC status codes the fake sends.
const (
	codeInvalidArgument   = 3
	codeNotFound          = 5
	codeAlreadyExists     = 6
	codePermissionDenied  = 7
	codeResourceExhausted = 8
	codeInternal          = 13
	codeUnavailable       = 14
	codeUnauthenticated   = 16
)

// errDropped ends a connection the fake dropped on purpose.
var errDropped = errors.New("inworldfake: connection dropped")

// clientMessage is any message from the client.
type clientMessage struct {
	ContextID    string                 `json:"contextId"`
	Create       json.RawMessage        `json:"create"`
	SendText     *struct{ Text string } `json:"send_text"`
	FlushContext json.RawMessage        `json:"flush_context"`
	CloseContext json.RawMessage        `json:"close_context"`
}

// createBody is the part of a create message the fake checks.
type createBody struct {
	VoiceID     string `json:"voiceId"`
	ModelID     string `json:"modelId"`
	AudioConfig struct {
		AudioEncoding   string `json:"audioEncoding"`
		SampleRateHertz int    `json:"sampleRateHertz"`
	} `json:"audioConfig"`
}

// synthContext is one open context.
type synthContext struct {
	rate int
	text strings.Builder
}

// conn is one client connection; only its handler goroutine touches it.
type conn struct {
	srv       *Server
	ws        *websocket.Conn
	rec       *Session
	log       *slog.Logger
	contexts  map[string]*synthContext
	audioSent int
}

// serveStream handles one bidirectional websocket.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	if !s.conns.Enter() {
		writeStatus(w, http.StatusServiceUnavailable, codeUnavailable, "fake Inworld server closed")
		return
	}
	defer s.conns.Leave()
	if s.cfg.RejectStatus != 0 {
		writeStatus(w, s.cfg.RejectStatus, codeForStatus(s.cfg.RejectStatus), fmt.Sprintf("fake rejection with HTTP %d", s.cfg.RejectStatus))
		return
	}
	if !s.authorized(r) {
		s.log.Debug("inworldfake: refused a wrong or missing API key")
		writeStatus(w, http.StatusUnauthorized, codeUnauthenticated, "Unauthenticated: invalid authorization credentials")
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debug("inworldfake: upgrade failed", "err", err)
		return
	}
	rec := s.open(r)
	defer s.ended(rec)
	defer func() { _ = ws.CloseNow() }()

	ctx, release := s.conns.Bind(r.Context())
	defer release()

	ws.SetReadLimit(readLimit)
	c := &conn{srv: s, ws: ws, rec: rec, log: s.log.With("conn", rec.ID), contexts: map[string]*synthContext{}}
	err = c.serve(ctx)
	c.log.Debug("inworldfake: connection done", "err", err)
}

// codeForStatus is the gRPC code the gateway pairs with an HTTP status.
func codeForStatus(status int) int {
	switch status {
	case http.StatusBadRequest:
		return codeInvalidArgument
	case http.StatusUnauthorized:
		return codeUnauthenticated
	case http.StatusForbidden:
		return codePermissionDenied
	case http.StatusNotFound:
		return codeNotFound
	case http.StatusTooManyRequests:
		return codeResourceExhausted
	case http.StatusServiceUnavailable:
		return codeUnavailable
	default:
		return codeInternal
	}
}

// ended marks a connection's record closed.
func (s *Server) ended(rec *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Closed = true
	s.stats.Active--
}

// record changes the connection's session under the Server's lock.
func (c *conn) record(f func(rec *Session)) {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	f(c.rec)
}

// serve handles client messages in order until the connection ends.
func (c *conn) serve(ctx context.Context) error {
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			if err := c.sendError(ctx, codeInvalidArgument, "binary messages are not supported"); err != nil {
				return err
			}
			continue
		}
		if err := c.handle(ctx, data); err != nil {
			return err
		}
	}
}

// handle dispatches one client message.
func (c *conn) handle(ctx context.Context, data []byte) error {
	var m clientMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return c.sendError(ctx, codeInvalidArgument, "invalid JSON: "+err.Error())
	}
	switch {
	case m.Create != nil:
		c.note("create")
		return c.create(ctx, m.ContextID, m.Create)
	case m.SendText != nil && m.ContextID == "":
		c.note("keepalive")
		return nil
	case m.SendText != nil:
		c.note("send_text")
		sc, err := c.lookup(ctx, m.ContextID)
		if sc != nil {
			sc.text.WriteString(m.SendText.Text)
		}
		return err
	case m.FlushContext != nil:
		c.note("flush_context")
		return c.flush(ctx, m.ContextID, false)
	case m.CloseContext != nil:
		c.note("close_context")
		return c.flush(ctx, m.ContextID, true)
	default:
		return c.sendError(ctx, codeInvalidArgument, "message has no create, send_text, flush_context or close_context")
	}
}

func (c *conn) note(kind string) {
	c.record(func(rec *Session) { rec.Messages = append(rec.Messages, kind) })
}

// create opens a context after checking its configuration.
func (c *conn) create(ctx context.Context, id string, raw json.RawMessage) error {
	var body createBody
	var asMap map[string]any
	if json.Unmarshal(raw, &body) != nil || json.Unmarshal(raw, &asMap) != nil {
		return c.sendStatus(ctx, id, codeInvalidArgument, "create is not an object")
	}
	c.record(func(rec *Session) { rec.Creates[id] = asMap })
	if msg := c.checkCreate(id, body); msg != "" {
		code := codeInvalidArgument
		switch {
		case c.contexts[id] != nil:
			code = codeAlreadyExists
		case len(c.contexts) >= maxContexts:
			code = codeResourceExhausted
		}
		return c.sendStatus(ctx, id, code, msg)
	}
	c.contexts[id] = &synthContext{rate: body.AudioConfig.SampleRateHertz}
	c.srv.update(func(st *Stats) { st.Contexts++ })
	return c.sendResult(ctx, id, "contextCreated", json.RawMessage(raw))
}

// checkCreate returns why a create message is refused, or "".
func (c *conn) checkCreate(id string, b createBody) string {
	cfg := c.srv.cfg
	switch {
	case id == "":
		return "contextId is required"
	case c.contexts[id] != nil:
		return fmt.Sprintf("context %s already exists", id)
	case len(c.contexts) >= maxContexts:
		return fmt.Sprintf("at most %d contexts per connection", maxContexts)
	case b.VoiceID == "":
		return "voiceId is required"
	case !slices.Contains(cfg.Models, b.ModelID):
		return fmt.Sprintf("unknown modelId %q", b.ModelID)
	case b.AudioConfig.AudioEncoding != "LINEAR16" && b.AudioConfig.AudioEncoding != "PCM":
		return fmt.Sprintf("the fake only produces LINEAR16 and PCM, not %q", b.AudioConfig.AudioEncoding)
	case !slices.Contains(cfg.SampleRates, b.AudioConfig.SampleRateHertz):
		return fmt.Sprintf("unsupported sampleRateHertz %d", b.AudioConfig.SampleRateHertz)
	}
	return ""
}

// lookup returns an open context, or sends "not found" and returns nil.
func (c *conn) lookup(ctx context.Context, id string) (*synthContext, error) {
	if sc := c.contexts[id]; sc != nil {
		return sc, nil
	}
	return nil, c.sendStatus(ctx, id, codeNotFound, fmt.Sprintf("Context not found: %s", id))
}

// flush synthesises a context's buffered text and answers flushCompleted,
// and when closing also contextClosed.
func (c *conn) flush(ctx context.Context, id string, closing bool) error {
	sc, err := c.lookup(ctx, id)
	if sc == nil {
		return err
	}
	text := strings.TrimSpace(sc.text.String())
	sc.text.Reset()
	if text != "" {
		c.record(func(rec *Session) { rec.Texts = append(rec.Texts, text) })
		aborted, err := c.speak(ctx, id, sc.rate, text)
		if err != nil || aborted {
			return err
		}
	}
	if text != "" || !closing {
		if err := c.sendResult(ctx, id, "flushCompleted", struct{}{}); err != nil {
			return err
		}
	}
	if !closing {
		return nil
	}
	delete(c.contexts, id)
	return c.sendResult(ctx, id, "contextClosed", struct{}{})
}

// speak sends text's audio as audioChunk messages. aborted reports an
// injected fault that ended the generation but not the connection.
func (c *conn) speak(ctx context.Context, id string, rate int, text string) (aborted bool, err error) {
	cfg := c.srv.cfg
	b := pcmBytes(cfg.Synth(text, rate))
	if cfg.WAVHeader {
		b = append(wavHeader(rate), b...)
	}
	if err := sleep(ctx, cfg.FirstAudioDelay); err != nil {
		return false, err
	}
	pieceBytes := chunkBytes(rate, cfg.ChunkDuration)
	for _, piece := range split(b, pieceBytes) {
		chunk := map[string]any{"audioContent": base64.StdEncoding.EncodeToString(piece)}
		if err := c.sendResult(ctx, id, "audioChunk", chunk); err != nil {
			return false, err
		}
		c.audioSent++
		c.srv.update(func(st *Stats) { st.AudioMessages++ })
		if cfg.FailAfter > 0 && c.audioSent == cfg.FailAfter {
			return true, c.fail(ctx, id)
		}
		if cfg.RealTime {
			if err := sleep(ctx, time.Duration(len(piece))*time.Second/time.Duration(2*rate)); err != nil {
				return false, err
			}
		}
	}
	return false, nil
}

// fail injects Config.FailMode.
func (c *conn) fail(ctx context.Context, id string) error {
	switch c.srv.cfg.FailMode {
	case FailMalformed:
		return c.writeRaw(ctx, []byte(`{"result":{"contextId":`))
	case FailError:
		return c.sendError(ctx, codeInternal, "fake internal error")
	case FailStatus:
		return c.sendStatus(ctx, id, codeInternal, "fake synthesis failure")
	default:
		_ = c.ws.CloseNow()
		return errDropped
	}
}

// sendResult sends {"result":{"contextId":id, key:value}}.
func (c *conn) sendResult(ctx context.Context, id, key string, value any) error {
	return c.write(ctx, map[string]any{"result": map[string]any{"contextId": id, key: value}})
}

// sendStatus sends a context's failure as a result status.
func (c *conn) sendStatus(ctx context.Context, id string, code int, msg string) error {
	return c.sendResult(ctx, id, "status", map[string]any{"code": code, "message": msg, "details": []any{}})
}

// sendError sends a connection-level error.
func (c *conn) sendError(ctx context.Context, code int, msg string) error {
	return c.write(ctx, map[string]any{"error": map[string]any{"code": code, "message": msg, "details": []any{}}})
}

func (c *conn) write(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.writeRaw(ctx, b)
}

func (c *conn) writeRaw(ctx context.Context, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
