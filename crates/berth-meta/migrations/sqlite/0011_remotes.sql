-- Remote registries platform administrators register (replication
-- targets and sources, pull-through upstreams). The password is sealed
-- (ChaCha20-Poly1305, a nonce per value) with a key from the
-- configuration, never from the database: a copy of the database alone
-- does not reveal it. Remotes declared in the configuration file are not
-- stored here.
CREATE TABLE remotes (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT NOT NULL UNIQUE,
    url              TEXT NOT NULL,
    username         TEXT,
    password_sealed  TEXT,
    insecure         BIGINT NOT NULL DEFAULT 0,
    ca_pem           TEXT,
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
