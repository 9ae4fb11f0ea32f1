//! LDAP directories: search-then-bind with a service account, over LDAPS
//! or StartTLS with a CA file; groups by a `memberOf`-style attribute or a
//! group search (nested groups followed up to a depth). Several
//! directories are asked in order; the first that knows a name decides.
//!
//! What a directory says about a user is kept for `cache` (per
//! directory): a user removed or disabled there (the user filter no
//! longer matches) is refused within that time — at a login with the
//! directory password, with a registry password or API token (the login
//! checks the directory), and for console sessions and API tokens by
//! [`Ldap::sweep`], which disables such accounts in Berth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_meta::Account;
use ldap3::{ldap_escape, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};

use super::external::{find_or_create, Refusal};
use super::mapping_table::MappingTable;
use super::mappings::apply;
use crate::access::Principal;
use crate::clock::now_millis;
use crate::directory::Directory;
use crate::error::DirectoryError;

/// Deepest nesting of groups followed.
const MAX_NESTING: usize = 8;

/// One directory.
#[derive(Clone)]
pub struct LdapDirectory {
    /// Short name; accounts' origin is `ldap:<name>`.
    pub name: String,
    /// `ldaps://host:636` or `ldap://host:389`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    pub starttls: bool,
    /// A CA certificate (PEM) to trust instead of the system's.
    pub ca_pem: Option<String>,
    /// The service account that searches.
    pub bind_dn: String,
    /// Its password.
    pub bind_password: String,
    /// Where users are.
    pub user_base: String,
    /// Finds one active user; `{username}` is replaced (escaped). A user it
    /// no longer finds is refused.
    pub user_filter: String,
    /// The attribute that identifies a user for good (`entryUUID`,
    /// `objectGUID`); the DN when absent.
    pub id_attribute: String,
    /// The e-mail attribute.
    pub email_attribute: String,
    /// A user attribute listing group DNs (`memberOf`), if used.
    pub member_of_attribute: Option<String>,
    /// Where groups are, for a group search.
    pub group_base: Option<String>,
    /// Finds the groups of a member; `{dn}` is replaced (escaped).
    pub group_filter: String,
    /// Follow groups that are members of groups.
    pub nested_groups: bool,
    /// How long what the directory says is kept.
    pub cache: Duration,
    /// Connection and operation timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for LdapDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapDirectory")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// A user as the directory has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUser {
    /// Its DN.
    pub dn: String,
    /// Its lasting id.
    pub id: String,
    /// E-mail.
    pub email: String,
    /// Its groups' DNs (nested ones included when followed).
    pub groups: Vec<String>,
}

/// Why a directory did not answer.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// Cannot connect, or the service account cannot bind or search.
    #[error("the directory {0} cannot be reached: {1}")]
    Unavailable(String, String),
}

/// What a login through a directory came to.
#[derive(Debug)]
pub enum LdapLogin {
    /// No directory knows the name.
    Unknown,
    /// Known, but the password is wrong or the account is refused (the
    /// reason is for logs and the audit log).
    Refused(String),
    /// Signed in.
    Accepted(Principal),
}

type Cached = (Instant, Option<LdapUser>);

/// The configured directories.
#[derive(Debug, Clone)]
pub struct Ldap {
    directories: Arc<Vec<LdapDirectory>>,
    mappings: MappingTable,
    directory: Directory,
    cache: Arc<Mutex<HashMap<(String, String), Cached>>>,
}

fn unavailable(d: &LdapDirectory, e: impl std::fmt::Display) -> LdapError {
    LdapError::Unavailable(d.name.clone(), e.to_string())
}

impl Ldap {
    /// Over these directories.
    pub fn new(
        directories: Vec<LdapDirectory>,
        mappings: MappingTable,
        directory: Directory,
    ) -> Ldap {
        Ldap {
            directories: Arc::new(directories),
            mappings,
            directory,
            cache: Arc::default(),
        }
    }

    /// Whether any directory is configured.
    pub fn is_enabled(&self) -> bool {
        !self.directories.is_empty()
    }

    /// The directories.
    pub fn directories(&self) -> &[LdapDirectory] {
        &self.directories
    }

    async fn connect(&self, d: &LdapDirectory) -> Result<ldap3::Ldap, LdapError> {
        let mut ldap = open(d).await?;
        ldap.simple_bind(&d.bind_dn, &d.bind_password)
            .await
            .and_then(|r| r.success())
            .map_err(|e| unavailable(d, format!("the service account cannot bind: {e}")))?;
        Ok(ldap)
    }

    /// Look `username` up in `d` (service account), with its groups.
    async fn find(&self, d: &LdapDirectory, username: &str) -> Result<Option<LdapUser>, LdapError> {
        let mut ldap = self.connect(d).await?;
        let found = self.find_with(&mut ldap, d, username).await;
        let _ = ldap.unbind().await;
        found
    }

    async fn find_with(
        &self,
        ldap: &mut ldap3::Ldap,
        d: &LdapDirectory,
        username: &str,
    ) -> Result<Option<LdapUser>, LdapError> {
        let filter = d.user_filter.replace("{username}", &ldap_escape(username));
        let mut attrs = vec![d.id_attribute.as_str(), d.email_attribute.as_str()];
        if let Some(a) = &d.member_of_attribute {
            attrs.push(a);
        }
        ldap.with_timeout(d.timeout);
        let (entries, _) = ldap
            .search(&d.user_base, Scope::Subtree, &filter, attrs)
            .await
            .and_then(|r| r.success())
            .map_err(|e| unavailable(d, format!("searching users: {e}")))?;
        if entries.len() != 1 {
            return Ok(None);
        }
        let e = SearchEntry::construct(entries.into_iter().next().expect("one"));
        let first = |attr: &str| {
            e.attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                .and_then(|(_, v)| v.first().cloned())
        };
        let mut groups: Vec<String> = d
            .member_of_attribute
            .as_deref()
            .and_then(|a| e.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(a)))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if let Some(base) = &d.group_base {
            let mut frontier = vec![e.dn.clone()];
            for _ in 0..MAX_NESTING {
                let mut next = Vec::new();
                for member in &frontier {
                    let filter = d
                        .group_filter
                        .replace("{dn}", &ldap_escape(member.as_str()));
                    ldap.with_timeout(d.timeout);
                    let (found, _) = ldap
                        .search(base, Scope::Subtree, &filter, vec!["1.1"])
                        .await
                        .and_then(|r| r.success())
                        .map_err(|e| unavailable(d, format!("searching groups: {e}")))?;
                    for g in found {
                        let dn = SearchEntry::construct(g).dn;
                        if !groups.iter().any(|x| x.eq_ignore_ascii_case(&dn)) {
                            groups.push(dn.clone());
                            next.push(dn);
                        }
                    }
                }
                if !d.nested_groups || next.is_empty() {
                    break;
                }
                frontier = next;
            }
        }
        Ok(Some(LdapUser {
            id: first(&d.id_attribute).unwrap_or_else(|| e.dn.clone()),
            email: first(&d.email_attribute).unwrap_or_default(),
            dn: e.dn,
            groups,
        }))
    }

    /// What `d` says of `username`, from the cache while it is fresh.
    async fn lookup(
        &self,
        d: &LdapDirectory,
        username: &str,
    ) -> Result<Option<LdapUser>, LdapError> {
        let key = (d.name.clone(), username.to_owned());
        if let Some((at, user)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            if at.elapsed() < d.cache {
                return Ok(user.clone());
            }
        }
        let user = self.find(d, username).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.retain(|_, (at, _)| at.elapsed() < d.cache);
        }
        cache.insert(key, (Instant::now(), user.clone()));
        Ok(user)
    }

    /// Check `password` by binding as the user (never with an empty
    /// password: that would be an anonymous bind).
    async fn bind_as(
        &self,
        d: &LdapDirectory,
        dn: &str,
        password: &str,
    ) -> Result<bool, LdapError> {
        if password.is_empty() {
            return Ok(false);
        }
        let mut ldap = open(d).await?;
        let ok = match ldap.simple_bind(dn, password).await {
            Ok(r) => r.success().is_ok(),
            Err(e) => return Err(unavailable(d, e)),
        };
        let _ = ldap.unbind().await;
        Ok(ok)
    }

    fn directory_of<'a>(&'a self, account: &Account) -> Option<&'a LdapDirectory> {
        let name = account.origin.strip_prefix("ldap:")?;
        self.directories.iter().find(|d| d.name == name)
    }

    /// A login with a directory password: an account of a directory binds
    /// there; a name no account has is looked up in each directory in
    /// order, and the first that knows it decides (the account is made).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        existing: Option<&Account>,
        client_addr: Option<&str>,
    ) -> Result<LdapLogin, LdapLoginError> {
        let candidates: Vec<&LdapDirectory> = match existing {
            Some(a) => self.directory_of(a).into_iter().collect(),
            None => self.directories.iter().collect(),
        };
        for d in candidates {
            let Some(user) = self.lookup(d, username).await? else {
                if existing.is_some() {
                    return Ok(LdapLogin::Refused(format!(
                        "not found in directory {}",
                        d.name
                    )));
                }
                continue;
            };
            if !self.bind_as(d, &user.dn, password).await? {
                return Ok(LdapLogin::Refused(format!(
                    "directory {} refused the password",
                    d.name
                )));
            }
            let origin = format!("ldap:{}", d.name);
            let account = match find_or_create(
                &self.directory,
                &origin,
                &user.id,
                &username.to_lowercase(),
                &user.email,
                &format!("directory {}", d.name),
            )
            .await
            {
                Ok(a) => a,
                Err(Refusal::Refused(m)) => return Ok(LdapLogin::Refused(m)),
                Err(Refusal::Directory(e)) => return Err(e.into()),
            };
            return self.admit(account, &user, client_addr).await;
        }
        Ok(LdapLogin::Unknown)
    }

    /// Whether an account of a directory may go on (a login with a
    /// registry password, an API token): the directory still finds it,
    /// and its mapped roles follow its groups. `Accepted` for accounts of
    /// other origins.
    pub async fn confirm(
        &self,
        account: Account,
        client_addr: Option<&str>,
    ) -> Result<LdapLogin, LdapLoginError> {
        let Some(d) = self.directory_of(&account) else {
            return Ok(LdapLogin::Accepted(principal(&account)));
        };
        match self.lookup(d, &account.name).await? {
            Some(user) if Some(user.id.as_str()) == account.external_subject.as_deref() => {
                self.admit(account, &user, client_addr).await
            }
            _ => Ok(LdapLogin::Refused(format!(
                "{} is no longer in directory {}",
                account.name, d.name
            ))),
        }
    }

    async fn admit(
        &self,
        account: Account,
        user: &LdapUser,
        client_addr: Option<&str>,
    ) -> Result<LdapLogin, LdapLoginError> {
        if account.disabled {
            return Ok(LdapLogin::Refused(format!("{} is disabled", account.name)));
        }
        apply(
            &self.directory,
            &self.mappings.current().await?,
            &account,
            &user.groups,
            client_addr,
        )
        .await?;
        let account = self
            .directory
            .store()
            .account_by_id(account.id)
            .await
            .map_err(DirectoryError::from)?
            .ok_or_else(|| DirectoryError::NotFound(format!("account {}", account.name)))?;
        Ok(LdapLogin::Accepted(principal(&account)))
    }

    /// Disable the accounts of directories that no longer find them, and
    /// bring the others' mapped roles in line with their groups: what
    /// console sessions and API tokens rely on. Run every cache period.
    pub async fn sweep(&self) -> Result<usize, LdapLoginError> {
        let store = self.directory.store();
        let mut disabled = 0;
        for account in store.list_accounts().await.map_err(DirectoryError::from)? {
            if account.disabled || self.directory_of(&account).is_none() {
                continue;
            }
            let name = account.name.clone();
            let origin = account.origin.clone();
            if let LdapLogin::Refused(reason) = self.confirm(account.clone(), None).await? {
                store
                    .set_account_disabled(account.id, true, now_millis())
                    .await
                    .map_err(DirectoryError::from)?;
                store
                    .append_audit(
                        &origin,
                        "account.disable",
                        &name,
                        &reason,
                        None,
                        now_millis(),
                    )
                    .await
                    .map_err(DirectoryError::from)?;
                disabled += 1;
            }
        }
        Ok(disabled)
    }

    /// Sweep every `period`, forever.
    pub async fn keep_sweeping(&self, period: Duration) {
        loop {
            tokio::time::sleep(period).await;
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(n, "disabled accounts their directory no longer has"),
                Err(e) => tracing::warn!(error = %e, "checking directory accounts"),
            }
        }
    }

    /// Check a directory: connect, bind the service account, and look a
    /// name up (the console's "test" button).
    pub async fn test(
        &self,
        name: &str,
        username: &str,
    ) -> Result<Option<LdapUser>, LdapLoginError> {
        let d = self
            .directories
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| DirectoryError::NotFound(format!("directory {name}")))?;
        Ok(self.find(d, username).await?)
    }
}

/// Why a directory login could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum LdapLoginError {
    /// The directory cannot be reached.
    #[error(transparent)]
    Unavailable(#[from] LdapError),
    /// A store failure.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

/// A connection to `d` (TLS as configured), not bound yet.
async fn open(d: &LdapDirectory) -> Result<ldap3::Ldap, LdapError> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(d.timeout)
        .set_starttls(d.starttls);
    if let Some(pem) = &d.ca_pem {
        settings = settings.set_config(Arc::new(tls_config(pem).map_err(|e| unavailable(d, e))?));
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &d.url)
        .await
        .map_err(|e| unavailable(d, e))?;
    ldap3::drive!(conn);
    ldap.with_timeout(d.timeout);
    Ok(ldap)
}

fn principal(a: &Account) -> Principal {
    Principal::Account {
        id: a.id,
        name: a.name.clone(),
        is_admin: a.is_admin,
    }
}

fn tls_config(pem: &str) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("the directory's CA certificate: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("the directory's CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the directory's CA file holds no certificate".into());
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}
