//! Pure OpenID Connect pieces: verifying a signed JWT (an ID token, a CI
//! job's token, a Kubernetes service-account token) against the issuer's
//! JWK set, reading provider metadata, looking up claims by path, and the
//! PKCE challenge.
//!
//! Layering: a bottom crate beside `berth-oci`. No I/O, no clock: the
//! caller fetches documents and passes the time; `berth-core`'s identity
//! domain does the fetching, caching and key rotation.
//!
//! # In detail
//!
//! Only asymmetric signatures are accepted (RSA, RSA-PSS, ECDSA, EdDSA), and
//! only with a key of the matching type: `alg: none` and HMAC are refused,
//! so a public key can never be used as an HMAC secret. Checks: the
//! algorithm is one the provider announces, `iss` is exact, `aud` holds an
//! expected audience, `exp`, `iat` and `nbf` within a small clock skew, and
//! `nonce` when the caller expects one.

mod claims;
mod discovery;
mod jwt;

pub use claims::{claim_strings, claim_text};
pub use discovery::{parse_metadata, ProviderMetadata};
pub use jwt::{decode_unverified, pkce_challenge, verify, JwkSet, Policy, TokenError, Verified};
