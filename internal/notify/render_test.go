package notify

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func ptr[T any](v T) *T { return &v }

// goldenCall is a call with every part a notification shows; the summary,
// a transcript line and an analysis value try to inject markup.
func goldenCall(gdpr bool) *store.Call {
	started := time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC)
	snap, _ := json.Marshal(map[string]any{"name": "Front desk <b>", "gdpr_mode": gdpr,
		"notification_email": "ops@example.org", "notification_emails": []string{"boss@example.org", "OPS@example.org"}})
	id := "call-_+31612345678_1"
	if gdpr {
		id = "call-_+316xxxxxx78_1" // the engine masks the caller in a GDPR call's id
	}
	return &store.Call{
		ID: id, OrgID: "org-1", Direction: call.Inbound, CallerPhone: ptr("+31612345678"),
		AssistantPhone: ptr("+31201234567"), StartedAt: &started, DurationSeconds: ptr(125), EndReason: ptr("user_hangup"),
		Summary:        ptr(`The caller booked a cleaning. <script>alert("x")</script> & left.`),
		AnalysisResult: json.RawMessage(`{"sentiment":8,"primary_topic":"Schedule <appointment>","question_answered":true,"tags":["dental","new patient"],"slot":{"day":"tue","hour":9},"notes":null}`),
		Messages:       json.RawMessage(`[{"role":"assistant","content":"Hello, Acme dental."},{"role":"user","content":"<img src=x onerror=alert(1)> Tuesday please"},{"role":"tool","content":""}]`),
		Assistant:      snap, RecordingState: store.RecordingReady,
	}
}

func TestGolden(t *testing.T) {
	tm, err := parseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Date(2026, 12, 3, 9, 35, 0, 0, time.UTC)
	bare := &store.Call{ID: "call-2", OrgID: "org-1", Direction: call.Outbound, AnalysisError: ptr("the model's answer did not match the schema"),
		Assistant: json.RawMessage(`{"name":"Sales","notification_email":"a@example.org"}`), DurationSeconds: ptr(7)}
	cases := []struct {
		name string
		c    *store.Call
		l    links
	}{
		{"full", goldenCall(false), links{Base: "https://voice.example.com/", Recording: "https://voice.example.com/api/v1/calls/x/recording?sig=a&exp=1", RecordingExpires: expires}},
		{"gdpr", goldenCall(true), links{Base: "https://voice.example.com"}},
		{"bare", bare, links{Base: "https://voice.example.com"}},
	}
	for _, c := range cases {
		v := newView(c.c, c.l)
		text, html, err := tm.render(v)
		if err != nil {
			t.Fatal(err)
		}
		got := "Subject: " + v.subject() + "\n\n" + text
		for ext, body := range map[string]string{"txt": got, "html": html} {
			path := filepath.Join("testdata", c.name+"."+ext)
			if *update {
				if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if body != string(want) {
				t.Errorf("%s differs from %s:\n%s", c.name, path, body)
			}
		}
	}
}

// TestEscaping: markup in the call's content is text in the HTML part, and
// the text part shows it as written.
func TestEscaping(t *testing.T) {
	tm, _ := parseTemplates()
	text, html, err := tm.render(newView(goldenCall(false), links{Base: "https://voice.example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"<script>", "<img", "<appointment>", "<b>"} {
		if strings.Contains(html, raw) {
			t.Errorf("html part contains %q unescaped", raw)
		}
		if !strings.Contains(text, raw) {
			t.Errorf("text part lost %q", raw)
		}
	}
	for _, esc := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; left.", "&lt;img src=x onerror=alert(1)&gt;", "Schedule &lt;appointment&gt;", "Front desk &lt;b&gt;"} {
		if !strings.Contains(html, esc) {
			t.Errorf("html part lacks %q", esc)
		}
	}
}

// TestGDPR: GDPR mode leaves the transcript and the caller's number out.
func TestGDPR(t *testing.T) {
	tm, _ := parseTemplates()
	for _, gdpr := range []bool{false, true} {
		v := newView(goldenCall(gdpr), links{Base: "https://voice.example.com"})
		text, html, err := tm.render(v)
		if err != nil {
			t.Fatal(err)
		}
		for part, body := range map[string]string{"text": text, "html": html, "subject": v.subject()} {
			if has := strings.Contains(body, "Tuesday please"); has == gdpr && part != "subject" {
				t.Errorf("gdpr %v: %s part transcript shown %v", gdpr, part, has)
			}
			if has := strings.Contains(body, "612345678"); has && gdpr {
				t.Errorf("gdpr: %s shows the caller's number", part)
			}
			if part != "subject" && !strings.Contains(body, "booked a cleaning") {
				t.Errorf("gdpr %v: %s part lost the summary", gdpr, part)
			}
		}
	}
}

func TestRecipients(t *testing.T) {
	cases := []struct {
		doc  string
		want []string
	}{
		{`{"notification_email":"a@x.org","notification_emails":["b@x.org","A@x.org"," "]}`, []string{"a@x.org", "b@x.org"}},
		{`{"notification_emails":["b@x.org"]}`, []string{"b@x.org"}},
		{`{"notification_email":null,"notification_emails":null}`, nil},
		{`{}`, nil},
		{`not json`, nil},
		{``, nil},
	}
	for _, c := range cases {
		got := Recipients(json.RawMessage(c.doc))
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: %v, want %v", c.doc, got, c.want)
		}
	}
}

func TestHumanizeAndValues(t *testing.T) {
	for in, want := range map[string]string{"primary_topic": "Primary topic", "questionAnswered": "Question answered", "x": "X", "__": "__", "a-b": "A b"} {
		if got := humanize(in); got != want {
			t.Errorf("humanize(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{`"s"`: "s", `true`: "yes", `false`: "no", `null`: "—", `8.5`: "8.5",
		`[1,"a",true]`: "1, a, yes", `[{"a":1}]`: `[{"a":1}]`, `{"a": [1, 2]}`: `{"a":[1,2]}`} {
		if got := plainValue(json.RawMessage(in)); got != want {
			t.Errorf("plainValue(%s) = %q, want %q", in, got, want)
		}
	}
	for sec, want := range map[int]string{0: "0 s", 59: "59 s", 60: "1 min 00 s", 125: "2 min 05 s"} {
		if got := duration(&sec); got != want {
			t.Errorf("duration(%d) = %q", sec, got)
		}
	}
}
