package textrule

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzCheckJSON: the walk never panics or loops on any input, and a valid
// JSON text it accepts decodes to strings with no NUL and no U+FFFD that
// the text did not spell out itself (Go's decoder turns broken UTF-8 and
// lone surrogates into U+FFFD: those must have been refused).
func FuzzCheckJSON(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a"}`, `{"name":"a\u0000b"}`, `{"a":["\ud800",1,true,null,{"b":"\udc00"}]}`,
		"{\"n\":\"\xff\"}", `{"x":"\ud83d\ude00\n\t\"\\\/"}`, `{"metadata":{"k":"` + strings.Repeat("v", 300) + `"}}`,
		`{"s":"\ufffd"}`, "{\"s\":\"\xef\xbf\xbd\"}", `[`, `{"a":`, `"\u00`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := CheckJSON(doc)
		if err != nil || !json.Valid(doc) {
			return
		}
		var v any
		if json.Unmarshal(doc, &v) != nil {
			return
		}
		spelled := bytes.Contains(doc, []byte("\xef\xbf\xbd")) || bytes.Contains(bytes.ToLower(doc), []byte(`\ufffd`))
		var walk func(v any)
		check := func(s string) {
			if strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("accepted a NUL: %q", doc)
			}
			if strings.ContainsRune(s, '\ufffd') && !spelled {
				t.Fatalf("accepted text that decodes to U+FFFD: %q", doc)
			}
		}
		walk = func(v any) {
			switch x := v.(type) {
			case string:
				check(x)
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				for k, e := range x {
					check(k)
					walk(e)
				}
			}
		}
		walk(v)
	})
}
