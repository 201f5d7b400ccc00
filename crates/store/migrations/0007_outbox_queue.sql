-- One open intent per stream: an intent enqueued behind an open one of its stream waits as
-- `queued` and is promoted to `pending` when the one before it settles. Claims then read only
-- what is due (no scan over a case's waiting intents), however long the backlog.
ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('queued', 'pending', 'sending', 'sent', 'failed', 'unknown'));

DROP INDEX outbox_stream_open;
CREATE INDEX outbox_stream_open ON outbox (stream_id, id)
    WHERE status IN ('queued', 'pending', 'sending');
