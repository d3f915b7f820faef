package espeak

import (
	"context"
	"errors"
	"os/exec"
	"testing"
)

func TestParseVoices(t *testing.T) {
	out := []byte(`Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  af              --/M      Afrikaans          gmw/af
 2  en-us           --/M      English_(America)  gmw/en-US            (en 10)
 5  nl              --/F      Dutch              gmw/nl
 5  nl              --/M      Dutch_alt          gmw/nl-alt
`)
	got := ParseVoices(out)
	want := []Voice{
		{ID: "af", Name: "Afrikaans", Language: "af", Gender: "M"},
		{ID: "en-us", Name: "English (America)", Language: "en-us", Gender: "M"},
		{ID: "nl", Name: "Dutch", Language: "nl", Gender: "F"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d voices: %+v", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("voice %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestInstalledVoices runs the real espeak-ng when it is installed (CI installs it).
func TestInstalledVoices(t *testing.T) {
	var l Lister
	voices, err := l.Voices(context.Background())
	if _, lookErr := exec.LookPath("espeak-ng"); lookErr != nil {
		if !errors.Is(err, ErrNotInstalled) {
			t.Fatalf("without espeak-ng: err = %v", err)
		}
		t.Skip("espeak-ng not installed")
	}
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range voices {
		if v.ID == "en-us" {
			found = true
		}
	}
	if !found || len(voices) < 20 {
		t.Fatalf("espeak-ng lists %d voices, en-us found = %v", len(voices), found)
	}
}
