-- Preservation holds: an account's conversations over a period, frozen.
CREATE TABLE legal_holds (
    id               uuid PRIMARY KEY,
    legal_request_id uuid NOT NULL,
    account          uuid NOT NULL,
    period_from      bigint NOT NULL,
    period_to        bigint NOT NULL,
    placed_by        uuid NOT NULL,
    placed_at        bigint NOT NULL,
    expires_at       bigint NOT NULL,
    extended         boolean NOT NULL,
    ended_at         bigint,
    ended_how        text
);
CREATE INDEX legal_holds_by_request ON legal_holds (legal_request_id, placed_at);
CREATE TABLE legal_hold_conversations (
    hold_id         uuid NOT NULL,
    conversation_id uuid NOT NULL,
    PRIMARY KEY (hold_id, conversation_id)
);
CREATE INDEX legal_hold_conversations_by_conversation ON legal_hold_conversations (conversation_id);
