-- E-mail sending domains (spec §7.12): one per organization, backed by a
-- domain in the organization's Resend account. records is the JSON array of
-- DNS records Resend asks for, as last read from Resend.
CREATE TABLE email_domains (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL UNIQUE REFERENCES organizations (id) ON DELETE CASCADE,
    domain_name TEXT NOT NULL,
    resend_domain_id TEXT NULL,
    status TEXT NOT NULL,
    region TEXT NOT NULL,
    records TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    verified_at BIGINT NULL
);
