//! Accounts of identity providers: found by the provider's id for them,
//! made at the first sign-in. A name that another account (of any origin)
//! or a registry user has is refused, never merged.

use berth_meta::{Account, NewAccount};

use crate::access::Principal;
use crate::clock::now_millis;
use crate::directory::{check_name, Directory};
use crate::error::DirectoryError;

/// Why no account.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The reason, for the person signing in.
    Refused(String),
    /// A store failure.
    Directory(DirectoryError),
}

impl From<DirectoryError> for Refusal {
    fn from(e: DirectoryError) -> Self {
        Refusal::Directory(e)
    }
}

impl From<berth_meta::MetaError> for Refusal {
    fn from(e: berth_meta::MetaError) -> Self {
        Refusal::Directory(e.into())
    }
}

/// The account `origin` knows as `subject`, made now (named `name`) if it
/// does not exist yet. `provider` names the provider in messages.
pub(crate) async fn find_or_create(
    directory: &Directory,
    origin: &str,
    subject: &str,
    name: &str,
    email: &str,
    provider: &str,
) -> Result<Account, Refusal> {
    let store = directory.store();
    if let Some(a) = store.account_by_external(origin, subject).await? {
        return Ok(a);
    }
    check_name("account", name).map_err(|e| {
        Refusal::Refused(format!(
            "Your name {name:?} cannot name an account here: {e}."
        ))
    })?;
    let taken = match store.account_by_name(name).await? {
        Some(other) => Some(other.origin),
        None => store
            .registry_user_by_name(name)
            .await?
            .map(|_| "a registry user".to_owned()),
    };
    if let Some(other) = taken {
        return Err(Refusal::Refused(format!(
            "The name {name} is already taken here ({other}); your {provider} account was not linked to it. \
             Ask a platform administrator."
        )));
    }
    let created = directory
        .provision(
            &Principal::System,
            &NewAccount {
                name,
                email,
                // Not a password hash: no console password matches it.
                password_hash: "!",
                is_admin: false,
                origin,
                external_subject: Some(subject),
                now: now_millis(),
            },
            &format!("origin={origin}"),
        )
        .await;
    match created {
        Ok(a) => Ok(a),
        // Another node made it a moment ago.
        Err(DirectoryError::Meta(berth_meta::MetaError::Conflict(_))) => store
            .account_by_external(origin, subject)
            .await?
            .ok_or_else(|| Refusal::Refused(format!("The name {name} is already taken here."))),
        Err(e) => Err(e.into()),
    }
}
