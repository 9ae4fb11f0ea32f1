//! Personal API tokens: creation, listing, revocation and authentication.

use berth_meta::{ApiToken, NewApiToken};

use crate::access::Principal;
use crate::clock::now_millis;
use crate::error::DirectoryError;
use crate::validate::check_text;

use super::Management;

type Result<T> = std::result::Result<T, DirectoryError>;

/// Prefix of personal API tokens (recognisable in logs and by secret scanners).
pub const API_TOKEN_PREFIX: &str = "berth_pat_";
/// How often a token's "last used" time is written at most.
const TOKEN_TOUCH_INTERVAL_MS: i64 = 60_000;

impl Management {
    pub(super) fn account_id(actor: &Principal) -> Result<i64> {
        match actor {
            Principal::Account { id, .. } => Ok(*id),
            _ => Err(DirectoryError::Forbidden(
                "only accounts have API tokens".into(),
            )),
        }
    }

    /// Create a personal API token; the secret is returned once.
    pub async fn create_token(
        &self,
        actor: &Principal,
        name: &str,
        expires_at: Option<i64>,
    ) -> Result<(ApiToken, String)> {
        let account_id = Self::account_id(actor)?;
        if name.trim().is_empty() {
            return Err(DirectoryError::Invalid("name the token".into()));
        }
        check_text("token name", name, 64)?;
        if expires_at.is_some_and(|t| t <= now_millis()) {
            return Err(DirectoryError::Invalid(
                "the expiry lies in the past".into(),
            ));
        }
        let secret = format!("{API_TOKEN_PREFIX}{}", crate::password::random_secret(32));
        let prefix: String = secret.chars().take(API_TOKEN_PREFIX.len() + 6).collect();
        let token = self
            .store
            .create_api_token(&NewApiToken {
                account_id,
                name,
                token_hash: &crate::password::secret_hash(&secret),
                prefix: &prefix,
                expires_at,
                now: now_millis(),
            })
            .await?;
        self.directory
            .record(actor, "token.create", actor.name(), name)
            .await?;
        Ok((token, secret))
    }

    /// The actor's tokens.
    pub async fn tokens(&self, actor: &Principal) -> Result<Vec<ApiToken>> {
        Ok(self.store.api_tokens_of(Self::account_id(actor)?).await?)
    }

    /// Revoke one of the actor's tokens.
    pub async fn revoke_token(&self, actor: &Principal, id: i64) -> Result<()> {
        if !self
            .store
            .delete_api_token(Self::account_id(actor)?, id)
            .await?
        {
            return Err(DirectoryError::NotFound(format!("token {id}")));
        }
        self.directory
            .record(actor, "token.revoke", actor.name(), &id.to_string())
            .await
    }

    /// Revoke every one of the actor's tokens. Returns how many.
    pub async fn revoke_all_tokens(&self, actor: &Principal) -> Result<u64> {
        let revoked = self
            .store
            .delete_api_tokens_of(Self::account_id(actor)?)
            .await?;
        self.directory
            .record(
                actor,
                "token.revoke_all",
                actor.name(),
                &format!("{revoked} token(s)"),
            )
            .await?;
        Ok(revoked)
    }

    /// The account an API token belongs to; fails for unknown, expired or
    /// revoked tokens and disabled accounts.
    pub async fn authenticate_token(&self, secret: &str) -> Result<Principal> {
        if !secret.starts_with(API_TOKEN_PREFIX) {
            return Err(DirectoryError::AuthenticationFailed);
        }
        let token = self
            .store
            .api_token_by_hash(&crate::password::secret_hash(secret))
            .await?
            .ok_or(DirectoryError::AuthenticationFailed)?;
        let now = now_millis();
        if token.expires_at.is_some_and(|t| t <= now) {
            return Err(DirectoryError::AuthenticationFailed);
        }
        let principal = self.account_principal(token.account_id).await?;
        if token
            .last_used_at
            .is_none_or(|t| now - t > TOKEN_TOUCH_INTERVAL_MS)
        {
            self.store.touch_api_token(token.id, now).await?;
        }
        Ok(principal)
    }

    pub(super) async fn account_principal(&self, id: i64) -> Result<Principal> {
        match self.directory.store().account_by_id(id).await? {
            Some(a) if !a.disabled => Ok(Principal::Account {
                id: a.id,
                name: a.name,
                is_admin: a.is_admin,
            }),
            _ => Err(DirectoryError::AuthenticationFailed),
        }
    }
}
