//! Pull-through cache: a namespace that proxies a remote registry (`hub`
//! for Docker Hub). A pull of `hub/library/alpine:3` that misses fetches
//! the manifest from the upstream and stores it; each blob is fetched when
//! a client first asks for it, streamed to that client while it is stored,
//! and served locally afterwards. Concurrent misses of the same content
//! make one upstream fetch (later requests wait for it, then read the
//! cached copy). A cached tag is revalidated with a HEAD after
//! `revalidate`; while the upstream is unreachable, cached content is
//! still served. Cached content is stored like any other (quotas,
//! retention and garbage collection apply); pushes are refused.
//!
//! A proxy namespace serves only what its upstream served to it: a blob
//! it fetched, or one held here for someone else that the upstream has
//! just shown it holds under that name (`confirm`). Knowing a digest is
//! never enough to make another tenant's layer appear in it.
//!
//! With a default proxy namespace, reads of a repository that does not
//! exist here go to it (`library/alpine` → `hub/library/alpine`): what the
//! Docker daemon's `registry-mirrors` setting asks for.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use berth_client::{ClientError, RegistryClient};
use berth_meta::ManifestRecord;
use berth_oci::{Digest, Reference, RepoName};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::confirm::{remote_holds, ConfirmError, Holding};
use super::Remotes;
use crate::access::Principal;
use crate::registry::channel_stream;
use crate::registry::{BlobRead, Chunk};
use crate::{Directory, DirectoryError, ManifestPush, NamespaceSpec, Registry, RegistryError};

type Result<T> = std::result::Result<T, RegistryError>;

/// How long a remote's client is reused.
const CLIENT_TTL: Duration = Duration::from_secs(60);

/// Entries kept in the revalidation and lock maps before a sweep.
const MAX_ENTRIES: usize = 100_000;

/// A namespace that caches a remote registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyNamespace {
    /// The local namespace.
    pub namespace: String,
    /// The remote registry it caches.
    pub remote: String,
    /// How long a cached tag is served before it is checked upstream.
    pub revalidate: Duration,
    /// Repositories of namespaces that do not exist here are read from it
    /// (the Docker daemon's `registry-mirrors`).
    pub default: bool,
    /// Created public when missing (anyone may pull, as mirrors need).
    pub public: bool,
}

/// The pull-through cache.
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    directory: Directory,
    remotes: Remotes,
    namespaces: Vec<ProxyNamespace>,
    /// Each remote's client (with its token cache), rebuilt after
    /// [`CLIENT_TTL`] so changed remote settings take effect.
    clients: tokio::sync::Mutex<HashMap<String, (RegistryClient, Instant)>>,
    /// When each cached tag was last confirmed upstream.
    validated: Mutex<HashMap<String, Instant>>,
    /// One upstream fetch per manifest or blob at a time.
    fetches: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

fn upstream_error(remote: &str, e: ClientError) -> RegistryError {
    RegistryError::Upstream(format!(
        "the upstream registry {remote} of this pull-through cache: {e}"
    ))
}

impl Proxy {
    /// A cache of these namespaces.
    pub fn new(
        registry: Registry,
        directory: Directory,
        remotes: Remotes,
        namespaces: Vec<ProxyNamespace>,
    ) -> Self {
        Proxy {
            inner: Arc::new(Inner {
                registry,
                directory,
                remotes,
                namespaces,
                clients: tokio::sync::Mutex::default(),
                validated: Mutex::default(),
                fetches: Mutex::default(),
            }),
        }
    }

    /// The proxy namespaces.
    pub fn namespaces(&self) -> &[ProxyNamespace] {
        &self.inner.namespaces
    }

    /// The proxy namespace `repo` is in, if any.
    pub fn of(&self, repo: &RepoName) -> Option<&ProxyNamespace> {
        self.inner
            .namespaces
            .iter()
            .find(|p| p.namespace == repo.namespace())
    }

    /// Check the remotes and create missing proxy namespaces (owned by the
    /// `admin` account's default project group).
    pub async fn prepare(&self) -> std::result::Result<(), DirectoryError> {
        let d = &self.inner.directory;
        for p in &self.inner.namespaces {
            self.inner
                .remotes
                .get(&Principal::System, &p.remote)
                .await?;
            match d.namespace(&p.namespace).await {
                Ok(_) => continue,
                Err(DirectoryError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            let admin = d.account("admin").await?;
            let actor = Principal::Account {
                id: admin.id,
                name: admin.name,
                is_admin: admin.is_admin,
            };
            let spec = NamespaceSpec {
                name: p.namespace.clone(),
                group: None,
                public: p.public,
                description: format!("Pull-through cache of {}", p.remote),
                category: String::new(),
                labels: Vec::new(),
            };
            match d.create_namespace(&actor, &spec).await {
                Ok(_) | Err(DirectoryError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The repository a read of `repo` goes to: itself, or, when a default
    /// proxy namespace is set and `repo` does not exist here (its namespace
    /// does not exist, or is public without it), the same name inside the
    /// default one. Writes and private namespaces are never redirected.
    pub async fn alias(&self, repo: &RepoName) -> Option<RepoName> {
        let default = self.inner.namespaces.iter().find(|p| p.default)?;
        if self.of(repo).is_some() {
            return None;
        }
        // A private namespace is never redirected: whether a name exists
        // in it must not show through the cache's answers.
        let redirect = match self.inner.directory.namespace(repo.namespace()).await {
            Err(DirectoryError::NotFound(_)) => true,
            Ok(ns) if ns.public => matches!(
                self.inner.registry.meta.repository_exists(repo).await,
                Ok(false)
            ),
            _ => false,
        };
        if !redirect {
            return None;
        }
        RepoName::parse(&format!("{}/{repo}", default.namespace)).ok()
    }

    /// The upstream name of `repo`: without the proxy namespace.
    fn upstream_repo(&self, p: &ProxyNamespace, repo: &RepoName) -> String {
        let rest = repo.as_str()[p.namespace.len()..].trim_start_matches('/');
        rest.to_owned()
    }

    async fn client(&self, p: &ProxyNamespace) -> Result<RegistryClient> {
        let mut clients = self.inner.clients.lock().await;
        if let Some((c, made)) = clients.get(&p.remote) {
            if made.elapsed() < CLIENT_TTL {
                return Ok(c.clone());
            }
        }
        let c = self
            .inner
            .remotes
            .client(&p.remote)
            .await
            .map_err(|e| RegistryError::Upstream(e.to_string()))?;
        clients.insert(p.remote.clone(), (c.clone(), Instant::now()));
        Ok(c)
    }

    fn lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.inner.fetches.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = m.get(key).and_then(Weak::upgrade) {
            return l;
        }
        if m.len() >= MAX_ENTRIES {
            m.retain(|_, w| w.strong_count() > 0);
        }
        let l = Arc::new(tokio::sync::Mutex::new(()));
        m.insert(key.to_owned(), Arc::downgrade(&l));
        l
    }

    fn fresh(&self, key: &str, within: Duration) -> bool {
        self.inner
            .validated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .is_some_and(|t| t.elapsed() < within)
    }

    fn validated(&self, key: String) {
        let mut m = self
            .inner
            .validated
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(key, Instant::now());
    }

    /// A manifest of a proxy namespace: cached, revalidated, or fetched.
    pub async fn manifest(
        &self,
        p: &ProxyNamespace,
        repo: &RepoName,
        reference: &Reference,
        count_pull: bool,
    ) -> Result<Arc<ManifestRecord>> {
        let registry = &self.inner.registry;
        let local = match reference {
            Reference::Tag(t) => registry.meta.manifest_by_tag(repo, t).await?,
            Reference::Digest(d) => registry.meta.manifest_by_digest(repo, d).await?,
        };
        let key = format!("{repo}:{reference}");
        // Content by digest never changes; a tag is trusted for a while.
        let trusted = match reference {
            Reference::Digest(_) => local.is_some(),
            Reference::Tag(_) => local.is_some() && self.fresh(&key, p.revalidate),
        };
        if !trusted {
            let lock = self.lock(&format!("manifest:{key}"));
            let _one = lock.lock().await;
            self.refresh(p, repo, reference, &key, local.as_ref())
                .await?;
        }
        registry.get_manifest(repo, reference, count_pull).await
    }

    /// Bring the cached copy of `reference` up to date with the upstream;
    /// with a cached copy, an unreachable upstream is not an error.
    async fn refresh(
        &self,
        p: &ProxyNamespace,
        repo: &RepoName,
        reference: &Reference,
        key: &str,
        local: Option<&ManifestRecord>,
    ) -> Result<()> {
        let registry = &self.inner.registry;
        // Another request may have refreshed it while this one waited.
        if local.is_some() && self.fresh(key, p.revalidate) {
            return Ok(());
        }
        let upstream = self.upstream_repo(p, repo);
        let client = match self.client(p).await {
            Ok(c) => c,
            Err(e) if local.is_some() => {
                tracing::warn!(repo = %repo, error = %e, "serving the cached copy");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if let Some(local) = local {
            // A HEAD, not a download, to see whether the tag moved.
            match client
                .head_manifest(&upstream, &reference.to_string())
                .await
            {
                Ok(Some(h)) if h.digest == local.digest => {
                    self.validated(key.to_owned());
                    return Ok(());
                }
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::warn!(repo = %repo, error = %e, "upstream unreachable; serving the cached copy");
                    return Ok(());
                }
            }
        }
        let fetched = match client.manifest(&upstream, &reference.to_string()).await {
            Ok(Some(m)) => m,
            Ok(None) if local.is_some() => return Ok(()),
            Ok(None) => {
                return Err(RegistryError::ManifestUnknown(format!(
                    "{reference} (not on the upstream registry {} either)",
                    p.remote
                )))
            }
            Err(e) if local.is_some() => {
                tracing::warn!(repo = %repo, error = %e, "upstream unreachable; serving the cached copy");
                return Ok(());
            }
            Err(e) => return Err(upstream_error(&p.remote, e)),
        };
        let actor = format!("proxy:{}", p.remote);
        registry
            .put_manifest(ManifestPush {
                repo,
                reference,
                content_type: Some(&fetched.media_type),
                body: fetched.bytes.to_vec(),
                extra_tags: Vec::new(),
                actor: &actor,
                client_addr: None,
                cached: true,
            })
            .await?;
        self.validated(key.to_owned());
        Ok(())
    }

    /// The size of a blob of a proxy namespace (cached, else upstream's).
    pub async fn blob_size(
        &self,
        p: &ProxyNamespace,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<u64> {
        let registry = &self.inner.registry;
        if let Some(size) = registry.meta.repo_blob_size(repo, digest).await? {
            return Ok(size as u64);
        }
        let client = self.client(p).await?;
        match client.blob_size(&self.upstream_repo(p, repo), digest).await {
            Ok(Some(size)) => Ok(size),
            Ok(None) => Err(RegistryError::BlobUnknown(digest.to_string())),
            Err(e) => Err(upstream_error(&p.remote, e)),
        }
    }

    /// A blob this registry holds for someone else is linked into the
    /// proxy namespace only when the upstream shows it holds the same
    /// bytes under that name; a name it does not have is `BlobUnknown`.
    /// Returns whether it was linked (false: fetch it; a link the quota
    /// refuses is fetched and passed through instead).
    async fn link_if_upstream_holds(
        &self,
        p: &ProxyNamespace,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<bool> {
        let registry = &self.inner.registry;
        let Some(size) = registry.meta.blob_size(digest).await? else {
            return Ok(false);
        };
        let client = self.client(p).await?;
        let upstream = self.upstream_repo(p, repo);
        match remote_holds(registry, &client, &upstream, digest, size as u64).await {
            Ok(Holding::Confirmed) => match registry.link_confirmed(repo, digest).await {
                Ok(linked) => Ok(linked),
                Err(RegistryError::Denied(_)) => Ok(false),
                Err(e) => Err(e),
            },
            Ok(Holding::Absent) => Err(RegistryError::BlobUnknown(digest.to_string())),
            Ok(Holding::Unconfirmed) => Ok(false),
            Err(ConfirmError::Remote(e)) => Err(upstream_error(&p.remote, e)),
            Err(ConfirmError::Local(e)) => Err(e),
        }
    }

    /// Start reading a blob of `repo` from its upstream.
    async fn upstream_blob(
        &self,
        p: &ProxyNamespace,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<berth_client::BlobRead> {
        let client = self.client(p).await?;
        client
            .blob(&self.upstream_repo(p, repo), digest, 0)
            .await
            .map_err(|e| match e {
                ClientError::Status { status: 404, .. } => {
                    RegistryError::BlobUnknown(digest.to_string())
                }
                e => upstream_error(&p.remote, e),
            })
    }

    /// Fetch a blob of `repo` (a proxy namespace's repository) from its
    /// upstream again, replacing the copy in storage: the integrity check's
    /// repair of a damaged or lost cached blob. The copy in storage goes
    /// only once the upstream answers with the blob, and the new one is
    /// kept only if its digest checks. Returns the remote's name, or `None`
    /// when `repo` is not a proxy namespace's.
    pub async fn refetch_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Option<String>> {
        let Some(p) = self.of(repo) else {
            return Ok(None);
        };
        let registry = &self.inner.registry;
        let read = self.upstream_blob(p, repo, digest).await?;
        registry.blobs().delete(digest).await?;
        let upload = registry.start_upload(repo, digest.algorithm()).await?;
        let body = read
            .stream()
            .map(|r| r.map_err(|e| io::Error::other(e.to_string())));
        let stored = async {
            registry
                .upload_chunk(
                    repo,
                    &upload.id,
                    Chunk {
                        range: None,
                        length: None,
                        body: Box::pin(body),
                    },
                )
                .await?;
            registry.finish_upload(repo, &upload.id, digest, None).await
        }
        .await;
        if let Err(e) = stored {
            let _ = registry.cancel_upload(repo, &upload.id).await;
            return Err(e);
        }
        Ok(Some(p.remote.clone()))
    }

    /// Open a blob of a proxy namespace: cached, or fetched from the
    /// upstream and streamed to the caller while it is stored.
    pub async fn open_blob(
        &self,
        p: &ProxyNamespace,
        repo: &RepoName,
        digest: &Digest,
        range: Option<(Option<u64>, Option<u64>)>,
        chunk: impl FnOnce(u64) -> usize,
    ) -> Result<BlobRead> {
        let registry = &self.inner.registry;
        if registry.meta.repo_blob_size(repo, digest).await?.is_some() {
            return registry.open_blob(repo, digest, range, chunk).await;
        }
        let lock = self.lock(&format!("blob:{repo}@{digest}"));
        let one = lock.clone().lock_owned().await;
        // Fetched by the request this one waited for, or held elsewhere here
        // and shown by the upstream to be its own too.
        let linked = registry.meta.repo_blob_size(repo, digest).await?.is_some()
            || self.link_if_upstream_holds(p, repo, digest).await?;
        if linked {
            drop(one);
            return registry.open_blob(repo, digest, range, chunk).await;
        }
        let read = self.upstream_blob(p, repo, digest).await?;
        let size = read.size;
        let upload = registry.start_upload(repo, digest.algorithm()).await?;
        let (to_client, from_upstream) = mpsc::channel::<io::Result<Bytes>>(8);
        let (to_store, stored) = mpsc::channel::<io::Result<Bytes>>(8);
        let (registry2, repo2, digest2) = (registry.clone(), repo.clone(), digest.clone());
        let id = upload.id.clone();
        let remote = p.remote.clone();
        let fetch = async move {
            let _one = one;
            let append = registry2.upload_chunk(
                &repo2,
                &id,
                Chunk {
                    range: None,
                    length: None,
                    body: channel_stream(stored),
                },
            );
            let pump = async move {
                let mut client = Some(to_client);
                let mut body = Box::pin(read.stream());
                while let Some(item) = body.next().await {
                    match item {
                        Ok(bytes) => {
                            if let Some(c) = &client {
                                if c.send(Ok(bytes.clone())).await.is_err() {
                                    // The client hung up; the cache still fills.
                                    client = None;
                                }
                            }
                            if to_store.send(Ok(bytes)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let e = io::Error::other(e.to_string());
                            if let Some(c) = &client {
                                let _ = c.send(Err(io::Error::other(e.to_string()))).await;
                            }
                            let _ = to_store.send(Err(e)).await;
                            return;
                        }
                    }
                }
            };
            let (appended, ()) = tokio::join!(append, pump);
            let finished = match appended {
                Ok(_) => registry2.finish_upload(&repo2, &id, &digest2, None).await,
                Err(e) => Err(e),
            };
            if let Err(e) = finished {
                tracing::warn!(repo = %repo2, digest = %digest2, remote, error = %e, "could not cache an upstream blob");
                let _ = registry2.cancel_upload(&repo2, &id).await;
            }
        };
        match (size, range) {
            // The whole blob, as it arrives.
            (Some(total), None) => {
                tokio::spawn(fetch);
                Ok(BlobRead {
                    total,
                    range: None,
                    body: channel_stream(from_upstream),
                })
            }
            // A range, or a size the upstream did not say: cache it first.
            _ => {
                drop(from_upstream);
                fetch.await;
                registry.open_blob(repo, digest, range, chunk).await
            }
        }
    }
}
