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
