-- Rate-limit buckets that must hold across every node of a deployment (sign-in attempts).
-- Kept here too so both backends behave alike; rows of idle buckets are forgotten.
CREATE TABLE rate_buckets (
    key    TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    at     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX rate_buckets_by_at ON rate_buckets (at);
