-- Scheduled work that one node at a time should do (a collection, a
-- retention pass): a node runs it only while it holds the lease, which
-- ends by itself when the node dies.
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    owner  TEXT NOT NULL,
    until  BIGINT NOT NULL
);
