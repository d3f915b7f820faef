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
// written, as LINEAR16 at the call's rate.
func (p *STT) Open(ctx context.Context, cfg stt.Config) (stt.Stream, error) {
	key, err := ParseKey(cfg.APIKey)
	if err != nil {
		return nil, err
	}
	if !key.IsServiceAccount() {
		return nil, errors.New("google: Speech-to-Text needs a Vertex AI service-account key (BYOK google_vertex)")
	}
	token, err := p.tokens.token(ctx, key.account)
	if err != nil {
		return nil, err
	}
	recognizer := fmt.Sprintf("projects/%s/locations/%s/recognizers/_", key.Project(), p.cfg.Location)
	md := metadata.Pairs("authorization", "Bearer "+token, "x-goog-user-project", key.Project(),
		"x-goog-request-params", "recognizer="+recognizer)
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ctx, md))
	rpc, err := p.client.StreamingRecognize(ctx)
	if err != nil {
		cancel()
		return nil, speechError("open the stream", err)
	}
	model := cfg.Model
	if model == "" {
		model = "chirp_3"
	}
	lang := cfg.Language
	if lang == "" || lang == "multi" {
		lang = "auto"
	}
	first := &speechpb.StreamingRecognizeRequest{Recognizer: recognizer, StreamingRequest: &speechpb.StreamingRecognizeRequest_StreamingConfig{
		StreamingConfig: &speechpb.StreamingRecognitionConfig{
			Config: &speechpb.RecognitionConfig{
				DecodingConfig: &speechpb.RecognitionConfig_ExplicitDecodingConfig{ExplicitDecodingConfig: &speechpb.ExplicitDecodingConfig{
					Encoding: speechpb.ExplicitDecodingConfig_LINEAR16, SampleRateHertz: int32(cfg.SampleRate), AudioChannelCount: 1}},
				Model: model, LanguageCodes: []string{lang},
				Features: &speechpb.RecognitionFeatures{EnableAutomaticPunctuation: true},
			},
			StreamingFeatures: &speechpb.StreamingRecognitionFeatures{InterimResults: true, EnableVoiceActivityEvents: true},
		}}}
	if err := rpc.Send(first); err != nil {
		cancel()
		return nil, speechError("send the config", err)
	}
	s := &sttStream{rpc: rpc, cancel: cancel, audio: make(chan []byte, 256), events: make(chan stt.Event, 64), log: p.log}
	s.wg.Add(2)
	go s.send()
	go s.receive()
	return s, nil
}

// sttStream is one recognition stream.
type sttStream struct {
	rpc    speechpb.Speech_StreamingRecognizeClient
	cancel context.CancelFunc
	audio  chan []byte // closed by Close
	events chan stt.Event
	log    *slog.Logger
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	err     error
	dropped int
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

// send forwards audio in messages of at most 25 KB, then half-closes.
func (s *sttStream) send() {
	defer s.wg.Done()
	for b := range s.audio {
		for len(b) > 0 {
			n := min(len(b), maxAudioMessage)
			if err := s.rpc.Send(&speechpb.StreamingRecognizeRequest{StreamingRequest: &speechpb.StreamingRecognizeRequest_Audio{Audio: b[:n]}}); err != nil {
				// The receiver reports why the stream broke.
				for range s.audio {
				}
				return
			}
			b = b[n:]
		}
	}
	s.rpc.CloseSend()
}

// receive turns responses into events until the stream ends.
func (s *sttStream) receive() {
	defer s.wg.Done()
	defer close(s.events)
	for {
		resp, err := s.rpc.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.fail(speechError("receive", err))
			}
			return
		}
		switch resp.GetSpeechEventType() {
		case speechpb.StreamingRecognizeResponse_SPEECH_ACTIVITY_BEGIN:
			s.events <- stt.Event{Type: stt.SpeechStarted}
		case speechpb.StreamingRecognizeResponse_SPEECH_ACTIVITY_END:
			s.events <- stt.Event{Type: stt.UtteranceEnd}
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
			s.events <- ev
		}
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
	s.mu.Unlock()
	close(s.audio)
	go func() { s.wg.Wait(); s.cancel() }()
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
