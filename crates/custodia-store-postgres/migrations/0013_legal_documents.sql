-- What a disclosure package proves: the log entries of a legal request's intake and
-- review; the documents served with it (described here, sealed in legal_documents); and,
-- for the process that follows an emergency request, that request.
ALTER TABLE legal_requests ADD COLUMN received_log_index bigint;
ALTER TABLE legal_requests ADD COLUMN review_log_index bigint;
ALTER TABLE legal_requests ADD COLUMN documents text NOT NULL DEFAULT '';
ALTER TABLE legal_requests ADD COLUMN follows_up uuid;

CREATE TABLE legal_documents (
    legal_request_id uuid NOT NULL REFERENCES legal_requests (id),
    position         integer NOT NULL,
    sealed           bytea NOT NULL,
    PRIMARY KEY (legal_request_id, position)
);
