//! External issuers' metadata and signing keys, fetched over HTTPS and
//! cached; the key set is fetched again when a token names a key id it
//! does not hold (the issuer rotated its keys), at most once per
//! [`IdentityConfig::refresh_interval`] per issuer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_oidc::{parse_metadata, JwkSet, Policy, ProviderMetadata, TokenError, Verified};

use super::IdentityError;
use crate::clock::now_millis;

/// Largest provider document read.
const MAX_DOCUMENT: usize = 1024 * 1024;

/// Settings of external identity.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Clock skew allowed on `exp`, `iat`, `nbf`.
    pub clock_skew: Duration,
    /// How long metadata and keys are kept before they are fetched again.
    pub cache_ttl: Duration,
    /// Least time between two fetches of one issuer's keys on an unknown
    /// key id (tokens naming made-up ids must not become a flood).
    pub refresh_interval: Duration,
    /// Timeout of each fetch.
    pub timeout: Duration,
    /// A CA certificate (PEM) to trust for issuers besides the system's.
    pub ca_pem: Option<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            clock_skew: Duration::from_secs(60),
            cache_ttl: Duration::from_secs(3600),
            refresh_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            ca_pem: None,
        }
    }
}

#[derive(Debug)]
struct Entry {
    metadata: ProviderMetadata,
    keys: JwkSet,
    fetched: Instant,
    keys_fetched: Instant,
}

/// The issuers Berth has verified tokens of.
#[derive(Debug)]
pub struct Issuers {
    http: reqwest::Client,
    config: IdentityConfig,
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Entry>>>>>,
}

impl Issuers {
    /// Issuers fetched with these settings.
    pub fn new(config: IdentityConfig) -> Result<Issuers, String> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &config.ca_pem {
            let cert = reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| format!("the identity CA certificate: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| e.to_string())?;
        Ok(Issuers {
            http,
            config,
            entries: Mutex::default(),
        })
    }

    /// The HTTP client that talks to issuers.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The settings.
    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// An issuer URL Berth will fetch from: `https`, or `http` to a
    /// loopback host (a provider on the same machine).
    pub fn check_issuer_url(issuer: &str) -> Result<(), String> {
        let url = reqwest::Url::parse(issuer).map_err(|e| format!("issuer {issuer:?}: {e}"))?;
        let host = url.host_str().unwrap_or("");
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback());
        match url.scheme() {
            "https" => Ok(()),
            "http" if loopback => Ok(()),
            _ => Err(format!(
                "issuer {issuer:?} must be an https URL (http only on a loopback address)"
            )),
        }
    }

    fn slot(&self, issuer: &str) -> Arc<tokio::sync::Mutex<Option<Entry>>> {
        let mut m = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(issuer.to_owned()).or_default().clone()
    }

    async fn get(&self, url: &str, issuer: &str) -> Result<Vec<u8>, IdentityError> {
        let unavailable = |reason: String| IdentityError::Unavailable {
            issuer: issuer.to_owned(),
            reason,
        };
        let resp = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| unavailable(chain(&e)))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("{url} answered {}", resp.status())));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT as u64)
        {
            return Err(unavailable(format!("{url} is larger than 1 MiB")));
        }
        let body = resp.bytes().await.map_err(|e| unavailable(chain(&e)))?;
        if body.len() > MAX_DOCUMENT {
            return Err(unavailable(format!("{url} is larger than 1 MiB")));
        }
        Ok(body.to_vec())
    }

    async fn fetch_metadata(&self, issuer: &str) -> Result<ProviderMetadata, IdentityError> {
        Self::check_issuer_url(issuer).map_err(IdentityError::Refused)?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let body = self.get(&url, issuer).await?;
        parse_metadata(&body, issuer).map_err(|e| IdentityError::Unavailable {
            issuer: issuer.to_owned(),
            reason: e.to_string(),
        })
    }

    async fn fetch_keys(
        &self,
        issuer: &str,
        m: &ProviderMetadata,
    ) -> Result<JwkSet, IdentityError> {
        let body = self.get(&m.jwks_uri, issuer).await?;
        JwkSet::parse(&body).map_err(|e| IdentityError::Unavailable {
            issuer: issuer.to_owned(),
            reason: e.to_string(),
        })
    }

    /// The issuer's metadata (fetched when not cached or stale).
    pub async fn metadata(&self, issuer: &str) -> Result<ProviderMetadata, IdentityError> {
        let slot = self.slot(issuer);
        let mut entry = slot.lock().await;
        self.fresh(issuer, &mut entry).await?;
        Ok(entry.as_ref().map(|e| e.metadata.clone()).expect("filled"))
    }

    /// The issuer's metadata and keys fetched now: a sign-in starts with
    /// them, so an unreachable provider is reported before the browser is
    /// sent there, and keys it rotated since are known when it comes back.
    pub async fn current_metadata(&self, issuer: &str) -> Result<ProviderMetadata, IdentityError> {
        let slot = self.slot(issuer);
        let mut entry = slot.lock().await;
        let metadata = self.fetch_metadata(issuer).await?;
        let keys = self.fetch_keys(issuer, &metadata).await?;
        *entry = Some(Entry {
            metadata: metadata.clone(),
            keys,
            fetched: Instant::now(),
            keys_fetched: Instant::now(),
        });
        Ok(metadata)
    }

    async fn fresh(&self, issuer: &str, entry: &mut Option<Entry>) -> Result<(), IdentityError> {
        if entry
            .as_ref()
            .is_some_and(|e| e.fetched.elapsed() < self.config.cache_ttl)
        {
            return Ok(());
        }
        let metadata = self.fetch_metadata(issuer).await?;
        let keys = self.fetch_keys(issuer, &metadata).await?;
        *entry = Some(Entry {
            metadata,
            keys,
            fetched: Instant::now(),
            keys_fetched: Instant::now(),
        });
        Ok(())
    }

    /// Verify `token` as issued by `issuer` for one of `audiences`; with a
    /// `nonce`, it must carry it. An unknown key id fetches the keys again
    /// (rotation) before the token is refused.
    pub async fn verify(
        &self,
        issuer: &str,
        token: &str,
        audiences: &[String],
        nonce: Option<&str>,
    ) -> Result<Verified, IdentityError> {
        let slot = self.slot(issuer);
        let mut guard = slot.lock().await;
        self.fresh(issuer, &mut guard).await?;
        let check = |e: &Entry| {
            berth_oidc::verify(
                token,
                &e.keys,
                &Policy {
                    issuer,
                    audiences,
                    algorithms: &e.metadata.id_token_signing_alg_values_supported,
                    now: now_millis() / 1000,
                    leeway: self.config.clock_skew.as_secs() as i64,
                    nonce,
                },
            )
        };
        let entry = guard.as_mut().expect("filled");
        match check(entry) {
            Err(TokenError::UnknownKey(kid))
                if entry.keys_fetched.elapsed() >= self.config.refresh_interval =>
            {
                tracing::info!(
                    issuer,
                    kid,
                    "unknown signing key: fetching the issuer's keys again"
                );
                entry.keys_fetched = Instant::now();
                entry.keys = self.fetch_keys(issuer, &entry.metadata).await?;
                check(entry).map_err(refused)
            }
            other => other.map_err(refused),
        }
    }
}

fn refused(e: TokenError) -> IdentityError {
    IdentityError::Refused(e.to_string())
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
