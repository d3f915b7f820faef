package redact

import "testing"

func TestKey(t *testing.T) {
	if got := Key("key abc leaked abc", "abc"); got != "key [redacted] leaked [redacted]" {
		t.Errorf("Key = %q", got)
	}
	if got := Key("nothing", ""); got != "nothing" {
		t.Errorf("Key with no key = %q", got)
	}
	if got := Key("nothing", "abc"); got != "nothing" {
		t.Errorf("Key without the key in the text = %q", got)
	}
}
