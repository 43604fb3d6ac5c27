-- Preservation holds: an account's conversations over a period, frozen.
CREATE TABLE legal_holds (
    id               BLOB PRIMARY KEY,
    legal_request_id BLOB NOT NULL,
    account          BLOB NOT NULL,
    period_from      INTEGER NOT NULL,
    period_to        INTEGER NOT NULL,
    placed_by        BLOB NOT NULL,
    placed_at        INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    extended         INTEGER NOT NULL,
    ended_at         INTEGER,
    ended_how        TEXT
);
CREATE INDEX legal_holds_by_request ON legal_holds (legal_request_id, placed_at);
CREATE TABLE legal_hold_conversations (
    hold_id         BLOB NOT NULL,
    conversation_id BLOB NOT NULL,
    PRIMARY KEY (hold_id, conversation_id)
);
CREATE INDEX legal_hold_conversations_by_conversation ON legal_hold_conversations (conversation_id);
