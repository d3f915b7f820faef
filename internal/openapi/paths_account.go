package openapi

// This file declares the organization, campaigns and leads, MCP servers and
// workflows.

func organizationPaths(ps pathSet) {
	const tag = "Organization"
	ps.add(apiBase+"/organizations", nil,
		get(op("getOrganization", tag, "Get the organization").
			desc("The organization of the API key, with live counters.").
			queryParam("include_children", "Also list the child organizations.", boolean().def(false)).
			query("Limit", "Offset").
			reply("200", "The organization (no wrapper).", ref("Organization"))),
		post(op("createOrganization", tag, "Create a child organization").body("OrganizationCreate").
			desc("Creates a child organization (reseller / whitelabel) and its first API key, which is shown only in this response.").
			reply("201", "The created organization with its API key (no wrapper).", ref("OrganizationCreated"))),
		patch(op("updateOrganization", tag, "Update retention and webhook settings").body("OrganizationUpdate").
			desc("Sets how long call content and call metadata are kept (both together; content retention may not exceed metadata retention) "+
				"and the organization webhook (`webhook_url`, write-only `webhook_secret`; Parley extension). Members not sent keep their values.").
			reply("200", "The updated organization (no wrapper).", ref("Organization"))))
	ps.add(apiBase+"/account", nil, get(op("getAccount", tag, "Get the account").deprecate().
		desc("Deprecated: use GET /organizations.").
		reply("200", "The account (no wrapper).", ref("Account"))))
}

func campaignPaths(ps pathSet) {
	const tag = "Campaigns"
	c := newCRUD(resource{
		path: "/campaigns", tag: tag, one: "Campaign", many: "Campaigns", noun: "campaign",
		key: "campaign", listKey: "campaigns", schema: "Campaign", create: "CampaignCreate", update: "CampaignUpdate",
	})
	c.create.desc("Creates a `draft` campaign, optionally with leads. Set status `scheduled` to start calling within the daily window.")
	c.upd.desc("Partial update. `scheduled` starts calling, `paused` stops, `cancelled` ends the campaign.").
		conflict("The campaign is completed or cancelled and can no longer change.")
	c.add(ps)

	leads := apiBase + "/campaigns/{id}/leads"
	ps.add(leads, []*parameter{pathParam("ID")},
		get(op("listCampaignLeads", tag, "List a campaign's leads").
			desc("Oldest first.").
			query("LeadLimit", "Offset").
			reply("200", "A page of leads.", object(props{
				"leads":      array(ref("CampaignLead")),
				"pagination": ref("Pagination"),
			}, "leads", "pagination"))),
		post(op("addCampaignLead", tag, "Add a lead to a campaign").body("CampaignLeadCreate").
			reply("201", "The created lead.", wrapped("lead", ref("CampaignLead"))).
			conflict("The campaign is completed or cancelled and can no longer change.")))
	ps.add(leads+"/{leadId}", []*parameter{pathParam("ID"), pathParam("LeadID")},
		del(op("deleteCampaignLead", tag, "Remove a lead from a campaign").
			reply("200", "The lead was removed.", ref("SuccessResponse")).
			conflict("The lead is being called right now, or the campaign is completed or cancelled.")))
}

func mcpServerPaths(ps pathSet) {
	c := newCRUD(resource{
		path: "/mcp-servers", tag: "MCP Servers", one: "McpServer", many: "McpServers", noun: "MCP server",
		key: "mcp_server", listKey: "mcp_servers", schema: "McpServer", create: "McpServerCreate", update: "McpServerUpdate",
	})
	c.create.desc("The URL must be https and resolve to a public address. Header values are write-only.").
		conflict("An MCP server with this name already exists.")
	c.upd.desc("Partial update. `headers` replaces every stored header; changing the URL's host requires sending `headers` too.").
		conflict("An MCP server with this name already exists.")
	c.dele.conflict("An assistant still uses the server; remove it from the assistant's tools first.")
	c.add(ps)
}

func workflowPaths(ps pathSet) {
	c := newCRUD(resource{
		path: "/workflows", tag: "Workflows", one: "Workflow", many: "Workflows", noun: "workflow",
		key: "workflow", listKey: "workflows", schema: "Workflow", create: "WorkflowCreate", update: "WorkflowUpdate",
	})
	c.list.reply("200", "A page of summaries of the organization's workflows, oldest first.", paged("workflows", "WorkflowSummary"))
	c.create.desc("The definition is validated; a 400 lists every problem in `details`.")
	c.upd.desc("Partial update; a definition sent replaces the stored one entirely and is validated (400 with `details`).")
	c.dele.conflict("Phone numbers still run the workflow; detach it with PATCH /numbers/{id} {\"workflow_id\": null}.")
	c.add(ps)
}
