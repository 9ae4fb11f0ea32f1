-- Revoking what an account or a registry user has been given: refresh
-- tokens (docker login's identity tokens) carry the generation current
-- when they were issued, and a password change, disabling, or "sign out
-- everywhere" moves it on, so every older refresh token is refused on
-- every node at once (each refresh reads the row). Console sessions are
-- rows, deleted by account.
ALTER TABLE accounts ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE registry_users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sessions_account ON sessions(account_id);
