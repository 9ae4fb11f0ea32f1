//! Console sign-in through OpenID Connect providers: the authorization
//! code flow with PKCE (S256), `state` and `nonce`. The first sign-in
//! creates the account (origin `oidc:<provider>`, keyed by the provider's
//! `sub`); a name already taken by another account is refused, never
//! merged. Group mappings are applied at every sign-in.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use berth_oidc::{claim_strings, claim_text, pkce_challenge};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::external::{find_or_create, Refusal};
use super::mapping_table::MappingTable;
use super::mappings::apply;
use super::{IdentityError, Issuers};
use crate::access::Principal;
use crate::clock::now_millis;
use crate::directory::Directory;
use crate::error::DirectoryError;

/// An OpenID provider for the console.
#[derive(Clone)]
pub struct OidcProvider {
    /// Short name (URLs, the origin `oidc:<name>`).
    pub name: String,
    /// The button's text.
    pub display_name: String,
    /// Issuer URL.
    pub issuer: String,
    /// Berth's client id there.
    pub client_id: String,
    /// Its secret (none: a public client, PKCE only).
    pub client_secret: Option<String>,
    /// Scopes besides `openid`.
    pub scopes: Vec<String>,
    /// The claim that names the account.
    pub username_claim: String,
    /// The claim path of the groups, if used.
    pub groups_claim: Option<String>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// A sign-in under way, kept by the browser (an HttpOnly cookie) between
/// leaving for the provider and coming back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    /// The provider.
    pub provider: String,
    /// Compared with the `state` the provider sends back (CSRF).
    pub state: String,
    /// Must be in the ID token (replay).
    pub nonce: String,
    /// The PKCE verifier.
    pub verifier: String,
    /// Where to go after.
    pub next: String,
}

impl Pending {
    /// As a cookie value.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("serializable"))
    }

    /// From a cookie value.
    pub fn decode(value: &str) -> Option<Pending> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(value).ok()?).ok()
    }
}

/// Why a sign-in did not happen; the text is for the login page.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// No such provider is configured.
    #[error("there is no sign-in provider {0:?}")]
    UnknownProvider(String),
    /// The provider cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// Refused, with the reason.
    #[error("{0}")]
    Refused(String),
    /// A store failure.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl From<IdentityError> for SignInError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Refused(r) => {
                SignInError::Refused(format!("The provider's token was refused: {r}."))
            }
            e @ IdentityError::Unavailable { .. } => SignInError::Unavailable(e.to_string()),
            IdentityError::Directory(e) => SignInError::Directory(e),
        }
    }
}

/// A completed sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Who.
    pub principal: Principal,
    /// The changes group mappings made.
    pub changes: Vec<String>,
}

/// The configured providers and the flow.
#[derive(Debug, Clone)]
pub struct SignIn {
    providers: Arc<Vec<OidcProvider>>,
    mappings: MappingTable,
    issuers: Arc<Issuers>,
    directory: Directory,
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl SignIn {
    /// Over these providers and mappings.
    pub fn new(
        providers: Vec<OidcProvider>,
        mappings: MappingTable,
        issuers: Arc<Issuers>,
        directory: Directory,
    ) -> SignIn {
        SignIn {
            providers: Arc::new(providers),
            mappings,
            issuers,
            directory,
        }
    }

    /// The providers, in configuration order.
    pub fn providers(&self) -> &[OidcProvider] {
        &self.providers
    }

    /// The group mappings.
    pub fn mappings(&self) -> &MappingTable {
        &self.mappings
    }

    fn provider(&self, name: &str) -> Result<&OidcProvider, SignInError> {
        self.providers
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| SignInError::UnknownProvider(name.to_owned()))
    }

    /// Where to send the browser, and what it must bring back.
    pub async fn begin(
        &self,
        name: &str,
        redirect_uri: &str,
        next: &str,
    ) -> Result<(String, Pending), SignInError> {
        let p = self.provider(name)?;
        let m = self
            .issuers
            .current_metadata(&p.issuer)
            .await
            .map_err(|e| match e {
                IdentityError::Unavailable { .. } => {
                    SignInError::Unavailable(format!("{} cannot be reached", p.display_name))
                }
                e => e.into(),
            })?;
        let endpoint = m.authorization_endpoint.ok_or_else(|| {
            SignInError::Unavailable(format!("{} offers no browser sign-in", p.display_name))
        })?;
        let pending = Pending {
            provider: p.name.clone(),
            state: random(),
            nonce: random(),
            verifier: random(),
            next: next.to_owned(),
        };
        let mut scope = vec!["openid".to_owned()];
        scope.extend(p.scopes.iter().filter(|s| *s != "openid").cloned());
        let mut url = reqwest::Url::parse(&endpoint)
            .map_err(|e| SignInError::Unavailable(format!("authorization endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &p.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scope.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pkce_challenge(&pending.verifier))
            .append_pair("code_challenge_method", "S256");
        Ok((url.into(), pending))
    }

    /// Complete a sign-in: the provider sent the browser back with `state`
    /// and `code`.
    pub async fn finish(
        &self,
        pending: &Pending,
        state: &str,
        code: &str,
        redirect_uri: &str,
        client_addr: Option<&str>,
    ) -> Result<SignedIn, SignInError> {
        if !same(&pending.state, state) {
            return Err(SignInError::Refused(
                "This sign-in was not started here (its state does not match). Start again.".into(),
            ));
        }
        let p = self.provider(&pending.provider)?;
        let id_token = self
            .redeem(p, code, redirect_uri, &pending.verifier)
            .await?;
        let verified = self
            .issuers
            .verify(
                &p.issuer,
                &id_token,
                std::slice::from_ref(&p.client_id),
                Some(&pending.nonce),
            )
            .await?;
        let claims = &verified.claims;
        let aud = claim_strings(claims, "aud");
        if aud.len() > 1 && claim_text(claims, "azp").as_deref() != Some(p.client_id.as_str()) {
            return Err(SignInError::Refused(
                "The ID token names several audiences but not Berth as its authorized party."
                    .into(),
            ));
        }
        let sub = claim_text(claims, "sub")
            .ok_or_else(|| SignInError::Refused("The ID token has no subject.".into()))?;
        let groups = p
            .groups_claim
            .as_deref()
            .map(|path| claim_strings(claims, path))
            .unwrap_or_default();
        let origin = format!("oidc:{}", p.name);
        let store = self.directory.store();
        let account = match store
            .account_by_external(&origin, &sub)
            .await
            .map_err(DirectoryError::from)?
        {
            Some(a) => a,
            None => {
                let name = claim_text(claims, &p.username_claim)
                    .map(|n| n.to_lowercase())
                    .ok_or_else(|| {
                        SignInError::Refused(format!(
                            "The provider sent no {:?} claim to name your account.",
                            p.username_claim
                        ))
                    })?;
                let email = claim_text(claims, "email").unwrap_or_default();
                find_or_create(
                    &self.directory,
                    &origin,
                    &sub,
                    &name,
                    &email,
                    &p.display_name,
                )
                .await
                .map_err(|r| match r {
                    Refusal::Refused(m) => SignInError::Refused(m),
                    Refusal::Directory(e) => SignInError::Directory(e),
                })?
            }
        };
        if account.disabled {
            return Err(SignInError::Refused(
                "This account is disabled. Ask a platform administrator.".into(),
            ));
        }
        let changes = apply(
            &self.directory,
            &self.mappings.current().await?,
            &account,
            &groups,
            client_addr,
        )
        .await?;
        let account = store
            .account_by_id(account.id)
            .await
            .map_err(DirectoryError::from)?
            .ok_or_else(|| DirectoryError::NotFound(format!("account {}", account.name)))?;
        store
            .append_audit(
                &account.name,
                "auth.sign_in",
                "console",
                &format!("origin={origin} sub={sub} groups={}", groups.join(",")),
                client_addr,
                now_millis(),
            )
            .await
            .map_err(DirectoryError::from)?;
        Ok(SignedIn {
            principal: Principal::Account {
                id: account.id,
                name: account.name,
                is_admin: account.is_admin,
            },
            changes,
        })
    }

    /// Exchange the code for the ID token.
    async fn redeem(
        &self,
        p: &OidcProvider,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<String, SignInError> {
        let m = self.issuers.metadata(&p.issuer).await?;
        let endpoint = m.token_endpoint.ok_or_else(|| {
            SignInError::Unavailable(format!("{} has no token endpoint", p.display_name))
        })?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut req = self.issuers.http().post(&endpoint);
        match &p.client_secret {
            // client_secret_basic: both parts form-encoded first (RFC 6749 §2.3.1).
            Some(secret) => {
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                req = req.basic_auth(enc(&p.client_id), Some(enc(secret)));
            }
            None => form.push(("client_id", &p.client_id)),
        }
        let unavailable = |e: reqwest::Error| {
            SignInError::Unavailable(format!("{} cannot be reached: {e}", p.display_name))
        };
        let resp = req.form(&form).send().await.map_err(unavailable)?;
        let status = resp.status();
        let body: TokenResponse = resp.json().await.map_err(unavailable)?;
        if let Some(error) = body.error {
            return Err(SignInError::Refused(format!(
                "{} refused the sign-in: {error}{}",
                p.display_name,
                body.error_description
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )));
        }
        if !status.is_success() {
            return Err(SignInError::Unavailable(format!(
                "{} answered {status} to the code exchange",
                p.display_name
            )));
        }
        body.id_token
            .ok_or_else(|| SignInError::Refused(format!("{} sent no ID token.", p.display_name)))
    }

    /// Check a provider now (the console's "test" button): its metadata
    /// and keys are fetched; what was found, or why not.
    pub async fn test(&self, name: &str) -> Result<String, SignInError> {
        let p = self.provider(name)?;
        let m = self.issuers.current_metadata(&p.issuer).await?;
        Ok(format!(
            "{}: metadata and keys fetched (sign-in at {}, keys at {}{})",
            p.display_name,
            m.authorization_endpoint.as_deref().unwrap_or("—"),
            m.jwks_uri,
            if m.end_session_endpoint.is_some() {
                ", sign-out offered"
            } else {
                ""
            }
        ))
    }

    /// Where to send the browser to sign out at the provider too (RP-initiated
    /// logout), when the account's origin is a provider that offers it.
    pub async fn logout_url(&self, origin: &str, post_logout_redirect: &str) -> Option<String> {
        let p = self.provider(origin.strip_prefix("oidc:")?).ok()?;
        let end = self
            .issuers
            .metadata(&p.issuer)
            .await
            .ok()?
            .end_session_endpoint?;
        let mut url = reqwest::Url::parse(&end).ok()?;
        url.query_pairs_mut()
            .append_pair("client_id", &p.client_id)
            .append_pair("post_logout_redirect_uri", post_logout_redirect);
        Some(url.into())
    }
}
