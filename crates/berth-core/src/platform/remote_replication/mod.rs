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
mod jobs;
mod transfer;

use std::sync::Arc;

use berth_meta::platform::record_kind;
use berth_meta::{
    NewSyncRecord, PlatformStore, ReplicationRule, ReplicationRuleInput, ReplicationRun,
    ReplicationTask, SyncRecord, SyncRecordQuery,
};
use berth_oci::{Digest, RepoName, Tag};
use serde::Deserialize;

pub use filters::{destination_name, Filters, PatternSet};
pub use transfer::ResumePoints;

use super::Remotes;
use crate::access::Principal;
use crate::clock::now_millis;
use crate::events::kind;
use crate::{Directory, DirectoryError, Registry};

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
}
