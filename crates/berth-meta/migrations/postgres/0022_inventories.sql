-- What images hold and what advisories say about it. Inventories are kept
-- per layer digest (a base layer shared by many images is read once) and
-- per image manifest (its layers' union); package names are indexed per
-- layer and per advisory so that an advisory touches only the layers and
-- images that hold a package it names. Findings are per manifest digest:
-- content-addressed, the same in every repository that holds it.
CREATE TABLE layer_inventories (
    digest      TEXT PRIMARY KEY,
    inventory   TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE TABLE layer_packages (
    name          TEXT NOT NULL,
    layer_digest  TEXT NOT NULL,
    PRIMARY KEY (name, layer_digest)
);
CREATE TABLE image_inventories (
    digest      TEXT PRIMARY KEY,
    inventory   TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE TABLE advisories (
    id           TEXT PRIMARY KEY,
    modified     TEXT NOT NULL,
    document     TEXT NOT NULL,
    imported_at  BIGINT NOT NULL
);
CREATE TABLE advisory_packages (
    name         TEXT NOT NULL,
    advisory_id  TEXT NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
    PRIMARY KEY (name, advisory_id)
);
CREATE INDEX advisory_packages_advisory ON advisory_packages (advisory_id);
CREATE TABLE findings (
    manifest_digest  TEXT NOT NULL,
    advisory_id      TEXT NOT NULL,
    ecosystem        TEXT NOT NULL,
    package          TEXT NOT NULL,
    version          TEXT NOT NULL,
    fixed            TEXT,
    severity         TEXT NOT NULL,
    path             TEXT NOT NULL,
    found_at         BIGINT NOT NULL,
    PRIMARY KEY (manifest_digest, advisory_id, package, version)
);
CREATE INDEX findings_advisory ON findings (advisory_id);
