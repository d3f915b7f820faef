package live

import (
	"context"
	"errors"
	"io"

	"github.com/parley-voice/parley/internal/tts"
)

// speak synthesises text with a text-to-speech provider and hands the
// audio to push; it returns once all of it was pushed.
func speak(ctx context.Context, p tts.Provider, voice tts.Config, text string, push func([]int16)) error {
	voice.SampleRate = SampleRate
	s, err := p.Open(ctx, voice)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Send(text); err != nil {
		return err
	}
	if err := s.Flush(); err != nil {
		return err
	}
	for {
		ch, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		push(ch.PCM)
	}
}
