package voicemail

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		text string
		want Verdict
	}{
		{"", Unsure},
		{"Hello?", Human},
		{"hallo, met Jan", Human},
		{"Yes, who is this?", Human},
		{"Ja?", Human},
		{"Goedemiddag, met Petra de Vries.", Human},
		{"Bonjour?", Human},
		{"Hi, you've reached John. Please leave a message after the beep.", Machine},
		{"Hi you’ve reached John", Machine}, // curly apostrophe
		{"I can't take your call right now", Machine},
		{"The person you are calling is not available.", Machine},
		{"Please record your message after the tone.", Machine},
		{"Welcome to the voicemail of Acme", Machine},
		{"Hallo, dit is de voicemail van Jan. Spreek een bericht in na de piep.", Machine},
		{"Ik ben momenteel niet bereikbaar, laat een bericht achter.", Machine},
		{"U bent verbonden met de voicemail van Petra", Machine},
		{"Bitte hinterlassen Sie eine Nachricht nach dem Signalton.", Machine},
		{"Laissez un message après le bip.", Machine},
		{"Deje su mensaje después de la señal.", Machine},
		{"留守番電話サービスに接続します", Machine},
		{"もしもし", Human},
		{"Jan de Vries", Unsure},
		{"I was just about to call you about the invoice from last week", Unsure},
		// A long utterance with a greeting word is not decided by the word.
		{"Hello this is a very long sentence with no clue in it at all", Unsure},
		// Word boundaries: "beeper" is not "beep", "mess" not "message".
		{"yes the beeper", Human},
	}
	for _, tt := range tests {
		if got := Classify(tt.text); got != tt.want {
			t.Errorf("Classify(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	if got := normalize("  Hi,  YOU’VE reached: John!! "); got != "hi you've reached john" {
		t.Errorf("normalize = %q", got)
	}
}
