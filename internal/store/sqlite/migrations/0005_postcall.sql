-- After the call: what the call ran with (the resolved assistant, echoed in the
-- end-of-call report) and where its webhooks go, the analysis error when the
-- structured analysis failed, the recording (object key and upload state),
-- the caller's recording-consent answer, and when GDPR-mode content expires.
ALTER TABLE calls ADD COLUMN assistant_snapshot TEXT NULL;
ALTER TABLE calls ADD COLUMN webhook_target TEXT NULL;
ALTER TABLE calls ADD COLUMN analysis_error TEXT NULL;
ALTER TABLE calls ADD COLUMN recording_key TEXT NULL;
ALTER TABLE calls ADD COLUMN recording_state TEXT NULL;
ALTER TABLE calls ADD COLUMN consent TEXT NULL;
ALTER TABLE calls ADD COLUMN content_expires_at BIGINT NULL;
CREATE INDEX calls_content_expiry ON calls (content_expires_at) WHERE content_expires_at IS NOT NULL;
