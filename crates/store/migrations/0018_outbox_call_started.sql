-- Whether the current claim of a row reached its call: set by the last check before the
-- request leaves (`outbox::renew_lease`), cleared by every claim. A claim whose lease ran
-- out with it unset never called, so the next claim may send again instead of recording
-- the reply `unknown` (docs/services/outbound.md).
ALTER TABLE outbox ADD COLUMN call_started boolean NOT NULL DEFAULT false;
