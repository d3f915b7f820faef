-- Every call accounted for. Each process life of a node (a boot) has a row it
-- keeps fresh while it runs; a call names the boot that runs it, so a node
-- that restarts, or any node once another stops heartbeating, can end the
-- calls a crash left live. Usage logs say how many minutes a call cost and
-- whose balance paid (a child organization's parent); a call is billed once.
-- A usage log is unsettled until the billing job folds it into its payer's
-- stored balance: the balance is the stored one minus the unsettled minutes,
-- so a call's end never waits for a lock on its organization's row.
CREATE TABLE node_boots (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at BIGINT NULL
);
CREATE INDEX node_boots_node ON node_boots (node_id, started_at);
ALTER TABLE calls ADD COLUMN boot_id TEXT NULL;
CREATE INDEX calls_live_boot ON calls (boot_id) WHERE status IN ('connecting', 'ringing', 'dialing', 'in-progress');
ALTER TABLE usage_logs ADD COLUMN minutes_used DOUBLE PRECISION NULL;
ALTER TABLE usage_logs ADD COLUMN billed_org_id TEXT NULL;
ALTER TABLE usage_logs ADD COLUMN settled_at BIGINT NULL;
CREATE INDEX usage_logs_unsettled ON usage_logs (billed_org_id) WHERE settled_at IS NULL;
CREATE UNIQUE INDEX usage_logs_call ON usage_logs (call_id) WHERE call_id IS NOT NULL;
