-- Whether a task has an event waiting, asked by every write that enqueues one (a task's first
-- waiting event is handed to the relay in memory; later ones wait for their turn). Only waiting
-- rows are indexed, so its size follows the backlog, not the history.
CREATE INDEX outbox_pending_task_idx ON outbox (aggregate_id) WHERE published_at IS NULL;
