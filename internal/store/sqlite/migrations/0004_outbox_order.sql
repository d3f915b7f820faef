-- One call's webhook events to one URL are delivered in seq order: a claim
-- looks for an earlier pending event of the same call and URL.
CREATE INDEX webhook_outbox_call_pending ON webhook_outbox (call_id, url, seq) WHERE delivered_at IS NULL AND failed_at IS NULL;
