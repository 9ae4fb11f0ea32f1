//! Replication with remote registries (Harbor-style rules): push (this
//! registry to a remote) or pull (a remote to this registry), repository
//! and tag filters, a destination with path flattening, override or
//! conflict, replicated deletions, a bandwidth limit, and three triggers:
//! on push (the task is recorded and queued in the push's transaction),
//! on a schedule, and by hand. A manual or scheduled run lists what the
//! rule covers in a job and makes one task per tag; every task is a
//! record of the one record model the regions' synchronization uses, run
//! by the job queue's workers with the copy engine in [`transfer`].

mod filters;
mod transfer;

use std::sync::Arc;

use berth_meta::platform::remote_replication::run_status;
use berth_meta::platform::{record_kind, sync_status};
use berth_meta::{
    NewSyncRecord, PlatformStore, ReplicationRule, ReplicationRuleInput, ReplicationRun,
    ReplicationTask, SyncProgress, SyncRecord, SyncRecordQuery,
};
use berth_oci::{Digest, Reference, RepoName, Tag};
use serde::Deserialize;

pub use filters::{destination_name, Filters, PatternSet};
pub use transfer::ResumePoints;

use super::sync::{record_event, run_record, RecordWork};
use super::Remotes;
use crate::access::Principal;
use crate::clock::now_millis;
use crate::events::{kind, Event};
use crate::jobs::{Attempt, JobFailure};
use crate::{Directory, DirectoryError, Registry};
use transfer::{client_failure, Moved, Transfer};

type Result<T> = std::result::Result<T, DirectoryError>;

/// Rule directions.
pub mod direction {
    /// This registry to the remote.
    pub const PUSH: &str = "push";
    /// The remote to this registry.
    pub const PULL: &str = "pull";
}

/// Rule triggers.
pub mod trigger {
    /// Only when started by hand.
    pub const MANUAL: &str = "manual";
    /// Each push of a matching tag (push rules), and each deletion when
    /// the rule replicates deletions.
    pub const ON_PUSH: &str = "on_push";
    /// Every `interval_secs`.
    pub const SCHEDULE: &str = "schedule";
}

/// Shortest schedule interval.
pub const MIN_INTERVAL_SECS: i64 = 10;

/// What a rule asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// See [`direction`].
    pub direction: String,
    /// The remote registry.
    pub remote: String,
    /// What it covers.
    pub filters: Filters,
    /// Namespace (pull) or path prefix (push; may be empty) of the copies.
    pub destination: String,
    /// Leading path components dropped from source names (-1: all but the last).
    pub flatten: i64,
    /// Overwrite a differing destination tag (else: a conflict record).
    pub overwrite: bool,
    /// Replicate deletions.
    pub deletions: bool,
    /// Copy the manifests that refer to each copied one (signatures, SBOMs).
    pub referrers: bool,
    /// Bytes per second per task (0: no limit).
    pub bandwidth: i64,
    /// See [`trigger`].
    pub trigger: String,
    /// Seconds between scheduled runs.
    pub interval_secs: Option<i64>,
    /// Enabled.
    pub enabled: bool,
}

/// A rule's filters as stored (a rule whose JSON does not parse covers
/// nothing).
pub fn rule_filters(rule: &ReplicationRule) -> Filters {
    serde_json::from_str(&rule.filters).unwrap_or_else(|_| Filters {
        repositories: PatternSet {
            include: Vec::new(),
            exclude: vec!["*".into()],
        },
        tags: PatternSet::default(),
    })
}

/// The tasks a push of `repo@digest` with `tags` triggers: one per
/// enabled on-push push rule covering the repository, per covered tag.
pub(crate) fn push_tasks(
    rules: &[ReplicationRule],
    repo: &RepoName,
    digest: &Digest,
    tags: &[Tag],
    actor: &str,
    region: &str,
) -> Vec<NewSyncRecord> {
    let mut out = Vec::new();
    for rule in rules
        .iter()
        .filter(|r| r.enabled && r.direction == direction::PUSH && r.trigger == trigger::ON_PUSH)
    {
        let filters = rule_filters(rule);
        if !filters.repositories.matches(repo.as_str()) {
            continue;
        }
        for tag in tags.iter().filter(|t| filters.tags.matches(t.as_str())) {
            out.push(task(
                rule,
                None,
                repo.as_str(),
                &destination_name(repo.as_str(), rule.flatten, &rule.destination),
                tag.as_str(),
                digest.as_str(),
                "copy",
                "on_push",
                actor,
                region,
            ));
        }
    }
    out
}

/// A deletion the events of a delete describe: the repository, and the
/// tag or digest (neither: the whole image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deletion {
    pub actor: String,
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Deletion {
    /// The deletion an event reports, if it is one.
    pub(crate) fn of(event: &berth_meta::NewEvent) -> Option<Deletion> {
        if event.kind != kind::TAG_DELETE && event.kind != kind::IMAGE_DELETE {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&event.payload).ok()?;
        let data = v.get("data")?;
        let text = |k: &str| data.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        Some(Deletion {
            actor: v
                .get("actor")
                .and_then(|a| a.as_str())
                .unwrap_or_default()
                .to_owned(),
            repo: text("repository")?,
            tag: text("tag"),
            digest: if event.kind == kind::IMAGE_DELETE {
                text("digest")
            } else {
                None
            },
        })
    }
}

/// The tasks deletions trigger: one per enabled on-push push rule that
/// replicates deletions and covers the repository (and tag).
pub(crate) fn deletion_tasks(
    rules: &[ReplicationRule],
    deletions: &[Deletion],
    region: &str,
) -> Vec<NewSyncRecord> {
    let mut out = Vec::new();
    for rule in rules.iter().filter(|r| {
        r.enabled && r.deletions && r.direction == direction::PUSH && r.trigger == trigger::ON_PUSH
    }) {
        let filters = rule_filters(rule);
        for d in deletions {
            if !filters.repositories.matches(&d.repo)
                || d.tag.as_ref().is_some_and(|t| !filters.tags.matches(t))
            {
                continue;
            }
            out.push(task(
                rule,
                None,
                &d.repo,
                &destination_name(&d.repo, rule.flatten, &rule.destination),
                d.tag.as_deref().unwrap_or(""),
                d.digest.as_deref().unwrap_or(""),
                "delete",
                "on_push",
                &d.actor,
                region,
            ));
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn task(
    rule: &ReplicationRule,
    run: Option<i64>,
    local: &str,
    remote_repo: &str,
    tag: &str,
    digest: &str,
    action: &str,
    trigger: &str,
    operator: &str,
    region: &str,
) -> NewSyncRecord {
    NewSyncRecord {
        rule_id: 0,
        repo: local.to_owned(),
        tag: tag.to_owned(),
        digest: digest.to_owned(),
        target_region: region.to_owned(),
        target_namespace: rule.destination.clone(),
        overwrite: rule.overwrite,
        trigger: trigger.to_owned(),
        operator: operator.to_owned(),
        replication: Some(ReplicationTask {
            rule_id: Some(rule.id),
            run_id: run,
            remote: rule.remote.clone(),
            remote_repo: remote_repo.to_owned(),
            direction: rule.direction.clone(),
            action: action.to_owned(),
        }),
    }
}

fn check_rule_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if ok {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(format!(
            "rule name {name:?}: 1 to 64 lower-case letters, digits, '-', '_' or '.'"
        )))
    }
}

#[derive(Debug, Deserialize)]
struct RunPayload {
    run: i64,
}

/// Replication rules, their runs and tasks.
#[derive(Debug, Clone)]
pub struct Replications {
    registry: Registry,
    directory: Directory,
    remotes: Remotes,
    resume: Arc<ResumePoints>,
}

impl Replications {
    /// Rules over the registry, the directory and the remotes.
    pub fn new(registry: Registry, directory: Directory, remotes: Remotes) -> Self {
        Replications {
            registry,
            directory,
            remotes,
            resume: Arc::default(),
        }
    }

    fn store(&self) -> &dyn PlatformStore {
        &*self.registry.platform
    }

    fn check_admin(actor: &Principal) -> Result<()> {
        if actor.is_platform_admin() {
            Ok(())
        } else {
            Err(DirectoryError::Forbidden(
                "replication rules are for platform administrators".into(),
            ))
        }
    }

    async fn input(
        &self,
        actor: &Principal,
        spec: &RuleSpec,
        author: &str,
    ) -> Result<ReplicationRuleInput> {
        check_rule_name(&spec.name)?;
        if spec.description.len() > 1000 {
            return Err(DirectoryError::Invalid(
                "description: at most 1000 characters".into(),
            ));
        }
        if spec.direction != direction::PUSH && spec.direction != direction::PULL {
            return Err(DirectoryError::Invalid(format!(
                "direction {:?}: push or pull",
                spec.direction
            )));
        }
        // The remote must exist (registered or declared).
        self.remotes.get(actor, &spec.remote).await?;
        spec.filters.check().map_err(DirectoryError::Invalid)?;
        if !(-1..=16).contains(&spec.flatten) {
            return Err(DirectoryError::Invalid(
                "flatten: -1 (all but the last component) or 0 to 16 leading components".into(),
            ));
        }
        if spec.bandwidth < 0 {
            return Err(DirectoryError::Invalid(
                "bandwidth: 0 (no limit) or more".into(),
            ));
        }
        let destination = spec.destination.trim_matches('/').to_owned();
        if !destination.is_empty() {
            RepoName::parse(&format!("{destination}/x")).map_err(|e| {
                DirectoryError::Invalid(format!("destination {destination:?}: {e}"))
            })?;
        }
        if spec.direction == direction::PULL {
            let ns = destination.split('/').next().unwrap_or_default();
            if ns.is_empty() {
                return Err(DirectoryError::Invalid(
                    "a pull rule needs a destination namespace of this registry".into(),
                ));
            }
            self.directory.namespace(ns).await?;
        }
        let (interval, next) = match spec.trigger.as_str() {
            trigger::MANUAL => (None, None),
            trigger::ON_PUSH if spec.direction == direction::PUSH => (None, None),
            trigger::ON_PUSH => {
                return Err(DirectoryError::Invalid(
                    "on_push triggers push rules; a pull rule runs by hand or on a schedule".into(),
                ))
            }
            trigger::SCHEDULE => match spec.interval_secs {
                Some(s) if (MIN_INTERVAL_SECS..=366 * 86_400).contains(&s) => {
                    (Some(s), Some(now_millis() + s * 1000))
                }
                _ => {
                    return Err(DirectoryError::Invalid(format!(
                        "a scheduled rule needs interval_secs from {MIN_INTERVAL_SECS} to a year"
                    )))
                }
            },
            other => {
                return Err(DirectoryError::Invalid(format!(
                    "trigger {other:?}: manual, on_push or schedule"
                )))
            }
        };
        Ok(ReplicationRuleInput {
            name: spec.name.clone(),
            description: spec.description.clone(),
            direction: spec.direction.clone(),
            remote: spec.remote.clone(),
            filters: serde_json::to_string(&spec.filters).unwrap_or_default(),
            destination,
            flatten: spec.flatten,
            overwrite: spec.overwrite,
            deletions: spec.deletions,
            referrers: spec.referrers,
            bandwidth: spec.bandwidth,
            trigger: spec.trigger.clone(),
            interval_secs: interval,
            next_run_at: next,
            enabled: spec.enabled,
            author: author.to_owned(),
            now: now_millis(),
        })
    }

    /// Every rule.
    pub async fn rules(&self, actor: &Principal) -> Result<Vec<ReplicationRule>> {
        Self::check_admin(actor)?;
        Ok(self.store().replication_rules().await?)
    }

    /// A rule.
    pub async fn rule(&self, actor: &Principal, id: i64) -> Result<ReplicationRule> {
        Self::check_admin(actor)?;
        self.store()
            .replication_rule(id)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("replication rule {id}")))
    }

    /// Create a rule.
    pub async fn create(&self, actor: &Principal, spec: &RuleSpec) -> Result<ReplicationRule> {
        Self::check_admin(actor)?;
        let input = self.input(actor, spec, actor.name()).await?;
        let rule = self.store().create_replication_rule(&input).await?;
        self.directory
            .record(
                actor,
                "replication.rule.create",
                &rule.name,
                &format!("{} {} {}", rule.direction, rule.remote, rule.trigger),
            )
            .await?;
        Ok(rule)
    }

    /// Replace a rule's settings.
    pub async fn update(
        &self,
        actor: &Principal,
        id: i64,
        spec: &RuleSpec,
    ) -> Result<ReplicationRule> {
        let old = self.rule(actor, id).await?;
        let mut input = self.input(actor, spec, &old.author).await?;
        // An unchanged schedule keeps its next run.
        if old.trigger == input.trigger && old.interval_secs == input.interval_secs {
            input.next_run_at = old.next_run_at.or(input.next_run_at);
        }
        let rule = self
            .store()
            .update_replication_rule(id, &input)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("replication rule {id}")))?;
        self.directory
            .record(actor, "replication.rule.update", &rule.name, "")
            .await?;
        Ok(rule)
    }

    /// Delete a rule (its runs and records stay).
    pub async fn delete(&self, actor: &Principal, id: i64) -> Result<()> {
        let rule = self.rule(actor, id).await?;
        self.store().delete_replication_rule(id).await?;
        self.directory
            .record(actor, "replication.rule.delete", &rule.name, "")
            .await
    }

    /// Start a run of a rule now. Returns the run's id.
    pub async fn run_now(&self, actor: &Principal, id: i64) -> Result<i64> {
        let rule = self.rule(actor, id).await?;
        let run = self
            .store()
            .start_replication_run(id, "manual", actor.name(), now_millis(), None)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("replication rule {id}")))?;
        self.registry.jobs_queued.notify_one();
        self.directory
            .record(actor, "replication.run", &rule.name, &format!("run {run}"))
            .await?;
        Ok(run)
    }

    /// A page of runs, newest first.
    pub async fn runs(
        &self,
        actor: &Principal,
        rule: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ReplicationRun>, i64)> {
        Self::check_admin(actor)?;
        Ok(self.store().replication_runs(rule, limit, offset).await?)
    }

    /// A run.
    pub async fn run(&self, actor: &Principal, id: i64) -> Result<ReplicationRun> {
        Self::check_admin(actor)?;
        self.store()
            .replication_run(id)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("replication run {id}")))
    }

    /// A page of tasks (of a run, of a rule, or all), newest first.
    pub async fn tasks(
        &self,
        actor: &Principal,
        mut query: SyncRecordQuery,
    ) -> Result<(Vec<SyncRecord>, i64)> {
        Self::check_admin(actor)?;
        query.kind = Some(record_kind::REPLICATION.to_owned());
        Ok(self.store().sync_records(&query).await?)
    }

    /// Start the runs of scheduled rules that are due. Returns how many.
    pub async fn run_due(&self) -> std::result::Result<usize, berth_meta::MetaError> {
        let store = &*self.registry.platform;
        let now = now_millis();
        let mut started = 0;
        for rule in store.due_replication_rules(now).await? {
            let every = rule.interval_secs.unwrap_or(3600).max(MIN_INTERVAL_SECS) * 1000;
            if store
                .start_replication_run(
                    rule.id,
                    trigger::SCHEDULE,
                    "scheduler",
                    now,
                    Some(now + every),
                )
                .await?
                .is_some()
            {
                started += 1;
            }
        }
        if started > 0 {
            self.registry.jobs_queued.notify_one();
        }
        Ok(started)
    }

    // ---- jobs --------------------------------------------------------------

    /// List what a run covers and make its tasks.
    pub(crate) async fn run_listing_job(
        &self,
        payload: &str,
        attempt: Attempt,
    ) -> std::result::Result<(), JobFailure> {
        let p: RunPayload = serde_json::from_str(payload)
            .map_err(|e| JobFailure::permanent(format!("invalid payload: {e}")))?;
        let store = self.store();
        let Some(run) = store.replication_run(p.run).await? else {
            return Ok(());
        };
        if run.status != run_status::LISTING {
            return Ok(());
        }
        let now = now_millis();
        let Some(rule) = (match run.rule_id {
            Some(id) => store.replication_rule(id).await?,
            None => None,
        }) else {
            store
                .finish_run_listing(
                    run.id,
                    run_status::FAILED,
                    Some("the rule was deleted"),
                    &[],
                    now,
                )
                .await?;
            return Ok(());
        };
        match self.list(&rule, &run).await {
            Ok(tasks) => {
                store
                    .finish_run_listing(run.id, run_status::LISTED, None, &tasks, now_millis())
                    .await?;
                if !tasks.is_empty() {
                    self.registry.jobs_queued.notify_one();
                }
                Ok(())
            }
            Err(f) if f.permanent || attempt.last => {
                store
                    .finish_run_listing(
                        run.id,
                        run_status::FAILED,
                        Some(&f.message),
                        &[],
                        now_millis(),
                    )
                    .await?;
                Err(f)
            }
            Err(f) => Err(f),
        }
    }

    /// The tasks of a run of `rule`.
    async fn list(
        &self,
        rule: &ReplicationRule,
        run: &ReplicationRun,
    ) -> std::result::Result<Vec<NewSyncRecord>, JobFailure> {
        let filters = rule_filters(rule);
        let region = self.registry.regions.local().name.clone();
        let mut tasks = Vec::new();
        let mut add = |local: &str, remote_repo: &str, tag: &str, digest: &str, action: &str| {
            tasks.push(task(
                rule,
                Some(run.id),
                local,
                remote_repo,
                tag,
                digest,
                action,
                &run.trigger,
                &run.operator,
                &region,
            ))
        };
        if rule.direction == direction::PUSH {
            let mut last: Option<String> = None;
            loop {
                let page = self.registry.catalog(last.as_deref(), 1000).await?;
                let done = page.len() < 1000;
                last = page.last().cloned();
                for name in page.iter().filter(|n| filters.repositories.matches(n)) {
                    let repo = RepoName::parse(name)
                        .map_err(|e| JobFailure::permanent(format!("repository {name}: {e}")))?;
                    let dest = destination_name(name, rule.flatten, &rule.destination);
                    for tag in self.all_tags(&repo).await? {
                        if !filters.tags.matches(&tag) {
                            continue;
                        }
                        let Ok(t) = Tag::parse(&tag) else { continue };
                        if let Some(m) = self.registry.meta.manifest_by_tag(&repo, &t).await? {
                            add(name, &dest, &tag, m.digest.as_str(), "copy");
                        }
                    }
                }
                if done {
                    break;
                }
            }
        } else {
            let client = self
                .remotes
                .client(&rule.remote)
                .await
                .map_err(|e| JobFailure::permanent(e.to_string()))?;
            let repos: Vec<String> = match filters.repositories.literals() {
                Some(names) => names.to_vec(),
                None => client
                    .catalog()
                    .await
                    .map_err(|e| client_failure("listing the remote's repositories", e))?
                    .into_iter()
                    .filter(|n| filters.repositories.matches(n))
                    .collect(),
            };
            for name in repos {
                let dest = destination_name(&name, rule.flatten, &rule.destination);
                let local = RepoName::parse(&dest)
                    .map_err(|e| JobFailure::permanent(format!("destination {dest}: {e}")))?;
                let remote_tags = client
                    .tags(&name)
                    .await
                    .map_err(|e| client_failure(&format!("listing the tags of {name}"), e))?;
                for tag in remote_tags.iter().filter(|t| filters.tags.matches(t)) {
                    let digest = client
                        .head_manifest(&name, tag)
                        .await
                        .map_err(|e| client_failure(&format!("reading {name}:{tag}"), e))?
                        .map(|h| h.digest.to_string())
                        .unwrap_or_default();
                    add(&dest, &name, tag, &digest, "copy");
                }
                if rule.deletions {
                    for tag in self.all_tags(&local).await? {
                        if filters.tags.matches(&tag) && !remote_tags.contains(&tag) {
                            add(&dest, &name, &tag, "", "delete");
                        }
                    }
                }
            }
        }
        Ok(tasks)
    }

    async fn all_tags(&self, repo: &RepoName) -> std::result::Result<Vec<String>, JobFailure> {
        let mut all = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let page = self.registry.list_tags(repo, last.as_deref(), 1000).await;
            let page = match page {
                Ok(p) => p,
                Err(crate::RegistryError::NameUnknown(_)) => return Ok(all),
                Err(e) => return Err(e.into()),
            };
            let done = page.len() < 1000;
            last = page.last().cloned();
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    /// Carry out one task.
    pub(crate) async fn run_task_job(
        &self,
        payload: &str,
        attempt: Attempt,
    ) -> std::result::Result<(), JobFailure> {
        let store = self.store();
        run_record(store, payload, attempt, self).await
    }

    async fn carry_out(
        &self,
        record: &SyncRecord,
        task: &ReplicationTask,
        progress: &mut SyncProgress,
    ) -> std::result::Result<&'static str, JobFailure> {
        let bad = |e: String| JobFailure::permanent(e);
        let rule = match task.rule_id {
            Some(id) => self.store().replication_rule(id).await?,
            None => None,
        };
        let client = match self.remotes.client(&task.remote).await {
            Ok(c) => c,
            Err(e) => return Err(bad(e.to_string())),
        };
        let transfer = Transfer {
            registry: &self.registry,
            client: &client,
            remote: &task.remote,
            rate: rule.as_ref().map_or(0, |r| r.bandwidth.max(0) as u64),
            referrers: rule.as_ref().is_some_and(|r| r.referrers),
            resume: &self.resume,
            moved: Moved::default(),
        };
        let local = RepoName::parse(&record.repo).map_err(|e| bad(e.to_string()))?;
        let remote_repo = task.remote_repo.as_str();
        let actor = rule
            .as_ref()
            .map_or(record.operator.as_str(), |r| r.author.as_str());
        let outcome = match (task.direction.as_str(), task.action.as_str()) {
            (direction::PUSH, "copy") => {
                self.push_copy(record, &transfer, &local, remote_repo).await
            }
            (direction::PULL, "copy") => {
                self.pull_copy(record, &transfer, &local, remote_repo, actor)
                    .await
            }
            (direction::PUSH, "delete") => self.push_delete(record, &client, remote_repo).await,
            (direction::PULL, "delete") => self.pull_delete(record, &local, actor).await,
            (d, a) => Err(bad(format!("unknown task: {d} {a}"))),
        };
        progress.bytes_copied = transfer
            .moved
            .bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        progress.blobs_copied = transfer
            .moved
            .copied
            .load(std::sync::atomic::Ordering::Relaxed);
        progress.blobs_present = transfer
            .moved
            .present
            .load(std::sync::atomic::Ordering::Relaxed);
        match outcome {
            Ok(Ok(())) => Ok(sync_status::SUCCEEDED),
            Ok(Err(conflict)) => {
                progress.error = Some(conflict);
                Ok(sync_status::CONFLICT)
            }
            Err(f) => Err(f),
        }
    }

    /// Push a tag; `Ok(Err(why))` is a conflict.
    async fn push_copy(
        &self,
        record: &SyncRecord,
        transfer: &Transfer<'_>,
        local: &RepoName,
        remote_repo: &str,
    ) -> std::result::Result<std::result::Result<(), String>, JobFailure> {
        let bad = |e: String| JobFailure::permanent(e);
        let tag = Tag::parse(&record.tag).map_err(|e| bad(e.to_string()))?;
        let digest: Digest = record
            .digest
            .parse()
            .map_err(|_| bad("invalid digest".into()))?;
        let there = transfer
            .client
            .head_manifest(remote_repo, tag.as_str())
            .await
            .map_err(|e| client_failure("reading the remote's tag", e))?;
        match there {
            Some(h) if h.digest == digest => return Ok(Ok(())),
            Some(h) if !record.overwrite => {
                return Ok(Err(format!(
                    "{}:{remote_repo}:{tag} already points at {} and the rule does not overwrite",
                    transfer.remote, h.digest
                )))
            }
            _ => {}
        }
        transfer
            .push_image(local, remote_repo, &digest, Some(&tag), 0)
            .await?;
        Ok(Ok(()))
    }

    /// Pull a tag; `Ok(Err(why))` is a conflict.
    async fn pull_copy(
        &self,
        record: &SyncRecord,
        transfer: &Transfer<'_>,
        local: &RepoName,
        remote_repo: &str,
        actor: &str,
    ) -> std::result::Result<std::result::Result<(), String>, JobFailure> {
        let bad = |e: String| JobFailure::permanent(e);
        let tag = Tag::parse(&record.tag).map_err(|e| bad(e.to_string()))?;
        self.directory
            .namespace(local.namespace())
            .await
            .map_err(|e| bad(format!("destination: {e}")))?;
        let manifest = transfer
            .client
            .manifest(remote_repo, tag.as_str())
            .await
            .map_err(|e| client_failure("reading the remote's manifest", e))?
            .ok_or_else(|| {
                bad(format!(
                    "{remote_repo}:{tag} no longer exists on the remote"
                ))
            })?;
        match self.registry.meta.manifest_by_tag(local, &tag).await? {
            Some(m) if m.digest == manifest.digest => return Ok(Ok(())),
            Some(m) if !record.overwrite => {
                return Ok(Err(format!(
                    "{local}:{tag} already points at {} and the rule does not overwrite",
                    m.digest
                )))
            }
            _ => {}
        }
        transfer
            .pull_image(remote_repo, local, manifest, Some(&tag), actor, 0)
            .await?;
        Ok(Ok(()))
    }

    /// Delete on the remote what was deleted here.
    async fn push_delete(
        &self,
        record: &SyncRecord,
        client: &berth_client::RegistryClient,
        remote_repo: &str,
    ) -> std::result::Result<std::result::Result<(), String>, JobFailure> {
        let fail = |e| client_failure("deleting on the remote", e);
        let mut digests = Vec::new();
        if !record.digest.is_empty() {
            digests.push(record.digest.clone());
        } else {
            let tags = if record.tag.is_empty() {
                client.tags(remote_repo).await.map_err(fail)?
            } else {
                vec![record.tag.clone()]
            };
            for tag in tags {
                // Registries that cannot delete a tag alone delete its manifest.
                match client.delete_manifest(remote_repo, &tag).await {
                    Ok(_) => continue,
                    Err(e) if e.is_transient() => return Err(fail(e)),
                    Err(_) => {}
                }
                if let Some(h) = client
                    .head_manifest(remote_repo, &tag)
                    .await
                    .map_err(fail)?
                {
                    digests.push(h.digest.to_string());
                }
            }
        }
        for d in digests {
            client
                .delete_manifest(remote_repo, &d)
                .await
                .map_err(fail)?;
        }
        Ok(Ok(()))
    }

    /// Delete here a tag the remote no longer has.
    async fn pull_delete(
        &self,
        record: &SyncRecord,
        local: &RepoName,
        actor: &str,
    ) -> std::result::Result<std::result::Result<(), String>, JobFailure> {
        let tag = Tag::parse(&record.tag).map_err(|e| JobFailure::permanent(e.to_string()))?;
        match self
            .registry
            .delete_manifest(local, &Reference::Tag(tag.clone()))
            .await
        {
            Ok(()) => {}
            Err(
                crate::RegistryError::ManifestUnknown(_) | crate::RegistryError::NameUnknown(_),
            ) => return Ok(Ok(())),
            Err(e) => return Err(e.into()),
        }
        let event = Event::new(kind::TAG_DELETE, Some(local.namespace()))
            .actor(actor)
            .with("repository", local.as_str())
            .with("tag", tag.as_str())
            .with("reason", "replication")
            .build();
        if let Err(e) = self.registry.emit(&[event]).await {
            tracing::warn!(error = %e, "could not queue a delete event for webhooks");
        }
        Ok(Ok(()))
    }
}

/// The webhook event of a replication task's end.
fn replication_event(record: &SyncRecord, progress: &SyncProgress) -> Vec<berth_meta::NewEvent> {
    let Some(task) = &record.replication else {
        return Vec::new();
    };
    record_event(
        record,
        progress,
        [
            kind::REPLICATION_SUCCEEDED,
            kind::REPLICATION_CONFLICT,
            kind::REPLICATION_FAILED,
        ],
        |e| {
            e.with("rule", task.rule_id)
                .with("run", task.run_id)
                .with("direction", task.direction.as_str())
                .with("action", task.action.as_str())
                .with("remote", task.remote.as_str())
                .with("remote_repository", task.remote_repo.as_str())
        },
    )
}

#[async_trait::async_trait]
impl RecordWork for Replications {
    async fn work(
        &self,
        record: &SyncRecord,
        progress: &mut SyncProgress,
    ) -> std::result::Result<&'static str, JobFailure> {
        let task = record
            .replication
            .clone()
            .ok_or_else(|| JobFailure::permanent("not a replication task"))?;
        self.carry_out(record, &task, progress).await
    }

    fn events(&self, record: &SyncRecord, progress: &SyncProgress) -> Vec<berth_meta::NewEvent> {
        replication_event(record, progress)
    }
}
