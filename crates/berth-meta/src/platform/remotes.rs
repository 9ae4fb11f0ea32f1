//! Remote registries registered through the API ([`RemoteStore`]). The
//! password is stored sealed; this layer never sees it in clear.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::MetaResult;

/// A remote registry as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteRecord {
    /// Name, unique.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// User name, if it authenticates.
    pub username: Option<String>,
    /// The sealed password.
    pub password_sealed: Option<String>,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// A CA certificate (PEM) to trust.
    pub ca_pem: Option<String>,
    /// A token service on another host that may receive the credentials.
    pub token_realm: Option<String>,
    /// Who registered it.
    pub created_by: String,
    /// When, Unix milliseconds.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

impl Debug for RemoteRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRecord")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("username", &self.username)
            .field(
                "password_sealed",
                &self.password_sealed.as_ref().map(|_| "<sealed>"),
            )
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

/// Changes to a remote; `None` keeps a field, `Some(None)` clears it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RemoteUpdate {
    /// URL.
    pub url: Option<String>,
    /// User name.
    pub username: Option<Option<String>>,
    /// Sealed password.
    pub password_sealed: Option<Option<String>>,
    /// Skip verification.
    pub insecure: Option<bool>,
    /// CA certificate.
    pub ca_pem: Option<Option<String>>,
    /// Token realm.
    pub token_realm: Option<Option<String>>,
    /// Now, Unix milliseconds.
    pub now: i64,
}

impl Debug for RemoteUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteUpdate")
            .field("url", &self.url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Remote registries.
#[async_trait]
pub trait RemoteStore: Send + Sync + Debug {
    /// Register one; `Conflict` when the name is taken.
    async fn create_remote(&self, remote: &RemoteRecord) -> MetaResult<()>;
    /// Every stored remote, by name.
    async fn remotes(&self) -> MetaResult<Vec<RemoteRecord>>;
    /// One.
    async fn remote(&self, name: &str) -> MetaResult<Option<RemoteRecord>>;
    /// Change one. Returns false when unknown.
    async fn update_remote(&self, name: &str, update: &RemoteUpdate) -> MetaResult<bool>;
    /// Delete one. Returns whether it existed.
    async fn delete_remote(&self, name: &str) -> MetaResult<bool>;
}
