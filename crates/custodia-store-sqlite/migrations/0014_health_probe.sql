-- Readiness: `/readyz` commits a change to this one row, so a node that cannot commit
-- (a full disk) reports it before a load balancer sends it more traffic.
CREATE TABLE health_probe (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    probes INTEGER NOT NULL
);
INSERT INTO health_probe (id, probes) VALUES (1, 0);
