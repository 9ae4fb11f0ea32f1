//! What a policy trusts: named public keys, keyless authorities (a CA, a
//! transparency log, accepted identities), and Notation trust stores.

use crate::keys::PublicKey;
use crate::notation::TrustStore;
use crate::sigstore::Authority;

/// A key a policy trusts, under the name people gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// Its name in the policy.
    pub name: String,
    /// The key.
    pub key: PublicKey,
}

/// Everything a policy trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// Signers with keys.
    pub keys: Vec<TrustedKey>,
    /// Keyless authorities.
    pub authorities: Vec<Authority>,
    /// Notation trust stores with their policy statements.
    pub stores: Vec<TrustStore>,
}

impl Trust {
    /// Whether it trusts nothing at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.authorities.is_empty() && self.stores.is_empty()
    }
}
