package deepgramfake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"log/slog"
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/coder/websocket"
)

// writeTimeout bounds one server message so that a client that stopped
// reading cannot hold a session forever.
const writeTimeout = 10 * time.Second

// session is one websocket connection. Its loop runs on the ServeHTTP
// goroutine; the idle watchdog is the only other goroutine and is joined
// before run returns.
type session struct {
	srv       *Server
	conn      *websocket.Conn
	log       *slog.Logger
	p         params
	requestID string

	det     *detector
	carry   []byte // bytes of an incomplete sample frame
	pcm     []int16
	events  []detEvent
	audio   hash.Hash
	next    int // index of the next scripted transcript
	shown   int // words revealed by interim results in this utterance
	finals  int
	ended   bool
	kick    chan struct{} // cap 1: audio or KeepAlive arrived
	started time.Time
}

func newSession(srv *Server, conn *websocket.Conn, p params, requestID string) *session {
	return &session{
		srv:       srv,
		conn:      conn,
		log:       srv.log.With("request_id", requestID),
		p:         p,
		requestID: requestID,
		det: newDetector(p.sampleRate, srv.cfg.Threshold, p.endpointing, p.utteranceEnd,
			srv.cfg.Interim && p.interim),
		audio:   sha256.New(),
		kick:    make(chan struct{}, 1),
		started: time.Now(),
	}
}

// run reads client messages until the connection ends.
func (s *session) run(parent context.Context) {
	// The request context is not reliable after a hijack; the session's own
	// context ends with the session.
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	defer cancel()

	stop := make(chan struct{})
	watchDone := make(chan struct{})
	go s.watchdog(stop, watchDone)
	defer func() {
		close(stop)
		<-watchDone
		_ = s.conn.CloseNow()
	}()

	s.log.Debug("stream opened", "encoding", s.p.encoding, "sample_rate", s.p.sampleRate, "model", s.p.model)
	for !s.ended {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			s.log.Debug("stream ended", "err", err)
			return
		}
		switch typ {
		case websocket.MessageBinary:
			s.poke()
			s.srv.audioBytes.Add(int64(len(data)))
			s.receiveAudio(ctx, data)
		case websocket.MessageText:
			s.control(ctx, data)
		}
	}
}

// watchdog closes the connection with NET-0001 when neither audio nor
// KeepAlive arrived for the idle timeout.
func (s *session) watchdog(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	idle := time.NewTimer(s.srv.cfg.IdleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-stop:
			return
		case <-s.kick:
			idle.Reset(s.srv.cfg.IdleTimeout)
		case <-idle.C:
			s.log.Debug("closing idle stream")
			_ = s.conn.Close(websocket.StatusInternalError, IdleReason)
			return
		}
	}
}

func (s *session) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// receiveAudio decodes data and runs the detector over it.
func (s *session) receiveAudio(ctx context.Context, data []byte) {
	s.audio.Write(data)
	buf := data
	if len(s.carry) > 0 {
		buf = append(append([]byte(nil), s.carry...), data...)
	}
	frame := bytesPerSample(s.p.encoding) * s.p.channels
	whole := len(buf) / frame * frame
	s.carry = append(s.carry[:0], buf[whole:]...)

	s.pcm = decodeChannel0(s.pcm[:0], buf[:whole], s.p.encoding, s.p.channels)
	s.events = s.det.feed(s.pcm, s.events[:0])
	s.emit(ctx, s.events)
}

// control handles a JSON control message.
func (s *session) control(ctx context.Context, data []byte) {
	var msg struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &msg); err != nil {
		s.log.Debug("ignoring malformed control message", "err", err)
		return
	}
	switch msg.Type {
	case "KeepAlive":
		s.poke()
	case "Finalize":
		s.events = s.det.finish(true, s.events[:0])
		s.emit(ctx, s.events)
	case "CloseStream":
		s.events = s.det.finish(false, s.events[:0])
		s.emit(ctx, s.events)
		if s.ended {
			return
		}
		if err := s.send(ctx, s.metadata()); err != nil {
			s.log.Debug("sending metadata failed", "err", err)
		}
		s.ended = true
		_ = s.conn.Close(websocket.StatusNormalClosure, "")
	default:
		s.log.Debug("ignoring unknown control message", "type", msg.Type)
	}
}

// emit sends the messages for the detector's events, in order.
func (s *session) emit(ctx context.Context, events []detEvent) {
	for _, ev := range events {
		if s.ended {
			return
		}
		var err error
		switch ev.kind {
		case detSpeechStarted:
			s.shown = 0
			if s.p.vadEvents {
				err = s.send(ctx, speechStartedMsg{
					Type:      "SpeechStarted",
					Channel:   s.channelIndex(),
					Timestamp: secs(ev.start),
				})
			}
		case detInterim:
			words := strings.Fields(s.transcript())
			n := min(ev.tick, len(words))
			if n <= s.shown {
				continue
			}
			s.shown = n
			err = s.send(ctx, s.results(strings.Join(words[:n], " "), ev, false))
		case detFinal:
			err = s.final(ctx, ev)
		case detUtteranceEnd:
			err = s.send(ctx, utteranceEndMsg{
				Type:        "UtteranceEnd",
				Channel:     s.channelIndex(),
				LastWordEnd: secs(ev.end),
			})
		}
		if err != nil {
			s.log.Debug("sending result failed", "err", err)
			s.ended = true
			_ = s.conn.CloseNow()
			return
		}
	}
}

// final sends the utterance's speech_final Results with the next scripted
// transcript, then applies FailAfter.
func (s *session) final(ctx context.Context, ev detEvent) error {
	text := s.transcript()
	s.next++
	s.shown = 0
	if err := s.send(ctx, s.results(text, ev, true)); err != nil {
		return err
	}
	s.finals++
	s.srv.finals.Add(1)
	if s.srv.cfg.OnFinal != nil {
		s.srv.cfg.OnFinal(text, time.Now())
	}
	if fa := s.srv.cfg.FailAfter; fa > 0 && s.finals >= fa {
		s.log.Debug("failing stream as configured", "finals", s.finals)
		s.ended = true
		_ = s.conn.Close(websocket.StatusInternalError, FailReason)
	}
	return nil
}

// transcript is the scripted reply for the current utterance.
func (s *session) transcript() string {
	ts := s.srv.cfg.Transcripts
	return ts[s.next%len(ts)]
}

func (s *session) channelIndex() []int { return []int{0, s.p.channels} }

// results builds a Results message whose words are spread evenly over the
// event's span.
func (s *session) results(text string, ev detEvent, final bool) resultsMsg {
	fields := strings.Fields(text)
	words := make([]wordMsg, len(fields))
	span := ev.end - ev.start
	for i, f := range fields {
		from := ev.start + span*time.Duration(i)/time.Duration(len(fields))
		to := ev.start + span*time.Duration(i+1)/time.Duration(len(fields))
		words[i] = wordMsg{
			Word:           normalizeWord(f),
			Start:          secs(from),
			End:            secs(to),
			Confidence:     0.99,
			PunctuatedWord: f,
		}
	}
	confidence := 0.0
	if len(fields) > 0 {
		confidence = 0.98
	}
	m := resultsMsg{
		Type:         "Results",
		ChannelIndex: s.channelIndex(),
		Start:        secs(ev.start),
		Duration:     secs(span),
		IsFinal:      final,
		SpeechFinal:  final,
		FromFinalize: ev.fromFinalize,
	}
	m.Channel.Alternatives = []alternativeMsg{{Transcript: text, Confidence: confidence, Words: words}}
	m.Metadata = resultMetaMsg{
		RequestID: s.requestID,
		ModelUUID: modelUUID,
		ModelInfo: modelInfoMsg{Name: s.p.model, Version: "fake", Arch: "fake"},
	}
	return m
}

// metadata is the summary sent in answer to CloseStream.
func (s *session) metadata() metadataMsg {
	return metadataMsg{
		Type:           "Metadata",
		TransactionKey: "deprecated",
		RequestID:      s.requestID,
		SHA256:         hex.EncodeToString(s.audio.Sum(nil)),
		Created:        s.started.UTC().Format("2006-01-02T15:04:05.000Z"),
		Duration:       secs(s.det.elapsed()),
		Channels:       s.p.channels,
		Models:         []string{modelUUID},
		ModelInfo: map[string]modelInfoMsg{
			modelUUID: {Name: s.p.model, Version: "fake", Arch: "fake"},
		},
	}
}

// send writes one JSON message.
func (s *session) send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding message: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := s.conn.Write(wctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("writing message: %w", err)
	}
	return nil
}

// normalizeWord is the unpunctuated, lower-case form Deepgram puts in
// "word".
func normalizeWord(w string) string {
	return strings.ToLower(strings.TrimFunc(w, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	}))
}

// secs renders a duration as seconds rounded to the millisecond.
func secs(d time.Duration) float64 {
	return math.Round(d.Seconds()*1000) / 1000
}

// Wire messages (server → client).

type resultsMsg struct {
	Type         string  `json:"type"`
	ChannelIndex []int   `json:"channel_index"`
	Duration     float64 `json:"duration"`
	Start        float64 `json:"start"`
	IsFinal      bool    `json:"is_final"`
	SpeechFinal  bool    `json:"speech_final"`
	FromFinalize bool    `json:"from_finalize"`
	Channel      struct {
		Alternatives []alternativeMsg `json:"alternatives"`
	} `json:"channel"`
	Metadata resultMetaMsg `json:"metadata"`
}

type alternativeMsg struct {
	Transcript string    `json:"transcript"`
	Confidence float64   `json:"confidence"`
	Words      []wordMsg `json:"words"`
}

type wordMsg struct {
	Word           string  `json:"word"`
	Start          float64 `json:"start"`
	End            float64 `json:"end"`
	Confidence     float64 `json:"confidence"`
	PunctuatedWord string  `json:"punctuated_word"`
}

type resultMetaMsg struct {
	RequestID string       `json:"request_id"`
	ModelUUID string       `json:"model_uuid"`
	ModelInfo modelInfoMsg `json:"model_info"`
}

type modelInfoMsg struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
}

type speechStartedMsg struct {
	Type      string  `json:"type"`
	Channel   []int   `json:"channel"`
	Timestamp float64 `json:"timestamp"`
}

type utteranceEndMsg struct {
	Type        string  `json:"type"`
	Channel     []int   `json:"channel"`
	LastWordEnd float64 `json:"last_word_end"`
}

type metadataMsg struct {
	Type           string                  `json:"type"`
	TransactionKey string                  `json:"transaction_key"`
	RequestID      string                  `json:"request_id"`
	SHA256         string                  `json:"sha256"`
	Created        string                  `json:"created"`
	Duration       float64                 `json:"duration"`
	Channels       int                     `json:"channels"`
	Models         []string                `json:"models"`
	ModelInfo      map[string]modelInfoMsg `json:"model_info"`
}
