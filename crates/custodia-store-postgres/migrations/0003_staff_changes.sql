-- No single person reaches content: staff changes wait for a second person, new staff
-- enrol themselves, and each account remembers who sponsored it.
-- sponsors: space-separated staff ids of everyone who proposed or approved the account's
-- creation or a change of its role. role_since: when its current role took effect.
-- enrol_hash: SHA-256 of a pending one-time enrolment code (never the code itself).
ALTER TABLE staff ADD COLUMN role_since bigint;
ALTER TABLE staff ADD COLUMN sponsors text NOT NULL DEFAULT '';
ALTER TABLE staff ADD COLUMN enrol_hash bytea;
ALTER TABLE staff ADD COLUMN enrol_until bigint;

CREATE TABLE staff_changes (
    id          uuid PRIMARY KEY,
    kind        text NOT NULL,
    staff_id    uuid NOT NULL,
    username    text NOT NULL,
    role        text NOT NULL,
    active      boolean NOT NULL,
    proposed_by uuid NOT NULL,
    proposed_at bigint NOT NULL,
    status      text NOT NULL,
    decided_by  uuid,
    decided_at  bigint
);
CREATE INDEX staff_changes_by_time ON staff_changes (proposed_at);
