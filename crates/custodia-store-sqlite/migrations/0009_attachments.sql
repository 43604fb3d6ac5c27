-- Attachments, sealed under their own keys (sealed in turn under the epoch DEK, with a
-- commitment to the key); hash lists (indexed lookups); flagged members.

CREATE TABLE attachments (
    conversation_id BLOB NOT NULL,
    id              BLOB NOT NULL UNIQUE,
    uploader        BLOB NOT NULL,
    epoch           TEXT NOT NULL,
    size            INTEGER NOT NULL,
    content_type    TEXT NOT NULL,
    sealed_key      BLOB NOT NULL,
    key_commitment  BLOB NOT NULL,
    blob            BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    preserved       INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, id)
) WITHOUT ROWID;

CREATE TABLE hash_list (
    kind TEXT NOT NULL,
    hash BLOB NOT NULL,
    list TEXT NOT NULL,
    PRIMARY KEY (kind, hash)
) WITHOUT ROWID;

CREATE TABLE user_flags (
    user_id BLOB NOT NULL,
    reason  TEXT NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX user_flags_by_user ON user_flags (user_id);
