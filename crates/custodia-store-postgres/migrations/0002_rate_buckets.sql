-- Rate-limit buckets shared by every node (sign-in attempts per account and per address),
-- so a limit holds however many nodes a client spreads its attempts over.
CREATE TABLE rate_buckets (
    key    text PRIMARY KEY,
    tokens double precision NOT NULL,
    at     bigint NOT NULL
);
CREATE INDEX rate_buckets_by_at ON rate_buckets (at);
