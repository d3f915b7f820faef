package wsurl

import (
	"net/url"
	"testing"
)

func TestAdapt(t *testing.T) {
	for base, want := range map[string]string{
		"http://h:1/p":  "ws://h:1/p",
		"HTTPS://h/p":   "wss://h/p",
		"ws://h":        "ws://h",
		"wss://h/x":     "wss://h/x",
		"ftp://h":       `base URL "ftp://h": scheme must be ws, wss, http or https`,
		"https:///path": `base URL "https:///path" has no host`,
		"/relative":     `base URL "/relative": scheme must be ws, wss, http or https`,
	} {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if err := Adapt(u, base); err != nil {
			got = err.Error()
		} else {
			got = u.String()
		}
		if got != want {
			t.Errorf("Adapt(%q) = %q, want %q", base, got, want)
		}
	}
}
