-- custodia PostgreSQL schema, version 1: the same tables as the SQLite schema's
-- migrations 0001-0010, in PostgreSQL's types (uuid, bytea, bigint, boolean).
--
-- Distribution by conversation (Citus-style): every message-related table
-- (conversations, members, messages, deks, attachments) leads with the conversation id
-- and no foreign key or unique constraint crosses conversations, so those tables can be
-- distributed on it and co-located. Everything else is keyed by its own id (users,
-- sessions, staff, cases, safety, hash lists) or is the single-writer transparency log.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    birth_date    text NOT NULL,
    created_at    bigint NOT NULL
);

-- token_hash is SHA-256 of the bearer token; the token itself is never stored.
CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,
    id         uuid NOT NULL UNIQUE,
    user_id    uuid NOT NULL,
    device     text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- last_seq is the sequence counter: an append takes the row lock with
-- UPDATE ... RETURNING, so concurrent appends from any node get contiguous numbers.
CREATE TABLE conversations (
    id            uuid PRIMARY KEY,
    kind          text NOT NULL,
    title         text,
    created_by    uuid NOT NULL,
    created_at    bigint NOT NULL,
    last_seq      bigint NOT NULL DEFAULT 0,
    last_activity bigint NOT NULL
);

-- Keyed by the user pair (user_low < user_high), not by conversation.
CREATE TABLE direct_pairs (
    user_low        uuid NOT NULL,
    user_high       uuid NOT NULL,
    conversation_id uuid NOT NULL,
    PRIMARY KEY (user_low, user_high)
);

CREATE TABLE members (
    conversation_id uuid NOT NULL,
    user_id         uuid NOT NULL,
    role            text NOT NULL,
    read_seq        bigint NOT NULL DEFAULT 0,
    joined_at       bigint NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);

-- sealed is NULL once a message is deleted for everyone.
CREATE TABLE messages (
    conversation_id uuid NOT NULL,
    seq             bigint NOT NULL,
    id              uuid NOT NULL,
    sender_id       uuid NOT NULL,
    client_id       text NOT NULL,
    sent_at         bigint NOT NULL,
    epoch           text NOT NULL,
    sealed          bytea,
    deleted_at      bigint,
    commitment      bytea,
    franking_tag    bytea,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, sender_id, client_id)
);

-- Data keys, only ever wrapped by a key-encryption key.
CREATE TABLE deks (
    conversation_id uuid NOT NULL,
    epoch           text NOT NULL,
    kek_version     bigint NOT NULL,
    wrapped         bytea NOT NULL,
    PRIMARY KEY (conversation_id, epoch)
);

-- The transparency log: entries with their leaf hashes, the hashes of completed tile
-- levels, the full records beside the entries, and the last signed checkpoint.
-- Append-only, except the checkpoint row, which only moves forward. Appends from every
-- node take one transaction-scoped advisory lock, so indices never collide.
CREATE TABLE log_leaves (
    idx   bigint PRIMARY KEY,
    entry bytea NOT NULL,
    hash  bytea NOT NULL
);

CREATE TABLE log_hashes (
    level integer NOT NULL,
    idx   bigint NOT NULL,
    hash  bytea NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE log_records (
    idx    bigint PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE log_checkpoint (
    id   integer PRIMARY KEY CHECK (id = 1),
    size bigint NOT NULL,
    note text NOT NULL
);

-- Staff accounts and sessions. The TOTP secret is stored only sealed by the key service.
CREATE TABLE staff (
    id               uuid PRIMARY KEY,
    username         text NOT NULL UNIQUE,
    password_hash    text NOT NULL,
    totp_kek_version bigint NOT NULL,
    totp_sealed      bytea NOT NULL,
    role             text NOT NULL,
    active           boolean NOT NULL,
    last_totp_step   bigint,
    created_at       bigint NOT NULL
);

CREATE TABLE staff_sessions (
    token_hash bytea PRIMARY KEY,
    id         uuid NOT NULL UNIQUE,
    staff_id   uuid NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX staff_sessions_by_staff ON staff_sessions (staff_id);

-- Cases and access requests. No message content: a case names a conversation and a
-- range of sequence numbers; the reporter's comment is stored sealed.
CREATE TABLE cases (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL,
    conversation_id uuid NOT NULL,
    reporter        uuid,
    category        text,
    comment         bytea,
    reported        text NOT NULL,
    scope_from      bigint NOT NULL,
    scope_to        bigint NOT NULL,
    reference       text,
    opened_by       uuid,
    opened_at       bigint NOT NULL
);

CREATE TABLE case_evidence (
    case_id  uuid NOT NULL,
    seq      bigint NOT NULL,
    sender   uuid NOT NULL,
    sent_at  bigint NOT NULL,
    claimed  bytea,
    verified boolean NOT NULL,
    PRIMARY KEY (case_id, seq)
);

CREATE TABLE access_requests (
    id              uuid PRIMARY KEY,
    case_id         uuid NOT NULL,
    requester       uuid NOT NULL,
    requester_role  text NOT NULL,
    reason          text NOT NULL,
    conversation_id uuid NOT NULL,
    seq_from        bigint NOT NULL,
    seq_to          bigint NOT NULL,
    tier            text NOT NULL,
    duration_ms     bigint NOT NULL,
    justification   text NOT NULL,
    created_at      bigint NOT NULL,
    pending_until   bigint NOT NULL,
    broad           boolean NOT NULL,
    required        smallint NOT NULL,
    status          text NOT NULL,
    granted_from    bigint,
    granted_until   bigint
);
CREATE INDEX access_requests_by_case ON access_requests (case_id);

CREATE TABLE request_approvers (
    request_id uuid NOT NULL,
    staff_id   uuid NOT NULL,
    PRIMARY KEY (request_id, staff_id)
);

CREATE TABLE request_decisions (
    request_id    uuid NOT NULL,
    staff_id      uuid NOT NULL,
    role          text NOT NULL,
    approve       boolean NOT NULL,
    justification text NOT NULL,
    at            bigint NOT NULL,
    log_index     bigint NOT NULL,
    PRIMARY KEY (request_id, staff_id)
);

-- Members' safety settings: who may message them, connections (one row per pair, the
-- lower id first), and blocks (directed).
CREATE TABLE message_settings (
    user_id uuid PRIMARY KEY,
    who     text NOT NULL
);

CREATE TABLE connections (
    low          uuid NOT NULL,
    high         uuid NOT NULL,
    requested_by uuid NOT NULL,
    accepted     boolean NOT NULL,
    at           bigint NOT NULL,
    PRIMARY KEY (low, high)
);
CREATE INDEX connections_by_high ON connections (high);

CREATE TABLE blocks (
    blocker uuid NOT NULL,
    blocked uuid NOT NULL,
    at      bigint NOT NULL,
    PRIMARY KEY (blocker, blocked)
);
CREATE INDEX blocks_by_blocked ON blocks (blocked);

-- Attachments, sealed under their own keys. Looked up by id alone through a plain index
-- (ids are random UUIDs; a unique constraint on id would cross conversations).
CREATE TABLE attachments (
    conversation_id uuid NOT NULL,
    id              uuid NOT NULL,
    uploader        uuid NOT NULL,
    epoch           text NOT NULL,
    size            bigint NOT NULL,
    content_type    text NOT NULL,
    sealed_key      bytea NOT NULL,
    key_commitment  bytea NOT NULL,
    blob            bytea NOT NULL,
    created_at      bigint NOT NULL,
    preserved       boolean NOT NULL,
    PRIMARY KEY (conversation_id, id)
);
CREATE INDEX attachments_by_id ON attachments (id);

CREATE TABLE hash_list (
    kind text NOT NULL,
    hash bytea NOT NULL,
    list text NOT NULL,
    PRIMARY KEY (kind, hash)
);

CREATE TABLE user_flags (
    user_id uuid NOT NULL,
    reason  text NOT NULL,
    at      bigint NOT NULL
);
CREATE INDEX user_flags_by_user ON user_flags (user_id);

-- PDQ perceptual hash lists, loaded incrementally by id into each node's index.
CREATE TABLE pdq_list (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash bytea NOT NULL UNIQUE,
    list text NOT NULL
);
