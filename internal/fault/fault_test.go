package fault

import (
	"errors"
	"fmt"
	"testing"
)

func TestFields(t *testing.T) {
	var f Fields
	if f.Err() != nil {
		t.Fatal("empty Fields is an error")
	}
	f.Missing("name")
	f.Invalidf("llm_config.temperature", "must be from 0 to 2 (got %v)", 3)
	err := f.Err()
	e, ok := As(fmt.Errorf("create assistant: %w", err))
	if !ok || e.Kind != Invalid || e.Code != "missing_field" || e.Field != "name" || len(e.Details) != 2 ||
		e.Details[1] != "llm_config.temperature must be from 0 to 2 (got 3)" {
		t.Fatalf("%+v", e)
	}
	if !errors.Is(err, &Error{Kind: Invalid}) || errors.Is(err, &Error{Kind: NotFound}) {
		t.Fatal("errors.Is by kind")
	}
	var g Fields
	g.Merge(err)
	g.Merge(errors.New("plain"))
	if g.Len() != 3 {
		t.Fatalf("Merge: %d", g.Len())
	}
	if KindOf(errors.New("x")) != Internal || KindOf(NotFoundf("x")) != NotFound {
		t.Fatal("KindOf")
	}
}

func TestKindTypes(t *testing.T) {
	want := map[Kind]string{Internal: "api_error", Invalid: "invalid_request_error", Unauthorized: "authentication_error",
		PaymentRequired: "insufficient_credits", Forbidden: "permission_error", NotFound: "not_found_error", Conflict: "conflict_error",
		TooLarge: "invalid_request_error", RateLimited: "rate_limit_error", Unavailable: "service_unavailable_error", Kind(99): "api_error"}
	for k, w := range want {
		if got := k.Type(); got != w {
			t.Errorf("%v.Type() = %q, want %q", k, got, w)
		}
	}
	if got := Types(); len(got) != 9 || got[0] != "api_error" || got[1] != "invalid_request_error" {
		t.Errorf("Types() = %v", got)
	}
}
