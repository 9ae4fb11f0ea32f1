-- Replication with remote registries: rules (push: local to remote; pull:
-- remote to local), their runs, and their tasks. A task is a row of
-- `sync_records`, the one record model users read for regions'
-- synchronization and for replication alike. Times are Unix milliseconds.

-- `filters` is JSON: {"repositories": {"include": [..], "exclude": [..]},
-- "tags": {"include": [..], "exclude": [..]}} of glob patterns.
-- `destination` is the namespace (pull) or path prefix (push) copies go
-- to; `flatten` drops that many leading path components of the source
-- repository first (-1: all but the last). `bandwidth` is bytes per second
-- per task (0: no limit); `referrers` copies the manifests that refer to
-- each copied one (signatures, SBOMs). A scheduled rule runs every `interval_secs`,
-- next at `next_run_at`.
CREATE TABLE replication_rules (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    description    TEXT NOT NULL DEFAULT '',
    direction      TEXT NOT NULL,
    remote         TEXT NOT NULL,
    filters        TEXT NOT NULL,
    destination    TEXT NOT NULL,
    flatten        BIGINT NOT NULL DEFAULT 0,
    override       BIGINT NOT NULL DEFAULT 1,
    deletions      BIGINT NOT NULL DEFAULT 0,
    referrers      BIGINT NOT NULL DEFAULT 0,
    bandwidth      BIGINT NOT NULL DEFAULT 0,
    trigger        TEXT NOT NULL,
    interval_secs  BIGINT,
    next_run_at    BIGINT,
    enabled        BIGINT NOT NULL DEFAULT 1,
    author         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX replication_rules_due ON replication_rules(trigger, next_run_at);

-- A manual or scheduled run of a rule: a job lists what the rule covers
-- ('listing'), makes a task for each tag to copy or delete ('listed'), or
-- fails with its error. The run's outcome is its tasks'.
CREATE TABLE replication_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id     BIGINT REFERENCES replication_rules(id) ON DELETE SET NULL,
    rule_name   TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    operator    TEXT NOT NULL,
    status      TEXT NOT NULL,
    error       TEXT,
    created_at  BIGINT NOT NULL,
    listed_at   BIGINT
);
CREATE INDEX replication_runs_rule ON replication_runs(rule_id, created_at);

-- Replication tasks in the record model: `repo` is the local repository
-- (the source of a push, the destination of a pull), `remote_repo` the
-- remote one; `action` is 'copy' or 'delete'.
ALTER TABLE sync_records ADD COLUMN kind TEXT NOT NULL DEFAULT 'sync';
ALTER TABLE sync_records ADD COLUMN run_id BIGINT REFERENCES replication_runs(id) ON DELETE CASCADE;
ALTER TABLE sync_records ADD COLUMN replication_rule_id BIGINT REFERENCES replication_rules(id) ON DELETE SET NULL;
ALTER TABLE sync_records ADD COLUMN remote TEXT;
ALTER TABLE sync_records ADD COLUMN remote_repo TEXT;
ALTER TABLE sync_records ADD COLUMN direction TEXT;
ALTER TABLE sync_records ADD COLUMN action TEXT NOT NULL DEFAULT 'copy';
CREATE INDEX sync_records_run ON sync_records(run_id);
CREATE INDEX sync_records_replication_rule ON sync_records(replication_rule_id, created_at);
