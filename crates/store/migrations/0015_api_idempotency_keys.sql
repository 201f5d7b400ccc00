-- Owned by the api: the answers to creating POSTs that carried an `Idempotency-Key` header,
-- so a retried request gets the first answer instead of acting twice. One row per caller,
-- method, path and key. A row is claimed (no response yet, `locked_until` set) before the
-- handler runs, then completed with the answer, or deleted when the answer must not be kept
-- (5xx, "retry"). Rows older than the retention (DESKIE_IDEMPOTENCY_RETENTION_SECS) no longer
-- count and are pruned by the api.
CREATE TABLE api_idempotency_keys (
    -- Who asked: `admin` or `agent:{uuid}`.
    caller          text        NOT NULL,
    method          text        NOT NULL,
    path            text        NOT NULL,
    idempotency_key text        NOT NULL,
    -- SHA-256 of the request body: the same key with another body is refused.
    request_sha256  bytea       NOT NULL,
    -- Fences the claim: only the request holding it may complete or release the row.
    claim_id        uuid        NOT NULL,
    -- While the first request runs; a claim whose holder died is taken over after this.
    locked_until    timestamptz,
    -- The stored answer (NULL while in flight). The body is encrypted with
    -- DESKIE_ENCRYPTION_KEY: some answers show a secret once (an agent's token).
    response_status smallint,
    response_headers jsonb,
    response_body_encrypted bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    PRIMARY KEY (caller, method, path, idempotency_key),
    CHECK ((response_status IS NULL) = (completed_at IS NULL))
);

-- The pruning deletes by age.
CREATE INDEX api_idempotency_keys_created_at ON api_idempotency_keys (created_at);
