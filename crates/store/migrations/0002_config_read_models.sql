-- Read models of configuration streams, rebuilt from `events` at any time.
CREATE TABLE groups (
    id         uuid        PRIMARY KEY,
    version    bigint      NOT NULL,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE integrations (
    id                      uuid        PRIMARY KEY,
    version                 bigint      NOT NULL,
    public_key              text        NOT NULL,
    -- AES-256-GCM with DESKIE_ENCRYPTION_KEY: a dump of this table reveals no secret.
    secret_key_encrypted    bytea       NOT NULL,
    default_group_id        uuid        NOT NULL,
    panel                   text        NOT NULL,
    group_mappings          jsonb       NOT NULL DEFAULT '[]'::jsonb,
    webhook_token_encrypted bytea       NOT NULL,
    webhook_token_sha256    bytea       NOT NULL,
    -- The version that last changed the settings; a key check answers for one version.
    settings_version        bigint      NOT NULL,
    status                  text        NOT NULL DEFAULT 'pending',
    status_checked_at       timestamptz,
    status_detail           text,
    disconnected_at         timestamptz,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL
);
