package xaifake

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// knownVoice reports whether the service has voice (case-insensitive).
func knownVoice(voice string) bool {
	return slices.Contains([]string{"ara", "eve", "leo", "rex", "sal", "altair", "atlas", "carina", "castor", "celeste", "cosmo",
		"helios", "helix", "iris", "kepler", "lumen", "luna", "lux", "naksh", "orion", "perseus", "rigel",
		"sirius", "ursa", "zagan", "zenith"}, strings.ToLower(voice))
}

// serveTTS checks the key and the query, upgrades and runs the connection.
func (s *Server) serveTTS(w http.ResponseWriter, r *http.Request) {
	if !s.conns.Enter() {
		writeError(w, http.StatusServiceUnavailable, "Unavailable", "the fake is closed")
		return
	}
	defer s.conns.Leave()
	if !s.authorized(r.Header.Get("Authorization")) {
		writeError(w, http.StatusUnauthorized, "Unauthorized",
			"Incorrect API key provided. You can obtain an API key from https://console.x.ai.")
		return
	}
	if st := s.cfg.RefuseStatus; st != 0 {
		writeError(w, st, http.StatusText(st), "fake refusal")
		return
	}
	f, err := parseFormat(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "Client specified an invalid argument", err.Error())
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	c := &conn{srv: s, ws: ws, format: f, rec: s.open(r.URL.Query())}
	s.log.Debug("xaifake: connection opened", "id", c.rec.ID, "codec", f.codec, "sample_rate", f.rate)
	c.run()
	s.record(func() { c.rec.Closed = true })
	s.log.Debug("xaifake: connection ended", "id", c.rec.ID, "audio_messages", c.sent)
}

// authorized checks "Authorization: Bearer <key>" against Config.APIKey.
func (s *Server) authorized(header string) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	key, ok := strings.CutPrefix(header, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.APIKey)) == 1
}

// format is a stream's output audio.
type format struct {
	codec string // pcm, mulaw or alaw
	rate  int
}

// parseFormat validates the query: a known voice, a language, a codec the
// fake produces and a supported sample rate.
func parseFormat(q url.Values) (format, error) {
	if !knownVoice(q.Get("voice")) {
		return format{}, fmt.Errorf("unknown voice %q", q.Get("voice"))
	}
	if q.Get("language") == "" {
		return format{}, errors.New("language is required (use auto to detect it)")
	}
	f := format{codec: q.Get("codec")}
	switch f.codec {
	case "pcm", "mulaw", "alaw":
	default:
		return format{}, fmt.Errorf("codec %q: the fake produces pcm, mulaw and alaw", f.codec)
	}
	rate, err := strconv.Atoi(q.Get("sample_rate"))
	if err != nil || !slices.Contains([]int{8000, 16000, 22050, 24000, 44100, 48000}, rate) {
		return format{}, fmt.Errorf("unsupported sample_rate %q", q.Get("sample_rate"))
	}
	f.rate = rate
	if sp := q.Get("speed"); sp != "" {
		if v, err := strconv.ParseFloat(sp, 64); err != nil || v <= 0 {
			return format{}, fmt.Errorf("invalid speed %q", sp)
		}
	}
	return f, nil
}

// conn is one websocket connection.
type conn struct {
	srv    *Server
	ws     *websocket.Conn
	format format
	rec    *Session
	sent   int  // audio.delta messages sent
	struck bool // the fault has struck
}

// clientMessage is any client message.
type clientMessage struct {
	Type  string `json:"type"`
	Delta string `json:"delta"`
}

// run serves messages until the client leaves, the fake closes or a fault
// ends the connection.
func (c *conn) run() {
	defer func() { _ = c.ws.CloseNow() }()
	ctx := c.srv.conns.Context()
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var m clientMessage
		if err := json.Unmarshal(data, &m); err != nil {
			if !c.send(ctx, map[string]string{"type": "error", "message": "invalid JSON"}) {
				return
			}
			continue
		}
		if !c.handle(ctx, m) {
			return
		}
	}
}

// handle answers one client message; false ends the connection.
func (c *conn) handle(ctx context.Context, m clientMessage) bool {
	switch m.Type {
	case "text.delta":
		c.srv.record(func() { c.rec.Deltas = append(c.rec.Deltas, m.Delta) })
		text := strings.TrimSpace(m.Delta)
		if text == "" {
			return true
		}
		return c.speak(ctx, c.srv.cfg.Synth(text, c.format.rate))
	case "text.done":
		c.srv.record(func() { c.rec.Done++ })
		return c.send(ctx, map[string]string{"type": "audio.done"})
	default:
		return c.send(ctx, map[string]string{"type": "error", "message": fmt.Sprintf("unknown message type %q", m.Type)})
	}
}

// speak sends pcm as audio.delta messages of Config.ChunkBytes each,
// injecting the configured fault when its time comes.
func (c *conn) speak(ctx context.Context, pcm []int16) bool {
	if d := c.srv.cfg.FirstAudioDelay; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	b := encode(c.format.codec, pcm)
	n := c.chunkBytes()
	for len(b) > 0 {
		if ok, handled := c.strike(ctx); handled {
			return ok
		}
		k := min(n, len(b))
		if !c.send(ctx, map[string]string{"type": "audio.delta", "delta": base64.StdEncoding.EncodeToString(b[:k])}) {
			return false
		}
		b = b[k:]
		c.sent++
	}
	return true
}

// strike injects the fault when FaultAfter audio messages have gone out.
// handled says the fault struck; ok whether the connection lives on.
func (c *conn) strike(ctx context.Context) (ok, handled bool) {
	cfg := c.srv.cfg
	if cfg.Fault == NoFault || c.struck || c.sent < cfg.FaultAfter {
		return true, false
	}
	c.struck = true
	switch cfg.Fault {
	case Disconnect:
		_ = c.ws.CloseNow()
		return false, true
	case Malformed:
		return c.write(ctx, []byte(`{"type":"audio.delta","delta":`)), true
	default:
		return c.send(ctx, map[string]string{"type": "error", "message": "fake failure"}), true
	}
}

// chunkBytes is Config.ChunkBytes, or 100 ms of audio.
func (c *conn) chunkBytes() int {
	if n := c.srv.cfg.ChunkBytes; n > 0 {
		return n
	}
	n := c.format.rate / 10
	if c.format.codec == "pcm" {
		n *= 2
	}
	return n
}

// send writes one JSON message.
func (c *conn) send(ctx context.Context, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	return c.write(ctx, b)
}

func (c *conn) write(ctx context.Context, b []byte) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b) == nil
}
