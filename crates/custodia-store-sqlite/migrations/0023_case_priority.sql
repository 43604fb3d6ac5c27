-- How urgently a case is handled: 'high' (hash-list matches, child-safety text rules) or
-- 'normal'. The queue lists high first, then by age.
ALTER TABLE cases ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';
-- The files a case preserved (hash-list matches), which only a grant for its evidence opens.
ALTER TABLE cases ADD COLUMN files TEXT NOT NULL DEFAULT '';
