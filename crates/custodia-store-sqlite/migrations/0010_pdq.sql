-- PDQ perceptual hash lists (matched by Hamming distance in the service's in-memory
-- index, loaded incrementally by rowid).
CREATE TABLE pdq_list (
    id   INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    list TEXT NOT NULL
);
