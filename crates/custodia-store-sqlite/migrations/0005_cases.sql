-- Cases and access requests. No message content: a case names a conversation and a range
-- of sequence numbers; the reporter's comment is stored sealed by the key service.
-- Keyed by conversation where a row concerns one, for later distribution.

CREATE TABLE cases (
    id              BLOB PRIMARY KEY,
    kind            TEXT NOT NULL,
    conversation_id BLOB NOT NULL,
    reporter        BLOB,
    category        TEXT,
    comment         BLOB,
    reported        TEXT NOT NULL,      -- space-separated sequence numbers
    scope_from      INTEGER NOT NULL,
    scope_to        INTEGER NOT NULL,
    reference       TEXT,
    opened_by       BLOB,
    opened_at       INTEGER NOT NULL
);

CREATE TABLE access_requests (
    id              BLOB PRIMARY KEY,
    case_id         BLOB NOT NULL,
    requester       BLOB NOT NULL,
    requester_role  TEXT NOT NULL,
    reason          TEXT NOT NULL,
    conversation_id BLOB NOT NULL,
    seq_from        INTEGER NOT NULL,
    seq_to          INTEGER NOT NULL,
    tier            TEXT NOT NULL,
    duration_ms     INTEGER NOT NULL,
    justification   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    pending_until   INTEGER NOT NULL,
    broad           INTEGER NOT NULL,
    required        INTEGER NOT NULL,
    status          TEXT NOT NULL,
    granted_from    INTEGER,
    granted_until   INTEGER
);
CREATE INDEX access_requests_by_case ON access_requests (case_id);

-- The approvers eligible when the request was made (frozen).
CREATE TABLE request_approvers (
    request_id BLOB NOT NULL,
    staff_id   BLOB NOT NULL,
    PRIMARY KEY (request_id, staff_id)
) WITHOUT ROWID;

-- One decision per approver and request.
CREATE TABLE request_decisions (
    request_id    BLOB NOT NULL,
    staff_id      BLOB NOT NULL,
    role          TEXT NOT NULL,
    approve       INTEGER NOT NULL,
    justification TEXT NOT NULL,
    at            INTEGER NOT NULL,
    log_index     INTEGER NOT NULL,
    PRIMARY KEY (request_id, staff_id)
) WITHOUT ROWID;
