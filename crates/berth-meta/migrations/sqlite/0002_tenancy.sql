-- Tenancy and access: accounts, project groups, namespaces, memberships,
-- per-repository permissions, registry users and their grants, the audit
-- log, and settings (such as the token signing key).
-- Flags are integers 0/1; times are Unix milliseconds.

CREATE TABLE accounts (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    name                    TEXT NOT NULL UNIQUE,
    email                   TEXT NOT NULL,
    password_hash           TEXT NOT NULL,
    registry_password_hash  TEXT,
    is_admin                INTEGER NOT NULL DEFAULT 0,
    disabled                INTEGER NOT NULL DEFAULT 0,
    default_group_id        INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);

CREATE TABLE project_groups (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT NOT NULL UNIQUE,
    description      TEXT NOT NULL DEFAULT '',
    namespace_limit  INTEGER,
    created_at       INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id    INTEGER NOT NULL REFERENCES project_groups(id) ON DELETE CASCADE,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    PRIMARY KEY (group_id, account_id)
);
CREATE INDEX group_members_account ON group_members(account_id);

CREATE TABLE namespaces (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT NOT NULL UNIQUE,
    group_id         INTEGER NOT NULL REFERENCES project_groups(id),
    public           INTEGER NOT NULL DEFAULT 0,
    description      TEXT NOT NULL DEFAULT '',
    category         TEXT NOT NULL DEFAULT '',
    labels           TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL DEFAULT 'available',
    external_access  INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX namespaces_group ON namespaces(group_id);

CREATE TABLE namespace_members (
    namespace_id  INTEGER NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
    account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    role          TEXT NOT NULL,
    PRIMARY KEY (namespace_id, account_id)
);
CREATE INDEX namespace_members_account ON namespace_members(account_id);

CREATE TABLE repository_permissions (
    namespace_id  INTEGER NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
    repository    TEXT NOT NULL,
    account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    permission    TEXT NOT NULL,
    PRIMARY KEY (repository, account_id)
);
CREATE INDEX repository_permissions_namespace ON repository_permissions(namespace_id);

CREATE TABLE registry_users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    enabled        INTEGER NOT NULL DEFAULT 1,
    expires_at     INTEGER,
    owner_id       INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE registry_user_grants (
    registry_user_id  INTEGER NOT NULL REFERENCES registry_users(id) ON DELETE CASCADE,
    namespace_id      INTEGER NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
    can_pull          INTEGER NOT NULL,
    can_push          INTEGER NOT NULL,
    PRIMARY KEY (registry_user_id, namespace_id)
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '',
    client_addr  TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
