package assistant

import (
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/fault"
)

// This file validates values against catalog.Field descriptions. The same
// machinery serves provider configs (fields from the catalog), speech_config
// and the assistant's own scalar fields (fields declared in this package).

// ignoredKeys are server-owned and dropped when a stored document comes back in.
var ignoredKeys = []string{"id", "org_id", "created_at", "updated_at"}

var (
	functionNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)
	uuidRE         = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	e164RE         = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
)

// members validates the members of in named by specs and writes their
// canonical values into out, in spec order. A null on a nullable field is
// kept; a null elsewhere counts as absent, so the field falls back to its
// default (when the spec fills one), is reported missing (when required) or
// is dropped. Members not in specs are left to unknownKeys.
func (v *Validator) members(f *fault.Fields, path string, in map[string]json.RawMessage, specs []*catalog.Field, out *obj) {
	v.membersAt(f, func(name string) string { return at(path, name) }, in, specs, out)
}

// membersAt is members with each member's error path given by pathOf, for
// objects assembled from keys the client sent in different places.
func (v *Validator) membersAt(f *fault.Fields, pathOf func(string) string, in map[string]json.RawMessage, specs []*catalog.Field, out *obj) {
	bad := map[string]bool{}
	for _, s := range specs {
		raw := in[s.Name]
		p := pathOf(s.Name)
		if kindOf(raw) == jNull && s.Nullable {
			out.set(s.Name, nil)
			continue
		}
		if !given(raw) {
			switch {
			case s.Fill && s.Default != nil:
				out.set(s.Name, defaultValue(s))
			case s.Required:
				f.Missing(p)
			}
			continue
		}
		val, ok := v.value(f, p, s, raw)
		if !ok {
			bad[s.Name] = true
			continue
		}
		out.set(s.Name, val)
	}
	for _, s := range specs {
		if s.AtLeast != "" && !bad[s.Name] && !bad[s.AtLeast] {
			atLeast(f, pathOf, specs, s, out)
		}
	}
}

// atLeast checks that field s is not below its sibling s.AtLeast, comparing
// the values sent or, for the one not sent, its default.
func atLeast(f *fault.Fields, pathOf func(string) string, specs []*catalog.Field, s *catalog.Field, out *obj) {
	lo := findSpec(specs, s.AtLeast)
	if lo == nil {
		return
	}
	hiVal, hiSent := effective(s, out)
	loVal, loSent := effective(lo, out)
	if math.IsNaN(hiVal) || math.IsNaN(loVal) || hiVal >= loVal || (!hiSent && !loSent) {
		return
	}
	if hiSent {
		note := ""
		if !loSent {
			note = ", its default"
		}
		f.Invalidf(pathOf(s.Name), "must be at least %s (%s%s); got %s", lo.Name, formatNum(loVal), note, formatNum(hiVal))
		return
	}
	f.Invalidf(pathOf(lo.Name), "must not be above %s (%s, its default); got %s", s.Name, formatNum(hiVal), formatNum(loVal))
}

// effective is a numeric member's value as sent, else its default (NaN if neither).
func effective(s *catalog.Field, out *obj) (float64, bool) {
	if v, ok := out.get(s.Name); ok {
		switch n := v.(type) {
		case float64:
			return n, true
		case int64:
			return float64(n), true
		}
		return math.NaN(), false
	}
	var d float64
	if s.Default == nil || json.Unmarshal(s.Default, &d) != nil {
		return math.NaN(), false
	}
	return d, false
}

func findSpec(specs []*catalog.Field, name string) *catalog.Field {
	for _, s := range specs {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func defaultValue(s *catalog.Field) any {
	var v any
	if json.Unmarshal(s.Default, &v) != nil {
		return nil
	}
	return v
}

// value validates one non-null value against s and returns its canonical form.
func (v *Validator) value(f *fault.Fields, path string, s *catalog.Field, raw json.RawMessage) (any, bool) {
	switch s.Type {
	case catalog.Bool:
		return asBool(f, path, raw)
	case catalog.Int:
		n, ok := asInt(f, path, raw)
		if !ok {
			return nil, false
		}
		x, ok := numberIn(f, path, s, float64(n))
		return int64(x), ok
	case catalog.Number:
		x, ok := asNumber(f, path, raw)
		if !ok {
			return nil, false
		}
		return numberIn(f, path, s, x)
	case catalog.String:
		str, ok := asString(f, path, raw)
		if !ok || !stringIn(f, path, s, str) {
			return nil, false
		}
		if s.Format == catalog.FormatURL && v.checkURL != nil {
			if _, err := v.checkURL(str); err != nil {
				f.Invalidf(path, "%v", err)
				return nil, false
			}
		}
		if s.Format == catalog.FormatUUID {
			str = strings.ToLower(str)
		}
		return str, true
	case catalog.Enum:
		str, ok := asString(f, path, raw)
		if !ok {
			return nil, false
		}
		if !slices.Contains(s.Values, str) {
			f.Invalidf(path, "%q is not allowed; allowed: %s", str, strings.Join(s.Values, ", "))
			return nil, false
		}
		return str, true
	case catalog.VoiceID:
		str, ok := asString(f, path, raw)
		if !ok {
			return nil, false
		}
		vs := v.c.VoiceSet(s.VoiceSet)
		if !vs.Has(str) {
			hint := ""
			for _, id := range vs.IDs() {
				if strings.EqualFold(id, str) {
					hint = fmt.Sprintf(" (voice ids are case-sensitive: did you mean %q?)", id)
				}
			}
			f.Invalidf(path, "%q is not one of the %s voices%s; allowed: %s", str, vs.Label, hint, strings.Join(vs.IDs(), ", "))
			return nil, false
		}
		return str, true
	case catalog.List:
		return v.list(f, path, s, raw)
	case catalog.Object:
		in, ok := asObject(f, path, raw)
		if !ok {
			return nil, false
		}
		return v.object(f, path, s, in)
	case catalog.JSONObject:
		if _, ok := asObject(f, path, raw); !ok {
			return nil, false
		}
		return compact(raw), true
	}
	f.Invalidf(path, "cannot be validated (field type %q)", s.Type)
	return nil, false
}

// numberIn checks range and allowed values; clamping fields are pulled into range.
func numberIn(f *fault.Fields, path string, s *catalog.Field, x float64) (float64, bool) {
	if s.OneOf != nil && !slices.Contains(s.OneOf, x) {
		vals := make([]string, len(s.OneOf))
		for i, o := range s.OneOf {
			vals[i] = formatNum(o)
		}
		f.Invalidf(path, "must be one of %s; got %s", strings.Join(vals, ", "), formatNum(x))
		return 0, false
	}
	below := s.Min != nil && x < *s.Min
	above := s.Max != nil && x > *s.Max
	if !below && !above {
		return x, true
	}
	if s.Clamp {
		if below {
			return *s.Min, true
		}
		return *s.Max, true
	}
	switch {
	case s.Min != nil && s.Max != nil:
		f.Invalidf(path, "must be between %s and %s; got %s", formatNum(*s.Min), formatNum(*s.Max), formatNum(x))
	case below:
		f.Invalidf(path, "must be at least %s; got %s", formatNum(*s.Min), formatNum(x))
	default:
		f.Invalidf(path, "must be at most %s; got %s", formatNum(*s.Max), formatNum(x))
	}
	return 0, false
}

// stringIn checks length and format.
func stringIn(f *fault.Fields, path string, s *catalog.Field, str string) bool {
	n := utf8.RuneCountInString(str)
	switch {
	case s.MinLen != nil && n < *s.MinLen && *s.MinLen == 1:
		f.Invalidf(path, "must not be empty")
		return false
	case s.MinLen != nil && n < *s.MinLen:
		f.Invalidf(path, "must be at least %d characters; got %d", *s.MinLen, n)
		return false
	case s.MaxLen != nil && n > *s.MaxLen:
		f.Invalidf(path, "must be at most %d characters; got %d", *s.MaxLen, n)
		return false
	}
	if msg := badFormat(s.Format, str); msg != "" {
		f.Invalidf(path, "%s", msg)
		return false
	}
	return true
}

// BadFormat explains why str does not have the given catalog format (one
// of catalog.FormatEmail, FormatURL, …), or returns "" when it does; for
// fields validated outside the document validators.
func BadFormat(format, str string) string { return badFormat(format, str) }

// badFormat explains why str does not have the given format ("" when it does).
func badFormat(format, str string) string {
	switch format {
	case catalog.FormatEmail:
		a, err := mail.ParseAddress(str)
		if err != nil || a.Address != str || !strings.Contains(a.Address[strings.LastIndexByte(a.Address, '@'):], ".") {
			return fmt.Sprintf("%q is not a valid email address (expected e.g. ops@example.com)", str)
		}
	case catalog.FormatURL:
		u, err := url.Parse(str)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Sprintf("%q is not an absolute http or https URL", str)
		}
	case catalog.FormatUUID:
		if !uuidRE.MatchString(str) {
			return fmt.Sprintf("%q is not a UUID", str)
		}
	case catalog.FormatE164:
		if !e164RE.MatchString(str) {
			return fmt.Sprintf("%q is not an E.164 phone number (expected e.g. +31201234567)", str)
		}
	case catalog.FormatFunctionName:
		if !functionNameRE.MatchString(str) {
			return fmt.Sprintf("%q is not a valid function name: it must start with a letter or _, contain only letters, digits, _ and -, and be at most 64 characters", str)
		}
	}
	return ""
}

func (v *Validator) list(f *fault.Fields, path string, s *catalog.Field, raw json.RawMessage) (any, bool) {
	items, ok := asArray(f, path, raw)
	if !ok {
		return nil, false
	}
	if s.MinItems != nil && len(items) < *s.MinItems {
		f.Invalidf(path, "must have at least %s; got %d", plural(*s.MinItems, "item"), len(items))
		return nil, false
	}
	if s.MaxItems != nil && len(items) > *s.MaxItems {
		f.Invalidf(path, "must have at most %s; got %d", plural(*s.MaxItems, "item"), len(items))
		return nil, false
	}
	out := make([]any, 0, len(items))
	seen := map[string]int{}
	good := true
	for i, item := range items {
		p := idx(path, i)
		if !given(item) {
			f.Invalidf(p, "must not be null")
			good = false
			continue
		}
		val, ok := v.value(f, p, s.Items, item)
		if !ok {
			good = false
			continue
		}
		if s.Unique {
			key := string(compact(item))
			if j, dup := seen[key]; dup {
				f.Invalidf(p, "repeats %s; each value may appear once", idx(path, j))
				good = false
				continue
			}
			seen[key] = i
		}
		out = append(out, val)
	}
	return out, good
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// object validates an object's members; a tagged object picks its variant first.
func (v *Validator) object(f *fault.Fields, path string, s *catalog.Field, in map[string]json.RawMessage) (*obj, bool) {
	before := f.Len()
	out := newObj()
	specs := s.Fields
	if s.Tag != "" {
		tp := at(path, s.Tag)
		raw := in[s.Tag]
		if !given(raw) {
			f.Missing(tp)
			return nil, false
		}
		tag, ok := asString(f, tp, raw)
		if !ok {
			return nil, false
		}
		vr := s.Variant(tag)
		if vr == nil {
			f.Invalidf(tp, "%q is not allowed; allowed: %s", tag, strings.Join(s.TagValues(), ", "))
			return nil, false
		}
		out.set(s.Tag, tag)
		specs = vr.Fields
	}
	allowed := names(specs)
	if s.Tag != "" {
		allowed = append([]string{s.Tag}, allowed...)
	}
	unknownKeys(f, path, in, allowed, nil, "")
	v.members(f, path, in, specs, out)
	return out, f.Len() == before
}

func names(specs []*catalog.Field) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

// unknownKeys reports, in sorted order, every key of in that is neither
// allowed nor ignored; what names the object (path when empty) and the
// message lists the keys that are allowed.
func unknownKeys(f *fault.Fields, path string, in map[string]json.RawMessage, allowed, ignored []string, what string) {
	var bad []string
	for k := range in {
		if !slices.Contains(allowed, k) && !slices.Contains(ignored, k) {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	if what == "" {
		what = path
	}
	list := "none"
	if len(allowed) > 0 {
		list = strings.Join(allowed, ", ")
	}
	for _, k := range bad {
		f.Add(at(path, k), "unknown_field", fmt.Sprintf("is not a known field of %s; allowed: %s", what, list))
	}
}

// Small constructors for the field tables declared in this package.
func num(x float64) *float64 { return &x }
func count(n int) *int       { return &n }

var (
	jsonNull  = json.RawMessage("null")
	jsonTrue  = json.RawMessage("true")
	jsonFalse = json.RawMessage("false")
)
