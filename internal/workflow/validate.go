package workflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/parley-voice/parley/internal/fault"
)

// Error codes of a rejected definition.
const (
	CodeInvalidDefinition  = "invalid_workflow_definition"
	CodeRealtimeNotAllowed = "realtime_provider_not_allowed_per_node"
)

const definitionPath = "definition"

var (
	definitionKeys = []string{"version", "entry_node", "global_prompt", "nodes", "edges"}
	edgeKeys       = []string{"from", "to", "description", "message"}
)

// NodeConfigs validates provider configuration that a conversation node may
// carry. It is implemented elsewhere (by *assistant.Validator). field is the
// dotted path to use in error messages, e.g. "definition.nodes[1].llm_config".
// Validation failures are *fault.Error values of Kind Invalid with Details;
// any other error is treated as an internal failure and returned as is.
type NodeConfigs interface {
	// NodeLLM checks a partial {provider?, model?, temperature?}; realtime
	// providers fail with Code "realtime_provider_not_allowed_per_node".
	NodeLLM(raw json.RawMessage, field string) (json.RawMessage, error)
	STT(raw json.RawMessage, field string) (json.RawMessage, error)
	TTS(raw json.RawMessage, field string) (json.RawMessage, error)
	Tools(raw json.RawMessage, field string) (json.RawMessage, error)
}

// Result is a validated definition.
type Result struct {
	Definition json.RawMessage // canonical definition to store and return
	EntryNode  string
	NodeCount  int
	EdgeCount  int
}

// Validate checks a workflow definition (the "definition" member of a
// POST /workflows or PATCH /workflows/{id} body) against contract v1 and
// returns its canonical form. cfg validates per-node provider configuration;
// it may be nil only if no node carries any.
//
// Every problem is collected. A rejected definition yields a *fault.Error of
// Kind Invalid and Code "invalid_workflow_definition" (or
// "realtime_provider_not_allowed_per_node" when that is among the problems),
// whose Message names the first problem and whose Details list them all. An
// error of any other kind comes from cfg and is not the client's fault.
func Validate(raw json.RawMessage, cfg NodeConfigs) (Result, error) {
	c := &checker{cfg: cfg}
	def := c.definition(raw)
	if c.internal != nil {
		return Result{}, c.internal
	}
	if err := c.fs.Err(); err != nil {
		fe, _ := fault.As(err)
		fe.Code = CodeInvalidDefinition
		for _, p := range c.fs.List() {
			if p.Code == CodeRealtimeNotAllowed {
				fe.Code = CodeRealtimeNotAllowed
				break
			}
		}
		return Result{}, fe
	}
	out, err := encode(def)
	if err != nil {
		return Result{}, err
	}
	return Result{Definition: out, EntryNode: def.EntryNode, NodeCount: len(def.Nodes), EdgeCount: len(def.Edges)}, nil
}

// definition checks the whole document and returns what could be read of it.
func (c *checker) definition(raw json.RawMessage) *Definition {
	def := &Definition{Version: ContractVersion, Edges: []Edge{}}
	if len(bytes.TrimSpace(raw)) == 0 {
		c.fs.Missing(definitionPath)
		return def
	}
	if !json.Valid(raw) {
		c.fs.Invalidf(definitionPath, "must be valid JSON")
		return def
	}
	o, ok := c.splitObject(definitionPath, raw, definitionKeys, "")
	if !ok {
		return def
	}

	switch v, ok := o.get("version"); {
	case !ok:
		c.fs.Missing(o.field("version"))
	case !isOne(v):
		c.fs.Invalidf(o.field("version"), "must be %d (got %s)", ContractVersion, compactJSON(v))
	}
	entry, hasEntry := c.str(o, "entry_node", true)
	def.EntryNode = entry
	def.GlobalPrompt = c.nullStr(o, "global_prompt")

	// Nodes, indexed by id (first occurrence) for the graph checks.
	ids := map[string]nodeInfo{}
	nodesOK := false
	if v, ok := o.get("nodes"); !ok {
		c.fs.Missing(o.field("nodes"))
	} else if items, ok := c.array(o.field("nodes"), v); ok {
		if len(items) == 0 {
			c.fs.Invalidf(o.field("nodes"), "must contain at least one node")
		}
		nodesOK = len(items) > 0
		for i, item := range items {
			n, ok := c.node(i, item)
			if !ok {
				continue
			}
			def.Nodes = append(def.Nodes, n)
			if n.ID == "" {
				continue
			}
			if prev, dup := ids[n.ID]; dup {
				c.fs.Invalidf(fmt.Sprintf("definition.nodes[%d].id", i), "%q is already used by definition.nodes[%d]", n.ID, prev.index)
				continue
			}
			ids[n.ID] = nodeInfo{index: i, typ: n.Type, global: n.Type == Conversation && n.Global}
		}
	}

	entryOK := false
	if hasEntry && nodesOK {
		switch info, ok := ids[entry]; {
		case !ok:
			c.fs.Invalidf(o.field("entry_node"), "references unknown node %q", entry)
		case info.typ == Conversation:
			entryOK = true
		case info.typ != Unknown:
			c.fs.Invalidf(o.field("entry_node"), "must reference a conversation node (%q is %s %s node)", entry, article(info.typ.String()), info.typ)
		}
	}

	edgesOK := true
	if v, ok := o.get("edges"); ok && kindOf(v) != "null" {
		items, ok := c.array(o.field("edges"), v)
		edgesOK = ok
		g := graph{ids: ids, seen: map[[2]string]int{}, out: map[string]int{}, next: map[string][]string{}}
		for i, item := range items {
			if e, ok := c.edge(i, item, &g); ok {
				def.Edges = append(def.Edges, e)
			}
		}
		c.toolEdges(ids, g.out, edgesOK && nodesOK)
		if entryOK && edgesOK {
			c.reachable(entry, ids, g.next)
		}
	} else {
		c.toolEdges(ids, nil, nodesOK)
		if entryOK {
			c.reachable(entry, ids, nil)
		}
	}
	return def
}

// graph accumulates what the edges say about the nodes.
type graph struct {
	ids  map[string]nodeInfo
	seen map[[2]string]int   // from/to pair -> index of the first edge joining them
	out  map[string]int      // node id -> number of outgoing edges
	next map[string][]string // node id -> targets of its valid outgoing edges
}

// edge checks definition.edges[i].
func (c *checker) edge(i int, raw json.RawMessage, g *graph) (Edge, bool) {
	path := fmt.Sprintf("definition.edges[%d]", i)
	o, ok := c.splitObject(path, raw, edgeKeys, "")
	if !ok {
		return Edge{}, false
	}
	var e Edge
	from, hasFrom := c.str(o, "from", true)
	to, hasTo := c.str(o, "to", true)
	fromInfo, fromKnown := g.ids[from]
	_, toKnown := g.ids[to]
	fromKnown, toKnown = fromKnown && hasFrom, toKnown && hasTo
	if hasFrom && !fromKnown {
		c.fs.Invalidf(o.field("from"), "references unknown node %q", from)
	}
	if hasTo && !toKnown {
		c.fs.Invalidf(o.field("to"), "references unknown node %q", to)
	}
	if fromKnown && fromInfo.typ.Terminal() {
		c.fs.Invalidf(o.field("from"), "references %s node %q, which is terminal and cannot have outgoing edges", fromInfo.typ, from)
	}
	e.From, e.To = from, to

	// A description tells the model when to take the edge; a tool node has a
	// single edge that is always taken.
	needDesc := fromKnown && fromInfo.typ == Conversation
	desc, hasDesc := c.str(o, "description", false)
	switch {
	case needDesc && !hasDesc && !present(o, "description"):
		c.fs.Add(o.field("description"), "missing_field", "is required on edges leaving a conversation node")
	case needDesc && hasDesc && strings.TrimSpace(desc) == "":
		c.fs.Invalidf(o.field("description"), "must not be empty")
	}
	e.Description = desc
	e.Message = c.nullStr(o, "message")

	if fromKnown {
		g.out[from]++
	}
	if hasFrom && hasTo {
		pair := [2]string{from, to}
		switch first, dup := g.seen[pair]; {
		case from == to && fromKnown:
			c.fs.Invalidf(path, "must not loop from %q back to itself", from)
		case dup:
			c.fs.Invalidf(path, "duplicates definition.edges[%d] (%q -> %q)", first, from, to)
		default:
			g.seen[pair] = i
			if fromKnown && toKnown && !fromInfo.typ.Terminal() {
				g.next[from] = append(g.next[from], to)
			}
		}
	}
	return e, true
}

// toolEdges reports tool nodes without exactly one outgoing edge: the engine
// follows "the node's single outgoing edge" after the webhook returns.
func (c *checker) toolEdges(ids map[string]nodeInfo, out map[string]int, enabled bool) {
	if !enabled {
		return
	}
	for _, id := range byIndex(ids) {
		if info := ids[id]; info.typ == Tool && out[id] != 1 {
			c.fs.Invalidf(fmt.Sprintf("definition.nodes[%d]", info.index), "(tool node %q) must have exactly one outgoing edge (has %d)", id, out[id])
		}
	}
}

// reachable reports conversation nodes that no call can get to: not on a
// path of edges from the entry node, where every global node counts as
// reachable from any reachable conversation node.
func (c *checker) reachable(entry string, ids map[string]nodeInfo, next map[string][]string) {
	seen := map[string]bool{entry: true}
	queue := []string{entry}
	globalsQueued := false
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		targets := next[id]
		if ids[id].typ == Conversation && !globalsQueued {
			globalsQueued = true
			for _, g := range byIndex(ids) {
				if ids[g].global {
					targets = append(targets, g)
				}
			}
		}
		for _, t := range targets {
			if !seen[t] {
				seen[t] = true
				queue = append(queue, t)
			}
		}
	}
	for _, id := range byIndex(ids) {
		if info := ids[id]; info.typ == Conversation && !seen[id] {
			c.fs.Invalidf(fmt.Sprintf("definition.nodes[%d]", info.index), "(conversation node %q) is not reachable from entry node %q", id, entry)
		}
	}
}

// byIndex returns the ids in definition order.
func byIndex(ids map[string]nodeInfo) []string {
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b string) int { return ids[a].index - ids[b].index })
	return out
}
