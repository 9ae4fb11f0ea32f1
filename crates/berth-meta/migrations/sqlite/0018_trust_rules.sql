-- Workload identity: a trust rule lets a verified JWT of an external
-- issuer (a CI system, a Kubernetes service-account issuer) stand in for a
-- registry user's password, when its audience, subject and the listed
-- claims match. claims is a JSON object: claim path -> glob.
CREATE TABLE trust_rules (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    issuer            TEXT NOT NULL,
    audience          TEXT NOT NULL,
    subject           TEXT NOT NULL,
    claims            TEXT NOT NULL DEFAULT '{}',
    registry_user_id  INTEGER NOT NULL REFERENCES registry_users(id) ON DELETE CASCADE,
    created_by        TEXT NOT NULL,
    created_at        INTEGER NOT NULL
);
CREATE INDEX trust_rules_user ON trust_rules (registry_user_id);
