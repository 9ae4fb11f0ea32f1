-- Management views: image pull counts, API tokens, console sessions, and
-- the indexes that keep paginated lists fast.

-- An image (repository) pull: a manifest fetched by tag, or by digest when it
-- is not a child of an index in the same repository.
ALTER TABLE repositories ADD COLUMN pull_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN last_pulled_at INTEGER;
UPDATE repositories SET
    pull_count = (SELECT COALESCE(SUM(t.pull_count), 0) FROM tags t WHERE t.repo_id = repositories.id),
    last_pulled_at = (SELECT MAX(t.last_pulled_at) FROM tags t WHERE t.repo_id = repositories.id);

CREATE INDEX tags_pushed ON tags(repo_id, pushed_at, name);

-- Personal API tokens; only a SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    expires_at    INTEGER
);
CREATE INDEX api_tokens_account ON api_tokens(account_id);

-- Console sessions; only a SHA-256 of the cookie value is kept.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_expires ON sessions(expires_at);

CREATE INDEX audit_log_actor ON audit_log(actor, id);
CREATE INDEX audit_log_action ON audit_log(action, id);
