-- At most one generated task per occurrence of a series, whatever the idempotency key: the key
-- (the completion event's id) alone let the same completion, delivered again under another event
-- id, create a second task for the same date. `create_next_occurrence` answers a collision on
-- this index (or on tasks_occurrence_key_key) with the task created first.
--
-- Why the index stays right with `parent_task_id ... ON DELETE SET NULL`: deleting a series' first
-- task sets parent_task_id of its occurrences to NULL, and rows without a parent are outside this
-- partial index (user-created tasks are there too, all at index 0). So SET NULL only ever removes
-- rows from the index: it cannot make two rows collide, and deleting a first task can never fail
-- on it. An orphaned occurrence that is completed later starts its own series — its parent
-- becomes its own id (`parent_task_id` or else the task's id) — and the (parent, index) pairs of
-- that series are new to the index, which then guards them as it guarded the old ones.

-- Tasks the old behaviour duplicated would stop the index from being built. The first of each
-- (parent, index) stays in the series; the later ones stay the user's tasks, without the link to
-- the series (as if its first task had been deleted). Nothing is deleted.
UPDATE tasks SET parent_task_id = NULL
WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY parent_task_id, occurrence_index
                                      ORDER BY created_at, id) AS n
        FROM tasks
        WHERE parent_task_id IS NOT NULL
    ) ranked
    WHERE n > 1
);

CREATE UNIQUE INDEX tasks_parent_occurrence_index_key
    ON tasks (parent_task_id, occurrence_index)
    WHERE parent_task_id IS NOT NULL;

-- The unique index leads with parent_task_id under the same predicate, so it serves the lookups
-- ON DELETE SET NULL makes as well as this one did.
DROP INDEX tasks_parent_idx;
