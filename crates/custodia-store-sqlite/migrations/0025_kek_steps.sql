-- The life of each key-encryption key version: made current by the operator (rotated),
-- nothing sealed under an older version left (rewrapped), destroyed (retired). A running
-- server logs each step and records the log entry's index here.
CREATE TABLE kek_steps (
    kind      TEXT NOT NULL,
    version   BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    detail    TEXT NOT NULL,
    log_index BIGINT,
    PRIMARY KEY (kind, version)
);
