-- Webhooks: endpoints that are told what happened, and a record of every
-- delivery. An event's deliveries (one per subscribed webhook) and their
-- jobs are written in the transaction of what caused them, so an event
-- can be late but never lost. Times are Unix milliseconds.

-- A webhook of a namespace (its admins) or of the platform (namespace_id
-- NULL; platform admins). `events` is a JSON list of event types; `secret`
-- signs every body (HMAC-SHA256) and is never shown again.
CREATE TABLE webhooks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace_id  INTEGER REFERENCES namespaces(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    url           TEXT NOT NULL,
    events        TEXT NOT NULL,
    secret        TEXT NOT NULL,
    format        TEXT NOT NULL,
    enabled       BIGINT NOT NULL DEFAULT 1,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX webhooks_name ON webhooks(COALESCE(namespace_id, 0), name);

-- One delivery of one event to one webhook, with its last attempt.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    response_code    BIGINT,
    duration_ms      BIGINT,
    error            TEXT,
    created_at       BIGINT NOT NULL,
    last_attempt_at  BIGINT,
    delivered_at     BIGINT
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);
