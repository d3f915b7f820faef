package openapi

// This file describes organizations and the deprecated account (spec §7.14),
// campaigns and leads (§7.15, §8.19) and MCP servers (§7.16).

import (
	"fmt"

	"github.com/parley-voice/parley/internal/billing"
	"github.com/parley-voice/parley/internal/campaign"
)

func accountSchemas(c map[string]*schema) {
	stats := func() props {
		return props{
			"id":                    uuid(),
			"name":                  str(),
			"minutes_balance":       number().d("Prepaid minutes left.").ex(500.5),
			"monthly_usage_minutes": number().atLeast(0).d("Minutes used this calendar month."),
			"active_numbers":        integer().atLeast(0),
			"active_agents":         integer().atLeast(0).d("Active assistants."),
			"active_calls":          integer().atLeast(0).d("Calls in progress now."),
		}
	}
	c["ContentRetentionDays"] = intEnum(30, 90, 180, 365).
		d("Days transcripts, summaries, analysis results and recordings are kept.")
	c["MetadataRetentionDays"] = intEnum(30, 90, 180, 365, 730).
		d("Days caller numbers, campaign links and call events are kept; at least the content retention.")
	c["OrganizationChild"] = object(props{
		"id":         uuid(),
		"name":       str(),
		"created_at": timestamp(),
	}, "id", "name", "created_at")
	c["Organization"] = object(merge(stats(), props{
		"has_local_models_access":       boolean(),
		"parent_org_id":                 uuid().nullable().d("Parent (reseller) organization; null for a top-level one."),
		"content_retention_days":        ref("ContentRetentionDays").nullable().d("Null: kept until deleted."),
		"metadata_retention_days":       ref("MetadataRetentionDays").nullable().d("Null: kept until deleted."),
		"webhook_url":                   uri().nullable().d("Organization webhook (Parley extension): receives the events of assistants without a webhook_url and assistant-request for numbers without an assistant."),
		"webhook_secret_set":            boolean().d("Whether a webhook signing secret is stored; the secret itself is never returned."),
		"email":                         email().nullable().d("Contact address given when the organization was created (SDK-OLD)."),
		"max_concurrent_campaign_calls": campaignCap(),
		"credits_balance":               number().d("minutes_balance again, as SDK-OLD reads it."),
		"plan":                          constant(billing.Plan).d("SDK-OLD's plan: a self-hosted Parley has no plans, so always `self-hosted`."),
		"created_at":                    timestamp(),
		"children":                      array(ref("OrganizationChild")).d("A page of the child organizations, oldest first; only with include_children=true."),
		"children_pagination":           ref("Pagination").d("Parley extension: the page of `children` (`limit`, `offset`) and how many there are; only with include_children=true."),
	}), "id", "name", "minutes_balance", "monthly_usage_minutes", "active_numbers", "active_agents", "active_calls",
		"has_local_models_access", "parent_org_id", "content_retention_days", "metadata_retention_days", "webhook_url", "webhook_secret_set",
		"email", "max_concurrent_campaign_calls", "credits_balance", "plan", "created_at").
		d("The caller's organization with live counters.")
	c["OrganizationCreate"] = object(props{
		"name":          str().length(1, -1),
		"parent_org_id": uuid().d("Parent organization; defaults to the caller's. Child organizations bill against the parent's balance."),
		"email":         email().nullable().d("Contact address (SDK-OLD)."),
	}, "name")
	c["OrganizationCreated"] = object(props{
		"id":              uuid(),
		"name":            str(),
		"parent_org_id":   uuid().nullable(),
		"email":           email().nullable(),
		"credits_balance": number(),
		"plan":            constant(billing.Plan),
		"api_key":         str().d("The new organization's API key. Shown only in this response.").ex("fl_a1b2c3d4e5f6"),
		"created_at":      timestamp(),
	}, "id", "name", "parent_org_id", "email", "credits_balance", "plan", "api_key", "created_at")
	c["OrganizationUpdate"] = object(props{
		"content_retention_days":        ref("ContentRetentionDays"),
		"metadata_retention_days":       ref("MetadataRetentionDays"),
		"webhook_url":                   uri().nullable().d("Organization webhook URL (Parley extension); https and a public address. Null removes it."),
		"webhook_secret":                str().length(1, 1024).nullable().writeOnly().d("Secret that signs the organization webhook's deliveries; never returned. Null removes it."),
		"max_concurrent_campaign_calls": campaignCap(),
	}).d("Send the two retention periods together (content retention may not exceed metadata retention), the webhook members, the campaign call cap, or any of them. Members not sent keep their values.")
	c["Account"] = object(merge(stats(), props{
		"email":        email().nullable(),
		"company_name": str().nullable(),
	}), "id", "name", "minutes_balance", "monthly_usage_minutes", "active_numbers", "active_agents", "active_calls").
		d("Deprecated view of the organization.").deprecated()
}

// campaignCap is the organization's cap on campaign calls at once.
func campaignCap() *schema {
	return integer().between(1, 10000).nullable().
		d("Parley extension: the most campaign calls of this organization in progress at once, over all its campaigns and server nodes. It can only lower the server's cap (PARLEY_CAMPAIGN_ORG_MAX_CALLS, 50 by default). Null: the server's cap.")
}

// pacing are a campaign's Parley pacing members; answer gives the response
// shape (effective values, never null), otherwise a request's (null returns
// a member to its default).
func pacing(answer bool) props {
	short := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	full := []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
	num := func(s *schema, def any, text string) *schema {
		if answer {
			return s.d(text + " Parley extension; the effective value (default " + fmt.Sprint(def) + ").")
		}
		return s.nullable().def(def).d(text + " Parley extension; null returns it to the default.")
	}
	p := props{
		"max_concurrent_calls": num(integer().between(1, 1000), 10, "Most calls of this campaign in progress at once."),
		"calls_per_second":     num(number().between(0.01, 100), 1, "Most new calls started per second (0.5: one every two seconds)."),
		"max_attempts":         num(integer().between(1, 10), 3, "Most times a lead is called; a lead not reached (no answer, busy, failed) is tried again until then."),
		"retry_delay_seconds":  num(integer().between(1, 604800), 1800, "Seconds between a lead's attempts."),
	}
	if answer {
		p["days_of_week"] = array(enum(short...)).d("Parley extension: weekdays calls are placed on, Monday first; [] is every day.").ex([]string{"mon", "tue", "wed", "thu", "fri"})
	} else {
		p["days_of_week"] = array(enum(append(short, full...)...)).nullable().
			d("Parley extension: weekdays calls are placed on, short or full names in any case (stored and answered as unique short names, Monday first). [] or null: every day.").ex([]string{"mon", "tue", "wed", "thu", "fri"})
	}
	return p
}

// windowEnd describes schedule_end_time.
const windowEnd = "End of the daily window. Before the start, the window crosses midnight (22:00:00 to 02:00:00 the next day); equal to the start, it is the whole day."

func campaignSchemas(c map[string]*schema) {
	clock := func() *schema {
		return str().pattern(campaign.ClockPattern).d("Time of day in the campaign's timezone: HH:MM:SS, or HH:MM (read as HH:MM:00); always answered as HH:MM:SS.")
	}
	endClock := func() *schema {
		s := clock()
		s.Description = windowEnd + " " + s.Description
		return s
	}
	c["CampaignStatus"] = enum(campaignStatuses()...).
		d("`scheduled` starts calling within the window, `paused` stops; `completed` is set by the platform. Completed and cancelled campaigns can no longer change.")
	c["LeadStatus"] = enum(leadStatuses()...).d("`no_answer` (older) is read as `skipped`.")
	c["CampaignProgress"] = object(props{
		"total":             integer().atLeast(0).d("All leads."),
		"done":              integer().atLeast(0).d("Leads finished: completed + failed + skipped."),
		"percent":           number().between(0, 100).d("done of total, in percent to one decimal; 0 without leads."),
		"pending":           integer().atLeast(0),
		"calling":           integer().atLeast(0),
		"completed":         integer().atLeast(0),
		"failed":            integer().atLeast(0),
		"skipped":           integer().atLeast(0),
		"retries_scheduled": integer().atLeast(0).d("Pending leads waiting for a retry (tried before, with a next_attempt_at)."),
	}, "total", "done", "percent", "pending", "calling", "completed", "failed", "skipped", "retries_scheduled").
		readOnly().d("Parley extension: the campaign's progress at a glance (the same figures as the flat counters).")
	c["Campaign"] = object(merge(props{
		"id":                      uuid().readOnly(),
		"org_id":                  uuid().readOnly(),
		"name":                    str(),
		"agent_id":                uuid().d("Assistant used for every call."),
		"assistant_id":            uuid().d("Same as agent_id."),
		"status":                  ref("CampaignStatus"),
		"system_message_template": str().nullable().d("`{{variable}}` placeholders are filled per lead from its variables."),
		"schedule_start_time":     clock().ex("09:00:00"),
		"schedule_end_time":       endClock().ex("17:00:00"),
		"timezone":                str().d("IANA time zone.").ex("Europe/Amsterdam"),
		"total_leads":             integer().atLeast(0).readOnly(),
		"completed_leads":         integer().atLeast(0).readOnly(),
		"failed_leads":            integer().atLeast(0).readOnly(),
		"created_at":              timestamp().readOnly(),
		"updated_at":              timestamp().readOnly(),
	}, pacing(true), props{
		"status_reason":     str().nullable().readOnly().d("Parley extension: why the platform paused the campaign (e.g. no minutes left, the trunk refusing our credentials); null otherwise and once a client sets a status."),
		"pending_leads":     integer().atLeast(0).readOnly().d("Parley extension: leads waiting for a call (retries included)."),
		"calling_leads":     integer().atLeast(0).readOnly().d("Parley extension: leads being called now."),
		"skipped_leads":     integer().atLeast(0).readOnly().d("Parley extension: leads no longer called (the campaign was cancelled)."),
		"retries_scheduled": integer().atLeast(0).readOnly().d("Parley extension: pending leads waiting for a retry (tried before, with a next_attempt_at)."),
		"next_retry_at":     timestamp().nullable().readOnly().d("Parley extension: when the earliest retry of a pending lead is due; null when none is scheduled."),
		"backoff_until":     timestamp().nullable().readOnly().d("Parley extension: the trunk or the server was congested; no call is started before this time. Null when not backing off."),
		"next_dial_at":      timestamp().nullable().readOnly().d("Parley extension: when a scheduled campaign with leads left starts its next call: the next opening of its window (in its time zone, days of the week included), the first retry when only retries are left, or the end of a backoff; the current time while it is dialling. Null when not scheduled or nothing is left to dial."),
		"progress":          ref("CampaignProgress"),
	}), "id", "name", "agent_id", "status", "system_message_template", "schedule_start_time", "schedule_end_time", "timezone",
		"total_leads", "completed_leads", "failed_leads", "created_at", "updated_at",
		"max_concurrent_calls", "calls_per_second", "max_attempts", "retry_delay_seconds", "days_of_week", "status_reason",
		"pending_leads", "calling_leads", "skipped_leads", "retries_scheduled", "next_retry_at", "backoff_until", "next_dial_at", "progress").
		d("An outbound campaign (beta). Needs an active assistant and a phone number with a SIP trunk for outbound dialing.")
	c["CampaignCreate"] = object(merge(props{
		"name":                    str().length(1, -1),
		"agent_id":                uuid().d("Assistant used for every call."),
		"assistant_id":            uuid().d("Alias of agent_id."),
		"system_message_template": str().nullable(),
		"schedule_start_time":     clock().def("09:00:00"),
		"schedule_end_time":       endClock().def("17:00:00"),
		"timezone":                str().def("Europe/Amsterdam").d("IANA time zone."),
		"status":                  enum("draft", "scheduled", "paused").def("draft"),
		"leads":                   array(ref("CampaignLeadCreate")).d("Leads to add at creation."),
	}, pacing(false)), "name").d("New campaign; starts as `draft` unless another status is given. `agent_id` (or `assistant_id`) is required.")
	c["CampaignCreate"].AnyOf = []*schema{{Required: []string{"agent_id"}}, {Required: []string{"assistant_id"}}}
	c["CampaignUpdate"] = object(merge(props{
		"name":                    str().length(1, -1),
		"status":                  enum("draft", "scheduled", "paused", "cancelled"),
		"system_message_template": str().nullable(),
		"schedule_start_time":     clock(),
		"schedule_end_time":       endClock(),
		"timezone":                str().d("IANA time zone."),
	}, pacing(false))).d("Partial update; a scheduled or paused campaign may be changed too (the dialer uses the new values from its next round). A completed or cancelled campaign can no longer change (409).")
	c["CampaignLead"] = object(props{
		"id":              uuid().readOnly(),
		"campaign_id":     uuid().readOnly(),
		"phone_number":    e164(),
		"name":            str().nullable(),
		"variables":       stringMap().d("Values for the campaign's template placeholders."),
		"status":          ref("LeadStatus"),
		"call_id":         str().nullable().d("Latest call placed to the lead."),
		"attempts":        integer().atLeast(0),
		"last_attempt_at": timestamp().nullable(),
		"next_attempt_at": timestamp().nullable().readOnly().d("Parley extension: when a pending lead tried before is called again; null otherwise."),
		"last_outcome":    str().nullable().readOnly().d("Parley extension: what the last attempt came to (e.g. answered, voicemail, busy); null before the first."),
		"created_at":      timestamp().readOnly(),
		"updated_at":      timestamp().readOnly(),
	}, "id", "campaign_id", "phone_number", "variables", "status", "call_id", "attempts", "last_attempt_at", "created_at").
		d("One person a campaign calls.")
	c["CampaignLeadCreate"] = object(props{
		"phone_number": e164(),
		"name":         str().d("Optional display name."),
		"variables":    stringMap().d("Values for the campaign's template placeholders, e.g. {\"name\": \"John\"}."),
	}, "phone_number")

	transport := func() *schema {
		return enum("streamable_http", "sse").d("`sse` only for servers that offer nothing else.")
	}
	headers := func() *schema {
		s := stringMap().writeOnly().d("HTTP headers sent to the server (e.g. credentials); at most 10, never returned.")
		ten := 10
		s.MaxProperties = &ten
		return s
	}
	c["McpServer"] = object(props{
		"id":              uuid().readOnly(),
		"org_id":          uuid().readOnly(),
		"name":            str(),
		"url":             uri().d("Normalised https URL."),
		"transport":       transport(),
		"header_names":    array(str()).d("Names of the stored headers; values are never returned."),
		"timeout_seconds": integer().between(5, 60),
		"created_at":      timestamp().readOnly(),
		"updated_at":      timestamp().readOnly(),
	}, "id", "name", "url", "transport", "header_names", "timeout_seconds", "created_at", "updated_at").
		d("A remote MCP server whose tools assistants may use (llm_config.tools item of type `mcp`).")
	c["McpServerCreate"] = object(props{
		"name":            str().length(1, -1).d("Unique within the organization."),
		"url":             uri().d("Must be https and resolve to a public address."),
		"transport":       transport().def("streamable_http"),
		"headers":         headers(),
		"timeout_seconds": integer().between(5, 60).def(20).d("Per request, tool calls included."),
	}, "name", "url")
	c["McpServerUpdate"] = object(props{
		"name":            str().length(1, -1),
		"url":             uri().d("Changing the host requires sending headers in the same request."),
		"transport":       transport(),
		"headers":         headers().d("Replaces every stored header; {} removes them. Never returned."),
		"timeout_seconds": integer().between(5, 60),
	}).d("Partial update.")
}
