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
use crate::clock::now_millis;
use crate::identity::{looks_like_jwt, IdentityError, Ldap, LdapLogin, LdapLoginError, Workload};
use crate::secrets::{open_marked, SealError, Sealer};
use crate::token::{Claims, ResourceScope, TokenError, TokenIssuer, TokenUse};
use crate::{Directory, DirectoryError};

/// Settings of token authentication.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The `service` of challenges and the audience of tokens.
    pub service: String,
    /// Lifetime of access tokens.
    pub token_lifetime: Duration,
    /// Lifetime of refresh tokens (`docker login` identity tokens).
    pub refresh_lifetime: Duration,
    /// Failed logins (any names) one client may make within the window
    /// before it is refused for a minute.
    pub login_failures_per_client: i64,
    /// Failed logins of one name from one client before each further one
    /// doubles a block (up to 5 minutes).
    pub login_failures_per_name_and_client: i64,
    /// Failed logins of one name from anywhere before its logins are rate
    /// limited (at most one per 2 s).
    pub login_failures_per_name: i64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            service: "berth".into(),
            token_lifetime: Duration::from_secs(300),
            refresh_lifetime: Duration::from_secs(90 * 86_400),
            login_failures_per_client: 50,
            login_failures_per_name_and_client: 5,
            login_failures_per_name: 10,
        }
    }
}

/// Why a login or token request failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong credentials, disabled or expired user.
    #[error("invalid username or password")]
    Failed,
    /// Too many failures from this client for this user (or at all), or
    /// for this user from anywhere.
    #[error("too many failed logins; retry in {retry_after} seconds")]
    Throttled {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Too many password checks at once (from this client, or in all):
    /// nothing was checked; retry shortly.
    #[error("too many logins at once; retry in {retry_after} seconds")]
    Busy {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// A token that is invalid or expired.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// An external identity token (workload identity) was refused; the
    /// reason is the caller's to know (it holds the token).
    #[error("identity token refused: {0}")]
    Refused(String),
    /// The issuer of an external identity token cannot be reached.
    #[error("{0}")]
    IssuerUnavailable(String),
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
/// attacker who spreads guesses over nodes meets the same blocks. Clients
/// are keyed by their address as the /v2 surface sees it (behind trusted
/// proxies, the forwarded one), IPv6 clients by their /64.
#[derive(Debug, Clone)]
struct Throttle {
    store: Arc<dyn DirectoryStore>,
    /// Failures from one client (any user) before it is blocked for a minute.
    client_max: i64,
    /// Failures of one (user, client) pair before blocking starts; the
    /// block then doubles per failure.
    pair_free: i64,
    /// Failures of one name (from anywhere) before its logins are rate
    /// limited.
    name_free: i64,
}

/// The rate limit of a name past that: one attempt per this much per
/// failure beyond the name's free failures, at most [`NAME_MAX_WAIT`]. Short, so that
/// nobody can lock a user out for long by guessing.
const NAME_STEP: Duration = Duration::from_millis(200);
const NAME_MAX_WAIT: Duration = Duration::from_secs(2);
const WINDOW: Duration = Duration::from_secs(15 * 60);

/// The key of a client address: IPv6 clients by their /64 (one host has a
/// whole /64 to pick addresses from), IPv4 ones (and IPv4 mapped into
/// IPv6) by their address.
pub(crate) fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = a.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
    }
}

impl Throttle {
    fn keys(user: &str, client: IpAddr) -> [String; 3] {
        let client = client_key(client);
        [
            format!("u:{user}|{client}"),
            format!("c:{client}"),
            Self::user_key(user),
        ]
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

    /// Record a failure and block what has failed too often.
    async fn failed(&self, user: &str, client: IpAddr) -> Result<(), DirectoryError> {
        let now = now_millis();
        let window_start = now - WINDOW.as_millis() as i64;
        let [pair, whole, name] = Self::keys(user, client);
        // Per user name, from anywhere: past a few failures, one attempt per
        // short interval (refused with Retry-After before any check), so a
        // guesser spread over many addresses gets few tries.
        let by_name = self
            .store
            .record_login_failure(&name, now, window_start)
            .await?;
        if by_name > self.name_free {
            let wait = (NAME_STEP * (by_name - self.name_free).min(1000) as u32).min(NAME_MAX_WAIT);
            self.store
                .block_login(&name, now + wait.as_millis() as i64)
                .await?;
        }
        let count = self
            .store
            .record_login_failure(&pair, now, window_start)
            .await?;
        if count > self.pair_free {
            let secs = (1i64 << (count - self.pair_free).min(8)).min(300);
            self.store.block_login(&pair, now + secs * 1000).await?;
        }
        let count = self
            .store
            .record_login_failure(&whole, now, window_start)
            .await?;
        if count > self.client_max {
            self.store.block_login(&whole, now + 60_000).await?;
        }
        Ok(())
    }

    async fn succeeded(&self, user: &str, client: IpAddr) -> Result<(), DirectoryError> {
        let [pair, _, name] = Self::keys(user, client);
        self.store.clear_login_failures(&[pair, name]).await?;
        Ok(())
    }
}

/// Password checks one client may have running at once; more wait their
/// turn for at most [`CHECK_WAIT`], then are refused, so a flood from one
/// address leaves the pool to everyone else. (Logins with the same
/// credentials wait for one check, and take no turn of their own.)
const CHECKS_PER_CLIENT: usize = 2;
const CHECK_WAIT: Duration = Duration::from_secs(2);

/// The token service over the directory.
#[derive(Debug)]
pub struct Auth {
    directory: Directory,
    issuer: TokenIssuer,
    config: AuthConfig,
    throttle: Throttle,
    cache: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
    /// One verification per credentials at a time: concurrent logins with
    /// the same credentials then cost one verification, not one each.
    verifying: Mutex<HashMap<[u8; 32], std::sync::Weak<tokio::sync::Mutex<()>>>>,
    /// Each client's turns at password checks.
    checks: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Trust rules of workload identity, when configured.
    workload: Option<Workload>,
    /// LDAP directories, when configured.
    ldap: Option<Ldap>,
}

fn sealing(e: SealError) -> DirectoryError {
    DirectoryError::Invalid(format!("sealing the token signing key: {e}"))
}

fn now_secs() -> i64 {
    now_millis() / 1000
}

impl Auth {
    /// Load (or create, once for the whole cluster) the signing key. With
    /// a `sealer` (the configured `encryption_key`), the key is kept sealed
    /// in the database: one stored in clear, or sealed with a previous
    /// key, is sealed again now.
    pub async fn new(
        directory: Directory,
        config: AuthConfig,
        sealer: Option<&Sealer>,
    ) -> Result<Auth, DirectoryError> {
        let store = directory.store();
        let fresh = TokenIssuer::generate_key();
        let fresh = match sealer {
            Some(s) => s.seal_marked(&fresh, SIGNING_KEY).map_err(sealing)?,
            None => fresh,
        };
        let stored = store.init_setting(SIGNING_KEY, &fresh).await?;
        let opened = open_marked(sealer, &stored, SIGNING_KEY)
            .map_err(|e| DirectoryError::Invalid(format!("the stored token signing key: {e}")))?;
        if let (Some(s), true) = (sealer, opened.is_stale()) {
            let sealed = s
                .seal_marked(opened.value(), SIGNING_KEY)
                .map_err(sealing)?;
            if store.replace_setting(SIGNING_KEY, &stored, &sealed).await? {
                tracing::info!(
                    "the token signing key is now sealed with the configured encryption key"
                );
            }
        }
        let key = TokenIssuer::decode_key(opened.value()).ok_or_else(|| {
            DirectoryError::Invalid("the stored token signing key is unusable".into())
        })?;
        Ok(Auth {
            issuer: TokenIssuer::new(key, "berth", config.service.clone()),
            throttle: Throttle {
                store: directory.store().clone(),
                client_max: config.login_failures_per_client,
                pair_free: config.login_failures_per_name_and_client,
                name_free: config.login_failures_per_name,
            },
            directory,
            config,
            cache: Mutex::new(HashMap::new()),
            verifying: Mutex::default(),
            checks: Mutex::default(),
            workload: None,
            ldap: None,
        })
    }

    /// Accept external JWTs through the trust rules of `workload`.
    pub fn with_workload(mut self, workload: Workload) -> Auth {
        self.workload = Some(workload);
        self
    }

    /// Check the passwords of directory users (and that directory
    /// accounts are still there) through `ldap`.
    pub fn with_ldap(mut self, ldap: Ldap) -> Auth {
        self.ldap = Some(ldap).filter(Ldap::is_enabled);
        self
    }

    /// A login of a name an LDAP directory decides (an account of a
    /// directory, or a name no account or registry user has): `None` for
    /// other names.
    async fn directory_login(
        &self,
        user: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Option<Result<Principal, String>>, AuthError> {
        let Some(ldap) = &self.ldap else {
            return Ok(None);
        };
        let store = self.directory.store();
        let existing = store
            .account_by_name(user)
            .await
            .map_err(|e| AuthError::Internal(e.into()))?;
        let decides = match &existing {
            Some(a) => a.origin.starts_with("ldap:"),
            None => store
                .registry_user_by_name(user)
                .await
                .map_err(|e| AuthError::Internal(e.into()))?
                .is_none(),
        };
        if !decides {
            return Ok(None);
        }
        let addr = client.to_string();
        let busy = |e: DirectoryError| match e {
            DirectoryError::Busy(_) => AuthError::Busy { retry_after: 1 },
            e => AuthError::Internal(e),
        };
        let outcome = match existing {
            // A registry password (or the directory's, below), and the
            // directory must still have the account.
            Some(a)
                if self
                    .directory
                    .is_registry_password(&a, password)
                    .await
                    .map_err(busy)? =>
            {
                ldap.confirm(a, Some(&addr)).await
            }
            existing => {
                ldap.login(user, password, existing.as_ref(), Some(&addr))
                    .await
            }
        };
        match outcome {
            Ok(LdapLogin::Accepted(p)) => Ok(Some(Ok(p))),
            Ok(LdapLogin::Refused(reason)) => Ok(Some(Err(reason))),
            Ok(LdapLogin::Unknown) => Ok(Some(Err("no directory knows this name".into()))),
            Err(LdapLoginError::Unavailable(e)) => Err(AuthError::IssuerUnavailable(e.to_string())),
            Err(LdapLoginError::Directory(e)) => Err(busy(e)),
        }
    }

    /// Exchange an external JWT (RFC 8693 token exchange, or a JWT given
    /// as `docker login`'s password) for the registry user a trust rule
    /// names; with `user`, only that user's rules are tried. Never cached:
    /// each login verifies the token again, so it stops at its `exp`.
    pub async fn exchange(
        &self,
        user: Option<&str>,
        token: &str,
        client: IpAddr,
    ) -> Result<Option<Principal>, AuthError> {
        let Some(workload) = &self.workload else {
            return Err(AuthError::Refused(
                "workload identity is not enabled on this registry".into(),
            ));
        };
        let name = user.unwrap_or("workload");
        self.not_blocked(name, client).await?;
        match workload
            .exchange(user, token, Some(&client.to_string()))
            .await
        {
            Ok(p) => Ok(p),
            Err(IdentityError::Refused(reason)) => {
                self.throttle
                    .failed(name, client)
                    .await
                    .map_err(AuthError::Internal)?;
                Err(AuthError::Refused(reason))
            }
            Err(e @ IdentityError::Unavailable { .. }) => {
                Err(AuthError::IssuerUnavailable(e.to_string()))
            }
            Err(IdentityError::Directory(e)) => Err(AuthError::Internal(e)),
        }
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

    /// A turn at a password check for `client`: at most
    /// [`CHECKS_PER_CLIENT`] at once, waiting at most [`CHECK_WAIT`].
    async fn check_turn(
        &self,
        client: IpAddr,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, AuthError> {
        let turns = {
            let mut m = self.checks.lock().unwrap_or_else(|p| p.into_inner());
            if m.len() >= CACHE_MAX {
                // Forget clients with no check running or waiting.
                m.retain(|_, s| Arc::strong_count(s) > 1);
            }
            m.entry(client_key(client))
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(CHECKS_PER_CLIENT)))
                .clone()
        };
        match tokio::time::timeout(CHECK_WAIT, turns.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(AuthError::Busy { retry_after: 1 }),
        }
    }

    /// The lock that makes concurrent checks of the same credentials one.
    fn verifying(&self, key: &[u8; 32]) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.verifying.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = m.get(key).and_then(std::sync::Weak::upgrade) {
            return l;
        }
        if m.len() >= CACHE_MAX {
            m.retain(|_, w| w.strong_count() > 0);
        }
        let l = Arc::new(tokio::sync::Mutex::new(()));
        m.insert(*key, Arc::downgrade(&l));
        l
    }

    /// Check credentials, throttled per user and client and bounded in the
    /// password checks each client may have at once.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Principal, AuthError> {
        if self.workload.is_some() && looks_like_jwt(password) {
            if let Some(p) = self.exchange(Some(user), password, client).await? {
                return Ok(p);
            }
        }
        let key = Self::cache_key(user, password);
        if let Some(p) = self.cached(&key) {
            return Ok(p);
        }
        self.not_blocked(user, client).await?;
        let lock = self.verifying(&key);
        let _one = lock.lock().await;
        if let Some(p) = self.cached(&key) {
            return Ok(p);
        }
        let _turn = self.check_turn(client).await?;
        let outcome = match self.directory_login(user, password, client).await? {
            Some(Ok(p)) => Ok(p),
            Some(Err(reason)) => {
                self.directory
                    .store()
                    .append_audit(
                        user,
                        "auth.failure",
                        "registry",
                        &format!("directory login refused: {reason}"),
                        Some(&client.to_string()),
                        now_millis(),
                    )
                    .await
                    .map_err(|e| AuthError::Internal(e.into()))?;
                Err(DirectoryError::AuthenticationFailed)
            }
            None => {
                self.directory
                    .authenticate(user, password, Some(&client.to_string()))
                    .await
            }
        };
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
            Err(DirectoryError::AuthenticationFailed) => self.failed(user, client).await,
            Err(DirectoryError::Busy(_)) => Err(AuthError::Busy { retry_after: 1 }),
            Err(e) => Err(AuthError::Internal(e)),
        }
    }

    /// `Throttled` while `user` or `client` is blocked.
    async fn not_blocked(&self, user: &str, client: IpAddr) -> Result<(), AuthError> {
        match self
            .throttle
            .blocked(user, client)
            .await
            .map_err(AuthError::Internal)?
        {
            Some(retry_after) => Err(AuthError::Throttled { retry_after }),
            None => Ok(()),
        }
    }

    /// Count a failed check; the answer to it.
    async fn failed<T>(&self, user: &str, client: IpAddr) -> Result<T, AuthError> {
        self.throttle
            .failed(user, client)
            .await
            .map_err(AuthError::Internal)?;
        Err(AuthError::Failed)
    }

    /// Check that `secret` is the console password of `principal`'s
    /// account, as a login is checked (throttled, a failure counted): asked
    /// before a password change made with a session or a token.
    pub async fn confirm_password(
        &self,
        principal: &Principal,
        secret: &str,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        let user = principal.name();
        self.not_blocked(user, client).await?;
        let _turn = self.check_turn(client).await?;
        match self.directory.is_console_password(principal, secret).await {
            Ok(true) => Ok(()),
            Ok(false) => self.failed(user, client).await,
            Err(DirectoryError::Busy(_)) => Err(AuthError::Busy { retry_after: 1 }),
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

    /// A refresh token (`docker login`'s identity token), of the subject's
    /// current token generation.
    pub async fn refresh_token(&self, principal: &Principal) -> Result<String, AuthError> {
        let generation = self.generation(principal).await?.ok_or(AuthError::Failed)?;
        Ok(self.issuer.issue_at_generation(
            principal,
            Vec::new(),
            TokenUse::Refresh,
            now_secs(),
            self.config.refresh_lifetime.as_secs() as i64,
            generation,
        ))
    }

    /// The token generation of a principal that may still log in; `None`
    /// for one that may not (gone, disabled, expired).
    async fn generation(&self, principal: &Principal) -> Result<Option<i64>, AuthError> {
        let store = self.directory.store();
        let internal = |e: berth_meta::MetaError| AuthError::Internal(e.into());
        Ok(match principal {
            Principal::Account { id, name, .. } => store
                .account_by_id(*id)
                .await
                .map_err(internal)?
                .filter(|a| !a.disabled && a.name == *name)
                .map(|a| a.token_generation),
            Principal::RegistryUser { id, name } => store
                .registry_user_by_name(name)
                .await
                .map_err(internal)?
                .filter(|u| {
                    u.id == *id && u.enabled && u.expires_at.is_none_or(|t| t > now_millis())
                })
                .map(|u| u.token_generation),
            _ => None,
        })
    }

    /// Verify an access token.
    pub fn verify_access(&self, token: &str) -> Result<Claims, TokenError> {
        self.issuer.verify(token, TokenUse::Access, now_secs())
    }

    /// The principal of a refresh token, provided it still may log in and
    /// nothing revoked its tokens since it was issued.
    pub async fn refresh(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.issuer.verify(token, TokenUse::Refresh, now_secs())?;
        let principal = claims.principal();
        match self.generation(&principal).await? {
            Some(current) if current == claims.generation => Ok(principal),
            _ => Err(AuthError::Failed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_eq!(client_key(a), "2001:db8:1:2::/64");
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(client_key(mapped), "192.0.2.7");
        assert_eq!(client_key("192.0.2.7".parse().expect("ip")), "192.0.2.7");
    }

    #[tokio::test]
    async fn throttle_blocks_the_pair_then_the_client_but_not_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = berth_meta::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("store");
        let t = Throttle {
            store: Arc::new(store),
            client_max: AuthConfig::default().login_failures_per_client,
            pair_free: AuthConfig::default().login_failures_per_name_and_client,
            name_free: AuthConfig::default().login_failures_per_name,
        };
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..t.pair_free {
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
        // Failures of one name from many clients: free at first, then one
        // attempt per short interval from anywhere, never a long block.
        for i in 0..t.name_free as u8 {
            t.failed("dave", IpAddr::from([198, 51, 100, i]))
                .await
                .expect("db");
        }
        let elsewhere = IpAddr::from([203, 0, 113, 1]);
        assert_eq!(t.blocked("dave", elsewhere).await.expect("db"), None);
        for i in 0..20u8 {
            t.failed("dave", IpAddr::from([198, 51, 101, i]))
                .await
                .expect("db");
        }
        let wait = t.blocked("dave", elsewhere).await.expect("db");
        assert!(
            wait.is_some_and(|w| w <= NAME_MAX_WAIT.as_secs()),
            "rate limited for at most {NAME_MAX_WAIT:?}: {wait:?}"
        );
        assert_eq!(t.blocked("erin", elsewhere).await.expect("db"), None);
        t.succeeded("alice", other).await.expect("db");
        for i in 0..=t.client_max {
            t.failed(&format!("user{i}"), other).await.expect("db");
        }
        assert!(
            t.blocked("carol", other).await.expect("db").is_some(),
            "a client guessing many names is blocked"
        );
    }
}
