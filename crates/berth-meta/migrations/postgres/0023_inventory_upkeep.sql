-- Inventories and findings follow what is stored: when the last manifest
-- with a digest is gone (from every repository), its image inventory and
-- findings go; when a blob is gone, its layer inventory and the package
-- names indexed for it. Triggers, so that no deleting path can forget.
-- Indexes for the lookups by digest these and the vulnerability queries
-- make (the repositories holding a manifest, a layer's names).
CREATE INDEX manifests_digest ON manifests (digest);
CREATE INDEX layer_packages_layer ON layer_packages (layer_digest);

CREATE FUNCTION forget_image_inventory() RETURNS trigger AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM manifests WHERE digest = OLD.digest) THEN
        DELETE FROM image_inventories WHERE digest = OLD.digest;
        DELETE FROM findings WHERE manifest_digest = OLD.digest;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER manifests_inventory_gone
    AFTER DELETE ON manifests
    FOR EACH ROW EXECUTE FUNCTION forget_image_inventory();

CREATE FUNCTION forget_layer_inventory() RETURNS trigger AS $$
BEGIN
    DELETE FROM layer_inventories WHERE digest = OLD.digest;
    DELETE FROM layer_packages WHERE layer_digest = OLD.digest;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER blobs_inventory_gone
    AFTER DELETE ON blobs
    FOR EACH ROW EXECUTE FUNCTION forget_layer_inventory();
