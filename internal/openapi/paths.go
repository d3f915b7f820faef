package openapi

import "strings"

// This file holds the machinery the paths_*.go files use to declare
// operations: a builder for operations, the standard five-operation
// resource, and the pass that adds the error responses and rate-limit
// headers every operation shares.

const apiBase = "/api/v1"

// pathSet maps a path template to its operations.
type pathSet map[string]*pathItem

// paths declares every served route.
func paths() map[string]*pathItem {
	ps := pathSet{}
	metaPaths(ps)
	assistantPaths(ps)
	toolTemplatePaths(ps)
	numberPaths(ps)
	callPaths(ps)
	trunkPaths(ps)
	voicePaths(ps)
	byokPaths(ps)
	domainPaths(ps)
	analysisTemplatePaths(ps)
	organizationPaths(ps)
	campaignPaths(ps)
	mcpServerPaths(ps)
	workflowPaths(ps)
	livePaths(ps)
	return ps
}

type route struct {
	method string
	op     *operation
}

func get(op *operation) route          { return route{"get", op} }
func post(op *operation) route         { return route{"post", op} }
func patch(op *operation) route        { return route{"patch", op} }
func del(op *operation) route          { return route{"delete", op} }
func pathParam(name string) *parameter { return &parameter{Ref: parameterRef + name} }

// add declares routes on path; params are the path's own parameters, one
// per {name} in the template.
func (ps pathSet) add(path string, params []*parameter, routes ...route) {
	item := ps[path]
	if item == nil {
		item = &pathItem{Parameters: params}
		ps[path] = item
	}
	for _, r := range routes {
		finish(r.op, strings.Contains(path, "{"))
		switch r.method {
		case "get":
			item.Get = r.op
		case "post":
			item.Post = r.op
		case "patch":
			item.Patch = r.op
		case "delete":
			item.Delete = r.op
		}
	}
}

// finish adds the responses implied by the operation's shape: 404 for a
// resource path, 400 and 413 for a body, 400 for query parameters, and for
// authenticated operations 401, 429 and the rate-limit headers on success.
func finish(op *operation, hasPathParams bool) {
	errRef := func(code, name string) {
		if op.Responses[code] == nil {
			op.Responses[code] = &response{Ref: responseRef + name}
		}
	}
	if op.RequestBody != nil {
		errRef("400", "BadRequest")
		errRef("413", "PayloadTooLarge")
	}
	if len(op.Parameters) > 0 {
		errRef("400", "BadRequest")
	}
	if hasPathParams {
		errRef("404", "NotFound")
	}
	if op.Security != nil {
		return
	}
	errRef("401", "Unauthorized")
	errRef("429", "TooManyRequests")
	for code, r := range op.Responses {
		if r.Ref != "" || !strings.HasPrefix(code, "2") {
			continue
		}
		if r.Headers == nil {
			r.Headers = map[string]*header{}
		}
		for _, name := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			r.Headers[name] = &header{Ref: headerRef + name}
		}
	}
}

// op starts an operation.
func op(id, tag, summary string) *operation {
	return &operation{OperationID: id, Tags: []string{tag}, Summary: summary, Responses: map[string]*response{}}
}

func (o *operation) desc(text string) *operation { o.Description = text; return o }

func (o *operation) deprecate() *operation { o.Deprecated = true; return o }

// public marks an operation that needs no authentication.
func (o *operation) public() *operation {
	none := []securityRequirement{}
	o.Security = &none
	return o
}

// query adds component query parameters by name.
func (o *operation) query(names ...string) *operation {
	for _, n := range names {
		o.Parameters = append(o.Parameters, &parameter{Ref: parameterRef + n})
	}
	return o
}

// queryParam adds an inline query parameter.
func (o *operation) queryParam(name, description string, s *schema) *operation {
	o.Parameters = append(o.Parameters, &parameter{Name: name, In: "query", Description: description, Schema: s})
	return o
}

// body sets a required JSON request body of the component schema name.
func (o *operation) body(name string) *operation {
	o.RequestBody = &requestBody{Required: true, Content: map[string]*mediaType{"application/json": {Schema: ref(name)}}}
	return o
}

// reply sets the response for a status code.
func (o *operation) reply(code, description string, s *schema) *operation {
	o.Responses[code] = jsonResponse(description, s)
	return o
}

// conflict documents when the operation answers 409.
func (o *operation) conflict(when string) *operation {
	o.Responses["409"] = &response{Ref: responseRef + "Conflict", Description: when}
	return o
}

// resource names one standard resource: a collection with list and create,
// and an item with get, update and delete.
type resource struct {
	path    string // collection path below /api/v1, e.g. "/assistants"
	tag     string
	one     string // singular, for operationIds: "Assistant"
	many    string // plural, for operationIds: "Assistants"
	noun    string // singular, for summaries: "assistant"
	key     string // item wrapper key: "assistant"
	listKey string // list wrapper key: "assistants"
	schema  string // component schemas: X, XCreate, XUpdate
	create  string
	update  string
}

// crud holds the five operations of a resource so groups can adjust them
// before they are added.
type crud struct {
	res                          resource
	list, create, get, upd, dele *operation
}

func newCRUD(r resource) *crud {
	item := func() *schema { return wrapped(r.key, ref(r.schema)) }
	return &crud{
		res: r,
		list: op("list"+r.many, r.tag, "List "+r.noun+"s").query("Limit", "Offset").
			reply("200", "A page of the organization's "+r.noun+"s, oldest first.", paged(r.listKey, r.schema)),
		create: op("create"+r.one, r.tag, "Create "+article(r.noun)).body(r.create).
			reply("201", "The created "+r.noun+".", item()),
		get: op("get"+r.one, r.tag, "Get "+article(r.noun)).
			reply("200", "The "+r.noun+".", item()),
		upd: op("update"+r.one, r.tag, "Update "+article(r.noun)).body(r.update).
			desc("Partial update: only the fields sent change; null clears a nullable field.").
			reply("200", "The updated "+r.noun+".", item()),
		dele: op("delete"+r.one, r.tag, "Delete "+article(r.noun)).
			reply("200", "The "+r.noun+" was deleted.", ref("SuccessResponse")),
	}
}

// add declares the five operations.
func (c *crud) add(ps pathSet) {
	base := apiBase + c.res.path
	ps.add(base, nil, get(c.list), post(c.create))
	ps.add(base+"/{id}", []*parameter{pathParam("ID")}, get(c.get), patch(c.upd), del(c.dele))
}

// all lists the five operations.
func (c *crud) all() []*operation { return []*operation{c.list, c.create, c.get, c.upd, c.dele} }

// article prefixes a noun with "a" or "an".
func article(noun string) string {
	if strings.HasPrefix(noun, "MCP") || strings.ContainsAny(noun[:1], "aeiouAEIOU") {
		return "an " + noun
	}
	return "a " + noun
}
