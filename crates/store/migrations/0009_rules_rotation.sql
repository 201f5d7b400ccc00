-- The rules service's own state: per group, the agent its round-robin assigned last, so the
-- next case goes to the next online agent (docs/services/rules.md).
CREATE TABLE rules_rotation (
    group_id      uuid        PRIMARY KEY,
    last_agent_id uuid        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
