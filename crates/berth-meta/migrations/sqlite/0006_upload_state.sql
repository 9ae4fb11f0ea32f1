-- What a blob storage backend must remember about an upload between
-- requests, so that any node can continue it (S3: multipart id, parts,
-- staged remainder, hash state). Every save bumps the version; a save names
-- the version it read, so two racing requests cannot both win.
ALTER TABLE uploads ADD COLUMN state TEXT;
ALTER TABLE uploads ADD COLUMN state_version BIGINT NOT NULL DEFAULT 0;
