-- The voice engine keeps the SIP dialog id and per-turn latency on each call.
ALTER TABLE calls ADD COLUMN sip_call_id TEXT NULL;
ALTER TABLE calls ADD COLUMN metrics TEXT NULL;
