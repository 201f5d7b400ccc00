-- Where each case-event consumer stands in each stream: version v is acted on only after
-- every earlier version the consumer wants; a gap (a message dead-lettered, expired from
-- the event window, or skipped) is filled from the event store.
CREATE TABLE consumer_cursors (
    consumer   text        NOT NULL,
    stream_id  uuid        NOT NULL,
    version    bigint      NOT NULL CHECK (version >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, stream_id)
);

-- The last event stored before cursors existed. A stream whose first event is older has
-- no record of what its consumers did before: its cursor starts just before the first
-- event a consumer sees (as consumers worked until then). A newer stream starts at 0.
CREATE TABLE consumer_cursor_origin (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq      bigint  NOT NULL
);
INSERT INTO consumer_cursor_origin (seq) SELECT COALESCE(MAX(seq), 0) FROM events;
