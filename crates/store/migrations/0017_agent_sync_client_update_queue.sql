-- agent-sync on the case-event adapter (deskie_store::case_consumer).
--
-- 1. Customer edits become a queue. The case-event consumer no longer calls Chatra under the
--    case's lock: in the case's transaction it only records that the case's agent edits are
--    due up to `due_up_to`; a worker claims due rows with a lease, sends what Chatra is
--    missing between `version` (sent up to) and `due_up_to` in one `PUT /clients/{id}`, and
--    settles its claim fenced by `claims`. One row per case: one call per case at a time.
ALTER TABLE agent_sync_client_updates
    -- The newest agent edit (case version) Chatra is to be told about.
    ADD COLUMN due_up_to       bigint      NOT NULL DEFAULT 0,
    -- Failed attempts since the last success (the backoff doubles with each).
    ADD COLUMN failures        integer     NOT NULL DEFAULT 0,
    -- Claims so far: the fencing token of the current claim.
    ADD COLUMN claims          bigint      NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN lease_until     timestamptz,
    ADD COLUMN last_error      text;
-- Every row written so far was settled: what was due is what was sent.
UPDATE agent_sync_client_updates SET due_up_to = version;

-- The claim reads only due rows.
CREATE INDEX agent_sync_client_updates_due ON agent_sync_client_updates (next_attempt_at)
    WHERE due_up_to > version;

-- 2. Where a consumer's cursors start, per consumer that took to cursors after migration
--    0013 (`consumer_cursor_origin` holds for the others). agent-sync acted on case events
--    without a cursor until now: a case whose first event is older starts just before the
--    first event agent-sync sees of it, instead of acting on its whole history again.
CREATE TABLE consumer_cursor_origins (
    consumer text   PRIMARY KEY,
    seq      bigint NOT NULL
);
INSERT INTO consumer_cursor_origins (consumer, seq)
    SELECT 'agent_sync_cases', COALESCE(MAX(seq), 0) FROM events;
