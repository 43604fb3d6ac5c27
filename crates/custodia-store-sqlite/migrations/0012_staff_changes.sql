-- No single person reaches content: staff changes wait for a second person, new staff
-- enrol themselves, and each account remembers who sponsored it.
-- sponsors: space-separated staff ids of everyone who proposed or approved the account's
-- creation or a change of its role. role_since: when its current role took effect.
-- enrol_hash: SHA-256 of a pending one-time enrolment code (never the code itself).
ALTER TABLE staff ADD COLUMN role_since INTEGER;
ALTER TABLE staff ADD COLUMN sponsors TEXT NOT NULL DEFAULT '';
ALTER TABLE staff ADD COLUMN enrol_hash BLOB;
ALTER TABLE staff ADD COLUMN enrol_until INTEGER;

CREATE TABLE staff_changes (
    id          BLOB PRIMARY KEY,
    kind        TEXT NOT NULL,
    staff_id    BLOB NOT NULL,
    username    TEXT NOT NULL,
    role        TEXT NOT NULL,
    active      INTEGER NOT NULL,
    proposed_by BLOB NOT NULL,
    proposed_at INTEGER NOT NULL,
    status      TEXT NOT NULL,
    decided_by  BLOB,
    decided_at  INTEGER
);
CREATE INDEX staff_changes_by_time ON staff_changes (proposed_at);
