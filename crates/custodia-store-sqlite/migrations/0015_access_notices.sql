-- Notices to members that staff read messages of theirs: the member's own data, one per
-- member and audit log entry. proof: the inclusion proof's 32-byte hashes, concatenated.
CREATE TABLE access_notices (
    id              BLOB PRIMARY KEY,
    user_id         BLOB NOT NULL,
    conversation_id BLOB NOT NULL,
    read_at         INTEGER NOT NULL,
    role            TEXT NOT NULL,
    reason          TEXT NOT NULL,
    case_id         BLOB NOT NULL,
    messages        INTEGER NOT NULL,
    first_sent_at   INTEGER NOT NULL,
    last_sent_at    INTEGER NOT NULL,
    log_index       INTEGER NOT NULL,
    checkpoint      TEXT NOT NULL,
    proof           BLOB NOT NULL,
    UNIQUE (user_id, log_index)
);
CREATE INDEX access_notices_by_user ON access_notices (user_id, read_at);
