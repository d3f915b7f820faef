// Package local provides speech recognition and synthesis that need no key
// and no network: text-to-speech with espeak-ng and speech-to-text with
// CMU PocketSphinx, both run as child processes (Debian: apt-get install
// espeak-ng pocketsphinx pocketsphinx-en-us). It is the self-hosting story:
// a Parley server can hold a phone conversation on one machine, offline.
//
// Every stream owns its goroutines and processes; none outlive the stream's
// Close or the cancellation of the context it was opened with.
package local

import (
	"errors"
	"strings"
)

// ErrClosed is returned after Close by the TTS stream's methods and by the
// STT stream's Write (its Recv returns the remaining events, then io.EOF).
var ErrClosed = errors.New("local: stream closed")

// stderrLimit bounds how much of a child process's standard error is kept
// for error messages.
const stderrLimit = 4 << 10

// limitedBuffer is an io.Writer that keeps the first stderrLimit bytes written
// to it and discards the rest, so a chatty process cannot grow memory.
type limitedBuffer struct {
	b []byte
}

// Write keeps what fits and always reports success, so the process's
// output is drained.
func (t *limitedBuffer) Write(p []byte) (int, error) {
	if room := stderrLimit - len(t.b); room > 0 {
		t.b = append(t.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// String returns what was kept, trimmed and on one line.
func (t *limitedBuffer) String() string {
	return strings.Join(strings.Fields(string(t.b)), " ")
}
