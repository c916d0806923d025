-- notification's reminder sweep asks, every half minute, for the pending tasks whose reminder
-- falls in a window around now (`GET /internal/reminders`), in (remind_at, id) order so it can
-- page with a cursor. Completed tasks and tasks without a reminder are never asked for, so they
-- stay out of the index.
CREATE INDEX tasks_pending_reminder_idx ON tasks (remind_at, id)
    WHERE remind_at IS NOT NULL AND NOT completed;
