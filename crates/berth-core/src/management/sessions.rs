//! Console sessions: creation, lookup and logout.

use std::time::Duration;

use crate::access::Principal;
use crate::clock::now_millis;
use crate::error::DirectoryError;

use super::Management;

type Result<T> = std::result::Result<T, DirectoryError>;

/// A console session as the surfaces see it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Who is logged in.
    pub principal: Principal,
    /// The token unsafe requests must carry.
    pub csrf_token: String,
}

/// A freshly created session.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Cookie value (secret).
    pub cookie: String,
    /// CSRF token.
    pub csrf_token: String,
    /// Lifetime.
    pub max_age: Duration,
}

impl Management {
    /// Start a session for an account that has logged in.
    pub async fn create_session(&self, principal: &Principal) -> Result<NewSession> {
        let account_id = Self::account_id(principal)?;
        let cookie = crate::password::random_secret(32);
        let csrf_token = crate::password::random_secret(24);
        let now = now_millis();
        let lifetime = self.config.session_lifetime;
        self.store
            .create_session(
                &crate::password::secret_hash(&cookie),
                account_id,
                &csrf_token,
                now,
                now + lifetime.as_millis() as i64,
            )
            .await?;
        // Now and then, forget expired sessions.
        if now % 16 == 0 {
            self.store.delete_expired_sessions(now).await?;
        }
        Ok(NewSession {
            cookie,
            csrf_token,
            max_age: lifetime,
        })
    }

    /// The session a cookie belongs to.
    pub async fn session(&self, cookie: &str) -> Result<SessionInfo> {
        let session = self
            .store
            .session(&crate::password::secret_hash(cookie), now_millis())
            .await?
            .ok_or(DirectoryError::AuthenticationFailed)?;
        Ok(SessionInfo {
            principal: self.account_principal(session.account_id).await?,
            csrf_token: session.csrf_token,
        })
    }

    /// End a session.
    pub async fn end_session(&self, cookie: &str) -> Result<()> {
        Ok(self
            .store
            .delete_session(&crate::password::secret_hash(cookie))
            .await?)
    }
}
