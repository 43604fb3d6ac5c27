-- Staff accounts and sessions. The TOTP secret is stored only sealed by the key service
-- (KEK version + sealed bytes); last_totp_step makes every code single-use.
-- token_hash is SHA-256 of the bearer token; the token itself is never stored.

CREATE TABLE staff (
    id               BLOB PRIMARY KEY,
    username         TEXT NOT NULL UNIQUE,
    password_hash    TEXT NOT NULL,
    totp_kek_version INTEGER NOT NULL,
    totp_sealed      BLOB NOT NULL,
    role             TEXT NOT NULL,
    active           INTEGER NOT NULL,
    last_totp_step   INTEGER,
    created_at       INTEGER NOT NULL
);

CREATE TABLE staff_sessions (
    token_hash BLOB PRIMARY KEY,
    id         BLOB NOT NULL UNIQUE,
    staff_id   BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX staff_sessions_by_staff ON staff_sessions (staff_id);
