package openapi

// This file declares the e-mail sending domain (spec §7.12): one per
// organization, backed by the organization's Resend account.

func domainPaths(ps pathSet) {
	const tag = "Domains"
	unavailable := func(o *operation) *operation {
		o.Responses["429"] = &response{Ref: responseRef + "TooManyRequests", Description: "Parley's rate limit, or Resend's (with `Retry-After`)."}
		o.Responses["503"] = &response{Ref: responseRef + "ServiceUnavailable", Description: "Resend did not answer."}
		return o
	}
	ps.add(apiBase+"/domains", nil,
		get(op("getDomain", tag, "Get the e-mail domain").
			desc("The organization's sending domain as last read from Resend, bare (not wrapped in `domain`): `domain` is the name, as older SDKs read it. 404 when the organization has none.").
			reply("200", "The domain.", ref("Domain"))),
		post(unavailable(op("createDomain", tag, "Add the e-mail domain").body("DomainCreate").
			desc("Creates the domain in the organization's Resend account with its Resend BYOK key (400 without one) and returns the DNS records to publish. One domain per organization.").
			reply("201", "The domain, status `not_started`.", ref("Domain")).
			conflict("The organization already has a domain."))),
		del(unavailable(op("deleteDomain", tag, "Delete the e-mail domain").
			desc("Deletes the domain at Resend (a domain Resend no longer has is fine) and here.").
			reply("200", "The domain was deleted.", ref("SuccessResponse")))))
	ps.add(apiBase+"/domains/sync", nil,
		get(unavailable(op("listResendDomains", tag, "List the Resend account's domains").
			desc("Every domain of the organization's Resend account, and which one is the organization's domain.").
			reply("200", "The Resend account's domains.", ref("ResendDomainList")))),
		post(unavailable(op("selectResendDomain", tag, "Use a domain of the Resend account").body("DomainSelect").
			desc("Makes a domain already in the organization's Resend account its e-mail domain, replacing the one it had here (which stays in the Resend account).").
			reply("200", "The domain, with `success`.", ref("DomainSelected")))))
	ps.add(apiBase+"/domains/verify", nil, post(unavailable(op("verifyDomain", tag, "Verify the e-mail domain").
		desc("Asks Resend to check the DNS records, then returns the domain as Resend reports it: `verified` is true once Resend has verified it; checking takes Resend a while, meanwhile the status is `pending` (refresh later).").
		reply("200", "The domain.", ref("Domain")).
		conflict("The domain no longer exists at Resend, or never reached it."))))
	ps.add(apiBase+"/domains/refresh", nil, post(unavailable(op("refreshDomain", tag, "Refresh the e-mail domain").
		desc("Reads the domain's status and records from Resend and stores them.").
		reply("200", "The domain.", ref("Domain")).
		conflict("The domain no longer exists at Resend, or never reached it."))))
}

func domainSchemas(c map[string]*schema) {
	status := func() *schema { return enum("not_started", "pending", "verified", "failed") }
	c["DomainStatus"] = status().d("`verified` once Resend has verified every record; `pending` while it checks (or part is verified); `failed` when a check failed.")
	c["DomainRecord"] = object(props{
		"record":   str().d("What the record is for: `SPF`, `DKIM`, …"),
		"name":     str(),
		"type":     str().d("`TXT`, `MX`, `CNAME`."),
		"ttl":      str().d("`Auto` or seconds."),
		"status":   str().d("This record's status at Resend."),
		"value":    str(),
		"priority": integer().d("MX records."),
	}).d("A DNS record to publish for the domain.")
	c["Domain"] = object(props{
		"id":               uuid(),
		"org_id":           uuid(),
		"domain_name":      str().ex("mail.example.com"),
		"domain":           str().d("The same name, for older SDKs."),
		"verified":         boolean().d("`status` is `verified`."),
		"resend_domain_id": str().nullable().d("The domain's id in the Resend account; null while its creation is under way."),
		"status":           ref("DomainStatus"),
		"region":           str().ex("eu-west-1"),
		"records":          array(ref("DomainRecord")),
		"created_at":       timestamp(),
		"updated_at":       timestamp(),
		"verified_at":      timestamp().nullable(),
	}, "id", "org_id", "domain_name", "domain", "verified", "resend_domain_id", "status", "region", "records", "created_at", "updated_at", "verified_at").
		d("The organization's e-mail sending domain, bare.")
	c["DomainCreate"] = object(props{
		"domain_name": str().d("The domain to send from, e.g. `mail.example.com`; international names are stored in their ASCII form.").ex("mail.example.com"),
		"domain":      str().d("Older SDKs' name for `domain_name`.").deprecated(),
		"region":      enum("eu-west-1", "us-east-1", "sa-east-1", "ap-northeast-1").def("eu-west-1").d("Parley extension: the Resend region to send from."),
	}).d("`domain_name` (or `domain`) is required.")
	c["DomainSelect"] = object(props{
		"resendDomainId":   str().d("The Resend domain's id, from GET /domains/sync."),
		"domain_id":        str().d("Older SDKs' name for `resendDomainId`.").deprecated(),
		"resend_domain_id": str().d("The Domain object's name for `resendDomainId`."),
	}).d("One of `resendDomainId`, `domain_id` or `resend_domain_id` is required.")
	c["DomainSelected"] = object(merge(c["Domain"].Properties, props{"success": &schema{Type: "boolean", Const: true}}), append(c["Domain"].Required, "success")...).
		d("The selected domain, with `success`.")
	c["ResendDomainList"] = object(props{
		"domains": array(object(props{
			"id": str(), "name": str(), "status": ref("DomainStatus"), "region": str(),
		}, "id", "name", "status", "region")),
		"selected_domain_id": str().nullable().d("The Resend id of the organization's domain, if it is one of them."),
	}, "domains", "selected_domain_id")
}
