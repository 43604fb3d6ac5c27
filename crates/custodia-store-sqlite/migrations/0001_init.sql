-- custodia SQLite schema, version 1.
-- Every message-related table leads with conversation_id, and no foreign key crosses
-- conversations, so the same shape can later be distributed by conversation.

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    birth_date    TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

-- token_hash is SHA-256 of the bearer token; the token itself is never stored.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    id         BLOB NOT NULL UNIQUE,
    user_id    BLOB NOT NULL,
    device     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE conversations (
    id            BLOB PRIMARY KEY,
    kind          TEXT NOT NULL,
    title         TEXT,
    created_by    BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    last_activity INTEGER NOT NULL
);

-- Keyed by the user pair (user_low < user_high), not by conversation.
CREATE TABLE direct_pairs (
    user_low        BLOB NOT NULL,
    user_high       BLOB NOT NULL,
    conversation_id BLOB NOT NULL,
    PRIMARY KEY (user_low, user_high)
);

CREATE TABLE members (
    conversation_id BLOB NOT NULL,
    user_id         BLOB NOT NULL,
    role            TEXT NOT NULL,
    read_seq        INTEGER NOT NULL DEFAULT 0,
    joined_at       INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);

-- sealed is NULL once a message is deleted for everyone (secure_delete zeroes the old bytes).
CREATE TABLE messages (
    conversation_id BLOB NOT NULL,
    seq             INTEGER NOT NULL,
    id              BLOB NOT NULL,
    sender_id       BLOB NOT NULL,
    client_id       TEXT NOT NULL,
    sent_at         INTEGER NOT NULL,
    epoch           TEXT NOT NULL,
    sealed          BLOB,
    deleted_at      INTEGER,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, sender_id, client_id)
) WITHOUT ROWID;

-- Data keys, only ever wrapped by a key-encryption key.
CREATE TABLE deks (
    conversation_id BLOB NOT NULL,
    epoch           TEXT NOT NULL,
    kek_version     INTEGER NOT NULL,
    wrapped         BLOB NOT NULL,
    PRIMARY KEY (conversation_id, epoch)
) WITHOUT ROWID;
