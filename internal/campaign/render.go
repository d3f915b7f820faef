package campaign

import (
	"slices"
	"strings"
)

// Render fills {{name}} placeholders from vars. Unknown placeholders are left
// in the text as written and their names returned, sorted and unique. Values
// are not expanded again.
//
// A placeholder is "{{", optional spaces, a name matching
// [A-Za-z_][A-Za-z0-9_.-]*, optional spaces and "}}". Anything else between
// braces, and an unclosed "{{", is left verbatim and not reported; scanning
// resumes one byte after such a "{{", so "{{{name}}}" renders as "{value}".
func Render(tmpl string, vars map[string]string) (out string, missing []string) {
	var b strings.Builder
	b.Grow(len(tmpl))
	rest := tmpl
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 { // unclosed: the rest is text
			b.WriteString(rest)
			break
		}
		name := strings.Trim(rest[i+2:i+2+j], " ")
		if !validName(name) {
			b.WriteString(rest[:i+1])
			rest = rest[i+1:]
			continue
		}
		b.WriteString(rest[:i])
		end := i + 2 + j + 2
		if v, ok := vars[name]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(rest[i:end])
			if !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
		}
		rest = rest[end:]
	}
	slices.Sort(missing)
	return b.String(), missing
}

// validName reports whether s matches [A-Za-z_][A-Za-z0-9_.-]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && (c == '.' || c == '-' || '0' <= c && c <= '9'):
		default:
			return false
		}
	}
	return true
}
