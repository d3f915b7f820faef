package realtime

import "testing"

func TestVerbatimRoundTrip(t *testing.T) {
	for _, text := range []string{"Hello.", `He said "hi" \ bye`, "Grüß Gott\nzusammen", ""} {
		got, ok := ParseVerbatim(Verbatim(text))
		if !ok || got != text {
			t.Errorf("ParseVerbatim(Verbatim(%q)) = %q, %v", text, got, ok)
		}
	}
	for _, in := range []string{"Ask whether the caller is still there.", "Say exactly the following text, word for word, and nothing else: unquoted"} {
		if _, ok := ParseVerbatim(in); ok {
			t.Errorf("ParseVerbatim(%q) took it for a verbatim instruction", in)
		}
	}
}

func TestEventTypeString(t *testing.T) {
	if SpeechStarted.String() != "speech_started" || Warning.String() != "warning" || EventType(99).String() != "unknown" {
		t.Error("event type names are wrong")
	}
}
