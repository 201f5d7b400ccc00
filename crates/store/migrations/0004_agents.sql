-- The agents read model (stream_type "agent"), rebuilt from `events` at any time.
CREATE TABLE agents (
    id             uuid        PRIMARY KEY,
    version        bigint      NOT NULL,
    email          text        NOT NULL,
    name           text        NOT NULL,
    -- Channels whose cases the agent may see and answer, e.g. {live_chat}.
    channel_access text[]      NOT NULL DEFAULT '{}',
    -- SHA-256 of the agent's API token; the token itself is never stored.
    token_sha256   bytea       NOT NULL,
    disabled_at    timestamptz,
    -- "online" or "offline"; kept in Chatra by agent-sync.
    status         text        NOT NULL DEFAULT 'offline',
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

-- One enabled agent per email, compared case-insensitively: the api checks under an advisory
-- lock on the email (agents::lock_email). Not a UNIQUE index: a rebuild applies one stream
-- after another, and an earlier agent's final email may be a later agent's former one.
CREATE INDEX agents_email_enabled ON agents (lower(email)) WHERE disabled_at IS NULL;

-- Every authenticated request of an agent looks its token up here.
CREATE INDEX agents_token_sha256 ON agents (token_sha256) WHERE disabled_at IS NULL;
