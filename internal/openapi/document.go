// Package openapi builds Parley's OpenAPI 3.1.0 document, the machine-readable
// description of the REST API served at GET /api/openapi.json.
//
// The API is wire-compatible with the HMS Sovereign v1 API: the document
// describes every route the server's router serves (the /api/v1 resources,
// their deprecated /agents aliases, the health check and this document
// itself), the request and response bodies of each, the shared error and
// pagination shapes, bearer authentication and the rate-limit headers.
//
// The document is built from Go values on every call; the package keeps no
// mutable state. Operations lists the served routes from the same values, so
// a router test can check that the document and the router agree.
package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/parley-voice/parley/internal/catalog"
)

// Operation identifies one served route.
type Operation struct {
	Method string // upper-case HTTP method, e.g. "GET"
	Path   string // path template as in the document, e.g. "/api/v1/assistants/{id}"
}

// Document returns the OpenAPI 3.1.0 document as indented JSON, with
// info.version set to version and one server entry for "/". It describes
// every provider and model of the catalog.
func Document(version string) ([]byte, error) { return DocumentFor(version, nil) }

// Served says whether this server runs a catalog provider (model "") or one
// of its models: nil when it does, else why not (assistant.Served).
type Served func(s catalog.Section, provider, model string) error

// DocumentFor is Document narrowed to what this server runs, when served is
// not nil: the provider unions (STTConfig, LLMConfig, TTSConfig) lose the
// providers it does not run, which their descriptions then name with the
// reason, and each provider's model enum loses the models it does not run.
func DocumentFor(version string, served Served) ([]byte, error) {
	cat, err := catalog.Load()
	if err != nil {
		return nil, fmt.Errorf("openapi: load the provider catalog: %w", err)
	}
	doc := document{
		OpenAPI:           "3.1.0",
		JSONSchemaDialect: "https://spec.openapis.org/oas/3.1/dialect/base",
		Info: info{
			Title:       "Parley API",
			Version:     version,
			Summary:     "Self-hostable voice-AI platform, wire-compatible with the HMS Sovereign v1 API.",
			Description: apiDescription,
		},
		Servers:    []server{{URL: "/", Description: "This Parley server"}},
		Security:   []securityRequirement{{"bearerAuth": {}}},
		Tags:       tags(),
		Paths:      paths(),
		Components: componentSet(cat),
	}
	if served != nil {
		narrow(doc.Components.Schemas, cat, served)
	}
	limitText(doc.Paths, doc.Components.Schemas)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("openapi: encode document: %w", err)
	}
	return buf.Bytes(), nil
}

// Operations lists every operation of the document, method upper-case,
// sorted by path and then by method.
func Operations() []Operation {
	var out []Operation
	for path, item := range paths() {
		for _, m := range item.methods() {
			out = append(out, Operation{Method: strings.ToUpper(m.name), Path: path})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

const apiDescription = `REST API of Parley, a self-hostable voice-AI platform. It is wire-compatible with the HMS Sovereign v1 API, so its SDKs and examples work against a Parley server.

Authentication: every request except GET /api/v1/health and GET /api/openapi.json carries ` + "`Authorization: Bearer <API key>`" + `; the key decides the organization.

Conventions: JSON bodies; ids are UUIDs except call ids (opaque strings that contain "+", so percent-encode path parameters); timestamps are RFC 3339 UTC; phone numbers are E.164. PATCH changes only the fields sent, and null clears a nullable field. Deprecated aliases (/agents, agent_id) behave exactly like their replacements.

Errors: a JSON object whose string ` + "`error`" + ` names the problem; ` + "`message`" + `, ` + "`code`" + `, ` + "`param`" + ` and ` + "`details`" + ` add detail.

Text: every string in a request (body values and member names, path parameters, query values) must be valid UTF-8 without NUL; the JSON escapes ` + "`\\u0000`" + ` and lone surrogates such as ` + "`\\ud800`" + ` are refused too. Lengths are counted in characters and published as maxLength: names 200, prompts and instructions 100,000, every other string value 10,000 (inside free-form objects such as metadata, variables, headers and JSON Schemas too, whatever the member is called), member names of free-form objects 200, path parameters and query values 1,000. A refusal is a 400 with code ` + "`invalid_text`" + ` or ` + "`too_long`" + ` whose ` + "`param`" + ` names the field (e.g. ` + "`llm_config.messages[0].content`" + `).

Pagination: every list takes ` + "`limit`" + ` (default 100, at most 1000) and ` + "`offset`" + ` (default 0) and answers a ` + "`pagination`" + ` object with ` + "`total`" + `; campaign leads default to 1000 (at most 10000) and analysis templates to 50 (at most 100), as the HMS reference has them. A limit or offset that is not an integer in range is a 400 naming it.

Rate limits: requests are counted per API key in fixed one-minute windows (100 per minute by default). Responses carry X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (Unix seconds); a 429 also carries Retry-After (seconds).`

// document is the top-level OpenAPI object.
type document struct {
	OpenAPI           string                `json:"openapi"`
	Info              info                  `json:"info"`
	JSONSchemaDialect string                `json:"jsonSchemaDialect"`
	Servers           []server              `json:"servers"`
	Security          []securityRequirement `json:"security"`
	Tags              []tag                 `json:"tags"`
	Paths             map[string]*pathItem  `json:"paths"`
	Components        components            `json:"components"`
}

type info struct {
	Title       string `json:"title"`
	Summary     string `json:"summary,omitempty"`
	Description string `json:"description,omitempty"`
	Version     string `json:"version"`
}

type server struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
}

type tag struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// securityRequirement maps a security scheme name to its scopes.
type securityRequirement map[string][]string

type components struct {
	Schemas         map[string]*schema         `json:"schemas"`
	Responses       map[string]*response       `json:"responses"`
	Parameters      map[string]*parameter      `json:"parameters"`
	Headers         map[string]*header         `json:"headers"`
	SecuritySchemes map[string]*securityScheme `json:"securitySchemes"`
}

type securityScheme struct {
	Type         string `json:"type"`
	Scheme       string `json:"scheme,omitempty"`
	BearerFormat string `json:"bearerFormat,omitempty"`
	Description  string `json:"description,omitempty"`
}

type pathItem struct {
	Parameters []*parameter `json:"parameters,omitempty"`
	Get        *operation   `json:"get,omitempty"`
	Post       *operation   `json:"post,omitempty"`
	Patch      *operation   `json:"patch,omitempty"`
	Delete     *operation   `json:"delete,omitempty"`
}

type method struct {
	name string
	op   *operation
}

// methods lists the item's operations with their lower-case method names.
func (p *pathItem) methods() []method {
	var out []method
	for _, m := range []method{{"get", p.Get}, {"post", p.Post}, {"patch", p.Patch}, {"delete", p.Delete}} {
		if m.op != nil {
			out = append(out, m)
		}
	}
	return out
}

type operation struct {
	Tags        []string               `json:"tags"`
	Summary     string                 `json:"summary"`
	Description string                 `json:"description,omitempty"`
	OperationID string                 `json:"operationId"`
	Parameters  []*parameter           `json:"parameters,omitempty"`
	RequestBody *requestBody           `json:"requestBody,omitempty"`
	Responses   map[string]*response   `json:"responses"`
	Deprecated  bool                   `json:"deprecated,omitempty"`
	Security    *[]securityRequirement `json:"security,omitempty"` // non-nil and empty: no authentication
}

type parameter struct {
	Ref         string  `json:"$ref,omitempty"`
	Name        string  `json:"name,omitempty"`
	In          string  `json:"in,omitempty"`
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required,omitempty"`
	Schema      *schema `json:"schema,omitempty"`
	Example     any     `json:"example,omitempty"`
}

type requestBody struct {
	Description string                `json:"description,omitempty"`
	Required    bool                  `json:"required,omitempty"`
	Content     map[string]*mediaType `json:"content"`
}

type response struct {
	Ref         string                `json:"$ref,omitempty"`
	Description string                `json:"description,omitempty"`
	Headers     map[string]*header    `json:"headers,omitempty"`
	Content     map[string]*mediaType `json:"content,omitempty"`
}

type header struct {
	Ref         string  `json:"$ref,omitempty"`
	Description string  `json:"description,omitempty"`
	Schema      *schema `json:"schema,omitempty"`
}

type mediaType struct {
	Schema *schema `json:"schema"`
}

// tags lists the operation groups in the order documentation shows them.
func tags() []tag {
	return []tag{
		{"Health", "Liveness and database health; no authentication."},
		{"Meta", "This OpenAPI document; no authentication."},
		{"Assistants", "Voice assistants: speech-to-text, LLM and text-to-speech configuration, behaviour and webhooks."},
		{"Agents", "Deprecated alias of Assistants; identical behaviour."},
		{"Tool Templates", "Reusable tool definitions; attaching one copies its config into llm_config.tools."},
		{"Phone Numbers", "Numbers registered with the platform (SIP forwarding) and what answers them."},
		{"Calls", "Call records (status, transcript, summary and analysis), outbound calls and live call control."},
		{"Usage", "Per-call usage logs and totals."},
		{"SIP Trunks", "SIP trunks used for transfers and outbound dialing."},
		{"Voices", "Locally hosted text-to-speech voices."},
		{"BYOK", "Bring-your-own provider keys and provider settings."},
		{"Domains", "The organization's e-mail sending domain, backed by its Resend account (Resend BYOK key)."},
		{"Analysis Templates", "Reusable post-call structured-extraction configurations."},
		{"Organization", "The caller's organization, its child organizations and retention settings."},
		{"Campaigns", "Outbound calling campaigns and their leads (beta)."},
		{"MCP Servers", "Remote MCP servers whose tools assistants may call."},
		{"Workflows", "Graph-based conversation flows run on phone numbers."},
		{"Webhooks", "The delivery log of webhook events (Parley extension)."},
	}
}

// componentSet gathers every reusable component.
func componentSet(cat *catalog.Catalog) components {
	return components{
		Schemas:    schemas(cat),
		Responses:  errorResponses(),
		Parameters: parameters(),
		Headers:    rateLimitHeaders(),
		SecuritySchemes: map[string]*securityScheme{
			"bearerAuth": {
				Type:         "http",
				Scheme:       "bearer",
				BearerFormat: "API key",
				Description:  "An organization API key, e.g. `Authorization: Bearer fl_live_…`.",
			},
		},
	}
}

// schemas collects the component schemas of every group; cat supplies the
// providers, models, voices and languages (see enums.go).
func schemas(cat *catalog.Catalog) map[string]*schema {
	all := map[string]*schema{}
	withCatalog := func(add func(map[string]*schema, *catalog.Catalog)) func(map[string]*schema) {
		return func(c map[string]*schema) { add(c, cat) }
	}
	for _, add := range []func(map[string]*schema){
		commonSchemas,
		withCatalog(providerSchemas),
		withCatalog(llmSchemas),
		withCatalog(assistantSchemas),
		toolSchemas,
		withCatalog(resourceSchemas),
		accountSchemas,
		campaignSchemas,
		withCatalog(workflowSchemas),
		liveSchemas,
		domainSchemas,
	} {
		add(all)
	}
	return all
}
