package notify

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"sort"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"

	"github.com/parley-voice/parley/internal/store"
)

//go:embed templates/*.tmpl
var templateFiles embed.FS

// templates are the parsed bodies: html/template escapes every value for its
// context (element text, attribute, URL); text/template writes them as they
// are, which a text/plain part shows as text.
type templates struct {
	html *htmltemplate.Template
	text *texttemplate.Template
}

func parseTemplates() (templates, error) {
	h, err := htmltemplate.ParseFS(templateFiles, "templates/notification.html.tmpl")
	if err != nil {
		return templates{}, fmt.Errorf("parse the notification html template: %w", err)
	}
	t, err := texttemplate.ParseFS(templateFiles, "templates/notification.txt.tmpl")
	if err != nil {
		return templates{}, fmt.Errorf("parse the notification text template: %w", err)
	}
	return templates{html: h, text: t}, nil
}

// snapshot is what the notification reads of the call's resolved assistant.
type snapshot struct {
	Name   string   `json:"name"`
	Email  *string  `json:"notification_email"`
	Emails []string `json:"notification_emails"`
	GDPR   bool     `json:"gdpr_mode"`
}

// Recipients are the notification addresses of a call's resolved assistant
// (notification_email, then notification_emails), each once.
func Recipients(assistant json.RawMessage) []string {
	var s snapshot
	if len(assistant) == 0 || json.Unmarshal(assistant, &s) != nil {
		return nil
	}
	all := s.Emails
	if s.Email != nil {
		all = append([]string{*s.Email}, all...)
	}
	var out []string
	seen := map[string]bool{}
	for _, a := range all {
		a = strings.TrimSpace(a)
		if a == "" || seen[strings.ToLower(a)] {
			continue
		}
		seen[strings.ToLower(a)] = true
		out = append(out, a)
	}
	return out
}

// view is what the templates show.
type view struct {
	AssistantName    string
	CallID, CallURL  string
	Direction        string
	Caller           string
	AssistantNumber  string
	StartedAt        string
	Duration         string
	EndReason        string
	Summary          string
	Analysis         []field
	AnalysisError    string
	RecordingURL     string
	RecordingExpires string
	GDPR             bool
	Transcript       []line
}

type field struct{ Name, Value string }
type line struct{ Role, Content string }

// links are the addresses a notification points to.
type links struct {
	// Base is the server's public URL; the call's link is its API path.
	Base string
	// Recording is the signed recording link ("" when there is none) and
	// RecordingExpires when it stops working.
	Recording        string
	RecordingExpires time.Time
}

const stamp = "2006-01-02 15:04:05 UTC"

// newView shapes a call for the templates.
func newView(c *store.Call, l links) view {
	var snap snapshot
	_ = json.Unmarshal(c.Assistant, &snap)
	v := view{
		AssistantName: orDash(snap.Name), CallID: c.ID,
		CallURL:   strings.TrimRight(l.Base, "/") + "/api/v1/calls/" + url.PathEscape(c.ID),
		Direction: orDash(c.Direction.String()), Caller: orDash(deref(c.CallerPhone)), AssistantNumber: orDash(deref(c.AssistantPhone)),
		StartedAt: "—", Duration: duration(c.DurationSeconds), EndReason: orDash(deref(c.EndReason)),
		Summary: deref(c.Summary), AnalysisError: deref(c.AnalysisError), GDPR: snap.GDPR,
	}
	if c.StartedAt != nil {
		v.StartedAt = c.StartedAt.UTC().Format(stamp)
	}
	if snap.GDPR {
		v.Caller = "withheld (GDPR mode)"
	}
	if l.Recording != "" {
		v.RecordingURL, v.RecordingExpires = l.Recording, l.RecordingExpires.UTC().Format(stamp)
	}
	v.Analysis = analysisFields(c.AnalysisResult)
	if !snap.GDPR {
		v.Transcript = transcript(c.Messages)
	}
	return v
}

// subject is the message's subject line.
func (v view) subject() string {
	who := v.Caller
	if v.GDPR || who == "—" {
		who = v.Direction + " call"
	}
	return fmt.Sprintf("Call ended: %s, %s (%s)", v.AssistantName, who, v.Duration)
}

// render fills both templates.
func (t templates) render(v view) (text, html string, err error) {
	var tb, hb bytes.Buffer
	if err := t.text.ExecuteTemplate(&tb, "text", v); err != nil {
		return "", "", fmt.Errorf("render the notification text: %w", err)
	}
	if err := t.html.ExecuteTemplate(&hb, "html", v); err != nil {
		return "", "", fmt.Errorf("render the notification html: %w", err)
	}
	return tb.String(), hb.String(), nil
}

// analysisFields lists a structured analysis result readably: its keys in
// order, humanized; strings as they are, lists of plain values joined,
// anything else as compact JSON.
func analysisFields(raw json.RawMessage) []field {
	var obj map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &obj) != nil {
		return nil
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]field, 0, len(keys))
	for _, k := range keys {
		out = append(out, field{Name: humanize(k), Value: plainValue(obj[k])})
	}
	return out
}

func plainValue(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	switch x := v.(type) {
	case nil:
		return "—"
	case string:
		return x
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			switch e.(type) {
			case map[string]any, []any:
				return compact(raw)
			}
			b, _ := json.Marshal(e)
			parts = append(parts, plainValue(b))
		}
		return strings.Join(parts, ", ")
	}
	return compact(raw)
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// humanize turns a key such as primary_topic or questionAnswered into
// "Primary topic" and "Question answered".
func humanize(k string) string {
	var b strings.Builder
	for i, r := range k {
		switch {
		case r == '_' || r == '-':
			b.WriteRune(' ')
		case i > 0 && unicode.IsUpper(r):
			b.WriteRune(' ')
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	s := strings.Join(strings.Fields(b.String()), " ")
	if s == "" {
		return k
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// transcript is the conversation's spoken turns.
func transcript(raw json.RawMessage) []line {
	var msgs []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &msgs) != nil {
		return nil
	}
	var out []line
	for _, m := range msgs {
		if strings.TrimSpace(m.Content) == "" {
			continue
		}
		role := map[string]string{"user": "Caller", "assistant": "Assistant", "system": "System", "tool": "Tool"}[m.Role]
		if role == "" {
			role = humanize(m.Role)
		}
		out = append(out, line{Role: role, Content: m.Content})
	}
	return out
}

func duration(sec *int) string {
	if sec == nil {
		return "—"
	}
	s := *sec
	if s < 60 {
		return fmt.Sprintf("%d s", s)
	}
	return fmt.Sprintf("%d min %02d s", s/60, s%60)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
