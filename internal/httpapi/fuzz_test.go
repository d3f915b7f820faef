package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/parley-voice/parley/internal/assistant"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/sqlite"
)

// FuzzDecode sends an arbitrary request body through the JSON decoding every
// create takes: readObject, then each configuration resource's validator
// (assistants, tool and analysis templates, MCP servers, SIP trunks,
// workflows through internal/assistant and internal/workflow) and the number
// reader. Each must give a value or a 400-class fault naming what is wrong,
// never a panic or an internal error. What a validator accepts must come out
// as a JSON object that re-validates unchanged, as a PATCH that sends nothing
// new does with the stored document. Seeds are in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	s := fuzzServer(f)
	ctx := context.Background()
	const org = "0d0a16ab-0000-4000-8000-000000000001"
	resources := []docResource{s.assistants(), s.toolTemplates(), s.analysisTemplates(), s.mcpServers(), s.trunks(), s.workflows()}

	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		obj, err := s.readObject(w, httptest.NewRequest("POST", "/api/v1/assistants", bytes.NewReader(body)), false)
		if err != nil {
			wantClientFault(t, "readObject", err)
			return
		}
		if obj == nil {
			t.Fatal("readObject returned neither an object nor an error")
		}
		for _, res := range resources {
			d, err := res.build(ctx, org, cloneObject(obj), obj, nil)
			if err != nil {
				wantClientFault(t, res.many, err)
				continue
			}
			checkDoc(t, s, res, d)
			// A PATCH that sends nothing re-validates the stored document.
			var merged object
			if err := json.Unmarshal(d.Body, &merged); err != nil {
				t.Fatalf("%s: stored body is not a JSON object: %v\n%s", res.many, err, d.Body)
			}
			again, err := res.build(ctx, org, merged, object{}, d)
			if err != nil {
				t.Fatalf("%s: stored document fails validation: %v\nstored: %s\nsent: %s", res.many, err, d.Body, body)
			}
			if !bytes.Equal(again.Body, d.Body) || again.Name != d.Name || again.Active != d.Active {
				t.Fatalf("%s: not stable under re-validation:\n%s\n%s", res.many, d.Body, again.Body)
			}
		}
		if err := readNumber(cloneObject(obj), &store.Number{}, true); err != nil {
			wantClientFault(t, "numbers", err)
		}
	})
}

// wantClientFault fails unless err is a fault the API answers with 400 (or
// 413 for a body over the limit) and a message.
func wantClientFault(t *testing.T, what string, err error) {
	t.Helper()
	fe, ok := fault.As(err)
	if !ok {
		t.Fatalf("%s: %v is not a fault (the API would answer 500)", what, err)
	}
	if (fe.Kind != fault.Invalid && fe.Kind != fault.TooLarge) || fe.Message == "" {
		t.Fatalf("%s: fault %v (%s), want an invalid-request fault with a message", what, fe.Kind, fe.Message)
	}
}

func checkDoc(t *testing.T, s *Server, res docResource, d *store.Doc) {
	t.Helper()
	var body map[string]json.RawMessage
	if err := json.Unmarshal(d.Body, &body); err != nil || body == nil {
		t.Fatalf("%s: body is not a JSON object: %v\n%s", res.many, err, d.Body)
	}
	if d.Name == "" {
		t.Fatalf("%s: accepted without a name: %s", res.many, d.Body)
	}
	out, err := json.Marshal(map[string]any{res.one: s.renderDoc(res, d)})
	if err != nil || !json.Valid(out) {
		t.Fatalf("%s: response does not encode: %v", res.many, err)
	}
}

// fuzzServer is a Server with what the validators use: a real SQLite store
// (MCP references are looked up), a keyring (secrets are sealed) and the
// catalog.
func fuzzServer(f *testing.F) *Server {
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(f.TempDir(), "fuzz.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		f.Fatal(err)
	}
	keys, err := secret.NewKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	cat, err := catalog.Load()
	if err != nil {
		f.Fatal(err)
	}
	return NewServer(Config{}, Deps{Store: db, Keyring: keys, Catalog: cat, Validator: assistant.NewValidator(cat)})
}

// decodeSeeds are bodies of each resource in the shapes the API accepts;
// the assistant and workflow examples from testdata are in
// testdata/fuzz/FuzzDecode.
var decodeSeeds = []string{
	`{"name":"check_availability","description":"Checks","type":"function","url":"https://crm.example.com/tools","async":false,"parameters":{"type":"object"}}`,
	`{"name":"Hang up","tool_type":"endCall","tool_config":{}}`,
	`{"name":"Sentiment","system_prompt":"Analyse.","user_prompt":"{transcript}","schema":{"type":"object"}}`,
	`{"name":"T1","schema":{"type":"object"},"messages":[{"role":"system","content":"x"}],"min_messages_threshold":3}`,
	`{"name":"CRM","url":"https://mcp.example.com/mcp","transport":"sse","timeout_seconds":30,"headers":{"Authorization":"Bearer x"}}`,
	`{"name":"PBX","host":"pbx.example.com","port":5080,"username":"u","password":"trunk-pass-123"}`,
	`{"name":"Carrier","provider":"telnyx","address":"[2001:db8::1]:5061","transport":"tls","auth_username":"a","auth_password":"b","inbound_addresses":["192.0.2.0/24","sip.telnyx.com"],"outbound_number":"+31201234567","is_active":false}`,
	`{"number":"+31 20 123 4567","name":"Main","agent_id":"5c4d030f-43e3-4e65-899e-8148521e660f","transfer_trunk_id":null,"source":"byo"}`,
	`{"name":"Dental","llm_config":{"provider":"openai","model":"gpt-4o-mini","tools":[{"type":"mcp","mcp_server_id":"4f4c3c57-7a0e-4d3c-9d3c-6f0d5f1c2b3a"}]}}`,
	`{"name":"a\u0000b","definition":null}`,
	`[1,2]`,
	`null`,
	` `,
	`{"name":1e999}`,
}
