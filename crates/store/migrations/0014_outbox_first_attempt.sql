-- What certainly did not reach a peer is retried for a window counted from its first attempt
-- (docs/services/outbound.md, DESKIE_OUTBOUND_RETRY_WINDOW_SECS): when that attempt was
-- claimed. NULL until the first claim; a claim given back untried (`release`) clears it again.
ALTER TABLE outbox ADD COLUMN first_attempt_at timestamptz;
