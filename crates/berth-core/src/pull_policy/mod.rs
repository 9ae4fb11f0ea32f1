//! Pull policies: the one place a manifest read is checked against what
//! the platform and its namespace require before it is served. Two kinds
//! share the hook, its modes, cache and reporting: signature policies
//! (who must have signed) and vulnerability policies (which findings are
//! too severe).
//!
//! Each policy has a mode (`off`, `audit`, `enforce`). The platform's
//! default and the namespace's own both apply, so a namespace can add to
//! the platform's requirement but never take it away. A pull that fails an
//! `enforce` policy is refused (the /v2 layer renders OCI `DENIED`), one
//! that fails only `audit` policies is served; both are audited, counted
//! and raised as webhook events. What signing and attesting tools read
//! (signature tags, manifests with a subject, HEAD) is never checked, so
//! push → sign → deploy works.
//!
//! Layering: services layer. Signatures are checked by `berth-signature`;
//! findings come from the vulnerability store; verdicts are cached and
//! dropped by the change feed ([`verdicts`]).

mod signature_policy;
mod signatures;
mod verdicts;
mod vulnerability_policy;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_meta::{ManifestRecord, PullPolicyInput};
use berth_oci::{Digest, Reference, RepoName};
use berth_signature::Mode;

pub use signature_policy::{
    IdentitySetting, KeySetting, KeylessSetting, NotationSetting, SignaturePolicy,
    SignatureSettings, KIND,
};
pub use signatures::{is_attachment, SignatureCheck};
pub use verdicts::{Policies, Verdicts};
pub use vulnerability_policy::{
    Allowance, Pending, VulnerabilityPolicy, VulnerabilitySettings, KIND as VULNERABILITY_KIND,
};

use crate::access::Principal;
use crate::clock::now_millis;
use crate::directory::Directory;
use crate::error::{DirectoryError, RegistryError};
use crate::events::{kind, Event};
use crate::read_cache::ChangeListener;
use crate::registry::Registry;
use verdicts::Outcome;

/// What a manifest read may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullDecision {
    /// Serve it.
    Allow,
    /// Serve it, and report what an `audit` policy found missing.
    Audit(String),
    /// Refuse it, saying which policy and what was missing.
    Deny(String),
}

/// Most tags a dry run looks at.
pub const DRY_RUN_TAGS: usize = 1000;

/// What a dry run found.
#[derive(Debug, Clone, Default)]
pub struct DryRun {
    /// Tags checked.
    pub checked: usize,
    /// The namespace has more tags than were checked.
    pub truncated: bool,
    /// Tags whose pull would be refused, and why.
    pub refused: Vec<DryRunRow>,
    /// Tags whose pull would be served but audited, and why.
    pub audited: Vec<DryRunRow>,
}

/// One tag of a dry run.
#[derive(Debug, Clone)]
pub struct DryRunRow {
    /// Repository.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Its digest.
    pub digest: String,
    /// What the policies found missing.
    pub reason: String,
}

/// Counts since start, for metrics.
#[derive(Debug, Default)]
pub struct PullPolicyStats {
    /// Pulls refused.
    pub denied: AtomicU64,
    /// Pulls served that an `audit` policy did not find satisfied.
    pub unverified: AtomicU64,
}

/// How often one caller's refused or unverified pulls of one image are
/// audited and announced by one node (each is still counted): a client
/// retrying in a loop must not flood the audit log and the webhooks.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// Reports remembered before the memory is cleared.
const MAX_REPORTS: usize = 10_000;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct PullPolicies {
    directory: Directory,
    registry: Registry,
    verdicts: Arc<Verdicts>,
    stats: Arc<PullPolicyStats>,
    /// (action, actor, repository@digest) → when last reported.
    reported: Arc<Mutex<HashMap<String, Instant>>>,
}

type DirResult<T> = std::result::Result<T, DirectoryError>;

impl PullPolicies {
    /// Over the directory (policies, audit) and the registry (signatures).
    pub fn new(directory: Directory, registry: Registry) -> PullPolicies {
        PullPolicies {
            directory,
            registry,
            verdicts: Arc::default(),
            stats: Arc::default(),
            reported: Arc::default(),
        }
    }

    /// Whether this verdict is due a report (see [`REPORT_EVERY`]).
    fn due(&self, key: String) -> bool {
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        if reported.len() >= MAX_REPORTS {
            reported.retain(|_, at| at.elapsed() < REPORT_EVERY);
            if reported.len() >= MAX_REPORTS {
                reported.clear();
            }
        }
        match reported.get(&key) {
            Some(at) if at.elapsed() < REPORT_EVERY => false,
            _ => {
                reported.insert(key, Instant::now());
                true
            }
        }
    }

    /// What must follow the change feed (register it with the read cache).
    pub fn listener(&self) -> Arc<dyn ChangeListener> {
        self.verdicts.clone()
    }

    /// Counters.
    pub fn stats(&self) -> &PullPolicyStats {
        &self.stats
    }

    async fn policies(&self) -> Result<Arc<Policies>, RegistryError> {
        if let Some(p) = self.verdicts.policies() {
            return Ok(p);
        }
        let ticket = self.verdicts.ticket();
        let records = self.directory.store().pull_policies().await?;
        let policies = Arc::new(Policies {
            signature: records
                .iter()
                .filter(|r| r.kind == KIND)
                .map(SignaturePolicy::from_record)
                .collect(),
            vulnerability: records
                .iter()
                .filter(|r| r.kind == VULNERABILITY_KIND)
                .map(VulnerabilityPolicy::from_record)
                .collect(),
        });
        self.verdicts.put_policies(ticket, policies.clone());
        Ok(policies)
    }

    /// The hook of a manifest GET: `Ok` to serve it (after auditing an
    /// unverified pull), `Err(Denied)` to refuse it. HEAD requests are not
    /// checked (signing tools need them).
    pub async fn check_pull(
        &self,
        actor: &Principal,
        client_addr: Option<&str>,
        repo: &RepoName,
        reference: &Reference,
        record: &ManifestRecord,
    ) -> Result<(), RegistryError> {
        let (action, reason, denied) = match self.decide(repo, reference, record).await? {
            PullDecision::Allow => return Ok(()),
            PullDecision::Audit(r) => {
                self.stats.unverified.fetch_add(1, Ordering::Relaxed);
                ("pull.unverified", r, false)
            }
            PullDecision::Deny(r) => {
                self.stats.denied.fetch_add(1, Ordering::Relaxed);
                ("pull.denied", r, true)
            }
        };
        let target = format!("{repo}@{}", record.digest);
        let reference = match reference {
            Reference::Tag(t) => t.as_str().to_owned(),
            Reference::Digest(d) => d.to_string(),
        };
        if !self.due(format!("{action} {} {target}", actor.name())) {
            return if denied {
                Err(RegistryError::Denied(reason))
            } else {
                Ok(())
            };
        }
        // Reporting must not decide the pull: a failure is logged.
        if let Err(e) = self
            .directory
            .store()
            .append_audit(
                actor.name(),
                action,
                &target,
                &format!("reference={reference} {reason}"),
                client_addr,
                now_millis(),
            )
            .await
        {
            tracing::warn!(error = %e, %target, "could not audit a pull-policy verdict");
        }
        let event = Event::new(
            if denied {
                kind::PULL_DENIED
            } else {
                kind::PULL_UNVERIFIED
            },
            Some(repo.namespace()),
        )
        .actor(actor.name())
        .client_address(client_addr)
        .with("repository", repo.as_str())
        .with("reference", reference)
        .with("digest", record.digest.as_str())
        .with("reason", reason.clone())
        .build();
        if let Err(e) = self.registry.emit(&[event]).await {
            tracing::warn!(error = %e, %target, "could not queue a pull-policy event");
        }
        if denied {
            Err(RegistryError::Denied(reason))
        } else {
            Ok(())
        }
    }

    /// What the policies say of serving `record` (read as `reference`).
    pub async fn decide(
        &self,
        repo: &RepoName,
        reference: &Reference,
        record: &ManifestRecord,
    ) -> Result<PullDecision, RegistryError> {
        let policies = self.policies().await?;
        let governing: Vec<&SignaturePolicy> = policies
            .signature
            .iter()
            .filter(|p| p.governs(repo.namespace()))
            .collect();
        let vulnerability: Vec<&VulnerabilityPolicy> = policies
            .vulnerability
            .iter()
            .filter(|p| p.governs(repo.namespace()))
            .collect();
        if (governing.is_empty() && vulnerability.is_empty())
            || is_attachment(reference, record.subject.as_ref())
            || berth_signature::cosign::is_signature_manifest(&record.content)
        {
            return Ok(PullDecision::Allow);
        }
        let ticket = self.verdicts.ticket();
        let digest = &record.digest;
        let mut tags: Option<Vec<String>> = None;
        let mut found: Option<Vec<signatures::Found>> = None;
        let mut parents: Option<Vec<(Digest, Vec<signatures::Found>)>> = None;
        let (mut deny, mut audit) = (Vec::new(), Vec::new());
        for p in governing {
            if !p.settings.tags.is_empty() {
                if tags.is_none() {
                    tags = Some(self.tags(repo, reference, digest).await?);
                }
                if !p.applies_to(tags.as_deref().unwrap_or_default()) {
                    continue;
                }
            }
            let outcome = match self.verdicts.get(repo.as_str(), digest.as_str(), p.id) {
                Some(o) => o,
                None => {
                    if found.is_none() {
                        found = Some(signatures::find(&self.registry, repo, digest).await?);
                    }
                    let mut outcome = judge(found.as_deref().unwrap_or_default(), repo, digest, p);
                    // An image listed by a signed index is as trusted as
                    // the index (its digest commits to the image's), however
                    // it is asked for: the verdict is the same by tag and by
                    // digest, as its cache key says.
                    if outcome.is_err() {
                        if parents.is_none() {
                            parents = Some(self.parents(repo, digest).await?);
                        }
                        for (parent, sigs) in parents.as_deref().unwrap_or_default() {
                            if let Ok(signer) = judge(sigs, repo, parent, p) {
                                outcome = Ok(format!("{signer} (through index {parent})"));
                                break;
                            }
                        }
                    }
                    self.verdicts.put(
                        ticket,
                        repo.as_str(),
                        digest.as_str(),
                        p.id,
                        outcome.clone(),
                    );
                    outcome
                }
            };
            if let Err(why) = outcome {
                let msg = format!("{} ({}): {why}", p.label(), p.mode.as_str());
                match p.mode {
                    Mode::Enforce => deny.push(msg),
                    Mode::Audit => audit.push(msg),
                    Mode::Off => {}
                }
            }
        }
        // Vulnerability policies judge images (an index's children are
        // judged when they are pulled; artifacts are not inventoried).
        let is_image = !vulnerability.is_empty()
            && berth_oci::ParsedManifest::parse(&record.content, Some(&record.media_type))
                .is_ok_and(|m| crate::vulnerabilities::wants_inventory(&m));
        for p in vulnerability.into_iter().filter(|_| is_image) {
            if !p.settings.tags.is_empty() {
                if tags.is_none() {
                    tags = Some(self.tags(repo, reference, digest).await?);
                }
                if !p.applies_to(tags.as_deref().unwrap_or_default()) {
                    continue;
                }
            }
            let outcome = match self.verdicts.get_image(digest.as_str(), p.id) {
                Some(o) => o,
                None => {
                    let outcome = self.judge_findings(digest, p).await?;
                    self.verdicts
                        .put_image(ticket, digest.as_str(), p.id, outcome.clone());
                    outcome
                }
            };
            if let Err(why) = outcome {
                let msg = format!("{} ({}): {why}", p.label(), p.mode.as_str());
                match p.mode {
                    Mode::Enforce => deny.push(msg),
                    Mode::Audit => audit.push(msg),
                    Mode::Off => {}
                }
            }
        }
        Ok(if !deny.is_empty() {
            deny.extend(audit);
            PullDecision::Deny(deny.join("; "))
        } else if !audit.is_empty() {
            PullDecision::Audit(audit.join("; "))
        } else {
            PullDecision::Allow
        })
    }

    /// Judge an image's findings against a vulnerability policy.
    async fn judge_findings(
        &self,
        digest: &Digest,
        policy: &VulnerabilityPolicy,
    ) -> Result<verdicts::Outcome, RegistryError> {
        let meta = self.registry.meta();
        let inventoried = meta.inventoried(digest.as_str()).await?;
        let mut findings = Vec::new();
        if inventoried {
            for f in meta.findings(digest.as_str()).await? {
                // Allowlists may name an alias (a CVE for a GHSA).
                let aliases = if policy.settings.allow.is_empty() {
                    Vec::new()
                } else {
                    meta.advisory(&f.advisory_id)
                        .await?
                        .and_then(|d| berth_advisory::parse(d.as_bytes()).ok())
                        .map(|a| a.aliases)
                        .unwrap_or_default()
                };
                findings.push((f, aliases));
            }
        }
        Ok(policy.judge(inventoried, &findings, now_millis() / 1000))
    }

    async fn tags(
        &self,
        repo: &RepoName,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Vec<String>, RegistryError> {
        let mut tags = match reference {
            Reference::Tag(t) => vec![t.as_str().to_owned()],
            Reference::Digest(_) => self.registry.meta().manifest_tags(repo, digest).await?,
        };
        if matches!(reference, Reference::Digest(_)) {
            for parent in self.registry.meta().manifest_parents(repo, digest).await? {
                tags.extend(self.registry.meta().manifest_tags(repo, &parent).await?);
            }
        }
        Ok(tags)
    }

    async fn parents(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Vec<(Digest, Vec<signatures::Found>)>, RegistryError> {
        let mut out = Vec::new();
        for parent in self.registry.meta().manifest_parents(repo, digest).await? {
            let sigs = signatures::find(&self.registry, repo, &parent).await?;
            out.push((parent, sigs));
        }
        Ok(out)
    }

    /// The signatures of an image the actor may pull, each checked against
    /// the keys of the policies governing its namespace (for views).
    pub async fn signatures(
        &self,
        actor: &Principal,
        repo: &RepoName,
        digest: &Digest,
    ) -> DirResult<Vec<SignatureCheck>> {
        if !self.directory.actions(actor, repo).await?.pull {
            return Err(DirectoryError::NotFound(format!("image {repo}")));
        }
        let policies = self.policies().await?;
        let mut trust = berth_signature::Trust::default();
        for p in policies
            .signature
            .iter()
            .filter(|p| p.namespace.as_deref().is_none_or(|n| n == repo.namespace()))
        {
            trust.keys.extend(p.trust.keys.iter().cloned());
            trust
                .authorities
                .extend(p.trust.authorities.iter().cloned());
            trust.stores.extend(p.trust.stores.iter().cloned());
        }
        let found = signatures::find(&self.registry, repo, digest).await?;
        Ok(signatures::check(
            &found,
            repo,
            digest,
            now_millis() / 1000,
            &trust,
        ))
    }

    /// A dry run for a namespace's members: which of its current tags the
    /// policies in force would refuse or only audit (at most
    /// [`DRY_RUN_TAGS`] tags are looked at).
    pub async fn dry_run(&self, actor: &Principal, namespace: &str) -> DirResult<DryRun> {
        let ns = self.directory.member_namespace(actor, namespace).await?;
        let tags = self.registry.meta().namespace_tags(&ns.name).await?;
        let mut out = DryRun {
            checked: 0,
            truncated: tags.len() > DRY_RUN_TAGS,
            refused: Vec::new(),
            audited: Vec::new(),
        };
        for t in tags.into_iter().take(DRY_RUN_TAGS) {
            let (Ok(repo), Ok(tag)) = (RepoName::parse(&t.repo), berth_oci::Tag::parse(&t.tag))
            else {
                continue;
            };
            let reference = Reference::Tag(tag);
            let record = match self.registry.get_manifest(&repo, &reference, false).await {
                Ok(r) => r,
                Err(RegistryError::ManifestUnknown(_) | RegistryError::NameUnknown(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            out.checked += 1;
            let row = |reason| DryRunRow {
                repository: t.repo.clone(),
                tag: t.tag.clone(),
                digest: t.digest.clone(),
                reason,
            };
            match self.decide(&repo, &reference, &record).await? {
                PullDecision::Allow => {}
                PullDecision::Audit(r) => out.audited.push(row(r)),
                PullDecision::Deny(r) => out.refused.push(row(r)),
            }
        }
        Ok(out)
    }

    /// The platform's signature policy (`None`) or a namespace's, as its
    /// members see it; `None` when unset.
    pub async fn get(
        &self,
        actor: &Principal,
        namespace: Option<&str>,
    ) -> DirResult<Option<SignaturePolicy>> {
        Ok(self
            .record(actor, namespace, KIND)
            .await?
            .as_ref()
            .map(SignaturePolicy::from_record))
    }

    /// The stored policy of `kind` of the platform (`None`) or a
    /// namespace, for its members (the platform's: any account).
    async fn record(
        &self,
        actor: &Principal,
        namespace: Option<&str>,
        kind: &str,
    ) -> DirResult<Option<berth_meta::PullPolicyRecord>> {
        match namespace {
            Some(ns) => {
                self.directory.member_namespace(actor, ns).await?;
            }
            None => {
                if matches!(actor, Principal::Anonymous) {
                    return Err(DirectoryError::AuthenticationFailed);
                }
            }
        }
        let records = self.directory.store().pull_policies().await?;
        Ok(records
            .into_iter()
            .find(|r| r.kind == kind && r.namespace.as_deref() == namespace))
    }

    /// Set the platform's policy (platform administrators) or a
    /// namespace's (its administrators).
    pub async fn set(
        &self,
        actor: &Principal,
        namespace: Option<&str>,
        mode: Mode,
        settings: &SignatureSettings,
    ) -> DirResult<SignaturePolicy> {
        let namespace_id = self.authorize(actor, namespace).await?;
        settings.check(mode).map_err(DirectoryError::Invalid)?;
        let json = serde_json::to_string(settings).expect("settings serialize");
        let record = self
            .directory
            .store()
            .set_pull_policy(&PullPolicyInput {
                namespace_id,
                kind: KIND,
                mode: mode.as_str(),
                settings: &json,
                updated_by: actor.name(),
                now: now_millis(),
            })
            .await?;
        // This node forgets at once; the others through the change feed.
        self.verdicts.clear();
        let keys: Vec<&str> = settings.keys.iter().map(|k| k.name.as_str()).collect();
        let keyless: Vec<&str> = settings.keyless.iter().map(|k| k.name.as_str()).collect();
        let notation: Vec<&str> = settings.notation.iter().map(|k| k.name.as_str()).collect();
        self.directory
            .record(
                actor,
                "pull_policy.set",
                namespace.unwrap_or("platform"),
                &format!(
                    "kind=signature mode={} keys={keys:?} keyless={keyless:?} notation={notation:?} tags={:?}",
                    mode.as_str(),
                    settings.tags
                ),
            )
            .await?;
        Ok(SignaturePolicy::from_record(&record))
    }

    /// Remove the platform's or a namespace's signature policy (done when
    /// there was none).
    pub async fn delete(&self, actor: &Principal, namespace: Option<&str>) -> DirResult<()> {
        self.delete_kind(actor, namespace, KIND).await
    }

    /// Remove the platform's or a namespace's policy of `kind`.
    async fn delete_kind(
        &self,
        actor: &Principal,
        namespace: Option<&str>,
        kind: &str,
    ) -> DirResult<()> {
        let namespace_id = self.authorize(actor, namespace).await?;
        if !self
            .directory
            .store()
            .delete_pull_policy(namespace_id, kind)
            .await?
        {
            return Ok(());
        }
        self.verdicts.clear();
        self.directory
            .record(
                actor,
                "pull_policy.delete",
                namespace.unwrap_or("platform"),
                &format!("kind={kind}"),
            )
            .await
    }

    /// The platform's vulnerability policy (`None`) or a namespace's, as
    /// its members see it; `None` when unset.
    pub async fn get_vulnerability(
        &self,
        actor: &Principal,
        namespace: Option<&str>,
    ) -> DirResult<Option<VulnerabilityPolicy>> {
        Ok(self
            .record(actor, namespace, VULNERABILITY_KIND)
            .await?
            .as_ref()
            .map(VulnerabilityPolicy::from_record))
    }

    /// Set the platform's vulnerability policy (platform administrators)
    /// or a namespace's (its administrators).
    pub async fn set_vulnerability(
        &self,
        actor: &Principal,
        namespace: Option<&str>,
        mode: Mode,
        settings: &VulnerabilitySettings,
    ) -> DirResult<VulnerabilityPolicy> {
        let namespace_id = self.authorize(actor, namespace).await?;
        settings.check().map_err(DirectoryError::Invalid)?;
        let json = serde_json::to_string(settings).expect("settings serialize");
        let record = self
            .directory
            .store()
            .set_pull_policy(&PullPolicyInput {
                namespace_id,
                kind: VULNERABILITY_KIND,
                mode: mode.as_str(),
                settings: &json,
                updated_by: actor.name(),
                now: now_millis(),
            })
            .await?;
        self.verdicts.clear();
        let allow: Vec<String> = settings
            .allow
            .iter()
            .map(|a| format!("{} until {} ({})", a.advisory, a.expires_at, a.reason))
            .collect();
        self.directory
            .record(
                actor,
                "pull_policy.set",
                namespace.unwrap_or("platform"),
                &format!(
                    "kind=vulnerability mode={} severity={} pending={:?} allow={allow:?} tags={:?}",
                    mode.as_str(),
                    settings.severity,
                    settings.pending,
                    settings.tags
                ),
            )
            .await?;
        Ok(VulnerabilityPolicy::from_record(&record))
    }

    /// Remove the platform's or a namespace's vulnerability policy.
    pub async fn delete_vulnerability(
        &self,
        actor: &Principal,
        namespace: Option<&str>,
    ) -> DirResult<()> {
        self.delete_kind(actor, namespace, VULNERABILITY_KIND).await
    }

    async fn authorize(
        &self,
        actor: &Principal,
        namespace: Option<&str>,
    ) -> DirResult<Option<i64>> {
        match namespace {
            Some(ns) => Ok(Some(self.directory.admin_namespace(actor, ns).await?.id)),
            None if actor.is_platform_admin() => Ok(None),
            None => Err(DirectoryError::Forbidden(
                "the platform's policies are for platform administrators".into(),
            )),
        }
    }
}

/// Whether the signatures found satisfy `policy` for `digest`.
fn judge(
    found: &[signatures::Found],
    repo: &RepoName,
    digest: &Digest,
    policy: &SignaturePolicy,
) -> Outcome {
    if found.is_empty() {
        return Err(format!(
            "{digest} has no signature (looked for the tag {}, cosign referrers, sigstore bundles and Notation signatures)",
            berth_signature::signature_tag(digest.as_str()).unwrap_or_default()
        ));
    }
    let checks = signatures::check(found, repo, digest, now_millis() / 1000, &policy.trust);
    if let Some(signer) = checks.iter().find_map(|c| c.signer.clone()) {
        return Ok(signer);
    }
    let mut problems: Vec<String> = checks.into_iter().filter_map(|c| c.problem).collect();
    problems.dedup();
    problems.truncate(3);
    Err(format!(
        "no signature of {digest} verifies with what the policy trusts ({})",
        problems.join("; ")
    ))
}
