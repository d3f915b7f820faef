-- Retention (spec §7.14, §12.8): when a call's content (transcript, summary,
-- analysis, recording) and its metadata (caller's number, campaign link,
-- webhook events) were purged under its organization's retention settings,
-- so that a pass never looks at a purged call again. The partial indexes make
-- "the calls of an organization that ended before T and are not purged yet"
-- a range scan in (ended_at, id) order, which is how a pass pages.
ALTER TABLE calls ADD COLUMN content_purged_at BIGINT NULL;
ALTER TABLE calls ADD COLUMN metadata_purged_at BIGINT NULL;
CREATE INDEX calls_content_due ON calls (org_id, ended_at, id) WHERE content_purged_at IS NULL AND ended_at IS NOT NULL;
CREATE INDEX calls_metadata_due ON calls (org_id, ended_at, id) WHERE metadata_purged_at IS NULL AND ended_at IS NOT NULL;
-- A purge finds the call's webhook events, delivery attempts and campaign
-- lead by call id.
CREATE INDEX webhook_outbox_call ON webhook_outbox (call_id) WHERE call_id IS NOT NULL;
CREATE INDEX webhook_deliveries_call ON webhook_deliveries (call_id) WHERE call_id IS NOT NULL;
CREATE INDEX campaign_leads_call ON campaign_leads (call_id) WHERE call_id IS NOT NULL;
