//! Remote registries: the registries Berth does not run that it replicates
//! to and from and caches. Platform administrators register them through
//! the API (the password sealed at rest with the configured encryption
//! key, never shown again) or declare them in the configuration file
//! (read-only in the API). [`Remotes::client`] gives the OCI client of one.

use std::sync::Arc;

use berth_client::{ClientError, ClientOptions, Credentials, RegistryClient};
use berth_meta::{PlatformStore, RemoteRecord, RemoteUpdate};

use crate::access::Principal;
use crate::clock::now_millis;
use crate::secrets::Sealer;
use crate::{Directory, DirectoryError, Registry};

type Result<T> = std::result::Result<T, DirectoryError>;

/// A remote declared in the configuration file.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DeclaredRemote {
    /// Name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// CA certificate (PEM).
    pub ca_pem: Option<String>,
    /// A token service on another host that may receive the credentials.
    pub token_realm: Option<String>,
}

impl std::fmt::Debug for DeclaredRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeclaredRemote")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A remote as shown: never its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// User name, if it authenticates.
    pub username: Option<String>,
    /// Whether a password is set.
    pub has_password: bool,
    /// Whether TLS certificates are not verified.
    pub insecure: bool,
    /// The CA certificate it trusts, if any.
    pub ca_pem: Option<String>,
    /// A token service on another host that may receive the credentials.
    pub token_realm: Option<String>,
    /// Declared in the configuration file (read-only here).
    pub declared: bool,
    /// Who registered it (`configuration` for declared ones).
    pub created_by: String,
    /// When, Unix milliseconds (0 for declared ones).
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// What registering or changing a remote asks for.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RemoteSpec {
    /// Base URL.
    pub url: Option<String>,
    /// User name (`Some("")` clears it).
    pub username: Option<String>,
    /// Password (`Some("")` clears it).
    pub password: Option<String>,
    /// Skip TLS verification.
    pub insecure: Option<bool>,
    /// CA certificate (`Some("")` clears it).
    pub ca_pem: Option<String>,
    /// Token realm (`Some("")` clears it).
    pub token_realm: Option<String>,
}

impl std::fmt::Debug for RemoteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSpec")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// How a connection test went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionTest {
    /// Whether the registry answered and took the credentials.
    pub ok: bool,
    /// What happened, readable.
    pub message: String,
}

/// Remote registries.
#[derive(Debug, Clone)]
pub struct Remotes {
    registry: Registry,
    directory: Directory,
    declared: Arc<Vec<DeclaredRemote>>,
    sealer: Option<Arc<Sealer>>,
}

impl Remotes {
    /// Remotes over the platform tables, with the configuration's declared
    /// remotes and its encryption key (without one, remotes with a password
    /// can only be declared in the configuration).
    pub fn new(
        registry: Registry,
        directory: Directory,
        declared: Vec<DeclaredRemote>,
        sealer: Option<Arc<Sealer>>,
    ) -> Self {
        Remotes {
            registry,
            directory,
            declared: Arc::new(declared),
            sealer,
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
                "remote registries are for platform administrators".into(),
            ))
        }
    }

    fn shown_declared(d: &DeclaredRemote) -> Remote {
        Remote {
            name: d.name.clone(),
            url: d.url.clone(),
            username: d.username.clone(),
            has_password: d.password.is_some(),
            insecure: d.insecure,
            ca_pem: d.ca_pem.clone(),
            token_realm: d.token_realm.clone(),
            declared: true,
            created_by: "configuration".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn shown(r: RemoteRecord) -> Remote {
        Remote {
            has_password: r.password_sealed.is_some(),
            name: r.name,
            url: r.url,
            username: r.username,
            insecure: r.insecure,
            ca_pem: r.ca_pem,
            token_realm: r.token_realm,
            declared: false,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }

    /// Every remote, declared ones first.
    pub async fn list(&self, actor: &Principal) -> Result<Vec<Remote>> {
        Self::check_admin(actor)?;
        let mut out: Vec<Remote> = self.declared.iter().map(Self::shown_declared).collect();
        out.extend(self.store().remotes().await?.into_iter().map(Self::shown));
        Ok(out)
    }

    /// One remote.
    pub async fn get(&self, actor: &Principal, name: &str) -> Result<Remote> {
        Self::check_admin(actor)?;
        if let Some(d) = self.declared.iter().find(|d| d.name == name) {
            return Ok(Self::shown_declared(d));
        }
        self.store()
            .remote(name)
            .await?
            .map(Self::shown)
            .ok_or_else(|| DirectoryError::NotFound(format!("remote registry {name}")))
    }

    /// Seal again, with the current key, the passwords of stored remotes
    /// sealed with a previous one (`encryption_key` rotation). Returns how
    /// many.
    pub async fn reseal_passwords(&self) -> Result<usize> {
        let Some(sealer) = &self.sealer else {
            return Ok(0);
        };
        let store = self.store();
        let mut resealed = 0;
        for r in store.remotes().await? {
            let Some(sealed) = &r.password_sealed else {
                continue;
            };
            match sealer.open_checked(sealed, &r.name) {
                Ok(opened) if opened.is_stale() => {
                    let update = RemoteUpdate {
                        password_sealed: Some(Some(self.seal(&r.name, opened.value())?)),
                        now: now_millis(),
                        ..RemoteUpdate::default()
                    };
                    store.update_remote(&r.name, &update).await?;
                    resealed += 1;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(remote = r.name, error = %e, "a remote registry's password does not open");
                }
            }
        }
        Ok(resealed)
    }

    fn seal(&self, name: &str, password: &str) -> Result<String> {
        let sealer = self.sealer.as_ref().ok_or_else(|| {
            DirectoryError::Invalid(
                "set encryption_key (BERTH_ENCRYPTION_KEY) in the configuration to store passwords of remote registries, or declare the remote in the configuration file".into(),
            )
        })?;
        sealer
            .seal(password, name)
            .map_err(|e| DirectoryError::Invalid(e.to_string()))
    }

    /// Register a remote.
    pub async fn create(&self, actor: &Principal, name: &str, spec: RemoteSpec) -> Result<Remote> {
        Self::check_admin(actor)?;
        check_name(name)?;
        if self.declared.iter().any(|d| d.name == name) {
            return Err(DirectoryError::Conflict(format!(
                "a remote registry named {name} (in the configuration file)"
            )));
        }
        let url = spec
            .url
            .ok_or_else(|| DirectoryError::Invalid("give the registry's url".into()))?;
        check_url(&url)?;
        let ca_pem = spec.ca_pem.filter(|s| !s.is_empty());
        check_ca(ca_pem.as_deref())?;
        let token_realm = spec.token_realm.filter(|s| !s.is_empty());
        if let Some(realm) = &token_realm {
            check_realm(realm, &url)?;
        }
        let password = spec.password.filter(|p| !p.is_empty());
        let username = spec.username.filter(|u| !u.is_empty());
        if password.is_some() && username.is_none() {
            return Err(DirectoryError::Invalid(
                "a password needs a username".into(),
            ));
        }
        let sealed = password.map(|p| self.seal(name, &p)).transpose()?;
        let now = now_millis();
        let record = RemoteRecord {
            name: name.to_owned(),
            url,
            username,
            password_sealed: sealed,
            insecure: spec.insecure.unwrap_or(false),
            ca_pem,
            token_realm,
            created_by: actor.name().to_owned(),
            created_at: now,
            updated_at: now,
        };
        self.store().create_remote(&record).await?;
        self.directory
            .record(actor, "remote.create", name, &record.url)
            .await?;
        Ok(Self::shown(record))
    }

    fn refuse_declared(&self, name: &str) -> Result<()> {
        if self.declared.iter().any(|d| d.name == name) {
            Err(DirectoryError::Invalid(format!(
                "remote registry {name} is declared in the configuration file; change it there"
            )))
        } else {
            Ok(())
        }
    }

    /// Change a registered remote.
    pub async fn update(&self, actor: &Principal, name: &str, spec: RemoteSpec) -> Result<Remote> {
        Self::check_admin(actor)?;
        self.refuse_declared(name)?;
        if let Some(url) = &spec.url {
            check_url(url)?;
        }
        if let Some(ca) = spec.ca_pem.as_deref().filter(|c| !c.is_empty()) {
            check_ca(Some(ca))?;
        }
        if let Some(realm) = spec.token_realm.as_deref().filter(|r| !r.is_empty()) {
            let url = match &spec.url {
                Some(u) => u.clone(),
                None => self.get(actor, name).await?.url,
            };
            check_realm(realm, &url)?;
        }
        let password_sealed = match spec.password.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(p) => Some(Some(self.seal(name, p)?)),
        };
        let update = RemoteUpdate {
            url: spec.url,
            username: spec.username.map(|u| (!u.is_empty()).then_some(u)),
            password_sealed,
            insecure: spec.insecure,
            ca_pem: spec.ca_pem.map(|c| (!c.is_empty()).then_some(c)),
            token_realm: spec.token_realm.map(|r| (!r.is_empty()).then_some(r)),
            now: now_millis(),
        };
        if !self.store().update_remote(name, &update).await? {
            return Err(DirectoryError::NotFound(format!("remote registry {name}")));
        }
        self.directory
            .record(actor, "remote.update", name, "")
            .await?;
        self.get(actor, name).await
    }

    /// Delete a registered remote.
    pub async fn delete(&self, actor: &Principal, name: &str) -> Result<()> {
        Self::check_admin(actor)?;
        self.refuse_declared(name)?;
        let users: Vec<String> = self
            .store()
            .replication_rules()
            .await?
            .into_iter()
            .filter(|r| r.remote == name)
            .map(|r| r.name)
            .collect();
        if !users.is_empty() {
            return Err(DirectoryError::Conflict(format!(
                "replication rules use remote registry {name}: {}; delete or change them first",
                users.join(", ")
            )));
        }
        if !self.store().delete_remote(name).await? {
            return Err(DirectoryError::NotFound(format!("remote registry {name}")));
        }
        self.directory
            .record(actor, "remote.delete", name, "")
            .await
    }

    /// Try the connection: the registry answers `/v2/` and takes the
    /// credentials.
    pub async fn test(&self, actor: &Principal, name: &str) -> Result<ConnectionTest> {
        Self::check_admin(actor)?;
        let client = self.client(name).await?;
        Ok(match client.ping().await {
            Ok(()) => ConnectionTest {
                ok: true,
                message: format!("{} answers and accepts the credentials", client.url()),
            },
            Err(e) => ConnectionTest {
                ok: false,
                message: e.to_string(),
            },
        })
    }

    /// The OCI client of a remote, with its credentials opened.
    pub async fn client(&self, name: &str) -> Result<RegistryClient> {
        let (url, username, password, insecure, ca_pem, token_realm) = if let Some(d) =
            self.declared.iter().find(|d| d.name == name)
        {
            (
                d.url.clone(),
                d.username.clone(),
                d.password.clone(),
                d.insecure,
                d.ca_pem.clone(),
                d.token_realm.clone(),
            )
        } else {
            let r = self
                .store()
                .remote(name)
                .await?
                .ok_or_else(|| DirectoryError::NotFound(format!("remote registry {name}")))?;
            let password = match &r.password_sealed {
                Some(sealed) => {
                    let sealer = self.sealer.as_ref().ok_or_else(|| {
                            DirectoryError::Invalid(format!(
                                "remote registry {name} has a stored password, but no encryption_key is configured to open it"
                            ))
                        })?;
                    Some(
                        sealer
                            .open(sealed, name)
                            .map_err(|e| DirectoryError::Invalid(e.to_string()))?,
                    )
                }
                None => None,
            };
            (
                r.url,
                r.username,
                password,
                r.insecure,
                r.ca_pem,
                r.token_realm,
            )
        };
        let credentials = username.map(|username| Credentials {
            username,
            password: password.unwrap_or_default(),
        });
        RegistryClient::new(
            &url,
            ClientOptions {
                credentials,
                ca_pem: ca_pem.map(String::into_bytes),
                insecure_skip_verify: insecure,
                token_realm,
                ..ClientOptions::default()
            },
        )
        .map_err(|e| match e {
            ClientError::Url(m) | ClientError::Tls(m) => DirectoryError::Invalid(m),
            other => DirectoryError::Invalid(other.to_string()),
        })
    }
}

/// A remote's name: 1 to 64 lower-case letters, digits, `-`, `_`, `.`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(format!(
            "invalid remote name {name:?}: 1 to 64 lower-case letters, digits, '-', '_' or '.'"
        )))
    }
}

fn check_url(url: &str) -> Result<()> {
    if url.len() > 2048 {
        return Err(DirectoryError::Invalid("the URL is too long".into()));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| DirectoryError::Invalid(format!("invalid URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(DirectoryError::Invalid(format!(
            "the URL must be http:// or https:// with a host, not {url:?}"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(DirectoryError::Invalid(
            "put credentials in username and password, not in the URL".into(),
        ));
    }
    Ok(())
}

/// A token realm: an http(s) URL with a host, HTTPS unless the registry
/// itself is plain HTTP (never a downgrade).
fn check_realm(realm: &str, registry: &str) -> Result<()> {
    check_url(realm).map_err(|e| DirectoryError::Invalid(format!("token_realm: {e}")))?;
    let https = realm.starts_with("https://");
    if !https && registry.starts_with("https://") {
        return Err(DirectoryError::Invalid(
            "token_realm must be https:// for a registry on https://".into(),
        ));
    }
    Ok(())
}

fn check_ca(pem: Option<&str>) -> Result<()> {
    let Some(pem) = pem else {
        return Ok(());
    };
    match reqwest::Certificate::from_pem_bundle(pem.as_bytes()) {
        Ok(certs) if !certs.is_empty() => Ok(()),
        Ok(_) => Err(DirectoryError::Invalid(
            "the CA certificate holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        )),
        Err(e) => Err(DirectoryError::Invalid(format!(
            "the CA certificate is not PEM: {e}"
        ))),
    }
}
