//! Image signatures, checked without I/O: signers' public keys (PEM), cosign
//! signature manifests and simple-signing payloads, keyless sigstore
//! signatures (certificate chains, transparency-log evidence, identities),
//! and the modes of a trust policy. Input is bytes and trust material; output is a verdict
//! with its reason. The core finds the signatures (tags, referrers) and
//! caches verdicts; this crate only decides.
//!
//! Layering: a pure crate at the bottom, beside `berth-oci` and
//! `berth-oidc`; fuzz target `signature`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cosign;
mod keys;
pub mod notation;
pub mod sigstore;
mod trust;
mod x509;

pub use cosign::{
    parse_payload, signature_layers, signature_tag, verify_layer, SignatureLayer, SignedClaim,
};
pub use keys::{KeyError, KeyKind, PublicKey};
pub use trust::{Trust, TrustedKey};

/// What a policy does with a pull it is not satisfied with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// Nothing.
    Off,
    /// The pull succeeds; it is audited, counted and announced.
    Audit,
    /// The pull is refused.
    Enforce,
}

impl Mode {
    /// Parse `off`, `audit` or `enforce`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "off" => Some(Mode::Off),
            "audit" => Some(Mode::Audit),
            "enforce" => Some(Mode::Enforce),
            _ => None,
        }
    }

    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Audit => "audit",
            Mode::Enforce => "enforce",
        }
    }
}
