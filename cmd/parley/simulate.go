package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"cloud.google.com/go/speech/apiv2/speechpb"
	"google.golang.org/grpc"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/deepgram/deepgramfake"
	"github.com/parley-voice/parley/internal/provider/elevenlabs/elevenlabsfake"
	"github.com/parley-voice/parley/internal/provider/gladia/gladiafake"
	"github.com/parley-voice/parley/internal/provider/google/googlefake"
	"github.com/parley-voice/parley/internal/provider/inworld/inworldfake"
	"github.com/parley-voice/parley/internal/provider/local"
	"github.com/parley-voice/parley/internal/provider/mistral/mistralfake"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/provider/xai/xaifake"
	"github.com/parley-voice/parley/internal/realtime/realtimefake"
	"github.com/parley-voice/parley/internal/tts"
)

// listFlag collects a repeated string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " | ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// simulateProviders serves fake Deepgram, OpenAI-compatible (chat and
// speech), ElevenLabs, Gladia, xAI text-to-speech and Inworld endpoints on
// one address, so calls can be tried from a softphone with no
// provider accounts and no spending.
func simulateProviders(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("parley simulate-providers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9100", "address to serve the fake providers on")
	var transcripts, replies listFlag
	fs.Var(&transcripts, "transcript", "what the fake speech-to-text hears for each caller utterance, in order (repeat the flag)")
	fs.Var(&replies, "reply", "what the fake model answers to each turn, in order (repeat the flag; default: it repeats what you said)")
	voice := fs.String("voice", "en-us", "espeak-ng voice the fake text-to-speech speaks with (a tone if espeak-ng is missing)")
	googleKey := fs.String("google-key", "", "also simulate Google (Gemini chat and TTS, Chirp 3 HD, Speech-to-Text v2): write the fake Vertex AI service-account key, to store as BYOK google_vertex, to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if len(transcripts) == 0 {
		transcripts = listFlag{"I would like to book an appointment.", "Tomorrow morning, please.", "That is all, goodbye."}
	}
	synth := elevenlabsfake.DefaultSynth
	if _, err := exec.LookPath("espeak-ng"); err == nil {
		synth = espeakSynth(ctx, *voice, log)
	} else {
		log.Warn("espeak-ng not found: the fake voice is a tone")
	}
	chat := openaifake.Config{Respond: func(req openaifake.Request) openaifake.Reply {
		return scriptedReply(req, replies)
	}, Synth: synth}
	mux := http.NewServeMux()
	mux.Handle("/v1/listen", deepgramfake.New(deepgramfake.Config{Transcripts: transcripts, Interim: true, Logger: log}))
	oa := openaifake.New(chat)
	mux.Handle("/v1/chat/completions", oa)
	mux.Handle("/chat/completions", oa)
	// Scribe hears the same script, each sentence once per call (cycled
	// a few times: a connection's segments are not reused).
	var segments []elevenlabsfake.STTSegment
	for range 5 {
		for _, t := range transcripts {
			segments = append(segments, elevenlabsfake.STTSegment{Partials: interims(t), Text: t})
		}
	}
	el := elevenlabsfake.New(elevenlabsfake.Config{Synth: synth, Logger: log,
		STT: elevenlabsfake.STTConfig{Segments: segments, DefaultSilence: 500 * time.Millisecond}})
	defer el.Close()
	mux.Handle(elevenlabsfake.Path, el)
	mux.Handle(elevenlabsfake.STTPath, el)
	mux.Handle(openaifake.SpeechPath, oa)
	// One scripted sentence per utterance, as the fake Deepgram: an
	// utterance ends after 300 ms of silence, not Gladia's 50 ms.
	mux.Handle(gladiafake.LivePath, gladiafake.New(gladiafake.Config{Transcripts: transcripts, Interim: true, Endpointing: 300 * time.Millisecond, Logger: log}))
	mux.Handle(mistralfake.RealtimePath, mistralfake.New(mistralfake.Config{Transcripts: transcripts, Logger: log}))
	xf := xaifake.New(xaifake.Config{Synth: synth, Logger: log})
	defer xf.Close()
	mux.Handle(xaifake.Path, xf)
	iw := inworldfake.New(inworldfake.Config{Synth: synth, Logger: log})
	defer iw.Close()
	mux.Handle(inworldfake.Path, iw)
	// Realtime (speech-to-speech) assistants: the OpenAI Realtime protocol
	// at the OpenAI URL's /realtime, xAI's dialect under /xai.
	script := realtimefake.Script{Transcripts: transcripts}
	mux.Handle("/v1/realtime", openaifake.NewRealtime(openaifake.RealtimeConfig{Script: script, Logger: log}))
	mux.Handle("/xai/v1/realtime", xaifake.NewRealtime(openaifake.RealtimeConfig{Script: script, Logger: log}))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	a := ln.Addr().String()
	googleHelp := "  Google: add --google-key FILE to simulate Gemini, Chirp 3 and Speech-to-Text v2 too.\n"
	if *googleKey != "" {
		gaddr, stop, err := simulateGoogle(mux, *googleKey, transcripts, chat, synth, log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
		googleHelp = fmt.Sprintf(`  Google (llm, stt and tts provider google, and realtime google_realtime; store the key in %s as BYOK google_vertex):
  PARLEY_GOOGLE_VERTEX_URL=http://%s PARLEY_GOOGLE_TOKEN_URL=http://%s/token \
  PARLEY_GOOGLE_TTS_URL=http://%s PARLEY_GOOGLE_SPEECH_ADDR=%s \
  PARLEY_GOOGLE_LIVE_URL=ws://%s PARLEY_GOOGLE_API_KEY=simulated   (Gemini Live models for AI Studio keys)
`, *googleKey, a, a, a, gaddr, a)
	}
	fmt.Fprintf(stdout, `Simulated providers on %s. Start the server with:

  PARLEY_DEEPGRAM_BASE_URL=ws://%s PARLEY_DEEPGRAM_API_KEY=simulated \
  PARLEY_OPENAI_BASE_URL=http://%s/v1 PARLEY_OPENAI_API_KEY=simulated \
  PARLEY_ELEVENLABS_BASE_URL=ws://%s PARLEY_ELEVENLABS_API_KEY=simulated \
  parley serve

Also simulated, for assistants that choose them (stt_config / tts_config provider):
  PARLEY_GLADIA_BASE_URL=http://%s PARLEY_GLADIA_API_KEY=simulated            (STT gladia)
  ElevenLabs Scribe realtime (STT elevenlabs) on the ElevenLabs URL above.
  PARLEY_MISTRAL_BASE_URL=http://%s/v1 PARLEY_MISTRAL_API_KEY=simulated           (STT mistral)
  PARLEY_XAI_BASE_URL=http://%s/v1 PARLEY_XAI_API_KEY=simulated               (TTS xai)
  PARLEY_INWORLD_BASE_URL=ws://%s PARLEY_INWORLD_API_KEY=simulated            (TTS inworld)
  OpenAI text-to-speech (TTS openai) on the OpenAI URL above.
  OpenAI Realtime (llm_config provider openai_live) on the OpenAI URL above.
  PARLEY_XAI_REALTIME_URL=ws://%s/xai/v1/realtime                 (llm_config provider xai_realtime)
%s
The fake speech-to-text hears, in turn: %s
`, a, a, a, a, a, a, a, a, a, googleHelp, strings.Join(transcripts, " / "))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	<-errc
	return nil
}

// simulateGoogle mounts the Google fake on mux (token endpoint, Vertex AI
// and Gemini API chat, Gemini TTS, Cloud TTS), serves Speech-to-Text v2 over
// gRPC on another loopback port, and writes the service account it trusts
// to keyFile. It returns the gRPC address and what stops it.
func simulateGoogle(mux *http.ServeMux, keyFile string, transcripts []string, chat openaifake.Config, synth func(string, int) []int16, log *slog.Logger) (string, func(), error) {
	acct, err := googlefake.NewAccount("simulated-project", "parley@simulated-project.iam.gserviceaccount.com")
	if err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(keyFile, []byte(acct.JSON), 0o600); err != nil {
		return "", nil, fmt.Errorf("--google-key: %w", err)
	}
	fake := googlefake.New(googlefake.Config{Account: acct, Chat: chat, Synth: func(text string) []int16 { return synth(text, googlefake.SpeechRate) }})
	for _, path := range []string{googlefake.TokenPath, googlefake.VertexPrefix, "/v1beta/", googlefake.SynthesizePath} {
		mux.Handle(path, fake)
	}
	// Gemini Live (llm_config provider google_realtime), for both kinds of key.
	mux.Handle("/ws/", googlefake.NewLive(googlefake.LiveConfig{Server: fake, Script: realtimefake.Script{Transcripts: transcripts}}))
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen for the Speech-to-Text fake: %w", err)
	}
	g := grpc.NewServer()
	speechpb.RegisterSpeechServer(g, fake.Speech(googlefake.SpeechConfig{Transcripts: transcripts}))
	go func() {
		if err := g.Serve(gl); err != nil {
			log.Warn("Speech-to-Text fake stopped", "error", err)
		}
	}()
	return gl.Addr().String(), g.Stop, nil
}

// interims are the growing prefixes of a sentence, word by word, as a
// streaming recogniser's partial transcripts.
func interims(sentence string) []string {
	words := strings.Fields(sentence)
	out := make([]string, 0, len(words))
	for i := range words {
		out = append(out, strings.Join(words[:i+1], " "))
	}
	return out
}

// scriptedReply answers from the script, or repeats the caller, and hangs up
// (end_call) when the caller says goodbye.
func scriptedReply(req openaifake.Request, replies []string) openaifake.Reply {
	var last string
	turns := 0
	for _, m := range req.Messages {
		if m.Role == llm.User {
			last, turns = m.Content, turns+1
		}
	}
	r := openaifake.Reply{Text: "You said: " + strings.TrimRight(last, ".!? ") + ". What else can I do for you?"}
	if len(replies) > 0 {
		r.Text = replies[(turns-1+len(replies))%len(replies)]
	}
	low := strings.ToLower(last)
	if strings.Contains(low, "goodbye") || strings.Contains(low, "bye") {
		r.Text = "Thank you for calling. Goodbye!"
		for _, t := range req.Tools {
			if t == "end_call" {
				r.ToolCalls = []llm.ToolCall{{Name: "end_call", Arguments: "{}"}}
			}
		}
	}
	return r
}

// espeakSynth renders text with the local (espeak-ng) TTS for the fake
// ElevenLabs, falling back to its tone when that fails.
func espeakSynth(ctx context.Context, voice string, log *slog.Logger) func(string, int) []int16 {
	engine := local.NewTTS(local.TTSConfig{Logger: log})
	return func(text string, rate int) []int16 {
		pcm, err := synthesize(ctx, engine, tts.Config{Voice: voice, SampleRate: rate}, text)
		if err != nil {
			log.Warn("espeak-ng failed; playing a tone", "error", err)
			return elevenlabsfake.DefaultSynth(text, rate)
		}
		return pcm
	}
}

// synthesize speaks text through p in one go.
func synthesize(ctx context.Context, p tts.Provider, cfg tts.Config, text string) ([]int16, error) {
	s, err := p.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := s.Send(text); err != nil {
		return nil, err
	}
	if err := s.Flush(); err != nil {
		return nil, err
	}
	var pcm []int16
	for {
		ch, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return pcm, nil
		}
		if err != nil {
			return nil, err
		}
		pcm = append(pcm, ch.PCM...)
	}
}
