-- Access notices of an emergency read, held until the request's second review.
ALTER TABLE access_notices ADD COLUMN deferred_review BLOB;
