//! Identities from outside Berth: external issuers' signing keys
//! ([`Issuers`]) and workload identity ([`Workload`]: trust rules that let
//! a CI job's or a Kubernetes service account's JWT stand in for a
//! registry user's password).
//!
//! Layering: services layer. The pure checks (signatures, registered
//! claims, claim paths) are `berth-oidc`'s; this domain fetches and caches
//! the issuers' documents, keeps the rules in the store and audits every
//! exchange. What a registry user may then do is decided, as for any
//! login, by [`crate::access`].

mod external;
mod issuers;
mod ldap;
mod mapping_table;
mod mappings;
mod sign_in;
mod workload;

pub use issuers::{IdentityConfig, Issuers};
pub use ldap::{Ldap, LdapDirectory, LdapError, LdapLogin, LdapLoginError, LdapUser};
pub use mapping_table::{MappingRow, MappingTable};
pub use mappings::{apply as apply_mappings, desired, Desired, GroupMapping, MappedGrant};
pub use sign_in::{OidcProvider, Pending, SignIn, SignInError, SignedIn};
pub use workload::{TrustRuleSpec, TrustRuleView, TrustTest, Workload};

/// Whether a secret has the shape of a compact JWT (a JSON header, two
/// dots): then it is tried against trust rules before passwords.
pub fn looks_like_jwt(secret: &str) -> bool {
    secret.starts_with("eyJ") && secret.bytes().filter(|b| *b == b'.').count() == 2
}

/// Why an external token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The token is invalid for a reason the caller may be told.
    #[error("{0}")]
    Refused(String),
    /// The issuer's documents could not be fetched.
    #[error("the identity provider {issuer} cannot be reached: {reason}")]
    Unavailable {
        /// Issuer URL.
        issuer: String,
        /// What failed.
        reason: String,
    },
    /// A store failure.
    #[error(transparent)]
    Directory(#[from] crate::error::DirectoryError),
}

impl From<berth_meta::MetaError> for IdentityError {
    fn from(e: berth_meta::MetaError) -> Self {
        IdentityError::Directory(e.into())
    }
}
