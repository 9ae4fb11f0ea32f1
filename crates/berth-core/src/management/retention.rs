//! Namespace policies and retention runs (dry or real).

use berth_meta::TagFacts;
use berth_oci::RepoName;

use crate::access::Principal;
use crate::clock::now_millis;
use crate::error::DirectoryError;
use crate::events::{kind, Event};
use crate::policy::{retention_plan, NamespacePolicy};

use super::Management;

type Result<T> = std::result::Result<T, DirectoryError>;

/// A namespace's policies with its storage use.
#[derive(Debug, Clone)]
pub struct PolicyView {
    /// The policies.
    pub policy: NamespacePolicy,
    /// Bytes of the distinct blobs the namespace holds.
    pub used_bytes: i64,
}

/// What a retention run did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct RetentionReport {
    /// Whether nothing was deleted.
    pub dry_run: bool,
    /// Tags deleted (or to delete), with whether their image went too.
    pub deleted: Vec<(TagFacts, bool)>,
    /// Tags kept.
    pub kept: usize,
}

impl Management {
    /// A namespace's policies and storage use (its members).
    pub async fn policy(&self, actor: &Principal, namespace: &str) -> Result<PolicyView> {
        let ns = self.directory.member_namespace(actor, namespace).await?;
        let policy = self.registry.policy(&ns.name).await?;
        let used_bytes = self.registry.meta().namespace_usage(&ns.name).await?;
        Ok(PolicyView { policy, used_bytes })
    }

    /// Replace a namespace's policies (its administrators).
    pub async fn set_policy(
        &self,
        actor: &Principal,
        namespace: &str,
        policy: &NamespacePolicy,
    ) -> Result<PolicyView> {
        let ns = self.directory.admin_namespace(actor, namespace).await?;
        policy.validate().map_err(DirectoryError::Invalid)?;
        // The quota bounds the tenant: it is the platform's to set. The
        // namespace's administrators see it, and may send it back as it is.
        if !actor.is_platform_admin()
            && self.registry.policy(&ns.name).await?.quota_bytes != policy.quota_bytes
        {
            return Err(DirectoryError::Forbidden(
                "the storage quota is set by platform administrators; leave quota_bytes as it is"
                    .into(),
            ));
        }
        if !self
            .registry
            .meta()
            .set_namespace_policy(&ns.name, &policy.to_record(), now_millis())
            .await?
        {
            return Err(DirectoryError::NotFound(format!("namespace {namespace}")));
        }
        let detail = format!(
            "immutable tags {:?}; quota {}; {} retention rule(s)",
            policy.immutable_tags,
            policy
                .quota_bytes
                .map(|q| format!("{q} bytes"))
                .unwrap_or_else(|| "none".into()),
            policy.retention.len()
        );
        self.directory
            .record(actor, "namespace.policy", &ns.name, &detail)
            .await?;
        self.policy(actor, namespace).await
    }

    /// Apply a namespace's retention rules (its administrators); a dry run
    /// only lists the tags that would go.
    pub async fn run_retention(
        &self,
        actor: &Principal,
        namespace: &str,
        dry_run: bool,
    ) -> Result<RetentionReport> {
        let ns = self.directory.admin_namespace(actor, namespace).await?;
        self.apply_retention(actor, &ns.name, dry_run).await
    }

    /// Apply the retention rules of every namespace that has some (the
    /// schedule). Returns the tags deleted.
    pub async fn run_all_retention(&self) -> Result<usize> {
        let mut deleted = 0;
        for ns in self.registry.meta().retention_namespaces().await? {
            let report = self.apply_retention(&Principal::System, &ns, false).await?;
            deleted += report.deleted.len();
        }
        Ok(deleted)
    }

    async fn apply_retention(
        &self,
        actor: &Principal,
        namespace: &str,
        dry_run: bool,
    ) -> Result<RetentionReport> {
        // Pull counts decide too: write the pending ones first.
        self.current_pulls().await?;
        let policy = self.registry.policy(namespace).await?;
        let tags = self.registry.meta().namespace_tags(namespace).await?;
        let plan = retention_plan(&policy, &tags, now_millis());
        let mut report = RetentionReport {
            dry_run,
            kept: tags.len() - plan.len(),
            deleted: Vec::with_capacity(plan.len()),
        };
        for t in plan {
            if dry_run {
                report.deleted.push((t, false));
                continue;
            }
            let repo =
                RepoName::parse(&t.repo).map_err(|e| DirectoryError::Invalid(e.to_string()))?;
            if let Some(image_deleted) = self
                .remove_tag(
                    actor,
                    &repo,
                    &t.tag,
                    "removed by the namespace's retention rules",
                )
                .await?
            {
                report.deleted.push((t, image_deleted));
            }
        }
        let detail = format!(
            "{}{} tag(s) deleted, {} kept",
            if dry_run { "dry run: " } else { "" },
            report.deleted.len(),
            report.kept
        );
        self.directory
            .record(actor, "namespace.retention", namespace, &detail)
            .await?;
        if !dry_run {
            self.emit(&[Event::new(kind::RETENTION_RUN, Some(namespace))
                .actor(actor.name())
                .with("tags_deleted", report.deleted.len())
                .with("tags_kept", report.kept)
                .with(
                    "deleted",
                    report
                        .deleted
                        .iter()
                        .map(|(t, image)| {
                            serde_json::json!({"repository": t.repo, "tag": t.tag, "image_deleted": image})
                        })
                        .collect::<Vec<_>>(),
                )
                .build()])
                .await;
        }
        Ok(report)
    }
}
