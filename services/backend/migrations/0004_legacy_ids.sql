-- The map from the original (Python) system's integer ids to ours, kept by `backend
-- import-legacy` and read by the MCP tools, which still accept an original id for the caller's
-- own task, category or tag (an assistant conversation may hold one from before the switch).
--
-- No foreign key to the mapped row: a row deleted here since its import keeps its entry, so a
-- later import run knows it was imported once and does not bring it back, and an old id of it
-- answers "not found" like any other missing id. `user_id` is the owner in the original system,
-- which every lookup is scoped by.
CREATE TABLE legacy_ids (
    kind        text NOT NULL CHECK (kind IN ('task', 'category', 'tag')),
    legacy_id   bigint NOT NULL,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    -- The original label was folded into a label of the same name (ignoring case) that existed
    -- already; it never renames or deletes that label.
    merged      boolean NOT NULL DEFAULT false,
    -- A digest of the original row as last imported: a run writes only rows whose digest changed.
    fingerprint uuid NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, legacy_id)
);
CREATE INDEX legacy_ids_user_idx ON legacy_ids (user_id);
