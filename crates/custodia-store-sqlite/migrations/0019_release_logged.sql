-- Whether a released notice's release is in the audit log (a `notice.released` entry),
-- so a release the log missed (a crash, a log outage) is logged at the next pass.
ALTER TABLE access_notices ADD COLUMN release_logged INTEGER NOT NULL DEFAULT 0;
CREATE INDEX access_notices_unlogged ON access_notices (log_index)
    WHERE released_at IS NOT NULL AND NOT release_logged;
