-- Access notices deferred under a non-disclosure order: invisible to the member until
-- released (released_at set) once deferred_until has passed.
ALTER TABLE access_notices ADD COLUMN deferred_until bigint;
ALTER TABLE access_notices ADD COLUMN released_at bigint;
CREATE INDEX access_notices_pending ON access_notices (deferred_until)
    WHERE released_at IS NULL AND deferred_until IS NOT NULL;
