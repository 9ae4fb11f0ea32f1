-- Group mappings made through the API (those of the configuration file
-- live there): members of external_group, as origin reports it, get
-- grant_kind ('platform_admin', 'project_group', 'namespace') on target
-- ('' for platform_admin) with role ('' for platform_admin).
CREATE TABLE group_mappings (
    id              INTEGER PRIMARY KEY,
    origin          TEXT NOT NULL,
    external_group  TEXT NOT NULL,
    grant_kind      TEXT NOT NULL,
    target          TEXT NOT NULL DEFAULT '',
    role            TEXT NOT NULL DEFAULT '',
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (origin, external_group, grant_kind, target)
);
