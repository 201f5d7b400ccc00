-- Owned by agent-sync: fetches of Chatra's visitor card (GET /clients/{id}) for a case, one
-- row per case and round ("case_opened", "chat_ended:{version}"). A case event enqueues the
-- row (a redelivered event finds the key taken); a background loop claims due rows with a
-- lease, calls Chatra and settles the row in the transaction that records what the card
-- taught on the case. Failures wait in the row (attempts, last_error) until next_attempt_at;
-- after the last attempt the row is `failed`.
CREATE TABLE agent_sync_visitor_fetches (
    id              bigserial   PRIMARY KEY,
    case_id         uuid        NOT NULL,
    round           text        NOT NULL,
    -- The case event that asked for the fetch, and its correlation id: the causation and
    -- correlation of what the card adds to the case.
    causation_id    text        NOT NULL,
    correlation_id  text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'fetching', 'done', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (case_id, round)
);

-- The claim reads only open rows.
CREATE INDEX agent_sync_visitor_fetches_due ON agent_sync_visitor_fetches (next_attempt_at)
    WHERE status IN ('pending', 'fetching');
