-- Message franking: a commitment to each message's plaintext (HMAC under a random
-- per-message key that travels only inside the sealed body) and a server tag binding it
-- to sender, conversation, time and message id. Neither reveals the plaintext.

ALTER TABLE messages ADD COLUMN commitment BLOB;
ALTER TABLE messages ADD COLUMN franking_tag BLOB;
