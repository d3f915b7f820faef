// Package fault is the error vocabulary shared by every Parley package.
//
// A *Error carries a Kind (what went wrong, in terms a client can act on), a
// machine-readable Code, a human Message and, for validation failures, the
// offending Field and the full list of Details. Packages return *Error values
// (or wrap them with fmt.Errorf and %w); exactly one place, the HTTP layer,
// maps kinds to status codes. Anything that is not a *Error is an internal
// error and is never shown to clients.
package fault

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Kind classifies an error by what the client can do about it.
type Kind uint8

// The kinds, each with the HTTP status the API layer gives it.
const (
	Internal        Kind = iota // 500: a bug or an unavailable dependency
	Invalid                     // 400: the request is malformed or fails validation
	Unauthorized                // 401: missing, unknown or revoked credentials
	PaymentRequired             // 402: not enough credit for the operation
	Forbidden                   // 403: authenticated but not allowed
	NotFound                    // 404: no such resource in the caller's organization
	Conflict                    // 409: the resource's state forbids the operation
	TooLarge                    // 413: the request body is over the limit
	RateLimited                 // 429: too many requests
	Unavailable                 // 503: try again later
)

var kindNames = [...]string{"internal", "invalid", "unauthorized", "payment_required", "forbidden", "not_found", "conflict", "too_large", "rate_limited", "unavailable"}

// kindTypes are the error classes of the kinds (see Type).
var kindTypes = [...]string{"api_error", "invalid_request_error", "authentication_error", "insufficient_credits", "permission_error",
	"not_found_error", "conflict_error", "invalid_request_error", "rate_limit_error", "service_unavailable_error"}

// Type is the class of the kind's errors as clients read it in an error
// body's "type" (spec §4.1; SDK-OLD's ApiError.type): Stripe-style like the
// spec's codes, except PaymentRequired, whose class is the code the docs
// give it, insufficient_credits. TooLarge is an invalid request.
func (k Kind) Type() string {
	if int(k) < len(kindTypes) {
		return kindTypes[k]
	}
	return kindTypes[Internal]
}

// Types lists the distinct error classes, in kind order.
func Types() []string {
	var out []string
	for _, t := range kindTypes {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Error is a classified error. The zero Code is filled in from the Kind when rendered.
type Error struct {
	Kind    Kind
	Code    string   // machine-readable, e.g. "missing_field", "not_found"
	Message string   // one line a person can act on; names the field where there is one
	Field   string   // dotted path of the offending field, e.g. "llm_config.model"
	Details []string // every problem, when several fields fail
	Err     error    // underlying cause, never shown to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is a *Error of the same Kind (and Code, when target sets one),
// so errors.Is(err, &fault.Error{Kind: fault.NotFound}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Kind == e.Kind && (t.Code == "" || t.Code == e.Code)
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// KindOf returns the Kind of err's *Error, or Internal.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Internal
}

// New returns an error of the given kind and code with a formatted message.
func New(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalidf reports one invalid field.
func Invalidf(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Kind: Invalid, Code: "invalid_field", Field: field, Message: prefix(field, msg), Details: []string{prefix(field, msg)}}
}

// Missing reports a required field that was not sent.
func Missing(field string) *Error {
	msg := prefix(field, "is required")
	return &Error{Kind: Invalid, Code: "missing_field", Field: field, Message: msg, Details: []string{msg}}
}

// NotFoundf reports an unknown resource. It is also the answer for another
// organization's resources, so the message never confirms that an id exists.
func NotFoundf(format string, args ...any) *Error {
	return &Error{Kind: NotFound, Code: "not_found", Message: fmt.Sprintf(format, args...)}
}

// Conflictf reports a state conflict.
func Conflictf(code, format string, args ...any) *Error {
	return &Error{Kind: Conflict, Code: code, Message: fmt.Sprintf(format, args...)}
}

func prefix(field, msg string) string {
	if field == "" {
		return msg
	}
	return field + " " + msg
}

// FieldError is one validation problem.
type FieldError struct {
	Field   string // dotted path, e.g. "stt_config.language" or "nodes[2].id"
	Code    string // "missing_field", "invalid_field", or a specific code
	Message string // full sentence including the field, e.g. "stt_config.language is required"
}

// Fields collects validation problems so one response can name them all.
// The zero value is ready to use.
type Fields struct {
	list []FieldError
}

// Add records a problem with an explicit code. msg should not repeat the field name.
func (f *Fields) Add(field, code, msg string) {
	f.list = append(f.list, FieldError{Field: field, Code: code, Message: prefix(field, msg)})
}

// Invalidf records an invalid value.
func (f *Fields) Invalidf(field, format string, args ...any) {
	f.Add(field, "invalid_field", fmt.Sprintf(format, args...))
}

// Missing records a required field that is absent.
func (f *Fields) Missing(field string) { f.Add(field, "missing_field", "is required") }

// Merge appends the problems of err (a *Error from another validator) under the given
// field prefix. A non-fault error is recorded as invalid at that prefix.
func (f *Fields) Merge(err error) {
	if err == nil {
		return
	}
	e, ok := As(err)
	if !ok {
		f.Invalidf("", "%v", err)
		return
	}
	if len(e.Details) == 0 {
		f.list = append(f.list, FieldError{Field: e.Field, Code: e.Code, Message: e.Message})
		return
	}
	for _, d := range e.Details {
		f.list = append(f.list, FieldError{Field: e.Field, Code: e.Code, Message: d})
	}
}

// Len reports how many problems were recorded.
func (f *Fields) Len() int { return len(f.list) }

// List returns the recorded problems.
func (f *Fields) List() []FieldError { return f.list }

// Err returns nil when nothing was recorded, otherwise an Invalid *Error whose
// Message/Field/Code describe the first problem and whose Details list all of them.
func (f *Fields) Err() error {
	if len(f.list) == 0 {
		return nil
	}
	first := f.list[0]
	details := make([]string, len(f.list))
	for i, fe := range f.list {
		details[i] = fe.Message
	}
	msg := first.Message
	if len(f.list) > 1 {
		msg = fmt.Sprintf("%s (and %d more: %s)", first.Message, len(f.list)-1, strings.Join(details[1:], "; "))
	}
	return &Error{Kind: Invalid, Code: first.Code, Field: first.Field, Message: msg, Details: details}
}
