package textrule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/fault"
)

func TestCheckJSON(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) }
	tests := []struct {
		name, doc  string
		field      string // "" means accepted
		code       string
		problemsAt int // how many problems, when refused
	}{
		{"plain", `{"name":"Reception","llm_config":{"messages":[{"role":"system","content":"Hi"}]}}`, "", "", 0},
		{"escapes and pairs", `{"name":"a\"b\\c\/d\n\u00e9\ud83d\ude00"}`, "", "", 0},
		{"other controls escaped", `{"first_message":"tab\there\u0007"}`, "", "", 0},
		{"nul escape", `{"name":"a\u0000b"}`, "name", "invalid_text", 1},
		{"nul deep", `{"llm_config":{"messages":[{"content":"x"},{"content":"a\u0000"}]}}`, "llm_config.messages[1].content", "invalid_text", 1},
		{"lone high surrogate", `{"name":"\ud800"}`, "name", "invalid_text", 1},
		{"lone low surrogate", `{"name":"\udc00x"}`, "name", "invalid_text", 1},
		{"high then non-low", `{"name":"\ud800\u0041"}`, "name", "invalid_text", 1},
		{"invalid utf-8 byte", "{\"name\":\"a\xffb\"}", "name", "invalid_text", 1},
		{"encoded surrogate bytes", "{\"name\":\"\xed\xa0\x80\"}", "name", "invalid_text", 1},
		{"invalid in array item", "{\"keyterms\":[\"ok\",\"\xc3\"]}", "keyterms[1]", "invalid_text", 1},
		{"nul in member name", `{"metadata":{"a\u0000b":"x"}}`, `metadata.a\x00b`, "invalid_text", 1},
		{"name at limit", `{"name":"` + long(NameMax) + `"}`, "", "", 0},
		{"name over limit", `{"name":"` + long(NameMax+1) + `"}`, "name", "too_long", 1},
		{"prompt at limit", `{"content":"` + strings.Repeat("x", PromptMax) + `"}`, "", "", 0},
		{"prompt over limit", `{"content":"` + strings.Repeat("x", PromptMax+1) + `"}`, "content", "too_long", 1},
		{"default over limit", `{"first_message":"` + strings.Repeat("x", TextMax+1) + `"}`, "first_message", "too_long", 1},
		{"escapes count once", `{"name":"` + strings.Repeat(`\n`, NameMax) + `"}`, "", "", 0},
		{"string array items take the holder's limit", `{"names":["` + long(TextMax+1) + `"]}`, "names[0]", "too_long", 1},
		{"free-form member names are data", `{"variables":{"name":"` + long(NameMax+1) + `","content":"` + long(TextMax) + `"}}`, "", "", 0},
		{"free-form values take the holder's limit", `{"metadata":{"a":{"content":"` + long(TextMax+1) + `"}}}`, "metadata.a.content", "too_long", 1},
		{"long member name", `{"variables":{"` + strings.Repeat("k", KeyMax+1) + `":"v"}}`, "variables." + strings.Repeat("k", KeyMax+1), "too_long", 1},
		{"every problem listed", `{"name":"\u0000","business_name":"\u0000","x":[1,true,null,"\ud800"]}`, "name", "invalid_text", 3},
		{"problems capped", `{"a":[` + strings.Repeat(`"\u0000",`, 30) + `"\u0000"]}`, "a[0]", "invalid_text", maxProblems},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !json.Valid([]byte(tc.doc)) {
				t.Fatalf("test document is not JSON")
			}
			err := CheckJSON([]byte(tc.doc))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e, ok := fault.As(err)
			if !ok || e.Kind != fault.Invalid {
				t.Fatalf("error = %v, want an Invalid fault", err)
			}
			if e.Field != tc.field || e.Code != tc.code || len(e.Details) != tc.problemsAt {
				t.Fatalf("field %q code %q with %d problems (%s); want %q %q with %d", e.Field, e.Code, len(e.Details), e.Message, tc.field, tc.code, tc.problemsAt)
			}
			if !strings.HasPrefix(e.Message, tc.field+" ") {
				t.Fatalf("message %q does not start with the field", e.Message)
			}
		})
	}
}

// TestCheckJSONMalformed makes sure a text that is not JSON ends the walk
// instead of looping or panicking (the decoder parses first, but the walk
// must not depend on it for safety).
func TestCheckJSONMalformed(t *testing.T) {
	for _, doc := range []string{``, `{`, `{"a`, `{"a":`, `{"a":"\u00`, `[1,`, `{"a" 1}`, `{1:2}`, `["\`, `{"a":[}`} {
		_ = CheckJSON([]byte(doc))
	}
}

func TestProblem(t *testing.T) {
	for s, bad := range map[string]bool{"": false, "abc": false, "é😀": false, "a\x00": true, "\xff": true, "\xed\xa0\x80": true} {
		if got := Problem(s) != ""; got != bad {
			t.Errorf("Problem(%q) = %q", s, Problem(s))
		}
	}
}

func TestMaxLen(t *testing.T) {
	for field, want := range map[string]int{"name": NameMax, "content": PromptMax, "system_message_template": PromptMax, "description": TextMax, "": TextMax} {
		if got := MaxLen(field); got != want {
			t.Errorf("MaxLen(%q) = %d, want %d", field, got, want)
		}
	}
}

// BenchmarkCheckJSON walks a 1 MiB body (the default body limit) of mixed
// ASCII and multi-byte text.
func BenchmarkCheckJSON(b *testing.B) {
	msg := `{"role":"system","content":"` + strings.Repeat("héllo wörld 😀 \\n ", 1000) + `"}`
	doc := []byte(`{"name":"x","llm_config":{"messages":[` + strings.Repeat(msg+",", 1<<20/len(msg)) + msg + `]}}`)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if err := CheckJSON(doc); err != nil {
			b.Fatal(err)
		}
	}
}
