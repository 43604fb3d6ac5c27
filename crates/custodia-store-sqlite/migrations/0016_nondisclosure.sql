-- A legal case's non-disclosure order: until when (Unix ms) the affected members may not
-- be told of reads under it. NULL: no order.
ALTER TABLE cases ADD COLUMN nondisclosure_until INTEGER;
