package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/textrule"
)

// object is a decoded JSON object body.
type object map[string]json.RawMessage

// readObject reads a JSON object body: 413 when over the limit, 400 when it is
// not valid JSON or not an object, and 400 naming the field when a string in
// it is not text or is over its length limit (textrule.CheckJSON: every body
// passes here, so no handler or validator sees NUL, broken UTF-8 or an
// over-long value). An empty body is an empty object only when allowEmpty is
// set.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request, allowEmpty bool) (object, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &fault.Error{Kind: fault.TooLarge, Code: "body_too_large", Message: fmt.Sprintf("request body is larger than %d bytes", s.cfg.MaxBodyBytes)}
		}
		return nil, &fault.Error{Kind: fault.Invalid, Code: "invalid_request", Message: "could not read request body", Err: err}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return object{}, nil
		}
		return nil, &fault.Error{Kind: fault.Invalid, Code: "invalid_request", Message: "request body is empty; send a JSON object"}
	}
	var obj object
	if err := json.Unmarshal(body, &obj); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, &fault.Error{Kind: fault.Invalid, Code: "invalid_json", Message: fmt.Sprintf("request body is not valid JSON: %v (at byte %d)", syn, syn.Offset)}
		case errors.As(err, &typ):
			return nil, &fault.Error{Kind: fault.Invalid, Code: "invalid_json", Message: "request body must be a JSON object, not " + typ.Value}
		default:
			return nil, &fault.Error{Kind: fault.Invalid, Code: "invalid_json", Message: "request body is not valid JSON: " + err.Error()}
		}
	}
	if obj == nil { // the literal null
		return nil, &fault.Error{Kind: fault.Invalid, Code: "invalid_json", Message: "request body must be a JSON object, not null"}
	}
	if err := textrule.CheckJSON(body); err != nil {
		return nil, err
	}
	return obj, nil
}

// fields reads typed values out of an object, recording every problem.
// Keys read are marked; unknown() reports the rest.
type fields struct {
	obj  object
	seen map[string]bool
	f    fault.Fields
}

func newFields(obj object, ignore ...string) *fields {
	fs := &fields{obj: obj, seen: map[string]bool{}}
	for _, k := range append(ignore, "id", "org_id", "created_at", "updated_at") {
		fs.seen[k] = true
	}
	return fs
}

// alias moves old spelling to new; both present with different values is an error.
func (fs *fields) alias(old, new string) {
	v, ok := fs.obj[old]
	fs.seen[old] = true
	if !ok {
		return
	}
	if cur, dup := fs.obj[new]; dup && !bytes.Equal(bytes.TrimSpace(cur), bytes.TrimSpace(v)) {
		fs.f.Invalidf(old, "and %s are the same field; send one of them", new)
		return
	}
	fs.obj[new] = v
}

func (fs *fields) raw(key string) (json.RawMessage, bool) {
	fs.seen[key] = true
	v, ok := fs.obj[key]
	return v, ok
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// str reads a string; present reports whether the key was sent (null counts as
// sent, with ok false and an error unless nullable).
func (fs *fields) str(key string, required bool) (val string, present bool) {
	v, ok := fs.raw(key)
	if !ok {
		if required {
			fs.f.Missing(key)
		}
		return "", false
	}
	if isNull(v) {
		if required {
			fs.f.Missing(key)
		} else {
			fs.f.Invalidf(key, "cannot be null")
		}
		return "", false
	}
	if err := json.Unmarshal(v, &val); err != nil {
		fs.f.Invalidf(key, "must be a string")
		return "", false
	}
	if required && strings.TrimSpace(val) == "" {
		fs.f.Invalidf(key, "must not be empty")
		return "", false
	}
	return val, true
}

// nullableStr reads a string or null. set reports whether the key was sent.
func (fs *fields) nullableStr(key string) (val *string, set bool) {
	v, ok := fs.raw(key)
	if !ok {
		return nil, false
	}
	if isNull(v) {
		return nil, true
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		fs.f.Invalidf(key, "must be a string or null")
		return nil, false
	}
	return &s, true
}

func (fs *fields) boolean(key string) (val, set bool) {
	v, ok := fs.raw(key)
	if !ok {
		return false, false
	}
	if err := json.Unmarshal(v, &val); err != nil || isNull(v) {
		fs.f.Invalidf(key, "must be true or false")
		return false, false
	}
	return val, true
}

func (fs *fields) integer(key string) (val int, set bool) {
	v, ok := fs.raw(key)
	if !ok {
		return 0, false
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil || isNull(v) {
		fs.f.Invalidf(key, "must be an integer")
		return 0, false
	}
	i, err := strconv.Atoi(n.String())
	if err != nil {
		fs.f.Invalidf(key, "must be an integer")
		return 0, false
	}
	return i, true
}

// unknown records every key that no reader asked for.
func (fs *fields) unknown() {
	var extra []string
	for k := range fs.obj {
		if !fs.seen[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		fs.f.Add(k, "unknown_field", "is not a known field")
	}
}

func (fs *fields) err() error { return fs.f.Err() }

var e164RE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// validE164 reports whether s is an E.164 phone number.
func validE164(s string) bool { return e164RE.MatchString(s) }

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// refID reads a nullable UUID reference.
func (fs *fields) refID(key string) (val *string, set bool) {
	val, set = fs.nullableStr(key)
	if val != nil && !uuidRE.MatchString(*val) {
		fs.f.Invalidf(key, "must be a UUID (got %q)", *val)
		return nil, false
	}
	if val != nil {
		l := strings.ToLower(*val)
		val = &l
	}
	return val, set
}

// checkParams is the one check of path parameters and query values, run
// before every handler: each must be text (textrule.Problem) of at most
// textrule.ParamMax characters, else 400 naming the parameter. pattern is
// the route's ServeMux pattern, whose {names} are the path parameters.
func checkParams(pattern string, next http.Handler) http.Handler {
	var names []string
	for rest := pattern; ; {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest, '}')
		if i < 0 || j < i {
			break
		}
		names = append(names, strings.TrimSuffix(rest[i+1:j], "..."))
		rest = rest[j+1:]
	}
	return handler(func(w http.ResponseWriter, r *http.Request) error {
		var f fault.Fields
		check := func(name, v string) {
			if f.Len() >= 10 { // enough to act on; a long query cannot make a huge error
				return
			}
			if p := textrule.Problem(v); p != "" {
				f.Add(textrule.Describe(name), "invalid_text", "must be valid UTF-8 text without NUL; it "+p)
			} else if n := utf8.RuneCountInString(v); n > textrule.ParamMax {
				f.Add(name, "too_long", fmt.Sprintf("is %d characters long; at most %d are allowed", n, textrule.ParamMax))
			}
		}
		for _, name := range names {
			check(name, r.PathValue(name))
		}
		q := r.URL.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			check(k, k)
			for _, v := range q[k] {
				check(k, v)
			}
		}
		if err := f.Err(); err != nil {
			return err
		}
		next.ServeHTTP(w, r)
		return nil
	})
}

// pathID returns a path parameter, refusing empty, "." and "..". ServeMux has
// already percent-decoded it; "+" stays "+".
func pathID(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	if id == "" || id == "." || id == ".." || len(id) > 256 {
		return "", fault.Invalidf(name, "is not a valid id")
	}
	return id, nil
}

// docID returns a UUID path parameter, lower-cased. Anything that is not a
// UUID cannot exist, so it is a 404 like any unknown id.
func docID(r *http.Request, noun string) (string, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return "", err
	}
	if !uuidRE.MatchString(id) {
		return "", fault.NotFoundf("%s %s not found", noun, id)
	}
	return strings.ToLower(id), nil
}

// Pagination of every list but leads and analysis templates (whose sizes
// the spec fixes): the /calls defaults of the API reference.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// page parses limit and offset query parameters.
func page(r *http.Request, def, most int) (store.Page, error) {
	var f fault.Fields
	p := store.Page{Limit: def}
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > most {
			f.Invalidf("limit", "must be an integer from 1 to %d (got %q)", most, v)
		} else {
			p.Limit = n
		}
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			f.Invalidf("offset", "must be a non-negative integer (got %q)", v)
		} else {
			p.Offset = n
		}
	}
	return p, f.Err()
}

// dateParam parses an ISO 8601 date-time (or plain date) query parameter.
// A plain end date means the end of that day.
func dateParam(r *http.Request, key string, endOfDay bool, f *fault.Fields) *time.Time {
	v := r.URL.Query().Get(key)
	if v == "" {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			if layout == "2006-01-02" && endOfDay {
				t = t.Add(24*time.Hour - time.Millisecond)
			}
			return &t
		}
	}
	f.Invalidf(key, "must be an ISO 8601 date-time such as 2025-12-01T00:00:00Z (got %q)", v)
	return nil
}

func pagination(p store.Page, total int) map[string]int {
	return map[string]int{"total": total, "limit": p.Limit, "offset": p.Offset}
}
