package google

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/speech/apiv2/speechpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/parley-voice/parley/internal/stt"
)

// Speech-to-Text defaults (providers-2.md §4).
const (
	// DefaultSpeechAddr is Speech-to-Text v2's EU endpoint.
	DefaultSpeechAddr = "eu-speech.googleapis.com:443"
	// DefaultSpeechLocation is the recognizer location matching it.
	DefaultSpeechLocation = "eu"
	// maxAudioMessage is the most audio one request may carry.
	maxAudioMessage = 25 << 10
)

// STTConfig says where Speech-to-Text v2 is.
type STTConfig struct {
	// Addr is the gRPC host:port (default DefaultSpeechAddr); Location is
	// the recognizer location, which must match it (default "eu").
	Addr, Location string
	// Insecure dials without TLS (tests against googlefake only).
	Insecure bool
	// MaxStream is how long one RPC carries audio before a new one takes
	// over: the service ends streams at 5 minutes (default 4 minutes).
	MaxStream time.Duration
	// TokenURL is where service-account keys get access tokens (default
	// DefaultTokenURL; SpeechToText uses its Chat's); a key's own token_uri
	// is never used.
	TokenURL string
	Logger   *slog.Logger
}

// STT is Google Speech-to-Text v2 streaming (model chirp_3 by default) as
// an stt.Provider, over one shared gRPC connection; each stream carries its
// Vertex AI service account's access token. Close it when the server stops.
type STT struct {
	cfg    STTConfig
	conn   *grpc.ClientConn
	client speechpb.SpeechClient
	tokens *tokens
	log    *slog.Logger
}

// NewSTT prepares the connection (it dials on first use).
func NewSTT(cfg STTConfig) (*STT, error) { return newSTT(cfg, nil) }

// SpeechToText is NewSTT sharing c's access tokens, so a service account
// is exchanged once for the model, its voice and its ears.
func (c *Chat) SpeechToText(cfg STTConfig) (*STT, error) { return newSTT(cfg, c.tokens) }

func newSTT(cfg STTConfig, shared *tokens) (*STT, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultSpeechAddr
	}
	if cfg.Location == "" {
		cfg.Location = DefaultSpeechLocation
	}
	if cfg.MaxStream <= 0 {
		cfg.MaxStream = 4 * time.Minute
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = DefaultTokenURL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	creds := credentials.NewClientTLSFromCert(nil, "")
	if cfg.Insecure {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(cfg.Addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("google: speech-to-text connection to %s: %w", cfg.Addr, err)
	}
	if shared == nil {
		shared = &tokens{tokenURL: cfg.TokenURL, ctx: func(ctx context.Context) context.Context { return ctx }}
	}
	return &STT{cfg: cfg, conn: conn, client: speechpb.NewSpeechClient(conn), tokens: shared, log: cfg.Logger}, nil
}

// Close closes the shared connection.
func (p *STT) Close() error { return p.conn.Close() }

var _ stt.Provider = (*STT)(nil)

// Open starts a recognition stream: the config first, then audio as it is
// written, as LINEAR16 at the call's rate. The service ends a stream after
// 5 minutes, so a new one takes over every STTConfig.MaxStream (4 min); the
// old one is half-closed and still delivers its last results.
func (p *STT) Open(ctx context.Context, cfg stt.Config) (stt.Stream, error) {
	key, err := ParseKey(cfg.APIKey)
	if err != nil {
		return nil, err
	}
	if !key.IsServiceAccount() {
		return nil, errors.New("google: Speech-to-Text needs a Vertex AI service-account key (BYOK google_vertex)")
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &sttStream{p: p, key: key, cfg: cfg, ctx: ctx, cancel: cancel, audio: make(chan []byte, 256),
		events: make(chan stt.Event, 64), log: p.log}
	rpc, err := s.open()
	if err != nil {
		cancel()
		return nil, err
	}
	s.wg.Add(1)
	go s.send(rpc)
	return s, nil
}

// open starts one RPC, sends its config and starts its receiver.
func (s *sttStream) open() (speechpb.Speech_StreamingRecognizeClient, error) {
	token, err := s.p.tokens.token(s.ctx, s.key.account)
	if err != nil {
		return nil, err
	}
	recognizer := fmt.Sprintf("projects/%s/locations/%s/recognizers/_", s.key.Project(), s.p.cfg.Location)
	md := metadata.Pairs("authorization", "Bearer "+token, "x-goog-user-project", s.key.Project(),
		"x-goog-request-params", "recognizer="+recognizer)
	rpc, err := s.p.client.StreamingRecognize(metadata.NewOutgoingContext(s.ctx, md))
	if err != nil {
		return nil, speechError("open the stream", err)
	}
	model := s.cfg.Model
	if model == "" {
		model = "chirp_3"
	}
	lang := s.cfg.Language
	if lang == "" || lang == "multi" {
		lang = "auto"
	}
	first := &speechpb.StreamingRecognizeRequest{Recognizer: recognizer, StreamingRequest: &speechpb.StreamingRecognizeRequest_StreamingConfig{
		StreamingConfig: &speechpb.StreamingRecognitionConfig{
			Config: &speechpb.RecognitionConfig{
				DecodingConfig: &speechpb.RecognitionConfig_ExplicitDecodingConfig{ExplicitDecodingConfig: &speechpb.ExplicitDecodingConfig{
					Encoding: speechpb.ExplicitDecodingConfig_LINEAR16, SampleRateHertz: int32(s.cfg.SampleRate), AudioChannelCount: 1}},
				Model: model, LanguageCodes: []string{lang},
				Features: &speechpb.RecognitionFeatures{EnableAutomaticPunctuation: true},
			},
			StreamingFeatures: &speechpb.StreamingRecognitionFeatures{InterimResults: true, EnableVoiceActivityEvents: true},
		}}}
	if err := rpc.Send(first); err != nil {
		return nil, speechError("send the config", err)
	}
	s.mu.Lock()
	s.current = rpc // the one before, if any, is superseded
	s.mu.Unlock()
	s.receivers.Add(1)
	go s.receive(rpc)
	return rpc, nil
}

// sttCloseWait bounds how long the service may take to end the stream
// after Close.
const sttCloseWait = 10 * time.Second

// sttStream is one recognition stream: a sender goroutine feeding the
// current RPC, and a receiver per RPC (two while one hands over).
type sttStream struct {
	p      *STT
	key    Key
	cfg    stt.Config
	ctx    context.Context
	cancel context.CancelFunc
	audio  chan []byte // closed by Close
	events chan stt.Event
	log    *slog.Logger

	wg        sync.WaitGroup // the sender
	receivers sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	err     error
	dropped int
	// current is the RPC audio goes to; a receiver of another one (the
	// stream handed over) ends quietly.
	current speechpb.Speech_StreamingRecognizeClient
	// closeTimer cancels the stream when the service does not end it in
	// time after Close.
	closeTimer *time.Timer
}

// Write queues audio; it never blocks (a full queue drops the frame).
func (s *sttStream) Write(pcm []int16) error {
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("google: speech-to-text stream closed")
	}
	if s.err != nil {
		return s.err
	}
	select {
	case s.audio <- b:
	default:
		s.dropped++
	}
	return nil
}

// send forwards audio in messages of at most 25 KB to the current RPC,
// moving to a new one every MaxStream; after Close it half-closes and, once
// every receiver is done, closes the events.
func (s *sttStream) send(rpc speechpb.Speech_StreamingRecognizeClient) {
	defer s.wg.Done()
	defer func() {
		s.receivers.Wait()
		close(s.events)
		s.cancel()
		s.mu.Lock()
		if s.closeTimer != nil {
			s.closeTimer.Stop()
		}
		s.mu.Unlock()
	}()
	rotate := time.NewTicker(s.p.cfg.MaxStream)
	defer rotate.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case b, ok := <-s.audio:
			if !ok {
				rpc.CloseSend()
				return
			}
			if err := sendAudio(rpc, b); err != nil {
				// The stream broke: the receiver usually knows why, and
				// this is the reason when it does not. Write never
				// blocks, so nothing needs draining.
				s.fail(speechError("send audio", err))
				s.cancel()
				return
			}
		case <-rotate.C:
			next, err := s.open()
			if err != nil {
				s.fail(fmt.Errorf("google: speech-to-text: the stream could not be handed over: %w", err))
				s.cancel()
				return
			}
			rpc.CloseSend() // the old stream delivers its last results, then ends
			rpc = next
		}
	}
}

func sendAudio(rpc speechpb.Speech_StreamingRecognizeClient, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), maxAudioMessage)
		if err := rpc.Send(&speechpb.StreamingRecognizeRequest{StreamingRequest: &speechpb.StreamingRecognizeRequest_Audio{Audio: b[:n]}}); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// receive turns one RPC's responses into events until it ends.
func (s *sttStream) receive(rpc speechpb.Speech_StreamingRecognizeClient) {
	defer s.receivers.Done()
	for {
		resp, err := rpc.Recv()
		if err != nil {
			s.mu.Lock()
			current, closed := s.current == rpc, s.closed
			s.mu.Unlock()
			switch {
			case s.ctx.Err() != nil:
			case !current:
				// A handed-over stream ending, well or not, is not the
				// call's concern.
				if !errors.Is(err, io.EOF) {
					s.log.Warn("speech-to-text: the previous stream ended with an error", "error", speechError("receive", err))
				}
			case errors.Is(err, io.EOF) && closed:
			case errors.Is(err, io.EOF):
				s.fail(errors.New("google: speech-to-text: the service ended the stream"))
				s.cancel()
			default:
				s.fail(speechError("receive", err))
				s.cancel() // the whole stream ends: the sender stops, Recv reports it
			}
			return
		}
		switch resp.GetSpeechEventType() {
		case speechpb.StreamingRecognizeResponse_SPEECH_ACTIVITY_BEGIN:
			s.emit(stt.Event{Type: stt.SpeechStarted})
		case speechpb.StreamingRecognizeResponse_SPEECH_ACTIVITY_END:
			s.emit(stt.Event{Type: stt.UtteranceEnd})
		}
		for _, r := range resp.GetResults() {
			alts := r.GetAlternatives()
			if len(alts) == 0 || strings.TrimSpace(alts[0].GetTranscript()) == "" {
				continue
			}
			ev := stt.Event{Type: stt.Interim, Text: strings.TrimSpace(alts[0].GetTranscript()), Confidence: float64(alts[0].GetConfidence())}
			if r.GetIsFinal() {
				ev.Type = stt.Final
			}
			s.emit(ev)
		}
	}
}

// emit passes an event on, unless the stream was abandoned.
func (s *sttStream) emit(ev stt.Event) {
	select {
	case s.events <- ev:
	case <-s.ctx.Done():
	}
}

func (s *sttStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// Recv returns the next event; after the stream ends, its error or io.EOF.
func (s *sttStream) Recv() (stt.Event, error) {
	if ev, ok := <-s.events; ok {
		return ev, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return stt.Event{}, s.err
	}
	return stt.Event{}, io.EOF
}

// Close sends what was written, half-closes and lets the service finish;
// Recv returns the last results, then io.EOF. A second Close cancels.
func (s *sttStream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.cancel()
		return nil
	}
	s.closed = true
	if s.dropped > 0 {
		s.log.Warn("speech-to-text queue full: audio dropped", "frames", s.dropped)
	}
	s.closeTimer = time.AfterFunc(sttCloseWait, s.cancel)
	s.mu.Unlock()
	close(s.audio)
	return nil
}

// speechError names the step and explains a refused key.
func speechError(step string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("google: speech-to-text: %s: %w", step, err)
	}
	hint := ""
	switch st.Code() {
	case codes.Unauthenticated, codes.PermissionDenied:
		hint = " (check the Vertex AI service-account key and its project's Speech-to-Text access)"
	case codes.Canceled:
		return fmt.Errorf("google: speech-to-text: %s: stream cancelled: %w", step, context.Canceled)
	}
	return fmt.Errorf("google: speech-to-text: %s: %s: %s%s", step, st.Code(), st.Message(), hint)
}
