package campaign

import (
	"slices"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	vars := map[string]string{"name": "Ada", "first_name": "Ada", "order.id": "A-1", "x-y": "z", "loop": "{{name}}", "empty": ""}
	tests := []struct {
		tmpl, want string
		missing    []string
	}{
		{"", "", nil},
		{"no placeholders", "no placeholders", nil},
		{"Hi {{name}}!", "Hi Ada!", nil},
		{"Hi {{ name }}!", "Hi Ada!", nil},
		{"Hi {{  first_name}}", "Hi Ada", nil},
		{"{{order.id}}/{{x-y}}", "A-1/z", nil},
		{"[{{empty}}]", "[]", nil},
		{"{{loop}}", "{{name}}", nil}, // values are not expanded again
		{"{{a}} {{b}} {{a}} {{ Zed }}", "{{a}} {{b}} {{a}} {{ Zed }}", []string{"Zed", "a", "b"}},
		{"{{name}} {{city}}", "Ada {{city}}", []string{"city"}},
		{"{{1abc}} {{a b}} {{}} {{ }} {{na\tme}}", "{{1abc}} {{a b}} {{}} {{ }} {{na\tme}}", nil},
		{"{{{name}}}", "{Ada}", nil},
		{"{{ {{name}}", "{{ Ada", nil},
		{"{{name", "{{name", nil},
		{"{{name}", "{{name}", nil},
		{"trailing {{", "trailing {{", nil},
		{"}}{{name}}{{", "}}Ada{{", nil},
		{"{{.x}} {{-x}} {{_x}}", "{{.x}} {{-x}} {{_x}}", []string{"_x"}},
		{"héllo {{name}} ☎", "héllo Ada ☎", nil},
	}
	for _, tc := range tests {
		got, missing := Render(tc.tmpl, vars)
		if got != tc.want || !slices.Equal(missing, tc.missing) {
			t.Errorf("Render(%q) = %q, %q; want %q, %q", tc.tmpl, got, missing, tc.want, tc.missing)
		}
	}
	if got, missing := Render("{{name}}", nil); got != "{{name}}" || !slices.Equal(missing, []string{"name"}) {
		t.Errorf("nil vars: %q %q", got, missing)
	}
}

// FuzzRender checks that Render never panics, that text without "{{" comes
// back unchanged, that rendering with no variables changes nothing and that
// the missing names are sorted, unique and valid.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"", "Hi {{name}}", "{{ name }}", "{{{a}}}", "{{", "}}{{", "{{a}}{{b}}", "{{ {{x}} }}", "{{\xff}}", "{{a.b-c_1}}"} {
		f.Add(s, "Ada")
	}
	f.Fuzz(func(t *testing.T, tmpl, val string) {
		got, missing := Render(tmpl, map[string]string{"name": val, "a": val})
		if !strings.Contains(tmpl, "{{") && got != tmpl {
			t.Fatalf("Render(%q) = %q without placeholders", tmpl, got)
		}
		same, _ := Render(tmpl, nil)
		if same != tmpl {
			t.Fatalf("Render(%q, nil) = %q", tmpl, same)
		}
		if !slices.IsSorted(missing) || len(slices.Compact(slices.Clone(missing))) != len(missing) {
			t.Fatalf("missing %q not sorted and unique", missing)
		}
		for _, m := range missing {
			if !validName(m) || m == "name" || m == "a" {
				t.Fatalf("missing %q", m)
			}
		}
	})
}
