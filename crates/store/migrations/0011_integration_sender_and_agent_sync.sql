-- The identity replies without an agent are sent to Chatra under ('' = the default), and
-- whether agents' online status reaches Chatra (agent-sync's IntegrationAgentStatusSyncChanged).
ALTER TABLE integrations
    ADD COLUMN sender_name text NOT NULL DEFAULT '',
    ADD COLUMN sender_email text NOT NULL DEFAULT '',
    ADD COLUMN agent_sync_status text NOT NULL DEFAULT 'unknown',
    ADD COLUMN agent_sync_http_status integer,
    ADD COLUMN agent_sync_since timestamptz,
    ADD COLUMN agent_sync_detail text;
