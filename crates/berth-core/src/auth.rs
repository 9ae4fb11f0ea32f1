//! Authentication for the registry: logins (with throttling and a short
//! cache of verified Basic credentials), scope grants (the intersection of
//! what was asked and what is allowed), and access and refresh tokens.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_meta::DirectoryStore;
use berth_oci::RepoName;
use sha2::{Digest as _, Sha256};

use crate::access::{Actions, Principal};
use crate::token::{Claims, ResourceScope, TokenError, TokenIssuer, TokenUse};
use crate::{now_millis, Directory, DirectoryError};

/// Settings of token authentication.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The `service` of challenges and the audience of tokens.
    pub service: String,
    /// Lifetime of access tokens.
    pub token_lifetime: Duration,
    /// Lifetime of refresh tokens (`docker login` identity tokens).
    pub refresh_lifetime: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            service: "berth".into(),
            token_lifetime: Duration::from_secs(300),
            refresh_lifetime: Duration::from_secs(90 * 86_400),
        }
    }
}

/// Why a login or token request failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong credentials, disabled or expired user.
    #[error("invalid username or password")]
    Failed,
    /// Too many failures from this client for this user (or at all).
    #[error("too many failed logins; retry in {retry_after} seconds")]
    Throttled {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// A token that is invalid or expired.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Server-side failure.
    #[error(transparent)]
    Internal(DirectoryError),
}

impl AuthError {
    /// The platform fault behind this error, if it is one.
    pub fn fault(&self) -> Option<crate::Fault> {
        match self {
            AuthError::Internal(e) => e.fault(),
            _ => None,
        }
    }
}

const SIGNING_KEY: &str = "token_signing_key";
const CACHE_TTL: Duration = Duration::from_secs(30);
const CACHE_MAX: usize = 4096;

/// Login throttling per (user, client) pair, per client and per user name,
/// kept in the database so that every node applies the same limits: an
/// attacker who spreads guesses over nodes meets the same blocks.
#[derive(Debug, Clone)]
struct Throttle {
    store: Arc<dyn DirectoryStore>,
}

/// Pair failures before blocking starts; the block then doubles per failure.
const PAIR_FREE: i64 = 5;
/// Failures from one client (any user) before it is blocked for a minute.
const CLIENT_MAX: i64 = 50;
const WINDOW: Duration = Duration::from_secs(15 * 60);

impl Throttle {
    fn keys(user: &str, client: IpAddr) -> [String; 2] {
        [format!("u:{user}|{client}"), format!("c:{client}")]
    }

    fn user_key(user: &str) -> String {
        format!("n:{user}")
    }

    /// Seconds to wait if blocked.
    async fn blocked(&self, user: &str, client: IpAddr) -> Result<Option<u64>, DirectoryError> {
        let now = now_millis();
        let until = self
            .store
            .login_blocked_until(&Self::keys(user, client))
            .await?;
        Ok(until
            .filter(|until| *until > now)
            .map(|until| ((until - now) as u64).div_ceil(1000).max(1)))
    }

    /// Record a failure; returns how long to slow the answer down.
    async fn failed(&self, user: &str, client: IpAddr) -> Result<Duration, DirectoryError> {
        let now = now_millis();
        let window_start = now - WINDOW.as_millis() as i64;
        let [pair, whole] = Self::keys(user, client);
        // Per user name, from anywhere: answers slow down, but the name is
        // never blocked outright, so nobody can lock a user out by guessing.
        let by_name = self
            .store
            .record_login_failure(&Self::user_key(user), now, window_start)
            .await?;
        let mut slow = Duration::from_millis(50 * by_name.clamp(0, 40) as u64);
        let count = self
            .store
            .record_login_failure(&pair, now, window_start)
            .await?;
        slow = slow.max(Duration::from_millis(100 * count.clamp(0, 10) as u64));
        if count > PAIR_FREE {
            let secs = (1i64 << (count - PAIR_FREE).min(8)).min(300);
            self.store.block_login(&pair, now + secs * 1000).await?;
        }
        let count = self
            .store
            .record_login_failure(&whole, now, window_start)
            .await?;
        if count > CLIENT_MAX {
            self.store.block_login(&whole, now + 60_000).await?;
        }
        Ok(slow)
    }

    async fn succeeded(&self, user: &str, client: IpAddr) -> Result<(), DirectoryError> {
        let [pair, _] = Self::keys(user, client);
        self.store
            .clear_login_failures(&[pair, Self::user_key(user)])
            .await?;
        Ok(())
    }
}

/// The token service over the directory.
#[derive(Debug)]
pub struct Auth {
    directory: Directory,
    issuer: TokenIssuer,
    config: AuthConfig,
    throttle: Throttle,
    cache: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
    /// Held while credentials are verified: concurrent logins with the same
    /// credentials then cost one verification, not one each.
    verifying: tokio::sync::Mutex<()>,
}

fn now_secs() -> i64 {
    now_millis() / 1000
}

impl Auth {
    /// Load (or create, once for the whole cluster) the signing key.
    pub async fn new(directory: Directory, config: AuthConfig) -> Result<Auth, DirectoryError> {
        let stored = directory
            .store()
            .init_setting(SIGNING_KEY, &TokenIssuer::generate_key())
            .await?;
        let key = TokenIssuer::decode_key(&stored).ok_or_else(|| {
            DirectoryError::Invalid("the stored token signing key is unusable".into())
        })?;
        Ok(Auth {
            issuer: TokenIssuer::new(key, "berth", config.service.clone()),
            throttle: Throttle {
                store: directory.store().clone(),
            },
            directory,
            config,
            cache: Mutex::new(HashMap::new()),
            verifying: tokio::sync::Mutex::new(()),
        })
    }

    /// The directory behind it.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.config.service
    }

    /// Access token lifetime in seconds.
    pub fn token_lifetime_secs(&self) -> i64 {
        self.config.token_lifetime.as_secs() as i64
    }

    fn cache_key(user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Forget cached logins of `user` (after its password changed or it was
    /// disabled or deleted), so the change takes effect at once on this node.
    pub fn forget(&self, user: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, (p, _)| p.name() != user);
    }

    fn forget_all(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Follow credential changes made on any node (the database records
    /// them by trigger) and forget cached logins of those names, polling
    /// every `interval`: a password change, a disabled or deleted user on
    /// one node takes effect on every node within about `interval`. While
    /// the database cannot be read, the cache is dropped, so that nothing
    /// cached can outlive a change this node did not see.
    pub async fn follow_credential_changes(&self, interval: Duration) {
        // Changes are read again for a while after they happen: a change
        // committed late (by a slow transaction) is still seen.
        const OVERLAP_MS: i64 = 120_000;
        let mut seen: HashMap<i64, i64> = HashMap::new();
        let mut cursor = now_millis() - OVERLAP_MS;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune = Instant::now();
        let mut first = true;
        loop {
            ticker.tick().await;
            let store = self.directory.store();
            match store.credential_changes(cursor, 10_000).await {
                Ok(rows) => {
                    for (id, name, at) in rows {
                        if seen.insert(id, at).is_none() && !first {
                            self.forget(&name);
                        }
                    }
                    first = false;
                    let now = now_millis();
                    cursor = now - OVERLAP_MS;
                    seen.retain(|_, at| *at >= cursor);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read credential changes; dropping cached logins");
                    self.forget_all();
                }
            }
            if last_prune.elapsed() >= Duration::from_secs(300) {
                last_prune = Instant::now();
                let before = now_millis() - 2 * WINDOW.as_millis() as i64;
                if let Err(e) = store.prune_login_state(before).await {
                    tracing::warn!(error = %e, "cannot prune old login state");
                }
            }
        }
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Principal> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(p, _)| p.clone())
    }

    /// Check credentials, throttled per user and client.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Principal, AuthError> {
        let key = Self::cache_key(user, password);
        if let Some(p) = self.cached(&key) {
            return Ok(p);
        }
        if let Some(retry_after) = self
            .throttle
            .blocked(user, client)
            .await
            .map_err(AuthError::Internal)?
        {
            return Err(AuthError::Throttled { retry_after });
        }
        let gate = self.verifying.lock().await;
        if let Some(p) = self.cached(&key) {
            return Ok(p);
        }
        let outcome = self
            .directory
            .authenticate(user, password, Some(&client.to_string()))
            .await;
        drop(gate);
        match outcome {
            Ok(p) => {
                self.throttle
                    .succeeded(user, client)
                    .await
                    .map_err(AuthError::Internal)?;
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= CACHE_MAX {
                    cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
                    if cache.len() >= CACHE_MAX {
                        cache.clear();
                    }
                }
                cache.insert(key, (p.clone(), Instant::now()));
                Ok(p)
            }
            Err(DirectoryError::AuthenticationFailed) => {
                let slow = self
                    .throttle
                    .failed(user, client)
                    .await
                    .map_err(AuthError::Internal)?;
                tokio::time::sleep(slow).await;
                Err(AuthError::Failed)
            }
            Err(e) => Err(AuthError::Internal(e)),
        }
    }

    /// What `principal` may do on `repo`.
    pub async fn actions(
        &self,
        principal: &Principal,
        repo: &RepoName,
    ) -> Result<Actions, AuthError> {
        self.directory
            .actions(principal, repo)
            .await
            .map_err(AuthError::Internal)
    }

    /// The intersection of the requested scopes and what is allowed. Unknown
    /// or malformed resources are dropped, never an error.
    pub async fn grant(
        &self,
        principal: &Principal,
        requested: &[ResourceScope],
    ) -> Result<Vec<ResourceScope>, AuthError> {
        let mut granted = Vec::new();
        for scope in requested {
            match scope.kind.as_str() {
                "repository" => {
                    let Ok(repo) = RepoName::parse(&scope.name) else {
                        continue;
                    };
                    let allowed = self.actions(principal, &repo).await?;
                    granted.push(scope.intersect(allowed));
                }
                // Everyone may list the catalog; it only shows what they can pull.
                "registry" if scope.name == "catalog" => granted.push(ResourceScope {
                    kind: scope.kind.clone(),
                    name: scope.name.clone(),
                    actions: vec!["*".into()],
                }),
                _ => {}
            }
        }
        Ok(granted)
    }

    /// An access token with `granted` scopes.
    pub fn access_token(
        &self,
        principal: &Principal,
        granted: Vec<ResourceScope>,
    ) -> (String, i64, i64) {
        let now = now_secs();
        let lifetime = self.token_lifetime_secs();
        (
            self.issuer
                .issue(principal, granted, TokenUse::Access, now, lifetime),
            lifetime,
            now,
        )
    }

    /// A refresh token (`docker login`'s identity token).
    pub fn refresh_token(&self, principal: &Principal) -> String {
        self.issuer.issue(
            principal,
            Vec::new(),
            TokenUse::Refresh,
            now_secs(),
            self.config.refresh_lifetime.as_secs() as i64,
        )
    }

    /// Verify an access token.
    pub fn verify_access(&self, token: &str) -> Result<Claims, TokenError> {
        self.issuer.verify(token, TokenUse::Access, now_secs())
    }

    /// The principal of a refresh token, provided it still may log in.
    pub async fn refresh(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.issuer.verify(token, TokenUse::Refresh, now_secs())?;
        let store = self.directory.store();
        let valid = match &claims.principal() {
            Principal::Account { id, .. } => store
                .account_by_id(*id)
                .await
                .map_err(|e| AuthError::Internal(e.into()))?
                .is_some_and(|a| !a.disabled && a.name == claims.sub),
            Principal::RegistryUser { id, name } => store
                .registry_user_by_name(name)
                .await
                .map_err(|e| AuthError::Internal(e.into()))?
                .is_some_and(|u| {
                    u.id == *id && u.enabled && u.expires_at.is_none_or(|t| t > now_millis())
                }),
            _ => false,
        };
        if valid {
            Ok(claims.principal())
        } else {
            Err(AuthError::Failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttle_blocks_the_pair_then_the_client_but_not_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = berth_meta::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("store");
        let t = Throttle {
            store: Arc::new(store),
        };
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..PAIR_FREE {
            t.failed("alice", ip).await.expect("db");
            assert_eq!(t.blocked("alice", ip).await.expect("db"), None);
        }
        t.failed("alice", ip).await.expect("db");
        assert!(
            t.blocked("alice", ip).await.expect("db").is_some(),
            "pair blocked"
        );
        assert_eq!(
            t.blocked("bob", ip).await.expect("db"),
            None,
            "other users from the same client are not locked out"
        );
        assert_eq!(
            t.blocked("alice", other).await.expect("db"),
            None,
            "the same user from elsewhere is not locked out"
        );
        // Failures of one name from many clients slow answers but never block.
        let mut slowest = Duration::ZERO;
        for i in 0..20u8 {
            let ip = IpAddr::from([198, 51, 100, i]);
            slowest = slowest.max(t.failed("dave", ip).await.expect("db"));
            assert_eq!(
                t.blocked("dave", IpAddr::from([203, 0, 113, 1]))
                    .await
                    .expect("db"),
                None
            );
        }
        assert!(
            slowest >= Duration::from_millis(1000),
            "slowed to {slowest:?}"
        );
        t.succeeded("alice", other).await.expect("db");
        for i in 0..=CLIENT_MAX {
            t.failed(&format!("user{i}"), other).await.expect("db");
        }
        assert!(
            t.blocked("carol", other).await.expect("db").is_some(),
            "a client guessing many names is blocked"
        );
    }
}
