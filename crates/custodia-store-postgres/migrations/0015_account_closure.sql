-- A member's own closing of their account (DELETE /v1/me): when it happened. The row
-- stays (messages name their sender); its name is released after a grace period.
ALTER TABLE users ADD COLUMN closed_at bigint;
