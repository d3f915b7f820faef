package openapi

import "github.com/parley-voice/parley/internal/fault"

// commonSchemas adds the shapes shared by every group: errors, success,
// pagination, ids, timestamps, messages and the health report.
func commonSchemas(c map[string]*schema) {
	c["Error"] = object(props{
		"error":   str().d("What went wrong, naming the field where there is one; clients display this string."),
		"message": str().d("The class of error (e.g. `Invalid request`), or every problem joined when there are several."),
		"code":    str().d("Machine-readable code, e.g. `invalid_request`, `missing_field`, `invalid_field`, `unauthorized`, `not_found`, `rate_limit_exceeded`, `insufficient_credits`."),
		"type": enum(fault.Types()...).
			d("Class of the error, one per HTTP status (the `type` SDK-OLD reads; see docs/compatibility.md): 400/405/413 `invalid_request_error`, 401 `authentication_error`, 402 `insufficient_credits`, 403 `permission_error`, 404 `not_found_error`, 409 `conflict_error`, 429 `rate_limit_error`, 500 `api_error`, 503 `service_unavailable_error`."),
		"param":   str().d("Dotted path of the offending field, e.g. `llm_config.model`."),
		"details": array(str()).d("Every validation problem, also when there is only one (e.g. an invalid workflow definition)."),
	}, "error").d("Error body. Further members (such as `retry_after` on 429) may appear.").
		ex(map[string]any{"error": "stt_config.language is required", "message": "Invalid request", "code": "missing_field", "type": "invalid_request_error", "param": "stt_config.language", "details": []string{"stt_config.language is required"}})

	c["SuccessResponse"] = object(props{
		"success": &schema{Type: "boolean", Const: true},
	}, "success")

	c["Pagination"] = object(props{
		"total":  integer().atLeast(0).d("Number of items matching the query."),
		"limit":  integer().atLeast(1).d("Page size used."),
		"offset": integer().atLeast(0).d("Items skipped."),
	}, "total", "limit", "offset").ex(map[string]any{"total": 150, "limit": 50, "offset": 0})

	c["MessageRole"] = enum("system", "user", "assistant")
	c["Message"] = object(props{
		"role":    ref("MessageRole"),
		"content": str(),
	}, "role", "content").d("One chat message. The system prompt is a `system` message.")

	c["HealthResponse"] = object(props{
		"status":    enum("ok", "degraded").d("`ok` when every check passes (200), `degraded` otherwise (503)."),
		"timestamp": timestamp(),
		"version":   str().d("Server version.").ex("1.0.0"),
		"checks": object(props{
			"database": object(props{
				"status":     enum("ok", "error"),
				"latency_ms": number().atLeast(0).d("Round-trip time of the check query in milliseconds."),
			}, "status", "latency_ms"),
		}, "database"),
	}, "status", "timestamp", "version", "checks")
}

const (
	responseRef  = "#/components/responses/"
	parameterRef = "#/components/parameters/"
	headerRef    = "#/components/headers/"
)

// errorResponses are the reusable error responses.
func errorResponses() map[string]*response {
	e := func(desc string) *response { return jsonResponse(desc, ref("Error")) }
	tooMany := e("Rate limit exceeded: 100 requests per minute per API key by default. Wait `Retry-After` seconds.")
	tooMany.Headers = map[string]*header{}
	for _, name := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"} {
		tooMany.Headers[name] = &header{Ref: headerRef + name}
	}
	return map[string]*response{
		"BadRequest":         e("The request is malformed or fails validation (`details` lists every problem)."),
		"Unauthorized":       e("The API key is missing, unknown, expired or revoked."),
		"NotFound":           e("No such resource in the caller's organization."),
		"Conflict":           e("The resource's state forbids the operation (duplicate, in use or final)."),
		"PayloadTooLarge":    e("The request body is over the server's size limit."),
		"PaymentRequired":    e("Not enough credits for the operation (`insufficient_credits`)."),
		"ServiceUnavailable": e("The service needed is not available on this server; the message says which."),
		"TooManyRequests":    tooMany,
	}
}

// rateLimitHeaders are the rate-limit response headers (spec §5).
func rateLimitHeaders() map[string]*header {
	return map[string]*header{
		"X-RateLimit-Limit":     {Description: "Requests allowed per window for this API key.", Schema: integer().atLeast(0)},
		"X-RateLimit-Remaining": {Description: "Requests left in the current window.", Schema: integer().atLeast(0)},
		"X-RateLimit-Reset":     {Description: "End of the current window, Unix time in seconds.", Schema: integer().atLeast(0)},
		"Retry-After":           {Description: "Seconds to wait before retrying.", Schema: integer().atLeast(0)},
	}
}

// parameters are the reusable path and query parameters.
func parameters() map[string]*parameter {
	q := func(name, desc string, s *schema) *parameter {
		return &parameter{Name: name, In: "query", Description: desc, Schema: s}
	}
	return map[string]*parameter{
		"ID": {Name: "id", In: "path", Required: true, Description: "Resource id (UUID).", Schema: uuid()},
		"CallID": {Name: "id", In: "path", Required: true, Schema: str().length(1, -1),
			Description: "Call id, an opaque string that may contain `+` (e.g. `call-_+31623731537_XqaQxRRgAzYc`); percent-encode it (`+` as `%2B`).",
			Example:     "call-_+31623731537_XqaQxRRgAzYc"},
		"LeadID":    {Name: "leadId", In: "path", Required: true, Description: "Lead id (UUID).", Schema: uuid()},
		"Limit":     q("limit", "Page size.", integer().between(1, 1000).def(100)),
		"LeadLimit": q("limit", "Page size; the default returns every lead of all but the largest campaigns.", integer().between(1, 10000).def(1000)),
		"Offset":    q("offset", "Items to skip.", integer().atLeast(0).def(0)),
		"StartDate": q("start_date", "Only items created at or after this time (RFC 3339).",
			timestamp().ex("2025-12-01T00:00:00Z")),
		"EndDate": q("end_date", "Only items created at or before this time (RFC 3339).",
			timestamp().ex("2025-12-31T23:59:59Z")),
	}
}

// jsonResponse is a response with a JSON body.
func jsonResponse(desc string, s *schema) *response {
	return &response{Description: desc, Content: map[string]*mediaType{"application/json": {Schema: s}}}
}

// wrapped is an object with one required member holding s, e.g. {"assistant": …}.
func wrapped(key string, s *schema) *schema { return object(props{key: s}, key) }

// list is an object with one required member holding an array of the component name.
func list(key, name string) *schema { return wrapped(key, array(ref(name))) }

// paged is a page of a list: the array of the component name under key, and
// the pagination.
func paged(key, name string) *schema {
	return object(props{key: array(ref(name)), "pagination": ref("Pagination")}, key, "pagination")
}
