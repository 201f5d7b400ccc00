-- The append-only event store: one row per event, a version per stream.
CREATE TABLE events (
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    -- The writing transaction's id. The relay reads only below pg_snapshot_xmin, ordered by
    -- (tx_id, seq), so a late-committing row is never skipped (reference/scale-out.md §2.3).
    tx_id         xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id      uuid        PRIMARY KEY,
    stream_type   text        NOT NULL,
    stream_id     uuid        NOT NULL,
    version       bigint      NOT NULL CHECK (version > 0),
    event_type    text        NOT NULL,
    -- The protobuf-encoded deskie.events.v1.Envelope, exactly as published.
    payload       bytea       NOT NULL,
    -- W3C trace context of the writer, published with the event.
    trace_context jsonb       NOT NULL DEFAULT '{}'::jsonb,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version UNIQUE (stream_id, version)
);
CREATE INDEX events_relay_order ON events (tx_id, seq);

-- Where each relay is; `epoch` fences a deposed leader out of the checkpoint.
CREATE TABLE relay_checkpoint (
    relay      text        PRIMARY KEY,
    last_tx    xid8        NOT NULL DEFAULT '0',
    last_seq   bigint      NOT NULL DEFAULT 0,
    epoch      bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- What each consumer has already processed (per consumer, per message id).
CREATE TABLE inbox (
    consumer     text        NOT NULL,
    message_id   text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- Intents of effects outside our system (replies to Chatra, Slack, Telegram), one per
-- unique key, written in the same transaction as the decision that caused them.
CREATE TABLE outbox (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    intent_key  text        NOT NULL UNIQUE,
    kind        text        NOT NULL,
    stream_id   uuid,
    payload     jsonb       NOT NULL,
    status      text        NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown')),
    attempts    integer     NOT NULL DEFAULT 0,
    not_before  timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due ON outbox (kind, not_before) WHERE status IN ('pending', 'sending');
