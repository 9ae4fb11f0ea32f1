-- A storage quota per project group, set by platform administrators: the
-- bytes of the distinct blobs of each of the group's namespaces, summed
-- (a blob counts once per namespace, as for a namespace's own quota).
-- Checked when a blob is linked, in the same transaction, serialized per
-- group.
ALTER TABLE project_groups ADD COLUMN quota_bytes BIGINT;
