//! Synchronization rules (ServiceStage's "automatic image
//! synchronization"): each new tag of a repository is copied to the same
//! repository name in a target namespace, its blobs placed in a target
//! region; images pushed before the rule are synchronized by hand. Every
//! tag and target gets a record users read.

use berth_meta::{
    platform::sync_status, NewSyncRecord, NewSyncRule, PlatformStore, SyncProgress, SyncRecord,
    SyncRecordQuery, SyncRule,
};
use berth_oci::{Digest, Reference, RepoName, Tag};
use serde::Deserialize;

use crate::access::{Principal, RepoPermission};
use crate::clock::now_millis;
use crate::jobs::{Attempt, JobFailure};
use crate::{Directory, DirectoryError, ManifestPush, Registry};

type Result<T> = std::result::Result<T, DirectoryError>;

/// Most tags one manual synchronization may name.
pub const MAX_MANUAL_TAGS: usize = 1000;

/// What a new rule asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRuleSpec {
    /// Region the copies' blobs go to.
    pub target_region: String,
    /// Namespace the copies go to.
    pub target_namespace: String,
    /// Overwrite a differing tag in the target.
    pub overwrite: bool,
}

/// Which tags a manual synchronization copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncTags {
    /// Every tag of the repository.
    All,
    /// These tags.
    Some(Vec<String>),
}

/// Synchronization rules, manual synchronizations and their records.
#[derive(Debug, Clone)]
pub struct Synchronizer {
    registry: Registry,
    directory: Directory,
}

#[derive(Debug, Deserialize)]
struct SyncPayload {
    record: i64,
}

/// The webhook event of a record's end, of kind `kinds` (succeeded,
/// conflict, failed) by its status, with the record's common fields;
/// `extra` adds what its kind has of its own.
pub(crate) fn record_event(
    record: &SyncRecord,
    progress: &SyncProgress,
    kinds: [&'static str; 3],
    extra: impl FnOnce(crate::events::Event) -> crate::events::Event,
) -> Vec<berth_meta::NewEvent> {
    use crate::events::Event;
    let kind = match progress.status.as_str() {
        sync_status::SUCCEEDED => kinds[0],
        sync_status::CONFLICT => kinds[1],
        sync_status::FAILED => kinds[2],
        _ => return Vec::new(),
    };
    let namespace = record.repo.split('/').next().unwrap_or_default();
    let event = Event::new(kind, Some(namespace))
        .actor(&record.operator)
        .with("record", record.id)
        .with("repository", record.repo.as_str())
        .with("tag", record.tag.as_str())
        .with("digest", record.digest.as_str())
        .with("trigger", record.trigger.as_str())
        .with("status", progress.status.as_str())
        .with("bytes_copied", progress.bytes_copied)
        .with("error", progress.error.clone());
    vec![extra(event).build()]
}

/// The webhook event of a synchronization's end (succeeded, failed or
/// conflict: ServiceStage's notification when an image is not overwritten).
fn sync_event(record: &SyncRecord, progress: &SyncProgress) -> Vec<berth_meta::NewEvent> {
    use crate::events::kind;
    record_event(
        record,
        progress,
        [kind::SYNC_SUCCEEDED, kind::SYNC_CONFLICT, kind::SYNC_FAILED],
        |e| {
            e.with("target_region", record.target_region.as_str())
                .with("target_namespace", record.target_namespace.as_str())
        },
    )
}

/// The work of a record's job: regions' synchronization, or replication
/// with a remote registry.
#[async_trait::async_trait]
pub(crate) trait RecordWork: Send + Sync {
    /// Carry the record out, noting progress. Returns its final status.
    async fn work(
        &self,
        record: &SyncRecord,
        progress: &mut SyncProgress,
    ) -> std::result::Result<&'static str, JobFailure>;
    /// The events of the record's end.
    fn events(&self, record: &SyncRecord, progress: &SyncProgress) -> Vec<berth_meta::NewEvent>;
}

/// Run the job of a record (`{"record": id}`): mark it running, carry it
/// out, and write how it ended with its events in one transaction (a
/// failure that will be retried sets it back to waiting).
pub(crate) async fn run_record(
    store: &dyn PlatformStore,
    payload: &str,
    attempt: Attempt,
    work: &dyn RecordWork,
) -> std::result::Result<(), JobFailure> {
    let p: SyncPayload = serde_json::from_str(payload)
        .map_err(|e| JobFailure::permanent(format!("invalid payload: {e}")))?;
    let Some(record) = store.sync_record(p.record).await? else {
        return Ok(());
    };
    if [
        sync_status::SUCCEEDED,
        sync_status::CONFLICT,
        sync_status::FAILED,
    ]
    .contains(&record.status.as_str())
    {
        return Ok(());
    }
    let mut progress = SyncProgress {
        status: sync_status::RUNNING.to_owned(),
        started_at: Some(now_millis()),
        attempts: attempt.number,
        ..SyncProgress::default()
    };
    store.update_sync_record(record.id, &progress, &[]).await?;
    let outcome = work.work(&record, &mut progress).await;
    progress.finished_at = Some(now_millis());
    match outcome {
        Ok(status) => {
            progress.status = status.to_owned();
            let events = work.events(&record, &progress);
            store
                .update_sync_record(record.id, &progress, &events)
                .await?;
            Ok(())
        }
        Err(f) => {
            let giving_up = f.permanent || attempt.last;
            progress.status = if giving_up {
                sync_status::FAILED
            } else {
                sync_status::WAITING
            }
            .to_owned();
            progress.error = Some(f.message.clone());
            if !giving_up {
                progress.finished_at = None;
            }
            let events = if giving_up {
                work.events(&record, &progress)
            } else {
                Vec::new()
            };
            store
                .update_sync_record(record.id, &progress, &events)
                .await?;
            Err(f)
        }
    }
}

#[async_trait::async_trait]
impl RecordWork for Synchronizer {
    async fn work(
        &self,
        record: &SyncRecord,
        progress: &mut SyncProgress,
    ) -> std::result::Result<&'static str, JobFailure> {
        self.synchronize(record, progress).await
    }

    fn events(&self, record: &SyncRecord, progress: &SyncProgress) -> Vec<berth_meta::NewEvent> {
        sync_event(record, progress)
    }
}

/// The target repository of a rule: the same name in another namespace.
pub fn target_repository(repo: &RepoName, namespace: &str) -> Result<RepoName> {
    let rest = &repo.as_str()[repo.namespace().len()..];
    RepoName::parse(&format!("{namespace}{rest}"))
        .map_err(|e| DirectoryError::Invalid(format!("target repository: {e}")))
}

impl Synchronizer {
    /// Rules and records over the registry and the directory.
    pub fn new(registry: Registry, directory: Directory) -> Self {
        Synchronizer {
            registry,
            directory,
        }
    }

    fn store(&self) -> &dyn PlatformStore {
        &*self.registry.platform
    }

    /// Whether `actor` manages `repo`: its namespace's admins and accounts
    /// with Manage on it.
    pub async fn may_manage(&self, actor: &Principal, repo: &RepoName) -> Result<bool> {
        let ns = self
            .directory
            .visible_namespace(actor, repo.namespace())
            .await?;
        if self.directory.administers_namespace(actor, &ns).await? {
            return Ok(true);
        }
        let facts = self.directory.facts(actor, repo).await?;
        Ok(facts.repo_permission == Some(RepoPermission::Manage))
    }

    async fn check_manage(&self, actor: &Principal, repo: &RepoName) -> Result<()> {
        if self.may_manage(actor, repo).await? {
            Ok(())
        } else {
            Err(DirectoryError::Forbidden(format!(
                "you do not manage image {repo}: its namespace's admins and accounts with Manage on it set its synchronization"
            )))
        }
    }

    async fn check_pull(&self, actor: &Principal, repo: &RepoName) -> Result<()> {
        if self.directory.actions(actor, repo).await?.pull {
            Ok(())
        } else {
            Err(DirectoryError::NotFound(format!("image {repo}")))
        }
    }

    /// The regions a namespace's images are replicated to as set (`None`:
    /// every region).
    pub async fn copy_regions(&self, namespace: &str) -> Result<Option<Vec<String>>> {
        match self.store().namespace_copy_regions(namespace).await? {
            None => Err(DirectoryError::NotFound(format!("namespace {namespace}"))),
            Some(None) => Ok(None),
            Some(Some(json)) => serde_json::from_str(&json).map(Some).map_err(|e| {
                DirectoryError::Meta(berth_meta::MetaError::Corrupt(format!(
                    "replication regions of {namespace}: {e}"
                )))
            }),
        }
    }

    /// Set the regions a namespace's images are replicated to (its admins);
    /// `None` for every region.
    pub async fn set_copy_regions(
        &self,
        actor: &Principal,
        namespace: &str,
        regions: Option<Vec<String>>,
    ) -> Result<Option<Vec<String>>> {
        self.directory.admin_namespace(actor, namespace).await?;
        let mut regions = regions;
        if let Some(list) = &mut regions {
            for name in list.iter() {
                if self.registry.regions.get(name).is_none() {
                    let names: Vec<&str> = self
                        .registry
                        .regions
                        .all()
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect();
                    return Err(DirectoryError::Invalid(format!(
                        "region {name:?} is not configured; the regions are: {}",
                        names.join(", ")
                    )));
                }
            }
            list.sort();
            list.dedup();
        }
        let json = regions
            .as_ref()
            .map(|l| serde_json::to_string(l).unwrap_or_default());
        if !self
            .store()
            .set_namespace_copy_regions(namespace, json.as_deref(), now_millis())
            .await?
        {
            return Err(DirectoryError::NotFound(format!("namespace {namespace}")));
        }
        self.directory
            .record(
                actor,
                "namespace.replication",
                namespace,
                json.as_deref().unwrap_or("all regions"),
            )
            .await?;
        Ok(regions)
    }

    /// A repository's rules (for those who may pull it).
    pub async fn rules(&self, actor: &Principal, repo: &RepoName) -> Result<Vec<SyncRule>> {
        self.check_pull(actor, repo).await?;
        Ok(self.store().sync_rules(repo.as_str()).await?)
    }

    /// Add a rule. The author must manage the repository and may push to
    /// the target.
    pub async fn add_rule(
        &self,
        actor: &Principal,
        repo: &RepoName,
        spec: &SyncRuleSpec,
    ) -> Result<SyncRule> {
        self.check_manage(actor, repo).await?;
        if !self.registry.meta.repository_exists(repo).await? {
            return Err(DirectoryError::NotFound(format!("image {repo}")));
        }
        if self.registry.regions.get(&spec.target_region).is_none() {
            let names: Vec<&str> = self
                .registry
                .regions
                .all()
                .iter()
                .map(|r| r.name.as_str())
                .collect();
            return Err(DirectoryError::Invalid(format!(
                "region {:?} is not configured; the regions are: {}",
                spec.target_region,
                names.join(", ")
            )));
        }
        let target = target_repository(repo, &spec.target_namespace)?;
        if target == *repo {
            return Err(DirectoryError::Invalid(
                "a rule cannot copy an image onto itself: choose another target namespace".into(),
            ));
        }
        let Principal::Account { name, .. } = actor else {
            return Err(DirectoryError::Forbidden(
                "synchronization rules are made by accounts".into(),
            ));
        };
        self.directory.namespace(&spec.target_namespace).await?;
        if !self.directory.actions(actor, &target).await?.push {
            return Err(DirectoryError::Forbidden(format!(
                "you may not push to {target}, so you cannot synchronize to it"
            )));
        }
        let rule = self
            .store()
            .create_sync_rule(&NewSyncRule {
                repo: repo.to_string(),
                target_region: spec.target_region.clone(),
                target_namespace: spec.target_namespace.clone(),
                overwrite: spec.overwrite,
                author: name.clone(),
                now: now_millis(),
            })
            .await?;
        self.directory
            .record(
                actor,
                "sync.rule.create",
                repo.as_str(),
                &format!(
                    "to {}/{} overwrite={}",
                    spec.target_region, spec.target_namespace, spec.overwrite
                ),
            )
            .await?;
        Ok(rule)
    }

    /// Delete a rule of `repo`.
    pub async fn delete_rule(&self, actor: &Principal, repo: &RepoName, id: i64) -> Result<()> {
        self.check_manage(actor, repo).await?;
        let store = self.store();
        match store.sync_rule(id).await? {
            Some(rule) if rule.repo == repo.as_str() => {}
            _ => {
                return Err(DirectoryError::NotFound(format!(
                    "synchronization rule {id}"
                )))
            }
        }
        store.delete_sync_rule(id).await?;
        self.directory
            .record(
                actor,
                "sync.rule.delete",
                repo.as_str(),
                &format!("rule {id}"),
            )
            .await
    }

    /// Synchronize tags pushed before the rules existed, by every rule of
    /// the repository or by one. Returns the records made.
    pub async fn sync_now(
        &self,
        actor: &Principal,
        repo: &RepoName,
        rule: Option<i64>,
        tags: &SyncTags,
    ) -> Result<Vec<i64>> {
        self.check_manage(actor, repo).await?;
        let store = self.store();
        let rules: Vec<SyncRule> = store
            .sync_rules(repo.as_str())
            .await?
            .into_iter()
            .filter(|r| rule.is_none_or(|id| r.id == id))
            .collect();
        if rules.is_empty() {
            return Err(match rule {
                Some(id) => DirectoryError::NotFound(format!("synchronization rule {id}")),
                None => DirectoryError::Invalid(format!(
                    "image {repo} has no synchronization rule: set one first"
                )),
            });
        }
        let names: Vec<String> = match tags {
            SyncTags::All => {
                let mut all = Vec::new();
                let mut last: Option<String> = None;
                loop {
                    let page = self.registry.list_tags(repo, last.as_deref(), 1000).await?;
                    let done = page.len() < 1000;
                    last = page.last().cloned();
                    all.extend(page);
                    if done {
                        break;
                    }
                }
                all
            }
            SyncTags::Some(list) if list.is_empty() => {
                return Err(DirectoryError::Invalid("name at least one tag".into()))
            }
            SyncTags::Some(list) if list.len() > MAX_MANUAL_TAGS => {
                return Err(DirectoryError::Invalid(format!(
                    "at most {MAX_MANUAL_TAGS} tags at once"
                )))
            }
            SyncTags::Some(list) => list.clone(),
        };
        let mut records = Vec::new();
        for name in &names {
            let tag = Tag::parse(name)
                .map_err(|e| DirectoryError::Invalid(format!("tag {name:?}: {e}")))?;
            let manifest = self
                .registry
                .meta
                .manifest_by_tag(repo, &tag)
                .await?
                .ok_or_else(|| DirectoryError::NotFound(format!("tag {name} of {repo}")))?;
            for r in &rules {
                records.push(NewSyncRecord {
                    rule_id: r.id,
                    repo: repo.to_string(),
                    tag: name.clone(),
                    digest: manifest.digest.to_string(),
                    target_region: r.target_region.clone(),
                    target_namespace: r.target_namespace.clone(),
                    overwrite: r.overwrite,
                    trigger: "manual".to_owned(),
                    operator: actor.name().to_owned(),
                    replication: None,
                });
            }
        }
        let ids = store.start_syncs(&records, now_millis()).await?;
        self.registry.jobs_queued.notify_one();
        self.directory
            .record(
                actor,
                "sync.manual",
                repo.as_str(),
                &format!("{} tags, {} records", names.len(), ids.len()),
            )
            .await?;
        Ok(ids)
    }

    /// A page of records. With a repository: for those who may pull it;
    /// with a namespace: for its members; with neither: platform admins.
    pub async fn records(
        &self,
        actor: &Principal,
        query: &SyncRecordQuery,
    ) -> Result<(Vec<SyncRecord>, i64)> {
        if let Some(repo) = &query.repo {
            let repo = RepoName::parse(repo).map_err(|e| DirectoryError::Invalid(e.to_string()))?;
            self.check_pull(actor, &repo).await?;
        } else if let Some(ns) = &query.namespace {
            self.directory.member_namespace(actor, ns).await?;
        } else if !actor.is_platform_admin() {
            return Err(DirectoryError::Forbidden(
                "name a repository or a namespace; only platform admins list every record".into(),
            ));
        }
        Ok(self.store().sync_records(query).await?)
    }

    /// Run the job of a synchronization record.
    pub(crate) async fn run_job(
        &self,
        payload: &str,
        attempt: Attempt,
    ) -> std::result::Result<(), JobFailure> {
        let store = self.store();
        run_record(store, payload, attempt, self).await
    }

    /// Copy one tag to its target. Returns the final status.
    async fn synchronize(
        &self,
        record: &SyncRecord,
        progress: &mut SyncProgress,
    ) -> std::result::Result<&'static str, JobFailure> {
        let bad = |e: String| JobFailure::permanent(e);
        let repo = RepoName::parse(&record.repo).map_err(|e| bad(e.to_string()))?;
        let target =
            target_repository(&repo, &record.target_namespace).map_err(|e| bad(e.to_string()))?;
        let tag = Tag::parse(&record.tag).map_err(|e| bad(e.to_string()))?;
        let region = self
            .registry
            .regions
            .get(&record.target_region)
            .cloned()
            .ok_or_else(|| bad(format!("region {} is not configured", record.target_region)))?;
        // The rule's author must still be allowed to push to the target.
        let author = match record.rule_id {
            Some(id) => self.store().sync_rule(id).await?.map(|r| r.author),
            None => None,
        };
        let author = author.unwrap_or_else(|| record.operator.clone());
        let principal = match self.directory.account(&author).await {
            Ok(a) if !a.disabled => Principal::Account {
                id: a.id,
                name: a.name,
                is_admin: a.is_admin,
            },
            Ok(_) => return Err(bad(format!("account {author} is disabled"))),
            Err(DirectoryError::NotFound(_)) => {
                return Err(bad(format!("account {author} no longer exists")))
            }
            Err(e) => return Err(JobFailure::retry(e.to_string())),
        };
        let may_push = self
            .directory
            .actions(&principal, &target)
            .await
            .map_err(|e| JobFailure::retry(e.to_string()))?
            .push;
        if !may_push {
            return Err(bad(format!("{author} may no longer push to {target}")));
        }
        let digest: Digest = record
            .digest
            .parse()
            .map_err(|_| bad("invalid digest".into()))?;
        // The blobs first, into the target region.
        let Some(counts) = self
            .registry
            .copy_image_blobs(repo.as_str(), digest.as_str(), &region)
            .await?
        else {
            return Err(bad(format!(
                "{}@{} no longer exists",
                record.repo, record.digest
            )));
        };
        progress.bytes_copied = counts.bytes;
        progress.blobs_copied = counts.copied;
        progress.blobs_present = counts.present;
        let current = self.registry.meta.manifest_by_tag(&target, &tag).await?;
        // Already there: nothing to push, so rules that point at each
        // other (A to B, B to A) stop here instead of pushing in a circle.
        if current.as_ref().is_some_and(|c| c.digest == digest) {
            return Ok(sync_status::SUCCEEDED);
        }
        // Overwrite off: a differing tag in the target stays, and the
        // rule's author is told.
        if !record.overwrite {
            if let Some(current) = current {
                if current.digest != digest {
                    let message = format!(
                        "{target}:{tag} already points at {} and the rule does not overwrite",
                        current.digest
                    );
                    progress.error = Some(message.clone());
                    let _ = self
                        .directory
                        .record(&principal, "sync.conflict", target.as_str(), &message)
                        .await;
                    return Ok(sync_status::CONFLICT);
                }
            }
        }
        self.copy_manifest(&repo, &target, &digest, Some(&tag), &record.operator, 0)
            .await?;
        Ok(sync_status::SUCCEEDED)
    }

    /// Copy a manifest (its children first) into `target`, linking its blobs.
    async fn copy_manifest(
        &self,
        repo: &RepoName,
        target: &RepoName,
        digest: &Digest,
        tag: Option<&Tag>,
        actor: &str,
        depth: usize,
    ) -> std::result::Result<(), JobFailure> {
        if depth > 4 {
            return Err(JobFailure::permanent("manifests nest too deeply"));
        }
        let meta = &self.registry.meta;
        let manifest = meta
            .manifest_by_digest(repo, digest)
            .await?
            .ok_or_else(|| JobFailure::permanent(format!("{repo}@{digest} no longer exists")))?;
        let parsed =
            berth_oci::ParsedManifest::parse(&manifest.content, Some(&manifest.media_type))
                .map_err(|e| JobFailure::permanent(format!("stored manifest {digest}: {e}")))?;
        for child in &parsed.manifests {
            if meta
                .manifest_by_digest(target, &child.digest)
                .await?
                .is_none()
            {
                Box::pin(self.copy_manifest(repo, target, &child.digest, None, actor, depth + 1))
                    .await?;
            }
        }
        let quota = self.registry.policy(target.namespace()).await?.quota_bytes;
        for d in parsed
            .blob_references()
            .filter(|d| !d.is_non_distributable())
        {
            let size = meta.repo_blob_size(repo, &d.digest).await?.ok_or_else(|| {
                JobFailure::permanent(format!("blob {} is not in {repo}", d.digest))
            })?;
            match meta
                .link_blob(target, &d.digest, size, now_millis(), quota, None)
                .await?
            {
                berth_meta::LinkOutcome::Linked => {}
                berth_meta::LinkOutcome::Collecting => {
                    return Err(JobFailure::retry(format!(
                        "blob {} is being collected",
                        d.digest
                    )))
                }
                berth_meta::LinkOutcome::OverQuota { used } => {
                    return Err(JobFailure::permanent(format!(
                        "the storage quota of namespace {} is exceeded ({used} bytes used)",
                        target.namespace()
                    )))
                }
                berth_meta::LinkOutcome::OverGroupQuota { group, used, quota } => {
                    return Err(JobFailure::permanent(format!(
                        "the storage quota of project group {group} is exceeded ({used} of {quota} bytes used)"
                    )))
                }
            }
        }
        let reference = match tag {
            Some(t) => Reference::Tag(t.clone()),
            None => Reference::Digest(digest.clone()),
        };
        self.registry
            .put_manifest(ManifestPush {
                repo: target,
                reference: &reference,
                content_type: Some(&manifest.media_type),
                body: manifest.content,
                extra_tags: Vec::new(),
                actor,
                client_addr: None,
                cached: false,
            })
            .await?;
        Ok(())
    }
}
