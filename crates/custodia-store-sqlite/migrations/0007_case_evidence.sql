-- What a reporter handed over for each reported message: the text (sealed by the key
-- service) and whether it matched the message's franking.

CREATE TABLE case_evidence (
    case_id  BLOB NOT NULL,
    seq      INTEGER NOT NULL,
    sender   BLOB NOT NULL,
    sent_at  INTEGER NOT NULL,
    claimed  BLOB,
    verified INTEGER NOT NULL,
    PRIMARY KEY (case_id, seq)
) WITHOUT ROWID;
