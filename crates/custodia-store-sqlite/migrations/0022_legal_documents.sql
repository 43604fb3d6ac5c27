-- What a disclosure package proves: the log entries of a legal request's intake and
-- review; the documents served with it (described here, sealed in legal_documents); and,
-- for the process that follows an emergency request, that request.
ALTER TABLE legal_requests ADD COLUMN received_log_index INTEGER;
ALTER TABLE legal_requests ADD COLUMN review_log_index INTEGER;
ALTER TABLE legal_requests ADD COLUMN documents TEXT NOT NULL DEFAULT '';
ALTER TABLE legal_requests ADD COLUMN follows_up BLOB;

CREATE TABLE legal_documents (
    legal_request_id BLOB NOT NULL REFERENCES legal_requests (id),
    position         INTEGER NOT NULL,
    sealed           BLOB NOT NULL,
    PRIMARY KEY (legal_request_id, position)
);
