-- The backend schema: users, categories, tags, tasks, task_tags and the transactional outbox.
-- Requires PostgreSQL 15+ (ON DELETE SET NULL with a column list).

-- One row per JWT subject, written on first sight and refreshed on later requests.
CREATE TABLE users (
    id            text PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 255),
    email         text,
    display_name  text,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE categories (
    id         uuid PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 50),
    color      text CHECK (color ~ '^#[0-9A-Fa-f]{6}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Target of the tasks' composite foreign key: a task can only point at its owner's category.
    CONSTRAINT categories_id_user_key UNIQUE (id, user_id)
);
CREATE UNIQUE INDEX categories_user_name_key ON categories (user_id, lower(name));

CREATE TABLE tags (
    id         uuid PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 30),
    color      text CHECK (color ~ '^#[0-9A-Fa-f]{6}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tags_user_name_key ON tags (user_id, lower(name));

CREATE TABLE tasks (
    id               uuid PRIMARY KEY,
    user_id          text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title            text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description      text NOT NULL DEFAULT '',
    completed        boolean NOT NULL DEFAULT false,
    completed_at     timestamptz,
    priority         text NOT NULL DEFAULT 'medium'
                     CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    -- Sort key for priority: urgent > high > medium > low.
    priority_rank    smallint GENERATED ALWAYS AS (
                         CASE priority WHEN 'low' THEN 0 WHEN 'medium' THEN 1
                                       WHEN 'high' THEN 2 ELSE 3 END) STORED,
    category_id      uuid,
    due_at           timestamptz,
    remind_at        timestamptz,
    recurrence_rule  text CHECK (char_length(recurrence_rule) BETWEEN 1 AND 500),
    parent_task_id   uuid REFERENCES tasks (id) ON DELETE SET NULL,
    occurrence_index integer NOT NULL DEFAULT 0 CHECK (occurrence_index >= 0),
    -- Idempotency key of a generated occurrence (the completion event id): one task per key.
    occurrence_key   text CONSTRAINT tasks_occurrence_key_key UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    search_vector    tsvector GENERATED ALWAYS AS (
                         setweight(to_tsvector('simple', title), 'A') ||
                         setweight(to_tsvector('simple', description), 'B')) STORED,
    CONSTRAINT tasks_completed_at_check CHECK (completed = (completed_at IS NOT NULL)),
    -- Deleting a category clears only category_id (user_id stays).
    CONSTRAINT tasks_category_fk FOREIGN KEY (category_id, user_id)
        REFERENCES categories (id, user_id) ON DELETE SET NULL (category_id)
);
CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at DESC, id);
CREATE INDEX tasks_user_due_idx ON tasks (user_id, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX tasks_user_pending_idx ON tasks (user_id, created_at DESC) WHERE NOT completed;
CREATE INDEX tasks_category_idx ON tasks (category_id) WHERE category_id IS NOT NULL;
CREATE INDEX tasks_parent_idx ON tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;
CREATE INDEX tasks_search_idx ON tasks USING gin (search_vector);

CREATE TABLE task_tags (
    task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    tag_id  uuid NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, tag_id)
);
CREATE INDEX task_tags_tag_idx ON task_tags (tag_id);

-- Events written in the same transaction as the change; published in `seq` order by the relay.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,                -- the CloudEvent id
    seq          bigserial NOT NULL UNIQUE,       -- global publication order
    aggregate_id uuid NOT NULL,                   -- the task id (no FK: deletions keep events)
    topic        text NOT NULL,
    event_type   text NOT NULL,
    event        jsonb NOT NULL,                  -- the structured CloudEvent as published
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX outbox_pending_idx ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;
