package workflow

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/parley-voice/parley/internal/fault"
)

// errCatalog is what fakeConfigs returns for provider "boom": a failure that
// is not the client's fault.
var errCatalog = errors.New("catalog unavailable")

// fakeConfigs stands in for *assistant.Validator. It accepts any object or
// array, requires "provider" on STT and TTS configs, rejects realtime LLM
// providers, and marks what it returns with "checked": field so tests can see
// that the canonical definition holds its answer rather than the input.
type fakeConfigs struct {
	calls []string // fields it was asked about, in order
}

var realtimeProviders = map[string]bool{"xai_realtime": true, "openai_live": true, "google_live": true}

func (f *fakeConfigs) NodeLLM(raw json.RawMessage, field string) (json.RawMessage, error) {
	f.calls = append(f.calls, field)
	m, err := decodeMap(raw, field)
	if err != nil {
		return nil, err
	}
	switch p, _ := m["provider"].(string); {
	case p == "boom":
		return nil, errCatalog
	case realtimeProviders[p]:
		msg := fmt.Sprintf("%s.provider %q is a realtime provider, which a workflow node cannot switch to", field, p)
		return nil, &fault.Error{Kind: fault.Invalid, Code: CodeRealtimeNotAllowed, Field: field + ".provider", Message: msg, Details: []string{msg}}
	}
	return mark(m, field)
}

func (f *fakeConfigs) STT(raw json.RawMessage, field string) (json.RawMessage, error) {
	f.calls = append(f.calls, field)
	return requireProvider(raw, field)
}

func (f *fakeConfigs) TTS(raw json.RawMessage, field string) (json.RawMessage, error) {
	f.calls = append(f.calls, field)
	return requireProvider(raw, field)
}

func (f *fakeConfigs) Tools(raw json.RawMessage, field string) (json.RawMessage, error) {
	f.calls = append(f.calls, field)
	var tools []map[string]any
	if err := json.Unmarshal(raw, &tools); err != nil {
		return nil, fault.Invalidf(field, "must be an array of tool objects")
	}
	for i, t := range tools {
		if t["type"] == nil && t["name"] == nil {
			var fs fault.Fields
			fs.Missing(fmt.Sprintf("%s[%d].name", field, i))
			return nil, fs.Err()
		}
		t["checked"] = fmt.Sprintf("%s[%d]", field, i)
	}
	return json.Marshal(tools)
}

func requireProvider(raw json.RawMessage, field string) (json.RawMessage, error) {
	m, err := decodeMap(raw, field)
	if err != nil {
		return nil, err
	}
	if _, ok := m["provider"]; !ok {
		return nil, fault.Missing(field + ".provider")
	}
	return mark(m, field)
}

func decodeMap(raw json.RawMessage, field string) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fault.Invalidf(field, "must be an object")
	}
	return m, nil
}

func mark(m map[string]any, field string) (json.RawMessage, error) {
	m["checked"] = field
	return json.Marshal(m)
}
