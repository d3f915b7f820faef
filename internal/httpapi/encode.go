package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

// timeFormat is RFC 3339 in UTC with milliseconds, as the API's examples show.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// writeJSON writes v as the response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// reply writes v and returns nil, so a handler can end with `return reply(…)`.
func reply(w http.ResponseWriter, status int, v any) error {
	writeJSON(w, status, v)
	return nil
}

// handler is an API handler: it returns an error instead of writing one, and
// its ServeHTTP sends that error through writeError.
type handler func(w http.ResponseWriter, r *http.Request) error

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h(w, r); err != nil {
		writeError(w, r, err)
	}
}

var success = map[string]bool{"success": true}

// errorBody is the flat error body of spec §4.1 plus the machine code and,
// for SDK-OLD (whose ApiError reads type, not code), the error's class
// (fault.Kind.Type; docs/compatibility.md lists them).
type errorBody struct {
	Error   string   `json:"error"`
	Message string   `json:"message"`
	Code    string   `json:"code"`
	Type    string   `json:"type"`
	Param   string   `json:"param,omitempty"`
	Details []string `json:"details,omitempty"`
}

var kindStatus = map[fault.Kind]int{
	fault.Internal:        http.StatusInternalServerError,
	fault.Invalid:         http.StatusBadRequest,
	fault.Unauthorized:    http.StatusUnauthorized,
	fault.PaymentRequired: http.StatusPaymentRequired,
	fault.Forbidden:       http.StatusForbidden,
	fault.NotFound:        http.StatusNotFound,
	fault.Conflict:        http.StatusConflict,
	fault.TooLarge:        http.StatusRequestEntityTooLarge,
	fault.RateLimited:     http.StatusTooManyRequests,
	fault.Unavailable:     http.StatusServiceUnavailable,
}

var kindTitle = map[fault.Kind]string{
	fault.Internal:        "Internal error",
	fault.Invalid:         "Invalid request",
	fault.Unauthorized:    "Unauthorized",
	fault.PaymentRequired: "Insufficient credits",
	fault.Forbidden:       "Forbidden",
	fault.NotFound:        "Not found",
	fault.Conflict:        "Conflict",
	fault.TooLarge:        "Request body too large",
	fault.RateLimited:     "Rate limit exceeded",
	fault.Unavailable:     "Service unavailable",
}

var errInternal = &fault.Error{Kind: fault.Internal, Code: "internal_error", Message: "Internal error"}

func errNoRoute(path string) error {
	return &fault.Error{Kind: fault.NotFound, Code: "route_not_found", Message: "no such endpoint: " + path}
}

func errMethodNotAllowed(method, path string) error {
	return &fault.Error{Kind: fault.Invalid, Code: "method_not_allowed", Message: method + " is not supported on " + path}
}

// writeError is the one place where errors become HTTP responses. Errors that
// are not *fault.Error are internal: they are logged by the caller's logger
// through errorLogger and shown to the client only as "Internal error".
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := fault.As(err)
	if !ok || e.Kind == fault.Internal {
		if l := loggerFrom(r); l != nil {
			l.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		e = errInternal
	}
	status := kindStatus[e.Kind]
	if e.Code == "method_not_allowed" {
		status = http.StatusMethodNotAllowed
	}
	code := e.Code
	if code == "" {
		code = strings.ReplaceAll(e.Kind.String(), " ", "_")
	}
	body := errorBody{Error: e.Message, Message: kindTitle[e.Kind], Code: code, Type: e.Kind.Type(), Param: e.Field}
	// details is there whenever the error lists problems, even one, so a
	// client reads validation failures the same way however many there are.
	if len(e.Details) > 0 {
		body.Details = e.Details
	}
	if len(e.Details) > 1 || (len(e.Details) == 1 && e.Details[0] != e.Message) {
		body.Message = strings.Join(e.Details, "; ")
	}
	writeJSON(w, status, body)
}
