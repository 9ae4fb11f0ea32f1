-- State that several nodes must share (see the PostgreSQL migration).

CREATE TABLE credential_changes (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    name  TEXT NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX credential_changes_at ON credential_changes(at);

CREATE TRIGGER accounts_credentials_update
    AFTER UPDATE OF password_hash, registry_password_hash, disabled, is_admin ON accounts
BEGIN
    INSERT INTO credential_changes (name, at)
    VALUES (old.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER accounts_credentials_delete AFTER DELETE ON accounts
BEGIN
    INSERT INTO credential_changes (name, at)
    VALUES (old.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER registry_users_credentials_update
    AFTER UPDATE OF password_hash, enabled, expires_at ON registry_users
BEGIN
    INSERT INTO credential_changes (name, at)
    VALUES (old.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER registry_users_credentials_delete AFTER DELETE ON registry_users
BEGIN
    INSERT INTO credential_changes (name, at)
    VALUES (old.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TABLE login_failures (
    key            TEXT PRIMARY KEY,
    count          INTEGER NOT NULL,
    since          INTEGER NOT NULL,
    blocked_until  INTEGER
);
CREATE INDEX login_failures_since ON login_failures(since);
