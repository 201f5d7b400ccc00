-- Bounded state per case (issue 12): the case's state as of `version`, compacted (no Chatra
-- message ids, no delivered replies, no settled notifications), kept in the transaction that
-- appends. A writer folds only the events after it. `format` names the state's shape: a row
-- of another format is ignored and rewritten (the writer folds the whole history once).
CREATE TABLE case_snapshots (
    case_id    uuid        PRIMARY KEY,
    version    bigint      NOT NULL CHECK (version > 0),
    format     integer     NOT NULL,
    state      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- What the compacted state leaves out and decisions ask about by id: each Chatra message id
-- a case holds and, for a delivered reply, the reply it settled. Written with the snapshot;
-- complete for every case that has one (a case without a snapshot gets all of its ids when
-- its history is first folded).
CREATE TABLE case_chatra_messages (
    case_id           uuid NOT NULL,
    chatra_message_id text NOT NULL,
    reply_id          text,
    PRIMARY KEY (case_id, chatra_message_id)
);
CREATE INDEX case_chatra_messages_replies ON case_chatra_messages (case_id, reply_id)
    WHERE reply_id IS NOT NULL;
