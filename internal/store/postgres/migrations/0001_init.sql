-- 0001: the control plane's tables. Timestamps are Unix milliseconds (UTC).
CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent_id TEXT NULL REFERENCES organizations (id),
    minutes_balance DOUBLE PRECISION NOT NULL DEFAULT 0,
    content_retention_days INTEGER NULL,
    metadata_retention_days INTEGER NULL,
    has_local_models_access BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX organizations_parent ON organizations (parent_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    revoked_at BIGINT NULL
);
CREATE INDEX api_keys_org ON api_keys (org_id);

CREATE TABLE assistants (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    body TEXT NOT NULL,
    secret TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX assistants_org ON assistants (org_id, created_at);

CREATE TABLE tool_templates (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    body TEXT NOT NULL,
    secret TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tool_templates_org ON tool_templates (org_id, created_at);

CREATE TABLE analysis_templates (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    body TEXT NOT NULL,
    secret TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX analysis_templates_org ON analysis_templates (org_id, created_at);

CREATE TABLE workflows (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    body TEXT NOT NULL,
    secret TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX workflows_org ON workflows (org_id, created_at);

CREATE TABLE mcp_servers (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    body TEXT NOT NULL,
    secret TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX mcp_servers_org_name ON mcp_servers (org_id, name);

CREATE TABLE sip_trunks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    body TEXT NOT NULL,
    secret TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX sip_trunks_org ON sip_trunks (org_id, created_at);

CREATE TABLE numbers (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    phone_number TEXT NOT NULL UNIQUE,
    name TEXT NULL,
    assistant_id TEXT NULL REFERENCES assistants (id) ON DELETE SET NULL,
    workflow_id TEXT NULL REFERENCES workflows (id),
    transfer_trunk_id TEXT NULL REFERENCES sip_trunks (id) ON DELETE SET NULL,
    source TEXT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX numbers_org ON numbers (org_id, created_at);
CREATE INDEX numbers_workflow ON numbers (workflow_id);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    status TEXT NOT NULL,
    system_message_template TEXT NULL,
    schedule_start_time TEXT NOT NULL,
    schedule_end_time TEXT NOT NULL,
    timezone TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX campaigns_org ON campaigns (org_id, created_at);
CREATE INDEX campaigns_agent ON campaigns (agent_id);

CREATE TABLE campaign_leads (
    id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    name TEXT NULL,
    variables TEXT NOT NULL,
    status TEXT NOT NULL,
    call_id TEXT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX campaign_leads_campaign ON campaign_leads (campaign_id, created_at);

CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    direction TEXT NULL,
    status TEXT NOT NULL,
    caller_phone TEXT NULL,
    assistant_phone TEXT NULL,
    end_reason TEXT NULL,
    error TEXT NULL,
    started_at BIGINT NULL,
    ended_at BIGINT NULL,
    duration_seconds INTEGER NULL,
    summary TEXT NULL,
    analysis_result TEXT NULL,
    messages TEXT NULL,
    room_name TEXT NULL,
    recording_url TEXT NULL,
    agent_id TEXT NULL,
    number_id TEXT NULL,
    agent_name TEXT NULL,
    business_name TEXT NULL,
    phone_number TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX calls_org_created ON calls (org_id, created_at);
CREATE INDEX calls_org_status ON calls (org_id, status);

CREATE TABLE usage_logs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    call_id TEXT NULL,
    duration_sec INTEGER NOT NULL,
    call_type TEXT NOT NULL,
    byok_stt BOOLEAN NOT NULL DEFAULT FALSE,
    byok_llm BOOLEAN NOT NULL DEFAULT FALSE,
    byok_tts BOOLEAN NOT NULL DEFAULT FALSE,
    phone_number TEXT NULL,
    agent_name TEXT NULL,
    business_name TEXT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX usage_logs_org_created ON usage_logs (org_id, created_at);

CREATE TABLE byok_keys (
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    secret_id TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, provider)
);

CREATE TABLE byok_configs (
    org_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    config TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, provider)
);
