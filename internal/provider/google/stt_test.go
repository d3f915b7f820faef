package google

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/speech/apiv2/speechpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-voice/parley/internal/provider/google/googlefake"
	"github.com/parley-voice/parley/internal/stt"
)

// sttFixture serves the token endpoint over HTTP and Speech-to-Text over
// gRPC, both from one fake.
func sttFixture(t *testing.T, acct *googlefake.Account, transcripts ...string) (*STT, *googlefake.Server) {
	t.Helper()
	return sttFixtureWith(t, acct, googlefake.SpeechConfig{Transcripts: transcripts})
}

func sttFixtureWith(t *testing.T, acct *googlefake.Account, sc googlefake.SpeechConfig, maxStream ...time.Duration) (*STT, *googlefake.Server) {
	t.Helper()
	fake := googlefake.New(googlefake.Config{Account: acct})
	web := httptest.NewServer(fake)
	t.Cleanup(web.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	speechpb.RegisterSpeechServer(g, fake.Speech(sc))
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	cfg := STTConfig{Addr: ln.Addr().String(), Insecure: true, TokenURL: web.URL + googlefake.TokenPath}
	if len(maxStream) > 0 {
		cfg.MaxStream = maxStream[0]
	}
	p, err := NewSTT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, fake
}

func tone(d time.Duration) []int16 {
	pcm := make([]int16, int(d.Seconds()*8000))
	for i := range pcm {
		pcm[i] = int16(6000 * math.Sin(2*math.Pi*300*float64(i)/8000))
	}
	return pcm
}

// writeFrames writes pcm as 20 ms frames.
func writeFrames(t *testing.T, s stt.Stream, pcm []int16) {
	t.Helper()
	for i := 0; i+160 <= len(pcm); i += 160 {
		if err := s.Write(pcm[i : i+160]); err != nil {
			t.Fatal(err)
		}
	}
}

// Two utterances: each is heard as speech start, a final transcript and
// the utterance's end, through the recognizer of the key's project in the
// EU, with the config's model and language.
func TestSpeechToText(t *testing.T) {
	acct := account(t)
	p, fake := sttFixture(t, acct, "I would like to book an appointment.", "Tomorrow morning.")
	s, err := p.Open(context.Background(), stt.Config{APIKey: acct.JSON, Model: "chirp_3", Language: "en-US", SampleRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	var audio []int16
	for range 2 {
		audio = append(audio, tone(600*time.Millisecond)...)
		audio = append(audio, make([]int16, 4000)...) // 500 ms of silence
	}
	writeFrames(t, s, audio)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		ev, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Type.String()+":"+ev.Text)
	}
	want := []string{"speech_started:", "final:I would like to book an appointment.", "utterance_end:", "speech_started:", "final:Tomorrow morning.", "utterance_end:"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events %q\nwant   %q", got, want)
	}
	recs := fake.Recognitions()
	if len(recs) != 1 {
		t.Fatalf("recognitions %+v", recs)
	}
	r := recs[0]
	if r.Recognizer != "projects/eu-voice-project/locations/eu/recognizers/_" || r.Model != "chirp_3" || r.Language != "en-US" || r.SampleRate != 8000 || !r.HalfClosed || r.Samples != len(audio)/160*160 {
		t.Errorf("recognition %+v (wrote %d samples)", r, len(audio))
	}
}

// An API key cannot reach Speech-to-Text v2; a key the token endpoint does
// not trust fails at Open, naming the step.
func TestSpeechToTextKeys(t *testing.T) {
	acct := account(t)
	p, _ := sttFixture(t, acct)
	if _, err := p.Open(context.Background(), stt.Config{APIKey: "AIzaStudio", SampleRate: 8000}); err == nil || !strings.Contains(err.Error(), "service-account key") {
		t.Errorf("API key: %v", err)
	}
	if _, err := p.Open(context.Background(), stt.Config{APIKey: account(t).JSON, SampleRate: 8000}); err == nil || !strings.Contains(err.Error(), "access token") {
		t.Errorf("untrusted key: %v", err)
	}
}

// A stream the service refuses ends with an error that says what to check.
func TestSpeechToTextRefused(t *testing.T) {
	acct := account(t)
	p, _ := sttFixtureWith(t, acct, googlefake.SpeechConfig{Refuse: codes.PermissionDenied})
	s, err := p.Open(context.Background(), stt.Config{APIKey: acct.JSON, SampleRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Recv()
	if err == nil || !strings.Contains(err.Error(), "PermissionDenied") || !strings.Contains(err.Error(), "check the Vertex AI service-account key") {
		t.Errorf("refused stream: %v", err)
	}
}

// The service ends a stream after 5 minutes: a new one takes over every
// MaxStream (here 1.05 s, in a pause), and what each heard still arrives.
func TestSpeechToTextRotates(t *testing.T) {
	acct := account(t)
	p, fake := sttFixtureWith(t, acct, googlefake.SpeechConfig{Transcripts: []string{"one", "two", "three"}}, 1050*time.Millisecond)
	s, err := p.Open(context.Background(), stt.Config{APIKey: acct.JSON, SampleRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	utterance := append(tone(300*time.Millisecond), make([]int16, 3200)...) // 0.3 s speech, 0.4 s quiet
	for range 3 {
		for i := 0; i+160 <= len(utterance); i += 160 {
			if err := s.Write(utterance[i : i+160]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // real time, so the streams rotate mid-call
		}
	}
	s.Close()
	var finals []string
	for {
		ev, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == stt.Final {
			finals = append(finals, ev.Text)
		}
	}
	recs := fake.Recognitions()
	if len(recs) < 2 {
		t.Fatalf("%d recognition streams over 2.1 s with MaxStream 1.05 s, want 2 or more", len(recs))
	}
	samples := 0
	for _, r := range recs {
		samples += r.Samples
		if !r.HalfClosed {
			t.Errorf("stream %+v was not half-closed", r)
		}
	}
	if samples != 3*len(utterance)/160*160 {
		t.Errorf("%d samples reached the service, want %d: audio lost in a hand-over", samples, 3*len(utterance)/160*160)
	}
	if len(finals) != 3 {
		t.Errorf("finals %q, want one per utterance", finals)
	}
}

// endingSpeech is a Speech-to-Text service that ends every stream after 20
// audio messages, with status code.
type endingSpeech struct {
	speechpb.UnimplementedSpeechServer
	code codes.Code
}

func (e *endingSpeech) StreamingRecognize(st speechpb.Speech_StreamingRecognizeServer) error {
	for range 21 {
		if _, err := st.Recv(); err != nil {
			return err
		}
	}
	if e.code == codes.OK {
		return nil
	}
	return status.Error(e.code, "the fake service ended the stream")
}

// TestSpeechToTextServiceEndsStream: the service ends a stream the caller
// is still talking into, well or with an error. Recv reports it at once;
// it does not wait for Close while the call goes deaf.
func TestSpeechToTextServiceEndsStream(t *testing.T) {
	for _, code := range []codes.Code{codes.OK, codes.OutOfRange} {
		t.Run(code.String(), func(t *testing.T) {
			acct := account(t)
			base, _ := sttFixture(t, acct) // its token endpoint
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			g := grpc.NewServer()
			speechpb.RegisterSpeechServer(g, &endingSpeech{code: code})
			go g.Serve(ln)
			t.Cleanup(g.Stop)
			p, err := NewSTT(STTConfig{Addr: ln.Addr().String(), Insecure: true, TokenURL: base.cfg.TokenURL})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			s, err := p.Open(context.Background(), stt.Config{APIKey: acct.JSON, SampleRate: 8000})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				frame := make([]int16, 160)
				for {
					select {
					case <-stop:
						return
					case <-time.After(2 * time.Millisecond):
						if s.Write(frame) != nil {
							return
						}
					}
				}
			}()
			got := make(chan error, 1)
			go func() {
				for {
					if _, err := s.Recv(); err != nil {
						got <- err
						return
					}
				}
			}()
			select {
			case err := <-got:
				if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "google: speech-to-text") {
					t.Errorf("Recv: %v, want an error saying the stream ended", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Recv still blocked 5 s after the service ended the stream")
			}
		})
	}
}
