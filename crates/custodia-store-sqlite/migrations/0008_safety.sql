-- Members' safety settings: who may message them, connections (one row per pair, the
-- lower id first), and blocks (directed).

CREATE TABLE message_settings (
    user_id BLOB PRIMARY KEY,
    who     TEXT NOT NULL
);

CREATE TABLE connections (
    low          BLOB NOT NULL,
    high         BLOB NOT NULL,
    requested_by BLOB NOT NULL,
    accepted     INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (low, high)
) WITHOUT ROWID;
CREATE INDEX connections_by_high ON connections (high);

CREATE TABLE blocks (
    blocker BLOB NOT NULL,
    blocked BLOB NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (blocker, blocked)
) WITHOUT ROWID;
