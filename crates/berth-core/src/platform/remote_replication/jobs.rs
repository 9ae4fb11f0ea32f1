//! The jobs of remote replication: listing what a run covers into
//! tasks, carrying out each task (copies and deletions, either
//! direction), and the events of their ends.

use berth_meta::platform::remote_replication::run_status;
use berth_meta::platform::sync_status;
use berth_meta::{
    NewSyncRecord, ReplicationRule, ReplicationRun, ReplicationTask, SyncProgress, SyncRecord,
};
use berth_oci::{Digest, Reference, RepoName, Tag};

use super::transfer::{client_failure, Moved, Transfer};
use crate::clock::now_millis;
use crate::events::{kind, Event};
use crate::jobs::{Attempt, JobFailure};
use crate::platform::sync::{record_event, run_record, RecordWork};

use super::filters::destination_name;
use super::{direction, rule_filters, task, Replications, RunPayload};

impl Replications {
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
