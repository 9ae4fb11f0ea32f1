-- Inventories and findings follow what is stored: when the last manifest
-- with a digest is gone (from every repository), its image inventory and
-- findings go; when a blob is gone, its layer inventory and the package
-- names indexed for it. Triggers, so that no deleting path can forget.
-- Indexes for the lookups by digest these and the vulnerability queries
-- make (the repositories holding a manifest, a layer's names).
CREATE INDEX manifests_digest ON manifests (digest);
CREATE INDEX layer_packages_layer ON layer_packages (layer_digest);

CREATE TRIGGER manifests_inventory_gone AFTER DELETE ON manifests
WHEN NOT EXISTS (SELECT 1 FROM manifests WHERE digest = old.digest)
BEGIN
    DELETE FROM image_inventories WHERE digest = old.digest;
    DELETE FROM findings WHERE manifest_digest = old.digest;
END;

CREATE TRIGGER blobs_inventory_gone AFTER DELETE ON blobs
BEGIN
    DELETE FROM layer_inventories WHERE digest = old.digest;
    DELETE FROM layer_packages WHERE layer_digest = old.digest;
END;
