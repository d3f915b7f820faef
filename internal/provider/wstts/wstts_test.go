package wstts

import "testing"

func TestBlank(t *testing.T) {
	for text, want := range map[string]bool{
		"":          true,
		" \t\r\n":   true,
		" hi ":      false,
		"\u00a0":    false, // only ASCII white space is blank
		"\n.\n":     false,
		"   x":      false,
		"\t\t\t\t ": true,
	} {
		if got := Blank(text); got != want {
			t.Errorf("Blank(%q) = %v, want %v", text, got, want)
		}
	}
}
