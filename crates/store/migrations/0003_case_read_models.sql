-- Read models of case streams, written by `read_models::cases::catch_up` (the projector,
-- and every writer of case events inside its own transaction) and rebuilt by `deskie replay`.
-- `version` is the last case event applied: the ordering fence.
CREATE TABLE cases (
    id               uuid        PRIMARY KEY,
    version          bigint      NOT NULL,
    integration_id   uuid        NOT NULL,
    channel          text        NOT NULL,
    status           text        NOT NULL,
    group_id         uuid        NOT NULL,
    assignee_id      uuid,
    panel            text        NOT NULL,
    chatra_client_id text        NOT NULL,
    chatra_chat_id   text        NOT NULL,
    chatra_group_id  text,
    customer_name    text,
    customer_email   text,
    customer_phone   text,
    -- Contact-form fields in the form's order: [{"key": …, "value": …}, …].
    customer_fields  jsonb       NOT NULL DEFAULT '[]'::jsonb,
    -- {"ip", "browser", "os", "language", "location", "last_visit" (RFC 3339)}, null when unknown.
    customer_details jsonb       NOT NULL DEFAULT
        '{"ip": null, "browser": null, "os": null, "language": null, "location": null, "last_visit": null}'::jsonb,
    chat_ended       boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
-- Listing is newest first with keyset pagination on (created_at, id), optionally filtered.
CREATE INDEX cases_newest ON cases (created_at DESC, id DESC);
CREATE INDEX cases_by_status ON cases (status, created_at DESC, id DESC);
CREATE INDEX cases_by_group ON cases (group_id, created_at DESC, id DESC);
CREATE INDEX cases_by_assignee ON cases (assignee_id, created_at DESC, id DESC);

-- Every message of a case. Ids come from the events, so re-applying one changes nothing.
CREATE TABLE case_messages (
    id                uuid        PRIMARY KEY,
    case_id           uuid        NOT NULL,
    -- The version of the case event that added the message: the tie-break after created_at.
    position          bigint      NOT NULL,
    author            text        NOT NULL CHECK (author IN ('customer', 'agent', 'system')),
    agent_id          uuid,
    chatra_agent_id   text,
    chatra_message_id text,
    text              text        NOT NULL,
    source            text        NOT NULL,
    created_at        timestamptz NOT NULL,
    delivery          text        NOT NULL
                      CHECK (delivery IN ('received', 'pending', 'sent', 'failed', 'unknown')),
    -- [{"filename", "size", "is_image", "url", "preview_url", "width", "height"}, …]
    attachments       jsonb       NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX case_messages_in_order ON case_messages (case_id, created_at, position);
