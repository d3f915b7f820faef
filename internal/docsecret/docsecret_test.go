package docsecret_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/docsecret"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/sqlite"
	"github.com/parley-voice/parley/internal/store/storetest"
)

func keyring(t *testing.T) *secret.Keyring {
	t.Helper()
	k, err := secret.NewKeyring(bytes.Repeat([]byte{9}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Rows as Parley wrote them before sealing: secrets in the canonical body.
const (
	clearAssistant = `{"name":"Legacy","webhook_url":"https://hooks.example.com/a","webhook_secret":"legacy-hook-secret-1",` +
		`"llm_config":{"provider":"openai","model":"gpt-5.4","tools":[` +
		`{"type":"function","function":{"name":"book","description":"","parameters":{"type":"object","properties":{}}},"server":{"url":"https://tools.example.com/book","secret":"legacy-tool-secret-2"},"async":false},` +
		`{"type":"function","function":{"name":"plain","description":"","parameters":{"type":"object","properties":{}}},"server":{"url":"https://tools.example.com/plain"},"async":false},` +
		`{"type":"end_call"}]}}`
	noSecretAssistant = `{"name":"Quiet","webhook_url":null,"webhook_secret":null,"llm_config":{"provider":"openai","model":"gpt-5.4","tools":null}}`
	clearTemplate     = `{"name":"lookup","description":null,"tool_type":"function","tool_config":{"name":"lookup","url":"https://tools.example.com/lookup","secret":"legacy-template-secret-3","async":false}}`
	endCallTemplate   = `{"name":"bye","description":null,"tool_type":"end_call","tool_config":{}}`
	clearWorkflow     = `{"name":"flow","is_active":true,"definition":{"version":1,"entry_node":"greet","nodes":[` +
		`{"id":"greet","type":"conversation","instructions":"Hi.","tools":[{"type":"function","function":{"name":"lookup","description":"","parameters":{}},"server":{"url":"https://tools.example.com/wf","secret":"legacy-workflow-secret-4"},"async":false}]},` +
		`{"id":"bye","type":"end"}],"edges":[{"from":"greet","to":"bye","description":"done"}]},"entry_node":"greet","node_count":2,"edge_count":1}`
)

// TestSealStored seeds rows with secrets in clear on each engine, runs the
// startup step and finds them sealed (nowhere in a dump of the database),
// marked in the body, opened again by Reveal; a second run changes nothing.
func TestSealStored(t *testing.T) {
	for name, open := range storetest.Engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := open(t)
			keys := keyring(t)
			org := &store.Org{Name: "Acme"}
			if err := db.CreateOrg(ctx, org, nil); err != nil {
				t.Fatal(err)
			}
			seed := func(k store.Kind, name, body string) *store.Doc {
				d := &store.Doc{Kind: k, OrgID: org.ID, Name: name, Active: true, Body: json.RawMessage(body)}
				if err := db.CreateDoc(ctx, d); err != nil {
					t.Fatal(err)
				}
				return d
			}
			a := seed(store.Assistants, "Legacy", clearAssistant)
			q := seed(store.Assistants, "Quiet", noSecretAssistant)
			tt := seed(store.ToolTemplates, "lookup", clearTemplate)
			bye := seed(store.ToolTemplates, "bye", endCallTemplate)
			wf := seed(store.Workflows, "flow", clearWorkflow)

			n, err := docsecret.SealStored(ctx, db, keys)
			if err != nil {
				t.Fatal(err)
			}
			if n != 4 { // the end_call template has nothing to seal or mark
				t.Fatalf("SealStored rewrote %d rows, want 4", n)
			}
			dump, err := db.Dump(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(dump, "tools.example.com/book") {
				t.Fatal("dump lacks the rows (sanity check)")
			}
			for _, s := range []string{"legacy-hook-secret-1", "legacy-tool-secret-2", "legacy-template-secret-3", "legacy-workflow-secret-4"} {
				if strings.Contains(dump, s) {
					t.Errorf("%q still in clear in the database", s)
				}
			}
			get := func(k store.Kind, id string) *store.Doc {
				d, err := db.GetDoc(ctx, k, org.ID, id)
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			wd := get(store.Workflows, wf.ID)
			if s, err := docsecret.Open(keys, wd); err != nil || s["nodes.greet.tools.lookup"] != "legacy-workflow-secret-4" || !strings.Contains(string(wd.Body), `"secret_set":true`) {
				t.Fatalf("workflow = %s, %v, %v", wd.Body, s, err)
			}
			ad := get(store.Assistants, a.ID)
			for _, want := range []string{`"webhook_secret_set":true`, `"server":{"url":"https://tools.example.com/book","secret_set":true}`, `"server":{"url":"https://tools.example.com/plain","secret_set":false}`} {
				if !strings.Contains(string(ad.Body), want) {
					t.Errorf("sealed assistant body lacks %s: %s", want, ad.Body)
				}
			}
			if s, err := docsecret.Open(keys, ad); err != nil || len(s) != 2 || s["webhook_secret"] != "legacy-hook-secret-1" || s["tools.book"] != "legacy-tool-secret-2" {
				t.Fatalf("Open = %v, %v", s, err)
			}
			body, err := docsecret.Reveal(keys, ad)
			if err != nil {
				t.Fatal(err)
			}
			var revealed struct {
				Secret *string `json:"webhook_secret"`
				Mark   *bool   `json:"webhook_secret_set"`
				LLM    struct {
					Tools []struct {
						Server *map[string]any `json:"server"`
					} `json:"tools"`
				} `json:"llm_config"`
			}
			if err := json.Unmarshal(body, &revealed); err != nil {
				t.Fatal(err)
			}
			if revealed.Secret == nil || *revealed.Secret != "legacy-hook-secret-1" || revealed.Mark != nil || len(revealed.LLM.Tools) != 3 ||
				(*revealed.LLM.Tools[0].Server)["secret"] != "legacy-tool-secret-2" || len(*revealed.LLM.Tools[1].Server) != 1 {
				t.Fatalf("Reveal = %s", body)
			}
			if qd := get(store.Assistants, q.ID); qd.Secret != nil || !strings.Contains(string(qd.Body), `"webhook_secret_set":false`) || strings.Contains(string(qd.Body), `"webhook_secret":`) {
				t.Fatalf("assistant without secrets = %s (secret %v)", qd.Body, qd.Secret)
			}
			td := get(store.ToolTemplates, tt.ID)
			if s, err := docsecret.Open(keys, td); err != nil || s["tool_config"] != "legacy-template-secret-3" || !strings.Contains(string(td.Body), `"secret_set":true`) {
				t.Fatalf("template = %s, %v, %v", td.Body, s, err)
			}
			if bd := get(store.ToolTemplates, bye.ID); string(bd.Body) != endCallTemplate || !bd.UpdatedAt.Equal(bye.UpdatedAt) {
				t.Fatalf("end_call template rewritten: %s", bd.Body)
			}

			// Idempotent: nothing left to do, nothing written.
			if n, err := docsecret.SealStored(ctx, db, keys); err != nil || n != 0 {
				t.Fatalf("second SealStored = %d, %v", n, err)
			}
			if again := get(store.Assistants, a.ID); !again.UpdatedAt.Equal(ad.UpdatedAt) || *again.Secret != *ad.Secret {
				t.Fatal("second SealStored rewrote a sealed row")
			}
			// A wrong key is an error, not a silent pass.
			other, _ := secret.NewKeyring(bytes.Repeat([]byte{1}, secret.KeySize))
			if _, err := docsecret.Reveal(other, ad); err == nil {
				t.Fatal("Reveal with another master key succeeded")
			}
		})
	}
}

// TestSealStoredScrubsSQLiteFiles: the clear values the rows held before
// sealing are gone from the raw database file and its WAL, not only from
// the live rows.
func TestSealStoredScrubsSQLiteFiles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "parley.db")
	db, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	org := &store.Org{Name: "Acme"}
	if err := db.CreateOrg(ctx, org, nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*store.Doc{
		{Kind: store.Assistants, OrgID: org.ID, Name: "Legacy", Active: true, Body: json.RawMessage(clearAssistant)},
		{Kind: store.ToolTemplates, OrgID: org.ID, Name: "lookup", Active: true, Body: json.RawMessage(clearTemplate)},
	} {
		if err := db.CreateDoc(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	raw := func() string {
		var b strings.Builder
		for _, f := range []string{path, path + "-wal"} {
			data, _ := os.ReadFile(f)
			b.Write(data)
		}
		return b.String()
	}
	if !strings.Contains(raw(), "legacy-hook-secret-1") {
		t.Fatal("the seeded secret is not in the files before sealing (sanity check)")
	}
	if n, err := docsecret.SealStored(ctx, db, keyring(t)); err != nil || n != 2 {
		t.Fatalf("SealStored = %d, %v", n, err)
	}
	text := raw()
	if !strings.Contains(text, "tools.example.com/book") {
		t.Fatal("the files lack the rows (sanity check)")
	}
	for _, s := range []string{"legacy-hook-secret-1", "legacy-tool-secret-2", "legacy-template-secret-3"} {
		if strings.Contains(text, s) {
			t.Errorf("%q still in the raw SQLite files after sealing", s)
		}
	}
}
