-- The retention job (crates/store/src/retention) deletes by age in batches: these indexes
-- let each batch find its rows without scanning the table.
CREATE INDEX inbox_processed_at ON inbox (processed_at);
CREATE INDEX outbox_settled_at ON outbox (updated_at) WHERE status IN ('sent', 'failed');
CREATE INDEX agent_sync_visitor_fetches_settled_at ON agent_sync_visitor_fetches (updated_at)
    WHERE status IN ('done', 'failed');
