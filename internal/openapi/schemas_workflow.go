package openapi

// This file describes workflows and their definition, contract v1 (spec §7.17).

import "github.com/parley-voice/parley/internal/catalog"

func workflowSchemas(c map[string]*schema, cat *catalog.Catalog) {
	nodeID := func() *schema {
		return str().pattern(`^[a-z][a-z0-9_]{0,40}$`).d("Lowercase letters, digits and `_`, starting with a letter; at most 41 characters.")
	}
	firstLine := func(what string) *schema { return str().d(what) }
	c["WorkflowNodeUI"] = object(props{"x": number(), "y": number()}).d("Builder canvas position; ignored by the engine.")

	c["ConversationNode"] = object(props{
		"id":                 nodeID(),
		"type":               constant("conversation"),
		"instructions":       str().length(1, -1).d("The node's system prompt (after global_prompt)."),
		"first_line":         firstLine("Spoken on entering the node; realtime models get it as an opening hint."),
		"global":             boolean().def(false).d("Reachable from every conversation node without edges."),
		"global_description": str().d("When to go to this node; required when global."),
		"llm_config": object(props{
			"provider":    enum(cat.ProviderIDs(catalog.LLM, catalog.Text)...).d("Text providers only; realtime providers are rejected (`realtime_provider_not_allowed_per_node`)."),
			"model":       str(),
			"temperature": number().between(0, 2),
		}).d("Per-node model override; needs a pipeline assistant. The entry node's override applies to the whole session."),
		"voice":      str().d("Voice of the assistant's TTS provider for this node; not together with tts_config."),
		"tts_config": ref("TTSConfig").d("Full replacement for this node; pipeline assistants only."),
		"stt_config": ref("STTConfig").d("Full replacement for this node; pipeline assistants only."),
		"tools":      array(ref("ToolDefinition")),
		"ui":         ref("WorkflowNodeUI"),
	}, "id", "type", "instructions").titled("conversation").d("The assistant talks with the caller under the node's instructions.")
	c["ToolNode"] = object(props{
		"id":         nodeID(),
		"type":       constant("tool"),
		"tool_name":  str().length(1, -1).d("Sent in the tool-calls webhook."),
		"url":        uri().d("Webhook override; default is the call's tool-calls webhook."),
		"arguments":  freeObject().d("Static arguments."),
		"first_line": firstLine("Hold line, e.g. \"One moment please...\"."),
		"ui":         ref("WorkflowNodeUI"),
	}, "id", "type", "tool_name").titled("tool").
		d("The platform calls the webhook, puts the result (or error) into the context and follows the node's single outgoing edge.")
	c["TransferNode"] = object(props{
		"id":          nodeID(),
		"type":        constant("transfer"),
		"destination": e164(),
		"first_line":  firstLine("Announcement before dialing."),
		"ui":          ref("WorkflowNodeUI"),
	}, "id", "type", "destination").titled("transfer").d("Transfers the call; terminal.")
	c["EndNode"] = object(props{
		"id":         nodeID(),
		"type":       constant("end"),
		"first_line": firstLine("Goodbye; default is a neutral thank-you-and-goodbye."),
		"ui":         ref("WorkflowNodeUI"),
	}, "id", "type").titled("end").d("Ends the call; terminal.")
	c["WorkflowNode"] = tagged("type", map[string]string{
		"conversation": "ConversationNode", "tool": "ToolNode", "transfer": "TransferNode", "end": "EndNode",
	}, "ConversationNode", "ToolNode", "TransferNode", "EndNode")
	c["WorkflowEdge"] = object(props{
		"from":        nodeID(),
		"to":          nodeID(),
		"description": str().d("When to take the edge; required except on edges leaving a tool node."),
		"message":     str().nullable().d("Spoken during the transition; default is a neutral hand-off line."),
	}, "from", "to").d("Transition between nodes. Only conversation and tool nodes have outgoing edges; no self-loops or duplicate pairs.")
	c["WorkflowDefinition"] = object(props{
		"version":       &schema{Type: "integer", Const: 1},
		"entry_node":    nodeID().d("Id of the starting node, a conversation node."),
		"global_prompt": str().nullable().d("Prepended to every conversation node's instructions."),
		"nodes":         array(ref("WorkflowNode")).count(1, -1),
		"edges":         array(ref("WorkflowEdge")),
	}, "version", "entry_node", "nodes", "edges").d("Workflow graph, contract v1. Validated on write; every problem is listed in the error's details.")

	c["Workflow"] = object(props{
		"id":         uuid().readOnly(),
		"org_id":     uuid().readOnly(),
		"name":       str(),
		"is_active":  boolean().d("When false, attached numbers fall back to their assistant's normal behaviour."),
		"definition": ref("WorkflowDefinition"),
		"created_at": timestamp().readOnly(),
		"updated_at": timestamp().readOnly(),
	}, "id", "name", "is_active", "definition", "created_at", "updated_at").
		d("A conversation flow; attach it to a number with PATCH /numbers/{id} {\"workflow_id\": …}.")
	c["WorkflowSummary"] = object(props{
		"id":         uuid(),
		"name":       str(),
		"is_active":  boolean(),
		"entry_node": str().nullable(),
		"node_count": integer().atLeast(0),
		"edge_count": integer().atLeast(0),
		"created_at": timestamp(),
		"updated_at": timestamp(),
	}, "id", "name", "is_active", "entry_node", "node_count", "edge_count", "created_at", "updated_at")
	c["WorkflowCreate"] = object(props{
		"name":       str().length(1, -1),
		"definition": ref("WorkflowDefinition"),
		"is_active":  boolean().def(true),
	}, "name", "definition")
	c["WorkflowUpdate"] = object(props{
		"name":       str().length(1, -1),
		"definition": ref("WorkflowDefinition").d("Replaces the stored definition entirely."),
		"is_active":  boolean(),
	}).d("Partial update.")
}
