package pipeline

import (
	"strings"
	"unicode"
)

// splitter cuts streamed model text into pieces worth sending to TTS: whole
// sentences, or a clause once enough text has gathered, so the first audio
// can start while the model is still writing.
type splitter struct {
	buf strings.Builder
}

// clauseMin is how long a clause must be before a comma ends a piece.
const clauseMin = 40

// abbreviations that end in a period but do not end a sentence.
var abbreviations = [...]string{"mr.", "mrs.", "ms.", "dr.", "st.", "e.g.", "i.e.", "etc.", "vs.", "no."}

// push adds text and returns the pieces completed by it.
func (s *splitter) push(text string) []string {
	s.buf.WriteString(text)
	var out []string
	for {
		cur := s.buf.String()
		i := cut(cur)
		if i <= 0 {
			return out
		}
		piece := strings.TrimSpace(cur[:i])
		rest := cur[i:]
		s.buf.Reset()
		s.buf.WriteString(rest)
		if piece != "" {
			out = append(out, piece)
		}
	}
}

// flush returns what is left.
func (s *splitter) flush() string {
	p := strings.TrimSpace(s.buf.String())
	s.buf.Reset()
	return p
}

// cut returns the index just after the first piece boundary in t, or 0.
func cut(t string) int {
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch c {
		case '\n':
			return i + 1
		case '.', '!', '?', ';', ':', ',':
			// A boundary needs whitespace after it (so "3.5" and "e.g." mid-word stay).
			if i+1 >= len(t) || !unicode.IsSpace(rune(t[i+1])) {
				continue
			}
			if c == ',' || c == ';' || c == ':' {
				if i+1 < clauseMin {
					continue
				}
				return i + 1
			}
			if c == '.' && isAbbreviation(t[:i+1]) {
				continue
			}
			return i + 1
		}
	}
	return 0
}

func isAbbreviation(upTo string) bool {
	low := strings.ToLower(upTo)
	for _, a := range abbreviations {
		if strings.HasSuffix(low, a) && (len(low) == len(a) || !isLetter(low[len(low)-len(a)-1])) {
			return true
		}
	}
	return false
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' }

// pronounce applies the replacement rules in order.
func pronounce(text string, rules []Replacement) string {
	for _, r := range rules {
		if r.From != "" {
			text = strings.ReplaceAll(text, r.From, r.To)
		}
	}
	return text
}

// SpokenPrefix is the part of text a listener heard when the fraction
// played of its audio was frac: cut at a word boundary, never mid-word.
func SpokenPrefix(text string, frac float64) string {
	if frac >= 1 {
		return text
	}
	if frac <= 0 {
		return ""
	}
	n := int(float64(len(text)) * frac)
	for n < len(text) && !unicode.IsSpace(rune(text[n])) {
		n++
	}
	return strings.TrimSpace(text[:n])
}

// countWords counts whitespace-separated words.
func countWords(s string) int { return len(strings.Fields(s)) }
