-- The rules read model (stream_type "rule"), rebuilt from `events` at any time.
CREATE TABLE rules (
    id                uuid        PRIMARY KEY,
    version           bigint      NOT NULL,
    -- Copied out of `spec` for listing and evaluation order.
    name              text        NOT NULL,
    trigger           text        NOT NULL,
    enabled           boolean     NOT NULL,
    position          bigint      NOT NULL,
    stop_processing   boolean     NOT NULL,
    -- The rule as the admin sent it (docs/rules.md), every credential an empty string.
    spec              jsonb       NOT NULL,
    -- The credentials: secret_paths[i] (e.g. "actions[3].webhook_url") is where
    -- secrets_encrypted[i] belongs in `spec`. AES-256-GCM with DESKIE_ENCRYPTION_KEY: a dump
    -- of this table reveals no Slack webhook URL or Telegram bot token.
    secret_paths      text[]      NOT NULL DEFAULT '{}',
    secrets_encrypted bytea[]     NOT NULL DEFAULT '{}',
    -- Deleted rules keep their row (and version), so an old event applied again cannot
    -- bring them back; they are neither listed nor evaluated.
    deleted_at        timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

-- The rules service reads the enabled rules of one trigger in evaluation order.
CREATE INDEX rules_evaluation_order ON rules (trigger, position, id) WHERE deleted_at IS NULL;
