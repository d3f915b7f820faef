package googlefake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"cloud.google.com/go/speech/apiv2/speechpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Recognition is one Speech-to-Text stream the fake served.
type Recognition struct {
	Recognizer, Model, Language string
	SampleRate                  int
	Samples                     int  // audio samples received
	HalfClosed                  bool // the client ended its side
}

// SpeechConfig scripts the Speech-to-Text v2 fake.
type SpeechConfig struct {
	// Transcripts answer the utterances of each stream in order (cycled).
	Transcripts []string
	// Threshold is the RMS of a 20 ms frame that counts as speech (default 500).
	Threshold float64
	// Silence ends an utterance (default 300 ms).
	Silence time.Duration
	// Refuse, when not OK, ends every stream with this status after its
	// config (as the service does for a project without access).
	Refuse codes.Code
}

// SpeechServer is Speech-to-Text v2's StreamingRecognize: register it on a
// grpc.Server (speechpb.RegisterSpeechServer). It accepts only tokens this
// fake's token endpoint issued, a recognizer of the project in location
// "eu", explicit LINEAR16 decoding, and recognises utterances by energy.
type SpeechServer struct {
	speechpb.UnimplementedSpeechServer
	s   *Server
	cfg SpeechConfig
}

// Speech returns the Speech-to-Text fake sharing this Server's tokens.
func (s *Server) Speech(cfg SpeechConfig) *SpeechServer {
	if cfg.Threshold <= 0 {
		cfg.Threshold = 500
	}
	if cfg.Silence <= 0 {
		cfg.Silence = 300 * time.Millisecond
	}
	return &SpeechServer{s: s, cfg: cfg}
}

// Recognitions lists the streams served.
func (s *Server) Recognitions() []Recognition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recognition(nil), s.recognitions...)
}

// StreamingRecognize serves one stream.
func (f *SpeechServer) StreamingRecognize(stream speechpb.Speech_StreamingRecognizeServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	tok := ""
	if v := md.Get("authorization"); len(v) == 1 {
		tok, _ = strings.CutPrefix(v[0], "Bearer ")
	}
	f.s.mu.Lock()
	exp, ok := f.s.issued[tok]
	f.s.mu.Unlock()
	if !ok || time.Now().After(exp) {
		return status.Error(codes.Unauthenticated, "Request had invalid authentication credentials. Expected OAuth 2 access token.")
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	sc := first.GetStreamingConfig()
	dec := sc.GetConfig().GetExplicitDecodingConfig()
	rec := Recognition{Recognizer: first.GetRecognizer(), Model: sc.GetConfig().GetModel()}
	if len(sc.GetConfig().GetLanguageCodes()) > 0 {
		rec.Language = sc.GetConfig().GetLanguageCodes()[0]
	}
	switch {
	case sc == nil:
		return status.Error(codes.InvalidArgument, "the first request must carry streaming_config")
	case !strings.HasPrefix(rec.Recognizer, "projects/") || !strings.HasSuffix(rec.Recognizer, "/locations/eu/recognizers/_"):
		return status.Errorf(codes.InvalidArgument, "Invalid resource field value in the request: recognizer %q", rec.Recognizer)
	case dec.GetEncoding() != speechpb.ExplicitDecodingConfig_LINEAR16 || dec.GetSampleRateHertz() < 8000:
		return status.Error(codes.InvalidArgument, "this fake decodes explicit LINEAR16 only")
	}
	if f.cfg.Refuse != codes.OK {
		return status.Error(f.cfg.Refuse, "Permission denied on resource project.")
	}
	rec.SampleRate = int(dec.GetSampleRateHertz())
	idx := f.s.addRecognition(rec)
	defer f.s.updateRecognition(idx, func(r *Recognition) { r.Samples, r.HalfClosed = rec.Samples, rec.HalfClosed })

	frame := rec.SampleRate / 50
	var pending []int16
	speaking, quiet, next := false, time.Duration(0), 0
	end := func() error {
		text := "hello"
		if n := len(f.cfg.Transcripts); n > 0 {
			text = f.cfg.Transcripts[next%n]
		}
		next++
		if err := stream.Send(&speechpb.StreamingRecognizeResponse{Results: []*speechpb.StreamingRecognitionResult{{
			Alternatives: []*speechpb.SpeechRecognitionAlternative{{Transcript: text, Confidence: 0.9}}, IsFinal: true}}}); err != nil {
			return err
		}
		return stream.Send(&speechpb.StreamingRecognizeResponse{SpeechEventType: speechpb.StreamingRecognizeResponse_SPEECH_ACTIVITY_END})
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			rec.HalfClosed = true
			if speaking {
				return end()
			}
			return nil
		}
		if err != nil {
			return err
		}
		b := req.GetAudio()
		if len(b) == 0 || len(b)%2 != 0 {
			return status.Error(codes.InvalidArgument, fmt.Sprintf("audio of %d bytes is not 16-bit PCM", len(b)))
		}
		if len(b) > 25<<10 {
			return status.Error(codes.InvalidArgument, "audio message over 25 KB")
		}
		for i := 0; i < len(b); i += 2 {
			pending = append(pending, int16(binary.LittleEndian.Uint16(b[i:])))
		}
		rec.Samples += len(b) / 2
		for len(pending) >= frame {
			loud := rms(pending[:frame]) >= f.cfg.Threshold
			pending = pending[frame:]
			switch {
			case loud && !speaking:
				speaking, quiet = true, 0
				if err := stream.Send(&speechpb.StreamingRecognizeResponse{SpeechEventType: speechpb.StreamingRecognizeResponse_SPEECH_ACTIVITY_BEGIN}); err != nil {
					return err
				}
			case loud:
				quiet = 0
			case speaking:
				if quiet += 20 * time.Millisecond; quiet >= f.cfg.Silence {
					speaking = false
					if err := end(); err != nil {
						return err
					}
				}
			}
		}
	}
}

func rms(pcm []int16) float64 {
	var sum float64
	for _, v := range pcm {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(pcm)))
}

func (s *Server) addRecognition(r Recognition) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recognitions = append(s.recognitions, r)
	return len(s.recognitions) - 1
}

func (s *Server) updateRecognition(i int, f func(*Recognition)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.recognitions[i])
}
