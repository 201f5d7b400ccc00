-- agent-sync: which Chatra agent each Deskie agent is, per integration (the read model of
-- `AgentChatraLinked` on agent streams), and how far agents' customer edits reached Chatra.

-- One row per Chatra agent of an integration: the Deskie agent it is. A Deskie agent has at
-- most one Chatra agent per integration (a new link for the same integration replaces the
-- old one). `linked_at` (the event's time) decides between links written by different agent
-- streams, so a stream-by-stream rebuild ends where the live projection did.
CREATE TABLE agent_chatra_links (
    integration_id  uuid        NOT NULL,
    chatra_agent_id text        NOT NULL,
    agent_id        uuid        NOT NULL,
    -- "delivery" or "mirrored_message".
    learnt_from     text        NOT NULL,
    -- The case whose message taught the link.
    case_id         uuid,
    linked_at       timestamptz NOT NULL,
    PRIMARY KEY (integration_id, chatra_agent_id)
);
CREATE INDEX agent_chatra_links_by_agent ON agent_chatra_links (agent_id, integration_id);

-- Owned by agent-sync: per case, the version of the last agent edit of customer data that
-- was sent to Chatra (`PUT /clients/{id}`). An older edit redelivered after a newer one was
-- sent is not sent again.
CREATE TABLE agent_sync_client_updates (
    case_id    uuid        PRIMARY KEY,
    version    bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The online agents agent-sync reports to Chatra, read on every tick.
CREATE INDEX agents_online ON agents (id) WHERE status = 'online' AND disabled_at IS NULL;
