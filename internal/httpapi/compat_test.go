package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
)

// The compatibility suite drives the real router and store over HTTP with
// the request bodies of every client generation the spec names (§0: SDK-OLD,
// SDK-NEW, API-REF, DOCS-NEW, API-DOC, REF-FLIREO, SEED-*), resource by
// resource, and checks the members each generation reads from the answer.
// The cases are data, in testdata/compat/<resource>.json, written from the
// spec (§7, §8, §15), not from any SDK's code. A file's cases run in order
// against a fresh database of each engine and may save values from one answer
// (ids) for the paths and bodies of later ones as ${name}.
//
// A file may name a setup (compatSetups) that puts into the database or a
// fake provider what the API cannot create. A case may name a fake step
// ("fake", a compatFakes entry) run just before its request: it changes
// the world outside Parley between two requests, as a provider does on its
// own (e.g. "resend_verify": Resend has seen the DNS records).
//
// To add a resource, add a file; the method counts in docs/compatibility.md
// are checked against the files (TestCompatCounts).

type compatFile struct {
	Resource string       `json:"resource"`
	Setup    string       `json:"setup,omitempty"` // a compatSetups entry run first
	Cases    []compatCase `json:"cases"`
}

// compatSetups put into the database or a fake provider what the API
// cannot create (calls come from the voice engine, a Resend account from
// Resend) and save its ids for the cases.
var compatSetups = map[string]func(t *testing.T, e *env, vars map[string]string){
	// calls: an ended inbound call with its usage log (${ended}) and two
	// live ones (${live}, ${live_new}: control commands are limited per
	// call, §7.6), all with the HMS inbound id format.
	"calls": func(t *testing.T, e *env, vars map[string]string) {
		ctx := context.Background()
		at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
		ended := &store.Call{ID: "call-_+31623731537_XqaQxRRgAzYc", OrgID: e.orgA, Status: call.StatusEnded, Direction: call.Inbound, CreatedAt: at,
			CallerPhone: ptr("+31623731537"), AssistantPhone: ptr("+31850835037"), AgentName: ptr("Reception"), DurationSeconds: ptr(84),
			EndReason: ptr("user_hangup"), Summary: ptr("Asked for opening hours."), Messages: json.RawMessage(`[{"role":"assistant","content":"Hello"},{"role":"user","content":"Hi"}]`)}
		live := &store.Call{ID: "call-_+31611111111_AbCdEfGhIjKl", OrgID: e.orgA, Status: call.StatusInProgress, Direction: call.Inbound, CreatedAt: at.Add(time.Minute)}
		liveNew := &store.Call{ID: "call-_+31622222222_MnOpQrStUvWx", OrgID: e.orgA, Status: call.StatusInProgress, Direction: call.Inbound, CreatedAt: at.Add(2 * time.Minute)}
		for _, c := range []*store.Call{ended, live, liveNew} {
			if err := e.db.CreateCall(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.db.CreateUsageLog(ctx, &store.UsageLog{OrgID: e.orgA, CallID: &ended.ID, DurationSec: 84, CallType: "phone", PhoneNumber: ptr("+31850835037"),
			AgentName: ptr("Reception"), MinutesUsed: 1.4, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
		// as encodeURIComponent sends them (spec §3): "+" as %2B
		enc := func(id string) string { return strings.ReplaceAll(url.PathEscape(id), "+", "%2B") }
		vars["ended"], vars["live"], vars["live_new"] = enc(ended.ID), enc(live.ID), enc(liveNew.ID)
		vars["ended_id"] = ended.ID
	},
	// domains: a Resend account for ${resend_key} at the fake Resend (the
	// cases store the key through POST /byok, after the no-key cases), with
	// a verified domain made in Resend's dashboard (${news_rid}).
	"domains": func(t *testing.T, e *env, vars map[string]string) {
		vars["resend_key"] = "re_compat_0123456789abcdef"
		e.resend.AddKey(vars["resend_key"])
		vars["news_rid"] = e.resend.AddDomain(vars["resend_key"], "news.example.org", "us-east-1")
		if !e.resend.MarkVerified(vars["news_rid"]) {
			t.Fatal("the fake Resend lost a domain")
		}
	},
}

// compatFakes are the fake steps a case may run before its request.
var compatFakes = map[string]func(t *testing.T, e *env, vars map[string]string){
	// resend_verify: Resend finds the DNS records of the domain saved as
	// ${resend_domain_id} and marks it and its records verified.
	"resend_verify": func(t *testing.T, e *env, vars map[string]string) {
		id, ok := vars["resend_domain_id"]
		if !ok || !e.resend.MarkVerified(id) {
			t.Fatalf("resend_verify: no Resend domain %q saved as resend_domain_id", id)
		}
	},
}

type compatCase struct {
	Gen    string `json:"gen"`    // source generation, e.g. "SDK-OLD"
	Method string `json:"method"` // SDK method or documented operation it stands for
	Note   string `json:"note,omitempty"`
	Fake   string `json:"fake,omitempty"` // a compatFakes step run before the request
	Req    struct {
		Method string          `json:"method"`
		Path   string          `json:"path"`
		Body   json.RawMessage `json:"body,omitempty"`
		Key    string          `json:"key,omitempty"` // "none": no API key; "bad": an unknown one
	} `json:"req"`
	Status      int               `json:"status"`
	Expect      map[string]any    `json:"expect,omitempty"`  // path → exact JSON value
	Present     []string          `json:"present,omitempty"` // paths that must be there and not null
	Absent      []string          `json:"absent,omitempty"`  // paths that must not be there
	Save        map[string]string `json:"save,omitempty"`    // name → path of a string to reuse as ${name}
	RawExcludes []string          `json:"raw_excludes,omitempty"`
}

func loadCompatFiles(t *testing.T) []compatFile {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "compat", "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no compatibility cases: %v", err)
	}
	sort.Strings(names)
	var out []compatFile
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		var f compatFile
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		for i, c := range f.Cases {
			if c.Gen == "" || c.Method == "" || c.Req.Method == "" || c.Req.Path == "" || c.Status == 0 {
				t.Fatalf("%s: case %d lacks gen, method, req or status", n, i)
			}
			if _, ok := compatFakes[c.Fake]; c.Fake != "" && !ok {
				t.Fatalf("%s: case %d: no fake step %q", n, i, c.Fake)
			}
		}
		out = append(out, f)
	}
	return out
}

// compatLookup finds a dotted path ("trunks.0.outbound_address") in v.
func compatLookup(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[part]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func compatExpand(s string, vars map[string]string) string {
	for k, v := range vars {
		s = strings.ReplaceAll(s, "${"+k+"}", v)
	}
	return s
}

func TestCompat(t *testing.T) {
	files := loadCompatFiles(t)
	for engine, open := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			for _, f := range files {
				t.Run(f.Resource, func(t *testing.T) {
					// A voice engine that records dials, so outbound bodies are
					// accepted as they would be on a server with telephony.
					e := newEnv(t, engine, open, httpapi.Config{}).with(func(d *httpapi.Deps) { d.Calls = &fakeCalls{} })
					vars := map[string]string{"org_id": e.orgA}
					if f.Setup != "" {
						setup, ok := compatSetups[f.Setup]
						if !ok {
							t.Fatalf("no setup %q", f.Setup)
						}
						setup(t, e, vars)
					}
					for i, c := range f.Cases {
						runCompatCase(t, e, i, c, vars)
					}
				})
			}
		})
	}
}

func runCompatCase(t *testing.T, e *env, i int, c compatCase, vars map[string]string) {
	t.Helper()
	name := fmt.Sprintf("case %d (%s %s: %s %s)", i, c.Gen, c.Method, c.Req.Method, c.Req.Path)
	if c.Fake != "" {
		compatFakes[c.Fake](t, e, vars)
	}
	var body any
	if len(c.Req.Body) > 0 {
		body = compatExpand(string(c.Req.Body), vars)
	}
	key := e.keyA
	switch c.Req.Key {
	case "none":
		key = ""
	case "bad":
		key = "fl_live_0000000000000000000000000000000000"
	}
	r := e.do(c.Req.Method, compatExpand(c.Req.Path, vars), key, body)
	if r.Status != c.Status {
		t.Errorf("%s: status %d, want %d\n%s", name, r.Status, c.Status, r.Raw)
		return
	}
	var doc any
	if len(bytes.TrimSpace(r.Raw)) > 0 {
		if err := json.Unmarshal(r.Raw, &doc); err != nil {
			t.Errorf("%s: answer is not JSON: %v", name, err)
			return
		}
	}
	for _, p := range slices.Sorted(maps.Keys(c.Expect)) {
		want := c.Expect[p]
		if s, ok := want.(string); ok {
			want = compatExpand(s, vars)
		}
		got, ok := compatLookup(doc, p)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s = %s, want %s\n%s", name, p, compatJSON(got, ok), compatJSON(want, true), r.Raw)
		}
	}
	for _, p := range c.Present {
		if got, ok := compatLookup(doc, p); !ok || got == nil {
			t.Errorf("%s: %s missing or null\n%s", name, p, r.Raw)
		}
	}
	for _, p := range c.Absent {
		if _, ok := compatLookup(doc, p); ok {
			t.Errorf("%s: %s is there, want it absent\n%s", name, p, r.Raw)
		}
	}
	for _, s := range c.RawExcludes {
		if bytes.Contains(r.Raw, []byte(s)) {
			t.Errorf("%s: answer contains %q\n%s", name, s, r.Raw)
		}
	}
	for v, p := range c.Save {
		got, ok := compatLookup(doc, p)
		s, isStr := got.(string)
		if !ok || !isStr {
			t.Fatalf("%s: cannot save %s from %s\n%s", name, v, p, r.Raw)
		}
		vars[v] = s
	}
}

func compatJSON(v any, ok bool) string {
	if !ok {
		return "(absent)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// compatGenerations orders the generations as spec §0 ranks them, newest
// first ("SEED" stands for SEED-0…3).
var compatGenerations = []string{"SDK-NEW", "API-REF", "DOCS-NEW", "API-DOC", "REF-FLIREO", "SEED", "SDK-OLD"}

// compatGroup is the resource a case's method belongs to: the SDK
// resource of "toolTemplates.create", the first path segment of a
// documented operation such as "POST /tool-templates (flat)", camelCased.
func compatGroup(method string) string {
	if verb, rest, ok := strings.Cut(method, " /"); ok && verb != "" {
		seg, _, _ := strings.Cut(rest, "/")
		seg, _, _ = strings.Cut(seg, " ")
		if seg == "account" { // the deprecated view of the organization
			return "organizations"
		}
		words := strings.Split(seg, "-") // tool-templates → toolTemplates
		for i := 1; i < len(words); i++ {
			words[i] = strings.ToUpper(words[i][:1]) + words[i][1:]
		}
		return strings.Join(words, "")
	}
	group, _, _ := strings.Cut(method, ".")
	return group
}

// compatCountTable is the Markdown table of distinct SDK methods (or, for
// the documentation generations, documented operations) that the cases
// exercise, per generation and resource; the total counts each method once.
func compatCountTable(t *testing.T, files []compatFile) string {
	t.Helper()
	methods := map[string]map[string]bool{} // gen → methods
	groups := map[string]bool{}
	for _, f := range files {
		for _, c := range f.Cases {
			if !slices.Contains(compatGenerations, c.Gen) {
				t.Fatalf("%s: unknown generation %q (known: %v)", f.Resource, c.Gen, compatGenerations)
			}
			if methods[c.Gen] == nil {
				methods[c.Gen] = map[string]bool{}
			}
			methods[c.Gen][c.Method] = true
			groups[compatGroup(c.Method)] = true
		}
	}
	var b strings.Builder
	b.WriteString("| Resource |")
	for _, g := range compatGenerations {
		b.WriteString(" " + g + " |")
	}
	b.WriteString("\n|---|")
	for range compatGenerations {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, group := range slices.Sorted(maps.Keys(groups)) {
		b.WriteString("| " + group + " |")
		for _, g := range compatGenerations {
			n := 0
			for m := range methods[g] {
				if compatGroup(m) == group {
					n++
				}
			}
			b.WriteString(" " + strconv.Itoa(n) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("| **total** |")
	for _, g := range compatGenerations {
		b.WriteString(" **" + strconv.Itoa(len(methods[g])) + "** |")
	}
	b.WriteString("\n")
	return b.String()
}

// TestCompatCounts logs how many methods of each generation the suite
// covers and fails when docs/compatibility.md shows other numbers.
func TestCompatCounts(t *testing.T) {
	table := compatCountTable(t, loadCompatFiles(t))
	t.Logf("methods covered per generation:\n%s", table)
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "compatibility.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- compat-counts:begin -->\n", "<!-- compat-counts:end -->"
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("docs/compatibility.md lacks the %q … %q section", begin, end)
	}
	if got := string(doc[i+len(begin) : j]); got != table {
		t.Errorf("docs/compatibility.md's counts are stale; put this between the markers:\n%s", table)
	}
}

// TestOpenAPIRequiredMatchesServer checks each create schema's required
// members against the server: a body of exactly the required members (plus
// one anyOf alternative's) is accepted, and leaving out any one of them is
// a 400 that names it. So the document never requires what the server
// does not (e.g. an analysis template's prompts) nor the reverse.
func TestOpenAPIRequiredMatchesServer(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		var doc map[string]any
		if err := json.Unmarshal(e.must(200, "GET", "/api/openapi.json", nil).Raw, &doc); err != nil {
			t.Fatal(err)
		}
		schemas, _ := compatLookup(doc, "components.schemas")
		asst := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "A"}).obj(t, "assistant")["id"].(string)
		numbers := 0
		sample := func(field string) any {
			switch field {
			case "schema":
				return map[string]any{"type": "object"}
			case "agent_id", "assistant_id":
				return asst
			case "phone_number", "number":
				numbers++
				return fmt.Sprintf("+3120123%04d", numbers)
			case "tool_type", "type":
				return "end_call"
			case "function_definition":
				return map[string]any{"name": "lookup"}
			case "server_url":
				return "https://tools.example.com/lookup"
			case "address", "host", "outbound_address":
				return "sip.example.com"
			case "definition":
				return validWorkflow
			case "provider":
				return "openai"
			case "api_key":
				return "sk-test-0123456789abcdef0123456789"
			}
			return "Sample"
		}
		strs := func(v any) []string {
			var out []string
			l, _ := v.([]any)
			for _, s := range l {
				out = append(out, s.(string))
			}
			return out
		}
		for _, tc := range []struct{ schema, path string }{
			{"AssistantCreate", "/api/v1/assistants"},
			{"ToolTemplateCreate", "/api/v1/tool-templates"},
			{"AnalysisTemplateCreate", "/api/v1/analysis-templates"},
			{"PhoneNumberCreate", "/api/v1/numbers"},
			{"SipTrunkCreate", "/api/v1/sip-trunks"},
			{"CampaignCreate", "/api/v1/campaigns"},
			{"OrganizationCreate", "/api/v1/organizations"},
			{"WorkflowCreate", "/api/v1/workflows"},
			{"BYOKKeyCreate", "/api/v1/byok"},
		} {
			s, ok := compatLookup(schemas, tc.schema)
			if !ok {
				t.Fatalf("no schema %s", tc.schema)
			}
			required := strs(s.(map[string]any)["required"])
			alts := [][]string{nil}
			if anyOf, ok := s.(map[string]any)["anyOf"].([]any); ok {
				alts = nil
				for _, a := range anyOf {
					alts = append(alts, strs(a.(map[string]any)["required"]))
				}
			}
			body := func(members []string, without string) map[string]any {
				b := map[string]any{}
				for _, m := range members {
					if m != without {
						b[m] = sample(m)
					}
				}
				return b
			}
			for _, alt := range alts {
				members := append(slices.Clone(required), alt...)
				if r := e.do("POST", tc.path, e.keyA, body(members, "")); r.Status != 200 && r.Status != 201 {
					t.Errorf("%s: the required members %v are refused: %d %s", tc.schema, members, r.Status, r.Raw)
				}
			}
			members := append(slices.Clone(required), alts[0]...)
			for _, m := range members {
				r := e.do("POST", tc.path, e.keyA, body(members, m))
				if r.Status != 400 || !strings.Contains(string(r.Raw), m) {
					t.Errorf("%s: without required %s: %d %s, want 400 naming it", tc.schema, m, r.Status, r.Raw)
				}
			}
		}
	})
}

// TestOutboundAgentConfig checks SEED-1's agent_config: on its own it is the
// one-off assistant, beside agent_id (or assistant_id) the override.
func TestOutboundAgentConfig(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		eng := &fakeCalls{}
		e.with(func(d *httpapi.Deps) { d.Calls = eng })
		asst, number := outboundSetup(t, e)
		e.must(200, "POST", "/api/v1/calls/outbound", map[string]any{"destination": "+31612345678", "agent_id": asst, "agent_config": map[string]any{"name": "Renamed"}})
		d, _ := eng.lastDial(t)
		if doc := assistantDoc(t, d); d.AssistantID != asst || doc["name"] != "Renamed" || doc["first_message"] != "Hello from Sales" {
			t.Fatalf("agent_config beside agent_id: dial %q with %v", d.AssistantID, doc)
		}
		e.must(200, "POST", "/api/v1/calls/outbound", map[string]any{"destination": "+31612345678", "number_id": number, "agent_config": pipelineAssistant})
		d, _ = eng.lastDial(t)
		if doc := assistantDoc(t, d); d.AssistantID != "" || dig(doc, "llm_config.model") != "gpt-5.4" {
			t.Fatalf("agent_config alone: dial %q with %v", d.AssistantID, doc)
		}
		e.do("POST", "/api/v1/calls/outbound", e.keyA, map[string]any{"destination": "+31612345678", "agent_id": asst, "agent_config": map[string]any{"name": "X"},
			"assistant_override": map[string]any{"name": "Y"}}).wantError(t, 400, "", "assistant")
	})
}
