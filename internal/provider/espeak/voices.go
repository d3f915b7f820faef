// Package espeak adapts espeak-ng, the local text-to-speech engine that needs
// no key and no network. This file lists the voices installed on the machine.
package espeak

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Voice is one installed espeak-ng voice.
type Voice struct {
	ID       string // what `espeak-ng -v` takes, e.g. "en-us"
	Name     string // e.g. "English (America)"
	Language string // the voice's language code
	Gender   string // "M", "F" or ""
}

// Lister lists installed voices once and remembers the answer. The zero value
// uses "espeak-ng" from PATH.
type Lister struct {
	// Binary is the espeak-ng executable; empty means "espeak-ng".
	Binary string

	once   sync.Once
	voices []Voice
	err    error
}

// ErrNotInstalled is returned when espeak-ng cannot be found.
var ErrNotInstalled = errors.New("espeak-ng is not installed (Debian: apt-get install espeak-ng)")

// Voices returns the installed voices. When espeak-ng is missing it returns
// no voices and ErrNotInstalled.
func (l *Lister) Voices(ctx context.Context) ([]Voice, error) {
	l.once.Do(func() {
		bin := l.Binary
		if bin == "" {
			bin = "espeak-ng"
		}
		path, err := exec.LookPath(bin)
		if err != nil {
			l.err = ErrNotInstalled
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, path, "--voices").Output()
		if err != nil {
			l.err = fmt.Errorf("espeak-ng --voices: %w", err)
			return
		}
		l.voices = ParseVoices(out)
	})
	return l.voices, l.err
}

// ParseVoices parses the table `espeak-ng --voices` prints:
//
//	Pty Language       Age/Gender VoiceName          File                 Other Languages
//	 5  en-us           --/M      English_(America)  gmw/en-US            (en 10)
func ParseVoices(out []byte) []Voice {
	var voices []Voice
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[0] == "Pty" {
			continue
		}
		lang, ageGender, name := f[1], f[2], f[3]
		if seen[lang] {
			continue
		}
		seen[lang] = true
		gender := ""
		if _, g, ok := strings.Cut(ageGender, "/"); ok && (g == "M" || g == "F") {
			gender = g
		}
		voices = append(voices, Voice{ID: lang, Name: strings.ReplaceAll(name, "_", " "), Language: lang, Gender: gender})
	}
	return voices
}
