package openaifake

// A fake of the Realtime websocket protocol (OpenAI GA, and xAI's Grok
// voice agent dialect with RealtimeXAI). It hears the client's µ-law audio
// with a realtimefake.Ear and answers from a realtimefake.Script: speech
// started/stopped, the caller's transcript, then a spoken response (µ-law
// of realtimefake.Synth at 8 kHz in 100 ms deltas with its transcript) or
// a function call. Speech during a response cancels it (response.done
// status cancelled). What clients send is recorded for assertions.

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/realtime/realtimefake"
)

// RealtimeMode is the dialect the fake speaks.
type RealtimeMode uint8

// The dialects.
const (
	// RealtimeOpenAI: session.type "realtime", voice and turn_detection
	// under session.audio, conversation.item.truncate supported.
	RealtimeOpenAI RealtimeMode = iota
	// RealtimeXAI: a flat session (voice, turn_detection at session
	// level), no truncate (an error event), xAI voices.
	RealtimeXAI
)

// RealtimeFault is a failure the fake injects.
type RealtimeFault uint8

// The faults.
const (
	NoRealtimeFault RealtimeFault = iota
	// FaultMalformed sends a text message that is not JSON.
	FaultMalformed
	// FaultErrorEvent sends a non-fatal error event; the session goes on.
	FaultErrorEvent
	// FaultDisconnect drops the connection without a close frame.
	FaultDisconnect
	// FaultClose closes with RealtimeConfig.CloseCode and CloseReason.
	FaultClose
)

// RealtimeConfig configures a RealtimeServer.
type RealtimeConfig struct {
	// APIKey is the only bearer token accepted; empty accepts any.
	APIKey string
	Mode   RealtimeMode
	// Script is what the caller says and how the model answers.
	Script realtimefake.Script
	// Voices are the accepted voices; nil is the mode's list.
	Voices []string
	// ChunkInterval is waited after each 100 ms audio delta of a response;
	// 0 sends them as fast as the socket takes them.
	ChunkInterval time.Duration
	// BetaNames sends the beta event names (response.audio.delta,
	// response.audio_transcript.*) instead of the GA ones.
	BetaNames bool
	// Fault strikes each connection once, after the first audio delta of
	// response number FaultAfter+1 (from 1). Strike injects one on demand.
	Fault      RealtimeFault
	FaultAfter int
	// CloseCode and CloseReason are FaultClose's; 0 is 1011.
	CloseCode   websocket.StatusCode
	CloseReason string
	Logger      *slog.Logger
}

// OpenAIRealtimeVoices are the voices RealtimeOpenAI accepts by default.
var OpenAIRealtimeVoices = []string{"marin", "beacon", "cinder", "stone", "vesper",
	"alloy", "ash", "ballad", "cedar", "coral", "echo", "sage", "shimmer", "verse"}

// XAIRealtimeVoices are the voices RealtimeXAI accepts by default.
var XAIRealtimeVoices = []string{"ara", "eve", "leo", "rex", "sal", "altair", "atlas", "carina", "castor", "celeste", "cosmo",
	"helios", "helix", "iris", "kepler", "lumen", "luna", "lux", "naksh", "orion", "perseus", "rigel",
	"sirius", "ursa", "zagan", "zenith"}

// RealtimeSession records one connection.
type RealtimeSession struct {
	ID    int
	Path  string
	Query url.Values
	// Session is the last accepted session.update "session" object;
	// Updates counts session.update messages, Rejected the refused ones.
	Session           json.RawMessage
	Updates, Rejected int
	// Audio is how much caller audio arrived.
	Audio time.Duration
	// Messages are conversation.item.create messages.
	Messages []RealtimeMessage
	// ToolOutputs are function_call_output items.
	ToolOutputs []RealtimeToolOutput
	// ResponseCreates holds the instructions of each response.create.
	ResponseCreates []string
	Truncates       []RealtimeTruncate
	Cancels         int
	// Responses counts the responses started, Cancelled those cancelled.
	Responses, Cancelled int
	Closed               bool
}

// RealtimeMessage is a message item the client added.
type RealtimeMessage struct{ Role, Text string }

// RealtimeToolOutput is a function_call_output item.
type RealtimeToolOutput struct{ CallID, Output string }

// RealtimeTruncate is a conversation.item.truncate.
type RealtimeTruncate struct {
	ItemID       string
	ContentIndex int
	AudioEndMs   int64
}

func (r RealtimeSession) clone() RealtimeSession {
	r.Query = cloneValues(r.Query)
	r.Session = slices.Clone(r.Session)
	r.Messages = slices.Clone(r.Messages)
	r.ToolOutputs = slices.Clone(r.ToolOutputs)
	r.ResponseCreates = slices.Clone(r.ResponseCreates)
	r.Truncates = slices.Clone(r.Truncates)
	return r
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// RealtimeServer is the fake, an http.Handler that answers any path.
//
// Goroutines: each connection runs on its handler goroutine plus one per
// response in flight. Close ends them all and waits.
type RealtimeServer struct {
	cfg  RealtimeConfig
	log  *slog.Logger
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	sessions []*RealtimeSession
	conns    map[*rtConn]struct{}
}

// NewRealtime returns a fake realtime service.
func NewRealtime(cfg RealtimeConfig) *RealtimeServer {
	if cfg.Voices == nil {
		cfg.Voices = OpenAIRealtimeVoices
		if cfg.Mode == RealtimeXAI {
			cfg.Voices = XAIRealtimeVoices
		}
	}
	if cfg.CloseCode == 0 {
		cfg.CloseCode = websocket.StatusInternalError
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &RealtimeServer{cfg: cfg, log: log, ctx: ctx, stop: stop, conns: map[*rtConn]struct{}{}}
}

// Sessions returns copies of the connections' records, in order.
func (s *RealtimeServer) Sessions() []RealtimeSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RealtimeSession, len(s.sessions))
	for i, r := range s.sessions {
		out[i] = r.clone()
	}
	return out
}

// Strike injects f into every open connection now.
func (s *RealtimeServer) Strike(f RealtimeFault) {
	s.mu.Lock()
	conns := make([]*rtConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.strike(f)
	}
}

// Close ends every connection and waits for them; later requests get 503.
func (s *RealtimeServer) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
	return nil
}

func (s *RealtimeServer) record(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// ServeHTTP checks the key, upgrades and runs the connection.
func (s *RealtimeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "the fake is closed", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	if !s.authorised(r.Header.Get("Authorization")) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		if s.cfg.Mode == RealtimeXAI {
			_ = json.NewEncoder(w).Encode(map[string]string{"code": "Unauthorized", "error": "Incorrect API key provided."})
		} else {
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
				"message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_api_key"}})
		}
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(16 << 20)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	c := &rtConn{srv: s, ws: ws, ctx: ctx, createResponse: true, interrupt: true,
		ear: realtimefake.NewEar(8000, 0, 0), format: "audio/pcmu", names: map[string]string{}}
	s.mu.Lock()
	c.rec = &RealtimeSession{ID: len(s.sessions) + 1, Path: r.URL.Path, Query: r.URL.Query()}
	s.sessions = append(s.sessions, c.rec)
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.run()
	cancel()
	c.wg.Wait()
	_ = ws.CloseNow()
	s.record(func() {
		c.rec.Closed = true
		delete(s.conns, c)
	})
}

func (s *RealtimeServer) authorised(h string) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	got, ok := strings.CutPrefix(h, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.APIKey)) == 1
}

// rtConn is one connection. Fields below mu are shared between the
// handler goroutine and the response goroutine.
type rtConn struct {
	srv *RealtimeServer
	ws  *websocket.Conn
	ctx context.Context
	rec *RealtimeSession

	// The handler goroutine's own state.
	ear            *realtimefake.Ear
	format         string
	createResponse bool
	interrupt      bool
	utterances     int
	userItem       string

	wg sync.WaitGroup // response goroutines

	mu      sync.Mutex
	seq     int
	active  *rtResponse
	names   map[string]string // call id → function name, of calls made
	outputs []RealtimeToolOutput
	items   map[string]bool // assistant audio item ids
	started int             // responses started
}

type rtResponse struct {
	id     string
	stop   chan string // receives the cancel reason
	done   chan struct{}
	number int
}

func (c *rtConn) nextID(prefix string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	return fmt.Sprintf("%s_%03d", prefix, c.seq)
}

// run reads client events until the connection ends.
func (c *rtConn) run() {
	c.send(map[string]any{"type": "session.created", "event_id": c.nextID("event"), "session": map[string]any{"id": c.nextID("sess")}})
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			c.sendError("invalid_request_error", "invalid_json", "", "the message is not valid JSON")
			continue
		}
		var t string
		_ = json.Unmarshal(m["type"], &t)
		if !c.handle(t, m) {
			return
		}
	}
}

// handle answers one client event; false ends the connection.
func (c *rtConn) handle(typ string, m map[string]json.RawMessage) bool {
	switch typ {
	case "session.update":
		c.sessionUpdate(m["session"])
	case "input_audio_buffer.append":
		var b64 string
		_ = json.Unmarshal(m["audio"], &b64)
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			c.sendError("invalid_request_error", "invalid_value", "audio", "audio is not base64")
			return true
		}
		var pcm []int16
		if c.format == "audio/pcma" {
			pcm = audio.DecodeAlaw(nil, raw)
		} else {
			pcm = audio.DecodeUlaw(nil, raw)
		}
		c.srv.record(func() { c.rec.Audio += time.Duration(len(pcm)) * time.Second / 8000 })
		for _, h := range c.ear.Hear(pcm) {
			c.heard(h)
		}
	case "conversation.item.create":
		c.itemCreate(m["item"])
	case "response.create":
		var r struct {
			Response struct {
				Instructions string `json:"instructions"`
			} `json:"response"`
		}
		_ = json.Unmarshal(mustJSON(m), &r)
		c.srv.record(func() { c.rec.ResponseCreates = append(c.rec.ResponseCreates, r.Response.Instructions) })
		c.mu.Lock()
		outputs := c.outputs
		c.outputs = nil
		names := c.names
		c.mu.Unlock()
		var text string
		switch {
		case r.Response.Instructions != "":
			text = c.srv.cfg.Script.Instructed(r.Response.Instructions)
		case len(outputs) > 0:
			var parts []string
			for _, o := range outputs {
				parts = append(parts, c.srv.cfg.Script.AfterTool(names[o.CallID], o.Output))
			}
			text = strings.Join(parts, " ")
		default:
			text = c.srv.cfg.Script.Instructed("")
		}
		c.startResponse(realtimefake.Answer{Text: text})
	case "conversation.item.truncate":
		var t struct {
			ItemID       string `json:"item_id"`
			ContentIndex int    `json:"content_index"`
			AudioEndMs   int64  `json:"audio_end_ms"`
		}
		_ = json.Unmarshal(mustJSON(m), &t)
		c.srv.record(func() {
			c.rec.Truncates = append(c.rec.Truncates, RealtimeTruncate{t.ItemID, t.ContentIndex, t.AudioEndMs})
		})
		c.mu.Lock()
		known := c.items[t.ItemID]
		c.mu.Unlock()
		if !known {
			c.sendError("invalid_request_error", "item_not_found", "item_id", fmt.Sprintf("item %q not found", t.ItemID))
			return true
		}
		c.send(map[string]any{"type": "conversation.item.truncated", "item_id": t.ItemID, "content_index": t.ContentIndex, "audio_end_ms": t.AudioEndMs})
	case "response.cancel":
		c.srv.record(func() { c.rec.Cancels++ })
		if !c.stopResponse("client_cancelled") {
			c.sendError("invalid_request_error", "response_cancel_not_active", "", "Cancellation failed: no active response found")
		}
	case "input_audio_buffer.commit", "input_audio_buffer.clear":
	default:
		c.sendError("invalid_request_error", "unknown_event", "type", fmt.Sprintf("Invalid value: '%s'", typ))
	}
	return c.ctx.Err() == nil
}

func mustJSON(m map[string]json.RawMessage) []byte {
	b, _ := json.Marshal(m)
	return b
}

// sessionUpdate validates and records a session.update.
func (c *rtConn) sessionUpdate(raw json.RawMessage) {
	var s struct {
		Type  *string `json:"type"`
		Voice string  `json:"voice"`
		Audio struct {
			Input struct {
				Format        *struct{ Type string } `json:"format"`
				TurnDetection json.RawMessage        `json:"turn_detection"`
			} `json:"input"`
			Output struct {
				Format *struct{ Type string } `json:"format"`
				Voice  string                 `json:"voice"`
			} `json:"output"`
		} `json:"audio"`
		TurnDetection json.RawMessage `json:"turn_detection"`
	}
	reject := func(param, msg string) {
		c.srv.record(func() { c.rec.Updates++; c.rec.Rejected++ })
		c.sendError("invalid_request_error", "invalid_value", param, msg)
	}
	if err := json.Unmarshal(raw, &s); err != nil || len(raw) == 0 || raw[0] != '{' {
		reject("session", "session must be an object")
		return
	}
	xai := c.srv.cfg.Mode == RealtimeXAI
	voice, td, tdParam := s.Audio.Output.Voice, s.Audio.Input.TurnDetection, "session.audio.input.turn_detection"
	if xai {
		voice, td, tdParam = s.Voice, s.TurnDetection, "session.turn_detection"
	} else if s.Type == nil || *s.Type != "realtime" {
		reject("session.type", "Missing required parameter: 'session.type'.")
		return
	}
	if voice != "" && !slices.Contains(c.srv.cfg.Voices, strings.ToLower(voice)) {
		reject("voice", fmt.Sprintf("Invalid value: '%s'. Supported values are: %s.", voice, strings.Join(c.srv.cfg.Voices, ", ")))
		return
	}
	format := c.format
	for _, f := range []struct {
		param string
		v     *struct{ Type string }
	}{{"session.audio.input.format.type", s.Audio.Input.Format}, {"session.audio.output.format.type", s.Audio.Output.Format}} {
		if f.v == nil {
			continue
		}
		if f.v.Type != "audio/pcmu" && f.v.Type != "audio/pcma" {
			reject(f.param, fmt.Sprintf("Invalid value: '%s'. The fake supports 'audio/pcmu' and 'audio/pcma'.", f.v.Type))
			return
		}
	}
	if s.Audio.Input.Format != nil {
		format = s.Audio.Input.Format.Type
	}
	create, interrupt, silence := c.createResponse, c.interrupt, time.Duration(0)
	if len(td) > 0 {
		if string(td) == "null" {
			create, interrupt = false, false
		} else {
			var t struct {
				Type              string `json:"type"`
				SilenceDurationMs int64  `json:"silence_duration_ms"`
				CreateResponse    *bool  `json:"create_response"`
				InterruptResponse *bool  `json:"interrupt_response"`
			}
			if json.Unmarshal(td, &t) != nil || (t.Type != "server_vad" && t.Type != "semantic_vad") {
				reject(tdParam+".type", "turn_detection.type must be server_vad or semantic_vad")
				return
			}
			create, interrupt = true, true
			if t.CreateResponse != nil {
				create = *t.CreateResponse
			}
			if t.InterruptResponse != nil {
				interrupt = *t.InterruptResponse
			}
			silence = time.Duration(t.SilenceDurationMs) * time.Millisecond
		}
		if !c.ear.Speaking() {
			c.ear = realtimefake.NewEar(8000, 0, silence)
		}
	}
	c.format, c.createResponse, c.interrupt = format, create, interrupt
	c.srv.record(func() { c.rec.Updates++; c.rec.Session = slices.Clone(raw) })
	c.send(map[string]any{"type": "session.updated", "event_id": c.nextID("event"), "session": raw})
}

// itemCreate records a message or a tool output.
func (c *rtConn) itemCreate(raw json.RawMessage) {
	var it struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Role    string `json:"role"`
		CallID  string `json:"call_id"`
		Output  string `json:"output"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(raw, &it); err != nil {
		c.sendError("invalid_request_error", "invalid_value", "item", "item must be an object")
		return
	}
	switch it.Type {
	case "message":
		var text []string
		for _, p := range it.Content {
			text = append(text, p.Text)
		}
		c.srv.record(func() { c.rec.Messages = append(c.rec.Messages, RealtimeMessage{it.Role, strings.Join(text, "")}) })
	case "function_call_output":
		o := RealtimeToolOutput{CallID: it.CallID, Output: it.Output}
		c.srv.record(func() { c.rec.ToolOutputs = append(c.rec.ToolOutputs, o) })
		c.mu.Lock()
		_, known := c.names[it.CallID]
		if known {
			c.outputs = append(c.outputs, o)
		}
		c.mu.Unlock()
		if !known {
			c.sendError("invalid_request_error", "invalid_value", "item.call_id", fmt.Sprintf("no function call with call_id %q", it.CallID))
			return
		}
	default:
		c.sendError("invalid_request_error", "invalid_value", "item.type", fmt.Sprintf("unsupported item type %q", it.Type))
		return
	}
	id := it.ID
	if id == "" {
		id = c.nextID("item")
	}
	c.send(map[string]any{"type": "conversation.item.added", "item": map[string]any{"id": id, "type": it.Type}})
}

// heard reacts to the Ear.
func (c *rtConn) heard(h realtimefake.Heard) {
	ms := h.At.Milliseconds()
	switch h.Kind {
	case realtimefake.SpeechStarted:
		c.userItem = c.nextID("item")
		c.send(map[string]any{"type": "input_audio_buffer.speech_started", "audio_start_ms": ms, "item_id": c.userItem})
		if c.interrupt {
			c.stopResponse("turn_detected")
		}
	case realtimefake.SpeechStopped:
		item := c.userItem
		c.send(map[string]any{"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms, "item_id": item})
		c.send(map[string]any{"type": "input_audio_buffer.committed", "item_id": item})
		transcript := c.srv.cfg.Script.Transcript(c.utterances)
		c.utterances++
		c.send(map[string]any{"type": "conversation.item.input_audio_transcription.completed", "item_id": item, "content_index": 0, "transcript": transcript})
		if c.createResponse {
			c.startResponse(c.srv.cfg.Script.Answer(transcript))
		}
	}
}

// startResponse runs a response in its own goroutine.
func (c *rtConn) startResponse(a realtimefake.Answer) {
	c.mu.Lock()
	if c.active != nil {
		c.mu.Unlock()
		c.sendError("invalid_request_error", "conversation_already_has_active_response", "", "Conversation already has an active response in progress.")
		return
	}
	c.seq++
	c.started++
	r := &rtResponse{id: fmt.Sprintf("resp_%03d", c.seq), stop: make(chan string, 1), done: make(chan struct{}), number: c.started}
	c.active = r
	c.mu.Unlock()
	c.srv.record(func() { c.rec.Responses++ })
	c.wg.Add(1)
	go c.respond(r, a)
}

// stopResponse cancels the response in flight and waits for its
// response.done; false when there was none. An empty reason only waits.
func (c *rtConn) stopResponse(reason string) bool {
	c.mu.Lock()
	r := c.active
	c.mu.Unlock()
	if r == nil {
		return false
	}
	if reason != "" {
		select {
		case r.stop <- reason:
		default:
		}
	}
	<-r.done
	return true
}

// eventName picks the beta or the GA name of an event.
func (c *rtConn) eventName(beta, ga string) string {
	if c.srv.cfg.BetaNames {
		return beta
	}
	return ga
}

// respond streams one response.
func (c *rtConn) respond(r *rtResponse, a realtimefake.Answer) {
	defer func() {
		c.release(r)
		close(r.done)
		c.wg.Done()
	}()
	c.send(map[string]any{"type": "response.created", "response": map[string]any{"id": r.id, "status": "in_progress"}})
	if a.Call != nil {
		item, call := c.nextID("item"), c.nextID("call")
		args := a.Call.Arguments
		if args == "" {
			args = "{}"
		}
		c.mu.Lock()
		c.names[call] = a.Call.Name
		c.mu.Unlock()
		fc := map[string]any{"id": item, "type": "function_call", "call_id": call, "name": a.Call.Name, "arguments": args, "status": "completed"}
		c.send(map[string]any{"type": "response.output_item.added", "response_id": r.id, "output_index": 0,
			"item": map[string]any{"id": item, "type": "function_call", "call_id": call, "name": a.Call.Name, "arguments": ""}})
		c.send(map[string]any{"type": "response.function_call_arguments.delta", "response_id": r.id, "item_id": item, "call_id": call, "delta": args})
		c.send(map[string]any{"type": "response.function_call_arguments.done", "response_id": r.id, "item_id": item, "call_id": call, "name": a.Call.Name, "arguments": args})
		c.send(map[string]any{"type": "response.output_item.done", "response_id": r.id, "output_index": 0, "item": fc})
		c.finish(map[string]any{"id": r.id, "status": "completed", "output": []any{fc}})
		return
	}
	item := c.nextID("item")
	c.mu.Lock()
	if c.items == nil {
		c.items = map[string]bool{}
	}
	c.items[item] = true
	c.mu.Unlock()
	c.send(map[string]any{"type": "response.output_item.added", "response_id": r.id, "output_index": 0,
		"item": map[string]any{"id": item, "type": "message", "role": "assistant"}})
	trDelta := c.eventName("response.audio_transcript.delta", "response.output_audio_transcript.delta")
	for _, w := range strings.SplitAfter(a.Text, " ") {
		c.send(map[string]any{"type": trDelta, "response_id": r.id, "item_id": item, "content_index": 0, "delta": w})
	}
	ulaw := audio.EncodeUlaw(nil, realtimefake.Synth(a.Text, 8000))
	audioDelta := c.eventName("response.audio.delta", "response.output_audio.delta")
	for sent := 0; len(ulaw) > 0; sent++ {
		select {
		case reason := <-r.stop:
			c.cancelled(r, item, reason)
			return
		case <-c.ctx.Done():
			return
		default:
		}
		n := min(800, len(ulaw))
		c.send(map[string]any{"type": audioDelta, "response_id": r.id, "item_id": item, "output_index": 0, "content_index": 0,
			"delta": base64.StdEncoding.EncodeToString(ulaw[:n])})
		ulaw = ulaw[n:]
		if sent == 0 && r.number == c.srv.cfg.FaultAfter+1 && c.srv.cfg.Fault != NoRealtimeFault {
			c.strike(c.srv.cfg.Fault)
		}
		if d := c.srv.cfg.ChunkInterval; d > 0 && len(ulaw) > 0 {
			t := time.NewTimer(d)
			select {
			case reason := <-r.stop:
				t.Stop()
				c.cancelled(r, item, reason)
				return
			case <-c.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
	c.send(map[string]any{"type": c.eventName("response.audio.done", "response.output_audio.done"), "response_id": r.id, "item_id": item})
	c.send(map[string]any{"type": c.eventName("response.audio_transcript.done", "response.output_audio_transcript.done"), "response_id": r.id, "item_id": item, "transcript": a.Text})
	c.send(map[string]any{"type": "response.output_item.done", "response_id": r.id, "item": map[string]any{"id": item, "type": "message", "role": "assistant", "status": "completed"}})
	c.finish(map[string]any{"id": r.id, "status": "completed"})
}

// release ends r's turn as the active response.
func (c *rtConn) release(r *rtResponse) {
	c.mu.Lock()
	if c.active == r {
		c.active = nil
	}
	c.mu.Unlock()
}

// finish sends response.done for the active response, which is released
// first so that a response.create answering it is accepted.
func (c *rtConn) finish(resp map[string]any) {
	c.mu.Lock()
	c.active = nil
	c.mu.Unlock()
	c.send(map[string]any{"type": "response.done", "response": resp})
}

func (c *rtConn) cancelled(r *rtResponse, item, reason string) {
	c.srv.record(func() { c.rec.Cancelled++ })
	c.send(map[string]any{"type": "response.output_item.done", "response_id": r.id, "item": map[string]any{"id": item, "type": "message", "role": "assistant", "status": "incomplete"}})
	c.finish(map[string]any{"id": r.id, "status": "cancelled", "status_details": map[string]any{"type": "cancelled", "reason": reason}})
}

// strike injects f. FaultClose blocks until the close handshake ends.
func (c *rtConn) strike(f RealtimeFault) {
	switch f {
	case FaultMalformed:
		c.write([]byte(`{"type":"response.output_audio.delta","delta":`))
	case FaultErrorEvent:
		c.sendError("server_error", "fake_failure", "", "fake failure")
	case FaultDisconnect:
		_ = c.ws.CloseNow()
	case FaultClose:
		_ = c.ws.Close(c.srv.cfg.CloseCode, c.srv.cfg.CloseReason)
	}
}

func (c *rtConn) sendError(typ, code, param, msg string) {
	e := map[string]any{"type": typ, "code": code, "message": msg}
	if param != "" {
		e["param"] = param
	}
	c.send(map[string]any{"type": "error", "event_id": c.nextID("event"), "error": e})
}

func (c *rtConn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	c.write(b)
}

func (c *rtConn) write(b []byte) {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	_ = c.ws.Write(ctx, websocket.MessageText, b)
}
