// Package voicemail tells an answering machine from a person at the start
// of an outbound call (spec §12.2). It looks at the answering side's first
// utterance three ways: its transcript against phrase lists (English,
// Dutch and the other catalog languages), the audio for an answering
// machine's beep (a steady tone found with the Goertzel algorithm), and
// the length of the greeting (people say "hello?"; machines talk on for
// seconds). A Detector combines them into one decision within a bounded
// delay, and once it has said "machine" tells when to speak: after the beep
// or once the greeting has ended.
//
// The package is pure: it counts 20 ms frames of 8 kHz PCM instead of
// reading a clock, so the same audio always gives the same answer.
package voicemail

import (
	"strings"
	"unicode"
)

// Verdict is what a transcript says about who answered.
type Verdict uint8

// Verdicts.
const (
	Unsure Verdict = iota
	Human
	Machine
)

// String names the verdict for logs and test failures.
func (v Verdict) String() string {
	switch v {
	case Human:
		return "human"
	case Machine:
		return "machine"
	}
	return "unsure"
}

// maxHumanWords is the longest utterance a human opener decides on its own:
// "hallo, met Jan de Vries" is a person; a long sentence without a machine
// phrase is not known to be one.
const maxHumanWords = 6

// Classify reads the answering side's first utterance: Machine when it has
// a voicemail phrase in any catalog language, Human when it is a short
// phone greeting, Unsure otherwise (empty text included).
func Classify(text string) Verdict {
	norm := normalize(text)
	if norm == "" {
		return Unsure
	}
	padded := " " + norm + " "
	for _, list := range machinePhrases {
		for _, p := range list {
			if contains(padded, norm, p) {
				return Machine
			}
		}
	}
	if len(strings.Fields(norm)) > maxHumanWords {
		return Unsure
	}
	for _, list := range humanOpeners {
		for _, p := range list {
			if contains(padded, norm, p) {
				return Human
			}
		}
	}
	return Unsure
}

// contains matches a phrase on word boundaries, or anywhere for scripts
// written without spaces (Chinese, Japanese, Korean).
func contains(padded, norm, phrase string) bool {
	if unspaced(phrase) {
		return strings.Contains(norm, phrase)
	}
	return strings.Contains(padded, " "+phrase+" ")
}

func unspaced(s string) bool {
	for _, r := range s {
		if unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) {
			return true
		}
	}
	return false
}

// normalize lower-cases text, turns punctuation into spaces (keeping the
// apostrophe of "can't" and the hyphen of "laissez-moi") and collapses
// spaces. Curly apostrophes become straight ones.
func normalize(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == '\u2019' || r == '\u2018' || r == '`':
			b.WriteRune('\'')
		case r == '\'' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r):
			b.WriteRune(r)
		default:
			b.WriteRune(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
