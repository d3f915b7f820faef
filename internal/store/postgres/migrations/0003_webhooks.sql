-- Webhooks: the organization's own webhook, a durable outbox written in the
-- same transaction as the state change it announces, and a delivery log.
ALTER TABLE organizations ADD COLUMN webhook_url TEXT NULL;
ALTER TABLE organizations ADD COLUMN webhook_secret TEXT NULL;

CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    call_id TEXT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    event_type TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT NULL,
    failed_at BIGINT NULL,
    last_error TEXT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_outbox_org ON webhook_outbox (org_id, created_at);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    call_id TEXT NULL,
    url TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status_code INTEGER NULL,
    error TEXT NULL,
    duration_ms INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_org ON webhook_deliveries (org_id, created_at);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
