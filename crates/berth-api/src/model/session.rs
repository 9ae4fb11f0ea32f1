//! Console logins and sessions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Console login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Account name.
    pub username: String,
    /// Console password.
    pub password: String,
}

/// The session's account and CSRF token.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionJson {
    /// Account name.
    pub account: String,
    /// Platform administrator.
    pub is_admin: bool,
    /// Send as `X-CSRF-Token` with every changing request made with the cookie.
    pub csrf_token: Option<String>,
}
