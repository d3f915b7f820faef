package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// BYOK provider keys (spec §7.11) are sealed with AES-256-GCM bound to the
// organization and provider, and never returned: clients see only whether a
// key is configured, as an opaque <provider>_secret_id.

func (s *Server) byokKeys(r *http.Request) (map[string]any, error) {
	keys, err := s.db.BYOKKeys(r.Context(), orgID(r))
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, p := range s.cat.BYOKProviders() {
		out[p+"_secret_id"] = nil
	}
	for _, k := range keys {
		out[k.Provider+"_secret_id"] = k.SecretID
	}
	return out, nil
}

func (s *Server) readProvider(fs *fields) string {
	p, ok := fs.str("provider", true)
	if !ok {
		return ""
	}
	if !slices.Contains(s.cat.BYOKProviders(), p) {
		fs.f.Invalidf("provider", "must be one of %s (got %q)", strings.Join(s.cat.BYOKProviders(), ", "), p)
		return ""
	}
	return p
}

// maxProviderKey is the longest provider key accepted, in bytes.
const maxProviderKey = 4096

// providerKeyProblem says why key (already trimmed) cannot be a provider
// key, or "". Keys travel in HTTP headers (Authorization, x-api-key) and
// WebSocket URLs on every call of the organization, so they must be visible
// ASCII: no spaces, control characters or non-ASCII letters, which would make
// each of those requests fail long after the key was stored.
func providerKeyProblem(key string) string {
	if len(key) > maxProviderKey {
		return fmt.Sprintf("must be at most %d characters (got %d)", maxProviderKey, len(key))
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < '!' || c > '~' {
			return fmt.Sprintf("must consist of visible ASCII characters only (no spaces, control characters or non-ASCII); byte %d is 0x%02x", i, c)
		}
	}
	return ""
}

// maxDocumentKey is the longest document key (a service-account JSON key)
// accepted, in bytes.
const maxDocumentKey = 16 << 10

// keyProblem says why key cannot be provider's key, or "".
func (s *Server) keyProblem(provider, key string) string {
	check, ok := s.keyChk[provider]
	if !ok {
		return providerKeyProblem(key)
	}
	if len(key) > maxDocumentKey {
		return fmt.Sprintf("must be at most %d characters (got %d)", maxDocumentKey, len(key))
	}
	if err := check(key); err != nil {
		return err.Error()
	}
	return ""
}

func (s *Server) getBYOK(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.byokKeys(r)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"byok_keys": keys})
}

func (s *Server) putBYOK(w http.ResponseWriter, r *http.Request) error {
	obj, err := s.readObject(w, r, false)
	if err != nil {
		return err
	}
	fs := newFields(obj)
	provider := s.readProvider(fs)
	key, ok := fs.str("api_key", true)
	key = strings.TrimSpace(key)
	if ok {
		if msg := s.keyProblem(provider, key); msg != "" {
			fs.f.Invalidf("api_key", "%s", msg)
		}
	}
	fs.unknown()
	if err := fs.err(); err != nil {
		return err
	}
	org := orgID(r)
	k := &store.BYOKKey{OrgID: org, Provider: provider, SecretID: store.NewID(),
		Sealed: s.keys.Seal([]byte(key), secret.Binding{OrgID: org, Table: "byok_keys", Field: provider})}
	if err := s.db.PutBYOKKey(r.Context(), k); err != nil {
		return err
	}
	keys, err := s.byokKeys(r)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"success": true, "byok_keys": keys})
}

// deleteBYOK takes the provider from the JSON body (as the SDK sends it) or,
// for clients that cannot send a body with DELETE, from ?provider=.
func (s *Server) deleteBYOK(w http.ResponseWriter, r *http.Request) error {
	obj, err := s.readObject(w, r, true)
	if err != nil {
		return err
	}
	if q := r.URL.Query().Get("provider"); q != "" {
		if _, ok := obj["provider"]; !ok {
			obj["provider"], _ = json.Marshal(q)
		}
	}
	fs := newFields(obj)
	provider := s.readProvider(fs)
	fs.unknown()
	if err := fs.err(); err != nil {
		return err
	}
	if err := s.db.DeleteBYOKKey(r.Context(), orgID(r), provider); err != nil {
		return err
	}
	keys, err := s.byokKeys(r)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"success": true, "byok_keys": keys})
}

func (s *Server) getBYOKConfig(w http.ResponseWriter, r *http.Request) error {
	cfgs, err := s.db.BYOKConfigs(r.Context(), orgID(r))
	if err != nil {
		return err
	}
	out := map[string]json.RawMessage{}
	for p, c := range cfgs {
		out[p] = c
	}
	return reply(w, http.StatusOK, out)
}

// updateBYOKConfig merges the sent settings into the provider's stored ones
// (top-level keys; null removes a key). A key for the provider must exist.
func (s *Server) updateBYOKConfig(w http.ResponseWriter, r *http.Request) error {
	obj, err := s.readObject(w, r, false)
	if err != nil {
		return err
	}
	fs := newFields(obj)
	provider := s.readProvider(fs)
	var patch map[string]json.RawMessage
	if raw, ok := fs.raw("config"); !ok {
		fs.f.Missing("config")
	} else if err := json.Unmarshal(raw, &patch); err != nil || patch == nil {
		fs.f.Invalidf("config", "must be a JSON object")
	}
	for k, v := range patch {
		if looksSecret(k) && !isNull(v) {
			fs.f.Invalidf("config."+k, "looks like a credential; send keys with POST /byok, settings here are returned in clear")
		}
	}
	fs.unknown()
	if err := fs.err(); err != nil {
		return err
	}
	merged, err := s.db.UpdateBYOKConfig(r.Context(), orgID(r), provider, func(old []byte) ([]byte, error) {
		cur := map[string]json.RawMessage{}
		if old != nil {
			if err := json.Unmarshal(old, &cur); err != nil {
				return nil, err
			}
		}
		for k, v := range patch {
			if isNull(v) {
				delete(cur, k)
			} else {
				cur[k] = v
			}
		}
		if len(cur) > 50 {
			return nil, fault.Invalidf("config", "may hold at most 50 settings")
		}
		return json.Marshal(cur)
	})
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"success": true, "provider": provider, "config": json.RawMessage(merged)})
}

func looksSecret(key string) bool {
	k := strings.ToLower(key)
	return k == "api_key" || k == "apikey" || strings.Contains(k, "secret") || strings.Contains(k, "password") || strings.Contains(k, "token")
}
