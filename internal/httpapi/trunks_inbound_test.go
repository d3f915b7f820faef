package httpapi_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// Inbound addresses take IPs, CIDRs and host names, stored normalised;
// inbound_auth is addresses or digest, and digest needs credentials.
func TestTrunkInboundAdmissionFields(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		tr := e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "PBX", "address": "pbx.example.com",
			"inbound_addresses": []string{"203.0.113.5", "sip:198.51.100.0/24", "PBX.Example.com:5060", "[2001:db8::1]:5061"}}).obj(t, "trunk")
		want := []any{"203.0.113.5", "198.51.100.0/24", "pbx.example.com", "2001:db8::1"}
		if !reflect.DeepEqual(tr["inbound_addresses"], want) || tr["inbound_auth"] != "addresses" {
			t.Fatalf("trunk = %v; want inbound_addresses %v and inbound_auth addresses", tr, want)
		}
		for _, bad := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"inbound_addresses": []string{"10.0.0.1", "10.0.0.1/33"}}, "inbound_addresses[1]"},
			{map[string]any{"inbound_addresses": []string{"10.0.0.7/24"}}, "inbound_addresses[0]"},
			{map[string]any{"inbound_addresses": []string{"user@host"}}, "inbound_addresses[0]"},
			{map[string]any{"inbound_auth": "ip"}, "inbound_auth"},
			{map[string]any{"inbound_auth": "digest", "auth_password": "pw-123456"}, "auth_username"},
			{map[string]any{"inbound_auth": "digest", "auth_username": "pbx"}, "auth_password"},
		} {
			body := map[string]any{"name": "x", "address": "sip.example.com"}
			for k, v := range bad.body {
				body[k] = v
			}
			e.do("POST", "/api/v1/sip-trunks", e.keyA, body).wantError(t, 400, "", bad.field)
		}
		dg := e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "Registering PBX", "address": "pbx.example.com",
			"inbound_auth": "digest", "auth_username": "pbx", "auth_password": "pw-123456"}).obj(t, "trunk")
		if dg["inbound_auth"] != "digest" {
			t.Fatalf("digest trunk = %v", dg)
		}
		// The password is sealed to the row, for the gate to open.
		d, err := e.db.GetDoc(context.Background(), store.SIPTrunks, e.orgA, dg["id"].(string))
		if err != nil || d.Secret == nil {
			t.Fatalf("digest trunk row: %v, %v", d, err)
		}
		if pw, err := e.keys.Open(*d.Secret, secret.Binding{OrgID: e.orgA, Table: "sip_trunks", Field: "auth_password", RowID: d.ID}); err != nil || string(pw) != "pw-123456" {
			t.Fatalf("sealed password: %q, %v", pw, err)
		}
	})
}

// max_concurrent_calls (Parley extension) is a trunk's channel limit: 1 to
// 10000 or null for none, answered as stored.
func TestTrunkChannelLimitField(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		tr := e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "PBX", "address": "pbx.example.com", "max_concurrent_calls": 30}).obj(t, "trunk")
		if tr["max_concurrent_calls"] != float64(30) {
			t.Fatalf("trunk = %v, want max_concurrent_calls 30", tr)
		}
		if got := e.must(200, "GET", "/api/v1/sip-trunks/"+tr["id"].(string), nil).obj(t, "trunk"); got["max_concurrent_calls"] != float64(30) {
			t.Fatalf("read back: %v", got["max_concurrent_calls"])
		}
		if got := e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "Other", "address": "pbx.example.com", "max_concurrent_calls": nil}).obj(t, "trunk"); got["max_concurrent_calls"] != nil {
			t.Fatalf("default: %v, want null (no limit)", got["max_concurrent_calls"])
		}
		for _, bad := range []any{0, 10001, 2.5, true} {
			e.do("POST", "/api/v1/sip-trunks", e.keyA, map[string]any{"name": "x", "address": "sip.example.com", "max_concurrent_calls": bad}).wantError(t, 400, "", "max_concurrent_calls")
		}
	})
}
