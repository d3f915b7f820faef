package textrule

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/parley-voice/parley/internal/fault"
)

// maxProblems caps how many problems one error lists.
const maxProblems = 10

// CheckJSON checks every string of doc, a JSON text that has already been
// parsed successfully, against the rules: each value and member name must
// be text (see Problem; JSON escapes of NUL and of lone surrogates count),
// each value at most MaxLen of its member and each member name at most
// KeyMax characters. The error is a fault.Invalid naming the first field by
// its dotted path ("llm_config.messages[0].content") with every problem, up
// to ten, in its details; codes are "invalid_text" and "too_long".
func CheckJSON(doc []byte) error {
	s := scanner{b: doc}
	s.value("", false)
	return s.f.Err()
}

// scanner walks a JSON text that is known to be well formed; on anything
// else it stops early instead of failing.
type scanner struct {
	b    []byte
	i    int
	path []segment
	f    fault.Fields
}

type segment struct {
	name  string
	index int // -1 for a member
}

func (s *scanner) full() bool { return s.f.Len() >= maxProblems }

// value scans one value; limitKey is the member whose limit applies: the
// member that holds it (for array items, the member that holds the array),
// or, when free is set, the free-form member it is nested in.
func (s *scanner) value(limitKey string, free bool) {
	s.space()
	if s.i >= len(s.b) || s.full() {
		return
	}
	switch s.b[s.i] {
	case '{':
		s.i++
		for !s.full() {
			s.space()
			if s.i >= len(s.b) {
				return
			}
			switch s.b[s.i] {
			case '}':
				s.i++
				return
			case ',':
				s.i++
				continue
			case '"':
			default:
				return
			}
			start := s.i
			n, problem, escaped := s.str()
			name := memberName(s.b[start+1:max(start+1, s.i-1)], escaped)
			s.path = append(s.path, segment{name: name, index: -1})
			switch {
			case problem != "":
				s.add("invalid_text", "is a member name that "+problem)
			case n > KeyMax:
				s.add("too_long", fmt.Sprintf("is a member name of %d characters; at most %d are allowed", n, KeyMax))
			}
			s.space()
			if s.i < len(s.b) && s.b[s.i] == ':' {
				s.i++
			}
			if free {
				s.value(limitKey, true)
			} else {
				s.value(name, FreeForm(name))
			}
			s.path = s.path[:len(s.path)-1]
		}
	case '[':
		s.i++
		for idx := 0; !s.full(); {
			s.space()
			if s.i >= len(s.b) {
				return
			}
			switch s.b[s.i] {
			case ']':
				s.i++
				return
			case ',':
				s.i++
				continue
			}
			s.path = append(s.path, segment{index: idx})
			at := s.i
			s.value(limitKey, free)
			s.path = s.path[:len(s.path)-1]
			if s.i == at { // not a value: malformed, stop
				return
			}
			idx++
		}
	case '"':
		n, problem, _ := s.str()
		switch {
		case problem != "":
			s.add("invalid_text", "must be valid UTF-8 text without NUL; it "+problem)
		case n > MaxLen(limitKey):
			s.add("too_long", fmt.Sprintf("is %d characters long; at most %d are allowed", n, MaxLen(limitKey)))
		}
	default: // number, true, false, null
		for s.i < len(s.b) && !strings.ContainsRune(",]} \t\r\n", rune(s.b[s.i])) {
			s.i++
		}
	}
}

func (s *scanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\r' || s.b[s.i] == '\n') {
		s.i++
	}
}

// str scans the string literal at s.i and returns its length in characters
// once decoded, the first thing wrong with it as text, and whether it has
// escapes.
func (s *scanner) str() (n int, problem string, escaped bool) {
	note := func(p string) {
		if problem == "" {
			problem = p
		}
	}
	s.i++ // the opening quote
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return n, problem, escaped
		case c == '\\':
			escaped = true
			if s.i+1 < len(s.b) && s.b[s.i+1] == 'u' {
				r, ok := hex4(s.b, s.i+2)
				s.i += 6
				switch {
				case !ok:
				case r == 0:
					note(`contains a NUL character (\u0000)`)
				case utf16.IsSurrogate(r):
					if lo, ok := pairedLow(s.b, s.i); r < 0xdc00 && ok && utf16.DecodeRune(r, lo) != utf8.RuneError {
						s.i += 6
					} else {
						note(fmt.Sprintf(`contains a lone UTF-16 surrogate (\u%04x), which is not a character`, r))
					}
				}
			} else {
				s.i += 2
			}
			n++
		case c < utf8.RuneSelf:
			s.i++
			n++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				note(fmt.Sprintf("is not valid UTF-8 (byte 0x%02x)", c))
			}
			s.i += size
			n++
		}
	}
	return n, problem, escaped
}

// pairedLow reads a \uXXXX escape at i that is a low surrogate.
func pairedLow(b []byte, i int) (rune, bool) {
	if i+1 >= len(b) || b[i] != '\\' || b[i+1] != 'u' {
		return 0, false
	}
	r, ok := hex4(b, i+2)
	return r, ok && r >= 0xdc00 && r <= 0xdfff
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
	return rune(v), err == nil
}

// memberName decodes a member name for paths and limits.
func memberName(raw []byte, escaped bool) string {
	if !escaped {
		return string(raw)
	}
	if v, err := strconv.Unquote(`"` + string(raw) + `"`); err == nil {
		return v
	}
	return string(raw)
}

func (s *scanner) add(code, msg string) {
	s.f.Add(s.field(), code, msg)
}

// field renders the current path: members joined by dots, items as [i].
func (s *scanner) field() string {
	var b strings.Builder
	for _, seg := range s.path {
		if seg.index >= 0 {
			fmt.Fprintf(&b, "[%d]", seg.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(Describe(seg.name))
	}
	return b.String()
}
