-- The outbox is outbound's ledger of effects outside our system (see docs/services/outbound.md).
-- `unknown` rows wait for Chatra's echo until settle_by, then become `failed`.
ALTER TABLE outbox ADD COLUMN settle_by timestamptz;

-- One case's intents go out in order: a row is claimable only when no earlier row of the same
-- stream is still pending or in flight.
CREATE INDEX outbox_stream_open ON outbox (stream_id, id) WHERE status IN ('pending', 'sending');

-- The deadline sweep.
CREATE INDEX outbox_unknown_due ON outbox (settle_by) WHERE status = 'unknown';
