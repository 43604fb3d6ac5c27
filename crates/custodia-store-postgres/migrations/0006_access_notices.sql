-- Notices to members that staff read messages of theirs: the member's own data, one per
-- member and audit log entry. proof: the inclusion proof's 32-byte hashes, concatenated.
CREATE TABLE access_notices (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL,
    conversation_id uuid NOT NULL,
    read_at         bigint NOT NULL,
    role            text NOT NULL,
    reason          text NOT NULL,
    case_id         uuid NOT NULL,
    messages        bigint NOT NULL,
    first_sent_at   bigint NOT NULL,
    last_sent_at    bigint NOT NULL,
    log_index       bigint NOT NULL,
    checkpoint      text NOT NULL,
    proof           bytea NOT NULL,
    UNIQUE (user_id, log_index)
);
CREATE INDEX access_notices_by_user ON access_notices (user_id, read_at);
