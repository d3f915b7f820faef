-- The campaign dialer (issue 15): per-campaign pacing (NULL means the
-- documented default), days of the week, why the platform paused a campaign
-- and until when it backs off after a congested trunk; per lead when its next
-- attempt is due, what its last attempt came to, and which process life
-- claimed it (a claim whose process died before any call row existed is
-- handed back uncounted). The organization-wide cap on concurrent campaign
-- calls is per organization (NULL: the server's default). Live calls are
-- counted per number for trunks' channel limits.
ALTER TABLE campaigns ADD COLUMN max_concurrent_calls INTEGER NULL;
ALTER TABLE campaigns ADD COLUMN calls_per_second REAL NULL;
ALTER TABLE campaigns ADD COLUMN max_attempts INTEGER NULL;
ALTER TABLE campaigns ADD COLUMN retry_delay_seconds INTEGER NULL;
ALTER TABLE campaigns ADD COLUMN days_of_week TEXT NULL;
ALTER TABLE campaigns ADD COLUMN status_reason TEXT NULL;
ALTER TABLE campaigns ADD COLUMN backoff_until BIGINT NULL;
CREATE INDEX campaigns_status ON campaigns (status);
ALTER TABLE campaign_leads ADD COLUMN next_attempt_at BIGINT NULL;
ALTER TABLE campaign_leads ADD COLUMN last_outcome TEXT NULL;
ALTER TABLE campaign_leads ADD COLUMN dial_boot TEXT NULL;
CREATE INDEX campaign_leads_due ON campaign_leads (campaign_id, status, next_attempt_at);
CREATE INDEX campaign_leads_queue ON campaign_leads (campaign_id, status, created_at, id);
CREATE INDEX campaign_leads_recent ON campaign_leads (campaign_id, last_attempt_at);
CREATE INDEX campaign_leads_calling ON campaign_leads (org_id) WHERE status = 'calling';
CREATE INDEX calls_live_number ON calls (number_id) WHERE status IN ('connecting', 'ringing', 'dialing', 'in-progress');
ALTER TABLE organizations ADD COLUMN max_concurrent_campaign_calls INTEGER NULL;
