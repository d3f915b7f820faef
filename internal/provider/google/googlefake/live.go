package googlefake

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/realtime/realtimefake"
)

// Gemini Live's audio rates: 16 kHz in, 24 kHz out.
const (
	LiveInRate  = 16000
	LiveOutRate = 24000
	// liveChunkBytes is the model's audio per message: 100 ms at 24 kHz,
	// plus one byte, so samples are split across messages.
	liveChunkBytes = LiveOutRate/10*2 + 1
)

// LiveVoices are the Gemini Live voices the fake accepts.
var LiveVoices = []string{"Puck", "Achernar", "Achird", "Algenib", "Algieba", "Alnilam", "Aoede", "Autonoe",
	"Callirrhoe", "Charon", "Despina", "Enceladus", "Erinome", "Fenrir", "Gacrux", "Iapetus", "Kore", "Laomedeia",
	"Leda", "Orus", "Pulcherrima", "Rasalgethi", "Sadachbia", "Sadaltager", "Schedar", "Sulafat", "Umbriel",
	"Vindemiatrix", "Zephyr", "Zubenelgenubi"}

// LiveConfig scripts a Live fake.
type LiveConfig struct {
	// Server verifies Vertex AI access tokens: only those its token
	// endpoint issued pass, and model paths must name its account's
	// project. Nil accepts any bearer token and project.
	Server *Server
	// StudioKey is the AI Studio key accepted; "" accepts any key that is
	// not an access token.
	StudioKey string
	// Script is the conversation: what the caller said, how the model
	// answers.
	Script realtimefake.Script
	// NoResumption ignores setup.sessionResumption: no handles are sent.
	NoResumption bool
}

// Live is Gemini Live's BidiGenerateContent websocket for both services,
// mounted at any path (the path is recorded). The header decides the
// service: x-goog-api-key is the Gemini API (models "models/<name>", not
// gemini-live-*), Authorization: Bearer is Vertex AI (models
// "projects/P/locations/L/publishers/google/models/gemini-live-*"). A model
// of the other service's family is closed with 1008; a bad setup, an API
// key that is not valid, and the deprecated mediaChunks with 1007; an
// unknown access token is refused with HTTP 401 before the upgrade.
//
// After setupComplete the fake hears the caller's 16 kHz audio with a
// realtimefake.Ear (its silence from silenceDurationMs). At the end of an
// utterance it sends the transcript (inputTranscription, in two pieces),
// then the model's turn: 24 kHz audio (realtimefake.Synth) in 100 ms
// inlineData messages cut at odd bytes, outputTranscription word by word,
// generationComplete, and turnComplete once as much caller audio has
// arrived as the answer lasts (its "playback"). Caller speech before that
// is a barge-in: interrupted, and no turnComplete. A scripted tool call is
// a toolCall; the toolResponse makes the model say Script.AfterTool.
// clientContent with turnComplete makes it say Script.Instructed(text).
// Server messages go in binary frames, as the service sends them.
//
// A setup asking for sessionResumption gets a sessionResumptionUpdate with
// a new handle after setupComplete and after every turn; a setup with one
// of those handles resumes that conversation (the Script goes on where it
// was), an unknown handle is closed with 1007.
type Live struct {
	cfg LiveConfig

	mu       sync.Mutex
	sessions []*LiveSession
	conns    map[*liveConn]struct{}
	handles  map[string]int // resumption handle → utterances heard
	wg       sync.WaitGroup
}

// LiveSession is what one connection received.
type LiveSession struct {
	Service string // "studio" or "vertex"
	Path    string
	Setup   LiveSetup
	// SetupJSON is the setup message as received.
	SetupJSON     string
	ClientContent []LiveClientContent
	ToolResponses []LiveFunctionResponse
	// Audio is how much caller audio arrived, in AudioMessages messages.
	Audio         time.Duration
	AudioMessages int
	// Spoken is what the model said, turn by turn; Interrupted counts the
	// turns cut off by the caller.
	Spoken      []string
	Interrupted int
	// ResumedFrom is the resumption handle the setup carried; Handles are
	// the handles sent.
	ResumedFrom string
	Handles     []string
}

// LiveSetup is the part of the setup the fake reads.
type LiveSetup struct {
	Model, Voice, SystemInstruction    string
	Modalities                         []string
	Temperature                        *float64
	MaxOutputTokens                    int
	Tools                              []LiveFunction
	StartSensitivity, EndSensitivity   string
	PrefixPaddingMs, SilenceDurationMs int
	InputTranscription                 bool
	OutputTranscription                bool
	// Resumption is set when the setup asked for resumption handles.
	Resumption bool
}

// LiveFunction is a declared function.
type LiveFunction struct {
	Name, Description string
	Parameters        string // parametersJsonSchema as JSON text
}

// LiveClientContent is one clientContent message.
type LiveClientContent struct {
	Turns        []LiveTurn
	TurnComplete bool
}

// LiveTurn is one turn of client content.
type LiveTurn struct{ Role, Text string }

// LiveFunctionResponse is one function response; Output is
// response.output as text (a JSON string's value, else the JSON).
type LiveFunctionResponse struct{ ID, Name, Output string }

// NewLive returns a Live fake.
func NewLive(cfg LiveConfig) *Live {
	return &Live{cfg: cfg, conns: map[*liveConn]struct{}{}, handles: map[string]int{}}
}

// Sessions lists the sessions so far, in the order they connected.
func (l *Live) Sessions() []LiveSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LiveSession, len(l.sessions))
	for i, s := range l.sessions {
		out[i] = *s
		out[i].ClientContent = slices.Clone(s.ClientContent)
		out[i].ToolResponses = slices.Clone(s.ToolResponses)
		out[i].Spoken = slices.Clone(s.Spoken)
		out[i].Handles = slices.Clone(s.Handles)
	}
	return out
}

// Malformed sends every open session a message that is not JSON.
func (l *Live) Malformed() {
	l.each(func(c *liveConn) { c.writeRaw([]byte("{serverContent: not json")) })
}

// Disconnect drops every open session's TCP connection without a close
// frame.
func (l *Live) Disconnect() { l.each(func(c *liveConn) { _ = c.ws.CloseNow() }) }

// CloseSessions closes every open session with code and reason (1011
// "Internal error encountered." as the service does mid-call).
func (l *Live) CloseSessions(code websocket.StatusCode, reason string) {
	l.each(func(c *liveConn) { _ = c.ws.Close(code, clipReason(reason)) })
}

// GoAway tells every open session that its connection ends in timeLeft.
func (l *Live) GoAway(timeLeft time.Duration) {
	l.each(func(c *liveConn) {
		c.write(map[string]any{"goAway": map[string]string{"timeLeft": fmt.Sprintf("%gs", timeLeft.Seconds())}})
	})
}

// Close drops every connection and waits for their handlers.
func (l *Live) Close() {
	l.each(func(c *liveConn) { _ = c.ws.CloseNow() })
	l.wg.Wait()
}

func (l *Live) each(f func(*liveConn)) {
	l.mu.Lock()
	conns := make([]*liveConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		f(c)
	}
}

// ServeHTTP authenticates, upgrades and runs one session.
func (l *Live) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	service, keyOK := "", true
	switch {
	case r.Header.Get("x-goog-api-key") != "":
		service = "studio"
		key := r.Header.Get("x-goog-api-key")
		keyOK = !strings.HasPrefix(key, "ya29.") && (l.cfg.StudioKey == "" || key == l.cfg.StudioKey)
	case strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
		service = "vertex"
		if !l.validToken(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")) {
			googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
			return
		}
	default:
		googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "The request is missing a valid API key.")
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(8 << 20)
	rec := &LiveSession{Service: service, Path: r.URL.Path}
	c := &liveConn{l: l, ws: ws, rec: rec, keyOK: keyOK, script: l.cfg.Script}
	l.mu.Lock()
	c.index = len(l.sessions)
	l.sessions = append(l.sessions, rec)
	l.conns[c] = struct{}{}
	l.wg.Add(1)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		_ = ws.CloseNow()
		l.wg.Done()
	}()
	c.run(r.Context())
}

// validToken reports whether the Server issued tok (any token without a
// Server).
func (l *Live) validToken(tok string) bool {
	s := l.cfg.Server
	if s == nil {
		return tok != ""
	}
	s.mu.Lock()
	exp, ok := s.issued[tok]
	s.mu.Unlock()
	return ok && time.Now().Before(exp)
}

// liveConn is one session; run's goroutine owns everything but ws.
type liveConn struct {
	l      *Live
	ws     *websocket.Conn
	rec    *LiveSession // guarded by l.mu
	keyOK  bool
	script realtimefake.Script

	ear        *realtimefake.Ear
	pcm        audio.PCM16Splitter
	utterances int
	calls      int
	index      int  // of the session in Live.sessions
	resumable  bool // the setup asked for handles
	handles    int

	speaking bool              // a model turn awaits its turnComplete
	turnEnd  time.Duration     // ear position at which it completes
	pending  map[string]string // tool call id → name, awaiting a response
}

// clientMessage is what the fake reads of a client message.
type clientMessage struct {
	Setup         json.RawMessage `json:"setup"`
	RealtimeInput *struct {
		Audio *struct {
			MimeType string `json:"mimeType"`
			Data     string `json:"data"`
		} `json:"audio"`
		MediaChunks json.RawMessage `json:"mediaChunks"`
	} `json:"realtimeInput"`
	ClientContent *struct {
		Turns []struct {
			Role  string `json:"role"`
			Parts []struct {
				Text string `json:"text"`
			} `json:"parts"`
		} `json:"turns"`
		TurnComplete bool `json:"turnComplete"`
	} `json:"clientContent"`
	ToolResponse *struct {
		FunctionResponses []struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			Response struct {
				Output json.RawMessage `json:"output"`
			} `json:"response"`
		} `json:"functionResponses"`
	} `json:"toolResponse"`
}

// setupMessage is what the fake reads of the setup.
type setupMessage struct {
	Model            string `json:"model"`
	GenerationConfig struct {
		ResponseModalities []string `json:"responseModalities"`
		SpeechConfig       struct {
			VoiceConfig struct {
				PrebuiltVoiceConfig struct {
					VoiceName string `json:"voiceName"`
				} `json:"prebuiltVoiceConfig"`
			} `json:"voiceConfig"`
		} `json:"speechConfig"`
		Temperature     *float64 `json:"temperature"`
		MaxOutputTokens int      `json:"maxOutputTokens"`
	} `json:"generationConfig"`
	SystemInstruction *struct {
		Parts []struct {
			Text string `json:"text"`
		} `json:"parts"`
	} `json:"systemInstruction"`
	Tools []struct {
		FunctionDeclarations []struct {
			Name                 string          `json:"name"`
			Description          string          `json:"description"`
			ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema"`
		} `json:"functionDeclarations"`
	} `json:"tools"`
	RealtimeInputConfig *struct {
		AutomaticActivityDetection struct {
			StartOfSpeechSensitivity string `json:"startOfSpeechSensitivity"`
			EndOfSpeechSensitivity   string `json:"endOfSpeechSensitivity"`
			PrefixPaddingMs          int    `json:"prefixPaddingMs"`
			SilenceDurationMs        int    `json:"silenceDurationMs"`
		} `json:"automaticActivityDetection"`
	} `json:"realtimeInputConfig"`
	InputAudioTranscription  *json.RawMessage `json:"inputAudioTranscription"`
	OutputAudioTranscription *json.RawMessage `json:"outputAudioTranscription"`
	SessionResumption        *struct {
		Handle string `json:"handle"`
	} `json:"sessionResumption"`
}

func (c *liveConn) run(ctx context.Context) {
	if !c.setup(ctx) {
		return
	}
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		var m clientMessage
		if err := json.Unmarshal(data, &m); err != nil {
			c.close(websocket.StatusInvalidFramePayloadData, "Invalid JSON payload received.")
			return
		}
		var ok bool
		switch {
		case m.RealtimeInput != nil:
			ok = c.realtimeInput(m.RealtimeInput.Audio, m.RealtimeInput.MediaChunks)
		case m.ClientContent != nil:
			cc := LiveClientContent{TurnComplete: m.ClientContent.TurnComplete}
			for _, t := range m.ClientContent.Turns {
				var parts []string
				for _, p := range t.Parts {
					parts = append(parts, p.Text)
				}
				cc.Turns = append(cc.Turns, LiveTurn{Role: t.Role, Text: strings.Join(parts, "")})
			}
			c.record(func(r *LiveSession) { r.ClientContent = append(r.ClientContent, cc) })
			ok = true
			if cc.TurnComplete && len(cc.Turns) > 0 {
				ok = c.speak(c.script.Instructed(cc.Turns[len(cc.Turns)-1].Text))
			}
		case m.ToolResponse != nil:
			ok = c.toolResponse(m.ToolResponse.FunctionResponses)
		case m.Setup != nil:
			c.close(websocket.StatusInvalidFramePayloadData, "setup must be the first and only setup message")
			return
		default:
			c.close(websocket.StatusInvalidFramePayloadData, "Invalid JSON payload received. Unknown message.")
			return
		}
		if !ok {
			return
		}
	}
}

// setup reads and checks the first message and answers setupComplete.
func (c *liveConn) setup(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, data, err := c.ws.Read(rctx)
	if err != nil {
		return false
	}
	var m clientMessage
	if json.Unmarshal(data, &m) != nil || m.Setup == nil {
		c.close(websocket.StatusInvalidFramePayloadData, "Invalid JSON payload received. The first message must be setup.")
		return false
	}
	var s setupMessage
	if err := json.Unmarshal(m.Setup, &s); err != nil {
		c.close(websocket.StatusInvalidFramePayloadData, "Invalid JSON payload received. "+err.Error())
		return false
	}
	setup := LiveSetup{Model: s.Model, Voice: s.GenerationConfig.SpeechConfig.VoiceConfig.PrebuiltVoiceConfig.VoiceName,
		Modalities: s.GenerationConfig.ResponseModalities, Temperature: s.GenerationConfig.Temperature,
		MaxOutputTokens: s.GenerationConfig.MaxOutputTokens, InputTranscription: s.InputAudioTranscription != nil,
		OutputTranscription: s.OutputAudioTranscription != nil, Resumption: s.SessionResumption != nil}
	if s.SystemInstruction != nil {
		for _, p := range s.SystemInstruction.Parts {
			setup.SystemInstruction += p.Text
		}
	}
	for _, t := range s.Tools {
		for _, f := range t.FunctionDeclarations {
			setup.Tools = append(setup.Tools, LiveFunction{Name: f.Name, Description: f.Description, Parameters: string(f.ParametersJSONSchema)})
		}
	}
	if r := s.RealtimeInputConfig; r != nil {
		a := r.AutomaticActivityDetection
		setup.StartSensitivity, setup.EndSensitivity = a.StartOfSpeechSensitivity, a.EndOfSpeechSensitivity
		setup.PrefixPaddingMs, setup.SilenceDurationMs = a.PrefixPaddingMs, a.SilenceDurationMs
	}
	c.record(func(r *LiveSession) { r.Setup, r.SetupJSON = setup, string(m.Setup) })

	if !c.keyOK {
		c.close(websocket.StatusInvalidFramePayloadData, "API key not valid. Please pass a valid API key.")
		return false
	}
	if reason := c.checkModel(s.Model); reason != "" {
		c.close(websocket.StatusPolicyViolation, reason)
		return false
	}
	if !slices.Equal(setup.Modalities, []string{"AUDIO"}) {
		c.close(websocket.StatusInvalidFramePayloadData, fmt.Sprintf("Request contains an invalid argument: response modalities %v; native audio models take [AUDIO] only", setup.Modalities))
		return false
	}
	if setup.Voice != "" && !slices.Contains(LiveVoices, setup.Voice) {
		c.close(websocket.StatusInvalidFramePayloadData, fmt.Sprintf("Request contains an invalid argument: voice %q is not supported", setup.Voice))
		return false
	}
	if r := s.SessionResumption; r != nil && r.Handle != "" {
		c.l.mu.Lock()
		n, ok := c.l.handles[r.Handle]
		c.rec.ResumedFrom = r.Handle
		c.l.mu.Unlock()
		if !ok {
			c.close(websocket.StatusInvalidFramePayloadData, "Request contains an invalid argument: invalid session resumption handle")
			return false
		}
		c.utterances = n
	}
	c.resumable = s.SessionResumption != nil && !c.l.cfg.NoResumption
	c.ear = realtimefake.NewEar(LiveInRate, 0, time.Duration(setup.SilenceDurationMs)*time.Millisecond)
	c.pending = map[string]string{}
	return c.write(map[string]any{"setupComplete": map[string]any{}}) && c.newHandle()
}

// newHandle sends a resumption handle for the conversation so far, when
// the setup asked for them.
func (c *liveConn) newHandle() bool {
	if !c.resumable {
		return true
	}
	c.handles++
	h := fmt.Sprintf("handle-%d-%d", c.index, c.handles)
	c.l.mu.Lock()
	c.l.handles[h] = c.utterances
	c.rec.Handles = append(c.rec.Handles, h)
	c.l.mu.Unlock()
	return c.write(map[string]any{"sessionResumptionUpdate": map[string]any{"newHandle": h, "resumable": true}})
}

// checkModel returns why the model is refused ("" when it is served).
func (c *liveConn) checkModel(model string) string {
	switch c.rec.Service {
	case "studio":
		name, ok := strings.CutPrefix(model, "models/")
		if !ok || name == "" || strings.Contains(name, "/") {
			return fmt.Sprintf("model %q must be models/<name>", model)
		}
		if strings.HasPrefix(name, "gemini-live-") {
			return fmt.Sprintf("models/%s is not found for API version v1beta, or is not supported for bidiGenerateContent.", name)
		}
	default:
		seg := strings.Split(model, "/")
		if len(seg) != 8 || seg[0] != "projects" || seg[2] != "locations" || seg[4] != "publishers" || seg[5] != "google" || seg[6] != "models" {
			return fmt.Sprintf("model %q must be projects/{project}/locations/{location}/publishers/google/models/{model}", model)
		}
		if s := c.l.cfg.Server; s != nil && s.cfg.Account != nil && seg[1] != s.cfg.Account.Project {
			return fmt.Sprintf("Permission denied on project %s", seg[1])
		}
		if !strings.HasPrefix(seg[7], "gemini-live-") {
			return fmt.Sprintf("Publisher Model `%s` was not found.", seg[7])
		}
	}
	return ""
}

// realtimeInput hears the caller's audio.
func (c *liveConn) realtimeInput(a *struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}, mediaChunks json.RawMessage) bool {
	if mediaChunks != nil {
		c.close(websocket.StatusInvalidFramePayloadData, "realtime_input.media_chunks is deprecated. Use audio, video, or text instead.")
		return false
	}
	if a == nil {
		return true
	}
	if !strings.HasPrefix(a.MimeType, "audio/pcm") || !strings.Contains(a.MimeType, fmt.Sprintf("rate=%d", LiveInRate)) {
		c.close(websocket.StatusInvalidFramePayloadData, fmt.Sprintf("Request contains an invalid argument: audio mimeType %q, this fake takes audio/pcm;rate=16000", a.MimeType))
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(a.Data)
	if err != nil {
		c.close(websocket.StatusInvalidFramePayloadData, "Invalid value at 'realtime_input.audio.data' (TYPE_BYTES), Base64 decoding failed")
		return false
	}
	pcm := c.pcm.Decode(raw)
	c.record(func(r *LiveSession) {
		r.AudioMessages++
		r.Audio += time.Duration(len(pcm)) * time.Second / LiveInRate
	})
	// 10 ms steps, so a turn completes and a barge-in starts on time.
	for len(pcm) > 0 {
		n := min(len(pcm), LiveInRate/100)
		for _, h := range c.ear.Hear(pcm[:n]) {
			if !c.heard(h) {
				return false
			}
		}
		pcm = pcm[n:]
		if c.speaking && c.ear.Position() >= c.turnEnd {
			c.speaking = false
			if !c.write(content(map[string]any{"turnComplete": true})) || !c.newHandle() {
				return false
			}
		}
	}
	return true
}

// heard reacts to the start or end of an utterance.
func (c *liveConn) heard(h realtimefake.Heard) bool {
	if h.Kind == realtimefake.SpeechStarted {
		if len(c.pending) > 0 {
			ids := make([]string, 0, len(c.pending))
			for id := range c.pending {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			clear(c.pending)
			if !c.write(map[string]any{"toolCallCancellation": map[string]any{"ids": ids}}) {
				return false
			}
		}
		if c.speaking {
			c.speaking = false
			c.record(func(r *LiveSession) { r.Interrupted++ })
			return c.write(content(map[string]any{"interrupted": true})) && c.newHandle()
		}
		return true
	}
	t := c.script.Transcript(c.utterances)
	c.utterances++
	first, rest, found := strings.Cut(t, " ")
	if found {
		rest = " " + rest
	}
	for _, piece := range []string{first, rest} {
		if piece != "" && !c.write(content(map[string]any{"inputTranscription": map[string]string{"text": piece}})) {
			return false
		}
	}
	a := c.script.Answer(t)
	if a.Call == nil {
		return c.speak(a.Text)
	}
	c.calls++
	id := fmt.Sprintf("fc-%d", c.calls)
	c.pending[id] = a.Call.Name
	args := json.RawMessage(a.Call.Arguments)
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	return c.write(map[string]any{"toolCall": map[string]any{"functionCalls": []any{
		map[string]any{"id": id, "name": a.Call.Name, "args": args}}}})
}

// toolResponse records the results and speaks on them.
func (c *liveConn) toolResponse(rs []struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Response struct {
		Output json.RawMessage `json:"output"`
	} `json:"response"`
}) bool {
	var spoken []string
	for _, r := range rs {
		out := string(r.Response.Output)
		var s string
		if json.Unmarshal(r.Response.Output, &s) == nil {
			out = s
		}
		c.record(func(rec *LiveSession) {
			rec.ToolResponses = append(rec.ToolResponses, LiveFunctionResponse{ID: r.ID, Name: r.Name, Output: out})
		})
		if _, ok := c.pending[r.ID]; ok {
			delete(c.pending, r.ID)
			spoken = append(spoken, c.script.AfterTool(r.Name, out))
		}
	}
	if len(spoken) == 0 {
		return true
	}
	return c.speak(strings.Join(spoken, " "))
}

// speak sends a model turn: audio, its transcription, generationComplete.
// turnComplete follows once the caller's audio has covered its length.
func (c *liveConn) speak(text string) bool {
	if c.speaking && !c.write(content(map[string]any{"turnComplete": true})) {
		return false
	}
	pcm := realtimefake.Synth(text, LiveOutRate)
	raw := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		raw[2*i], raw[2*i+1] = byte(v), byte(uint16(v)>>8)
	}
	words := strings.SplitAfter(text, " ")
	for i := 0; len(raw) > 0 || len(words) > 0; i++ {
		if len(raw) > 0 {
			n := min(len(raw), liveChunkBytes)
			part := map[string]any{"inlineData": map[string]string{"mimeType": fmt.Sprintf("audio/pcm;rate=%d", LiveOutRate), "data": base64.StdEncoding.EncodeToString(raw[:n])}}
			if !c.write(content(map[string]any{"modelTurn": map[string]any{"parts": []any{part}}})) {
				return false
			}
			raw = raw[n:]
		}
		if len(words) > 0 {
			if !c.write(content(map[string]any{"outputTranscription": map[string]string{"text": words[0]}})) {
				return false
			}
			words = words[1:]
		}
	}
	c.record(func(r *LiveSession) { r.Spoken = append(r.Spoken, text) })
	c.speaking, c.turnEnd = true, c.ear.Position()+realtimefake.SynthDuration(text)
	return c.write(content(map[string]any{"generationComplete": true}))
}

func content(v map[string]any) map[string]any { return map[string]any{"serverContent": v} }

func (c *liveConn) record(f func(*LiveSession)) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	f(c.rec)
}

// write sends one message in a binary frame; false when the connection
// is gone.
func (c *liveConn) write(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return c.writeRaw(b)
}

func (c *liveConn) writeRaw(b []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageBinary, b) == nil
}

// close ends the session with code and reason, as the service does; a
// close frame holds at most 123 bytes of reason.
func (c *liveConn) close(code websocket.StatusCode, reason string) {
	_ = c.ws.Close(code, clipReason(reason))
}

func clipReason(s string) string {
	if len(s) <= maxReason {
		return s
	}
	return strings.ToValidUTF8(s[:maxReason], "")
}

// maxReason is the most a close frame's reason may hold.
const maxReason = 123
