-- The task list sorted by due date or by priority (`GET /api/v1/tasks?sort_by=due|priority`,
-- the MCP list tool) read and sorted every task of the user to return one page: no index
-- matched the order by. These match the default orders exactly, ending in the same unique
-- keys, so a page is the first rows of an index range whatever the user's task count
-- (`cargo xtask bench data`, BENCHMARKS.md "Data growth").
--
-- The opposite orders (`order=desc` for due, `order=asc` for priority) mix directions the
-- backward scan does not give, and still sort; they are asked for far less.
CREATE INDEX tasks_user_due_order_idx
    ON tasks (user_id, due_at ASC NULLS LAST, created_at DESC, id DESC);
CREATE INDEX tasks_user_priority_order_idx
    ON tasks (user_id, priority_rank DESC, created_at DESC, id DESC);
