//! Workload identity: trust rules that let a verified JWT of an external
//! issuer (a CI system, a Kubernetes service-account issuer) log in as a
//! registry user, with that user's grants, for the token's short life.
//! Every exchange is audited with the rule and the claims that matched.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_meta::{NewTrustRule, TrustRule};
use berth_oci::glob_match;
use berth_oidc::{claim_strings, claim_text, decode_unverified};

use super::{IdentityError, Issuers};
use crate::access::Principal;
use crate::clock::now_millis;
use crate::directory::{check_name, Directory};
use crate::error::DirectoryError;
use crate::validate::check_text;

/// Conditions a rule may hold besides `sub` and `aud`.
const MAX_CONDITIONS: usize = 20;

/// A trust rule as asked for.
#[derive(Debug, Clone)]
pub struct TrustRuleSpec {
    /// Unique name.
    pub name: String,
    /// Issuer URL, exactly as the tokens' `iss`.
    pub issuer: String,
    /// The audience tokens must carry (what the CI job asks its issuer for).
    pub audience: String,
    /// Glob on `sub` (`*` any run, `?` one character).
    pub subject: String,
    /// Further claims: path (`repository`, `project_path`,
    /// `kubernetes.io.namespace`) → glob.
    pub claims: BTreeMap<String, String>,
    /// The registry user the token logs in as.
    pub registry_user: String,
}

/// A stored trust rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRuleView {
    /// Unique name.
    pub name: String,
    /// Issuer URL.
    pub issuer: String,
    /// Audience.
    pub audience: String,
    /// Glob on `sub`.
    pub subject: String,
    /// Claim path → glob.
    pub claims: BTreeMap<String, String>,
    /// The registry user.
    pub registry_user: String,
    /// Declared in the configuration file.
    pub read_only: bool,
    /// Who created it.
    pub created_by: String,
    /// When, Unix milliseconds.
    pub created_at: i64,
}

/// What a token test found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustTest {
    /// The token logs in by this rule.
    Matches {
        /// The rule.
        rule: String,
        /// As this registry user.
        registry_user: String,
        /// The claims that matched.
        detail: String,
    },
    /// Refused, and why.
    Refused(String),
}

fn check_spec(spec: &TrustRuleSpec) -> Result<()> {
    check_name("trust rule", &spec.name)?;
    Issuers::check_issuer_url(&spec.issuer).map_err(DirectoryError::Invalid)?;
    for (what, value) in [("audience", &spec.audience), ("subject", &spec.subject)] {
        if value.trim().is_empty() {
            return Err(DirectoryError::Invalid(format!("{what} is required")));
        }
        check_text(what, value, 512)?;
    }
    if spec.claims.len() > MAX_CONDITIONS {
        return Err(DirectoryError::Invalid(format!(
            "at most {MAX_CONDITIONS} claim conditions"
        )));
    }
    for (path, pattern) in &spec.claims {
        if path.is_empty() || pattern.is_empty() {
            return Err(DirectoryError::Invalid(
                "claim conditions need a claim path and a pattern".into(),
            ));
        }
        check_text("claim path", path, 256)?;
        check_text("claim pattern", pattern, 512)?;
    }
    Ok(())
}

fn view(r: TrustRule) -> TrustRuleView {
    TrustRuleView {
        claims: serde_json::from_str(&r.claims).unwrap_or_default(),
        name: r.name,
        issuer: r.issuer,
        audience: r.audience,
        subject: r.subject,
        registry_user: r.registry_user,
        read_only: r.id == 0,
        created_by: r.created_by,
        created_at: r.created_at,
    }
}

/// Trust rules and the exchange of external tokens.
#[derive(Debug, Clone)]
pub struct Workload {
    directory: Directory,
    issuers: Arc<Issuers>,
    /// Rules of the configuration file (read-only here).
    declared: Arc<Vec<TrustRule>>,
}

type Result<T> = std::result::Result<T, DirectoryError>;

impl Workload {
    /// Over the directory, verifying with `issuers`; `declared` are the
    /// configuration file's rules (their registry users must exist when a
    /// token comes).
    pub fn new(
        directory: Directory,
        issuers: Arc<Issuers>,
        declared: Vec<TrustRuleSpec>,
    ) -> Workload {
        let declared = declared
            .into_iter()
            .map(|s| TrustRule {
                id: 0,
                claims: serde_json::to_string(&s.claims).expect("a map of strings"),
                name: s.name,
                issuer: s.issuer,
                audience: s.audience,
                subject: s.subject,
                registry_user_id: 0,
                registry_user: s.registry_user,
                created_by: "configuration".into(),
                created_at: 0,
            })
            .collect();
        Workload {
            directory,
            issuers,
            declared: Arc::new(declared),
        }
    }

    /// Check a rule of the configuration file before start.
    pub fn check_declared(spec: &TrustRuleSpec) -> std::result::Result<(), String> {
        check_spec(spec).map_err(|e| format!("trust rule {:?}: {e}", spec.name))
    }

    /// Create a rule for a registry user the actor owns (or any, for a
    /// platform administrator).
    pub async fn create(&self, actor: &Principal, spec: &TrustRuleSpec) -> Result<TrustRuleView> {
        check_spec(spec)?;
        if self.declared.iter().any(|r| r.name == spec.name) {
            return Err(DirectoryError::Conflict(format!(
                "trust rule {} (in the configuration file)",
                spec.name
            )));
        }
        let user = self
            .directory
            .owned_registry_user(actor, &spec.registry_user)
            .await?;
        let claims = serde_json::to_string(&spec.claims).expect("a map of strings");
        let rule = self
            .directory
            .store()
            .create_trust_rule(&NewTrustRule {
                name: &spec.name,
                issuer: &spec.issuer,
                audience: &spec.audience,
                subject: &spec.subject,
                claims: &claims,
                registry_user_id: user.id,
                created_by: actor.name(),
                now: now_millis(),
            })
            .await?;
        self.audit(
            actor.name(),
            "trust_rule.create",
            &spec.name,
            &format!(
                "user={} iss={} aud={} sub={} claims={claims}",
                user.name, spec.issuer, spec.audience, spec.subject
            ),
            None,
        )
        .await?;
        Ok(view(rule))
    }

    /// The rules the actor may see: all for a platform administrator,
    /// those of its registry users for an account.
    pub async fn list(&self, actor: &Principal) -> Result<Vec<TrustRuleView>> {
        let mine: Vec<String> = self
            .directory
            .registry_users(actor)
            .await?
            .into_iter()
            .map(|u| u.name)
            .collect();
        let mut all = self.declared.as_ref().clone();
        all.extend(self.directory.store().trust_rules().await?);
        Ok(all
            .into_iter()
            .filter(|r| actor.is_platform_admin() || mine.contains(&r.registry_user))
            .map(view)
            .collect())
    }

    /// The rules of one registry user the actor owns.
    pub async fn of_user(&self, actor: &Principal, user: &str) -> Result<Vec<TrustRuleView>> {
        let user = self.directory.owned_registry_user(actor, user).await?;
        let mut rules: Vec<TrustRule> = self
            .declared
            .iter()
            .filter(|r| r.registry_user == user.name)
            .cloned()
            .collect();
        rules.extend(self.directory.store().trust_rules_of(&user.name).await?);
        Ok(rules.into_iter().map(view).collect())
    }

    /// One rule of a registry user the actor owns.
    pub async fn get(&self, actor: &Principal, user: &str, name: &str) -> Result<TrustRuleView> {
        let user = self.directory.owned_registry_user(actor, user).await?;
        if let Some(r) = self
            .declared
            .iter()
            .find(|r| r.name == name && r.registry_user == user.name)
        {
            return Ok(view(r.clone()));
        }
        match self.directory.store().trust_rule(name).await? {
            Some(rule) if rule.registry_user == user.name => Ok(view(rule)),
            _ => Err(DirectoryError::NotFound(format!(
                "trust rule {name} of registry user {}",
                user.name
            ))),
        }
    }

    /// Delete a rule of a registry user the actor owns.
    pub async fn delete(&self, actor: &Principal, user: &str, name: &str) -> Result<()> {
        if self.get(actor, user, name).await?.read_only {
            return Err(DirectoryError::Invalid(format!(
                "trust rule {name} is declared in the configuration file: change it there"
            )));
        }
        self.directory.store().delete_trust_rule(name).await?;
        self.audit(
            actor.name(),
            "trust_rule.delete",
            name,
            &format!("user={user}"),
            None,
        )
        .await
    }

    async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        client_addr: Option<&str>,
    ) -> Result<()> {
        self.directory
            .store()
            .append_audit(actor, action, target, detail, client_addr, now_millis())
            .await?;
        Ok(())
    }

    /// Exchange an external JWT for the registry user a trust rule names.
    /// `username` (what `docker login -u` gave) limits the rules to that
    /// user's; `Ok(None)` when that user has no rule at all, so the secret
    /// is checked as a password instead.
    pub async fn exchange(
        &self,
        username: Option<&str>,
        token: &str,
        client_addr: Option<&str>,
    ) -> std::result::Result<Option<Principal>, IdentityError> {
        let store = self.directory.store();
        let mut rules: Vec<TrustRule> = self
            .declared
            .iter()
            .filter(|r| username.is_none_or(|u| r.registry_user == u))
            .cloned()
            .collect();
        rules.extend(match username {
            Some(u) => store.trust_rules_of(u).await?,
            None => store.trust_rules().await?,
        });
        if rules.is_empty() && username.is_some() {
            return Ok(None);
        }
        let actor = username.unwrap_or("workload");
        let outcome = self.matching(username, token, rules).await;
        match outcome {
            Ok((rule, detail)) => {
                let user = store
                    .registry_user_by_name(&rule.registry_user)
                    .await?
                    .filter(|u| u.enabled && u.expires_at.is_none_or(|t| t > now_millis()));
                let Some(user) = user else {
                    let reason = format!(
                        "registry user {} is disabled or expired",
                        rule.registry_user
                    );
                    self.refusal(actor, &reason, client_addr).await?;
                    return Err(IdentityError::Refused(reason));
                };
                self.audit(
                    &user.name,
                    "auth.workload",
                    "registry",
                    &detail,
                    client_addr,
                )
                .await?;
                Ok(Some(Principal::RegistryUser {
                    id: user.id,
                    name: user.name,
                }))
            }
            Err(IdentityError::Refused(reason)) => {
                self.refusal(actor, &reason, client_addr).await?;
                Err(IdentityError::Refused(reason))
            }
            Err(e) => Err(e),
        }
    }

    /// A dry run for platform administrators: which rule a token would
    /// log in by (verified against its issuer like a real exchange), or
    /// why none. Nothing is audited as a login.
    pub async fn test(&self, actor: &Principal, token: &str) -> Result<TrustTest> {
        if !actor.is_platform_admin() {
            return Err(DirectoryError::Forbidden(
                "testing tokens is for platform administrators".into(),
            ));
        }
        let mut rules = self.declared.as_ref().clone();
        rules.extend(self.directory.store().trust_rules().await?);
        Ok(match self.matching(None, token.trim(), rules).await {
            Ok((rule, detail)) => TrustTest::Matches {
                rule: rule.name,
                registry_user: rule.registry_user,
                detail,
            },
            Err(IdentityError::Refused(reason)) => TrustTest::Refused(reason),
            Err(IdentityError::Directory(e)) => return Err(e),
            Err(e) => TrustTest::Refused(e.to_string()),
        })
    }

    async fn refusal(&self, actor: &str, reason: &str, client_addr: Option<&str>) -> Result<()> {
        self.audit(
            actor,
            "auth.failure",
            "registry",
            &format!("workload identity token refused: {reason}"),
            client_addr,
        )
        .await
    }

    /// The rule a token satisfies, with the audit detail of the match.
    async fn matching(
        &self,
        username: Option<&str>,
        token: &str,
        rules: Vec<TrustRule>,
    ) -> std::result::Result<(TrustRule, String), IdentityError> {
        let refused = |s: String| IdentityError::Refused(s);
        let (_, unverified) = decode_unverified(token).map_err(|e| refused(e.to_string()))?;
        let issuer = claim_text(&unverified, "iss")
            .ok_or_else(|| refused("the token names no issuer".into()))?;
        let candidates: Vec<TrustRule> = rules.into_iter().filter(|r| r.issuer == issuer).collect();
        if candidates.is_empty() {
            let whose = username.map(|u| format!(" of {u}")).unwrap_or_default();
            return Err(refused(format!(
                "no trust rule{whose} trusts issuer {issuer}"
            )));
        }
        let mut audiences: Vec<String> = candidates.iter().map(|r| r.audience.clone()).collect();
        audiences.dedup();
        let verified = self
            .issuers
            .verify(&issuer, token, &audiences, None)
            .await?;
        let claims = &verified.claims;
        let sub =
            claim_text(claims, "sub").ok_or_else(|| refused("the token has no subject".into()))?;
        let aud = claim_strings(claims, "aud");
        let mut matched: Vec<(TrustRule, String)> = Vec::new();
        for rule in candidates {
            if !aud.contains(&rule.audience) || !glob_match(&rule.subject, &sub) {
                continue;
            }
            let conditions: BTreeMap<String, String> =
                serde_json::from_str(&rule.claims).unwrap_or_default();
            let mut detail = format!("rule={} iss={issuer} sub={sub}", rule.name);
            let all = conditions.iter().all(|(path, pattern)| {
                let values = claim_strings(claims, path);
                match values.iter().find(|v| glob_match(pattern, v)) {
                    Some(v) => {
                        detail.push_str(&format!(" {path}={v}"));
                        true
                    }
                    None => false,
                }
            });
            if all {
                matched.push((rule, detail));
            }
        }
        let users: std::collections::BTreeSet<&str> = matched
            .iter()
            .map(|(r, _)| r.registry_user.as_str())
            .collect();
        if users.len() > 1 {
            return Err(refused(
                "the token matches trust rules of several registry users: name one as the username"
                    .into(),
            ));
        }
        matched.into_iter().next().ok_or_else(|| {
            refused(format!(
                "the token (sub {sub}) matches no trust rule's subject, audience and claims"
            ))
        })
    }
}
