package pipeline

import (
	"reflect"
	"testing"
)

func TestSplitter(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   []string
		rest   string
	}{
		{"sentences across chunks", []string{"Hel", "lo there. How ", "are you? I'm", " fine"}, []string{"Hello there.", "How are you?"}, "I'm fine"},
		{"decimal and abbreviation stay", []string{"It costs 3.5 euros, e.g. on Mon. Dr. Smith agrees. "}, []string{"It costs 3.5 euros, e.g. on Mon.", "Dr. Smith agrees."}, ""},
		{"short clause waits", []string{"Yes, sure"}, nil, "Yes, sure"},
		{"long clause is cut at a comma", []string{"We have openings on Monday and on Tuesday morning, and also on Friday"}, []string{"We have openings on Monday and on Tuesday morning,"}, "and also on Friday"},
		{"newline ends a piece", []string{"First line\nSecond"}, []string{"First line"}, "Second"},
		{"nothing yet", []string{"Hm"}, nil, "Hm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s splitter
			var got []string
			for _, c := range tc.chunks {
				got = append(got, s.push(c)...)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("pieces %q, want %q", got, tc.want)
			}
			if rest := s.flush(); rest != tc.rest {
				t.Fatalf("rest %q, want %q", rest, tc.rest)
			}
		})
	}
}

func TestSpokenPrefix(t *testing.T) {
	text := "We have openings at eight and nine."
	for _, tc := range []struct {
		frac float64
		want string
	}{
		{0, ""}, {1, text}, {1.5, text}, {0.1, "We have"}, {0.5, "We have openings at"}, {0.99, text},
	} {
		if got := SpokenPrefix(text, tc.frac); got != tc.want {
			t.Errorf("SpokenPrefix(%v) = %q, want %q", tc.frac, got, tc.want)
		}
	}
}

func TestUnfinished(t *testing.T) {
	for text, want := range map[string]bool{
		"I want to book":           false,
		"I want to book and":       true,
		"my number is, ":           true,
		"so":                       true,
		"Tuesday at nine.":         false,
		"I was thinking um":        true,
		"transfer me to the":       true,
		"":                         true,
		"could you check that for": false,
	} {
		if got := unfinished(text); got != want {
			t.Errorf("unfinished(%q) = %v, want %v", text, got, want)
		}
	}
}

func TestPronounce(t *testing.T) {
	got := pronounce("Smile & Co. uses AI.", []Replacement{{From: "Co.", To: "Company"}, {From: "AI", To: "A.I."}, {From: "", To: "x"}})
	if want := "Smile & Company uses A.I.."; got != want {
		t.Fatalf("pronounce = %q, want %q", got, want)
	}
}
