-- Text-rule signals, written in the same commit as the message that raised them and
-- removed once their case exists: a crash or a failed case opening never loses one.
-- rules: the matching rules' names, separated by U+001F. No message text.
CREATE TABLE signal_outbox (
    conversation_id BLOB NOT NULL,
    seq             INTEGER NOT NULL,
    rules           TEXT NOT NULL,
    category        TEXT NOT NULL,
    score           INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX signal_outbox_by_age ON signal_outbox (created_at);
