-- The image list across namespaces ("My images") joins repositories to
-- their namespace and sorts them by last push, at 100,000 images: the
-- namespace (the name's first component) as an indexed generated column,
-- and the last manifest push kept on the repository by the push itself
-- (written last in its transaction, after the manifest and its tags, so
-- pushes take row locks in the same order as the pull-count flush).

ALTER TABLE repositories ADD COLUMN namespace TEXT GENERATED ALWAYS AS (split_part(name, '/', 1)) STORED;
CREATE INDEX repositories_namespace ON repositories(namespace, name);

ALTER TABLE repositories ADD COLUMN pushed_at BIGINT;
UPDATE repositories SET pushed_at = (
    SELECT MAX(m.pushed_at) FROM manifests m WHERE m.repo_id = repositories.id
);
