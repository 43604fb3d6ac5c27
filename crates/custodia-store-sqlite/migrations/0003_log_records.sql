-- The full record kept beside each transparency log entry: the entry pseudonymizes its
-- subjects, the record names them, for authorized auditors only. Append-only.

CREATE TABLE log_records (
    idx    INTEGER PRIMARY KEY,
    record BLOB NOT NULL
);
