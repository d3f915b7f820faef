package local

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// grammar is the closed set of phrases a stream recognises when the
// assistant gives keyterms, in the forms PocketSphinx reads.
type grammar struct {
	phrases []string // lower-case, dictionary words only, in keyterm order
	dict    []string // the dictionary lines of the phrases' words
	dropped []string // words not in the dictionary, left out of the phrases
}

// jsgf returns the grammar in JSGF: one public rule matching any phrase.
func (g grammar) jsgf() string {
	return "#JSGF V1.0;\ngrammar parley;\npublic <utt> = ( " + strings.Join(g.phrases, " | ") + " );\n"
}

// splitWords lower-cases a keyterm and splits it into words: runs of the
// characters dictionary words are made of (letters, digits, ' . -).
func splitWords(keyterm string) []string {
	return strings.FieldsFunc(strings.ToLower(keyterm), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '\'' || r == '.' || r == '-')
	})
}

// wordForms returns the spellings of a word to look up, best first: as
// written, then without surrounding punctuation ("morning." → "morning").
func wordForms(w string) []string {
	if t := strings.Trim(w, "'.-"); t != w && t != "" {
		return []string{w, t}
	}
	return []string{w}
}

// buildGrammar turns keyterms into phrases of the words the pronunciation
// dictionary at dictPath knows. Phrases left empty are dropped, and so are
// repeats.
func buildGrammar(dictPath string, keyterms []string) (grammar, error) {
	wanted := map[string]bool{}
	for _, k := range keyterms {
		for _, w := range splitWords(k) {
			for _, f := range wordForms(w) {
				wanted[f] = true
			}
		}
	}
	known, lines, err := lookupWords(dictPath, wanted)
	if err != nil {
		return grammar{}, err
	}

	var g grammar
	seen := map[string]bool{}
	used := map[string]bool{}
	for _, k := range keyterms {
		var words []string
		for _, w := range splitWords(k) {
			found := ""
			for _, f := range wordForms(w) {
				if known[f] {
					found = f
					break
				}
			}
			if found == "" {
				g.dropped = append(g.dropped, w)
				continue
			}
			words = append(words, found)
			used[found] = true
		}
		p := strings.Join(words, " ")
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		g.phrases = append(g.phrases, p)
	}
	for _, l := range lines {
		if used[dictWord(l)] {
			g.dict = append(g.dict, l)
		}
	}
	return g, nil
}

// lookupWords scans a CMU-style dictionary ("word PH ON ES", alternates
// written "word(2) ...") for the wanted words. It returns which are known
// and every line of theirs.
func lookupWords(dictPath string, wanted map[string]bool) (map[string]bool, []string, error) {
	f, err := os.Open(dictPath)
	if err != nil {
		return nil, nil, fmt.Errorf("reading pronunciation dictionary: %w", err)
	}
	defer f.Close()
	known := map[string]bool{}
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if w := dictWord(line); wanted[w] {
			known[w] = true
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading pronunciation dictionary %s: %w", dictPath, err)
	}
	return known, lines, nil
}

// dictWord returns the word a dictionary line defines, without the "(2)" of
// an alternate pronunciation.
func dictWord(line string) string {
	w, _, _ := strings.Cut(line, " ")
	if w, _, _ = strings.Cut(w, "\t"); strings.HasSuffix(w, ")") {
		if i := strings.LastIndexByte(w, '('); i > 0 {
			w = w[:i]
		}
	}
	return w
}
