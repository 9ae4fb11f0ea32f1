-- A namespace may have Berth attach each image's SBOM as a referrer.
ALTER TABLE namespace_policies ADD COLUMN attach_sbom BOOLEAN NOT NULL DEFAULT 0;

-- Package names an image's attached SBOMs add are indexed under the
-- image's own digest: they go with its inventory.
CREATE TRIGGER image_inventories_names_gone AFTER DELETE ON image_inventories
BEGIN
    DELETE FROM layer_packages WHERE layer_digest = old.digest;
END;
