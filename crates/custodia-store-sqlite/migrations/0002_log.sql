-- The transparency log: entries with their leaf hashes, the hashes of completed tile
-- levels (level L >= 1 holds subtree hashes of height 8L), and the last signed checkpoint.
-- Append-only: nothing here is ever updated or deleted, except the checkpoint row, which
-- only moves forward.

CREATE TABLE log_leaves (
    idx   INTEGER PRIMARY KEY,
    entry BLOB NOT NULL,
    hash  BLOB NOT NULL
);

CREATE TABLE log_hashes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TABLE log_checkpoint (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    note TEXT NOT NULL
);
