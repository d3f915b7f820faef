package analysis

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"

	"github.com/parley-voice/parley/internal/provider/openai"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

// testKey is the key the fake demands.
const testKey = "sk-analysis-test"

// fakeModel starts the fake OpenAI server answering with respond and
// returns it with a Model talking to it.
func fakeModel(t *testing.T, respond func(openaifake.Request) openaifake.Reply) (*openaifake.Server, Model) {
	t.Helper()
	fake := openaifake.New(openaifake.Config{APIKey: testKey, Respond: respond})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	chat := openai.NewChat(openai.Config{BaseURL: srv.URL + "/v1", HTTPClient: srv.Client()})
	return fake, Model{Provider: chat, Name: "gpt-5.4-mini", APIKey: testKey}
}

// script answers the requests in order with replies (the last repeats).
func script(replies ...openaifake.Reply) func(openaifake.Request) openaifake.Reply {
	var mu sync.Mutex
	n := 0
	return func(openaifake.Request) openaifake.Reply {
		mu.Lock()
		defer mu.Unlock()
		r := replies[min(n, len(replies)-1)]
		n++
		return r
	}
}

// texts answers with the given texts in order.
func texts(s ...string) func(openaifake.Request) openaifake.Reply {
	replies := make([]openaifake.Reply, len(s))
	for i, x := range s {
		replies[i] = openaifake.Reply{Text: x, ChunkSize: 7}
	}
	return script(replies...)
}

// never fails the test if the model is asked anything.
func never(t *testing.T) func(openaifake.Request) openaifake.Reply {
	return func(openaifake.Request) openaifake.Reply {
		t.Error("the model was asked")
		return openaifake.Reply{Text: "unexpected"}
	}
}

// sameJSON reports whether a and b hold equal JSON values.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("not JSON: %v: %s", err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return reflect.DeepEqual(va, vb)
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
