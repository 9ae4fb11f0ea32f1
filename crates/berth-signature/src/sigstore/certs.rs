//! Keyless signing certificates: the chain from the signer's short-lived
//! certificate up to a root the policy trusts (Fulcio-style), checked at
//! the time the transparency log took the signature, and the identity the
//! certificate vouches for (its subject alternative name and the OIDC
//! issuer extension Fulcio writes).

use x509_parser::der_parser::der::parse_der_utf8string;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

use crate::keys::PublicKey;
use crate::x509::{is_ca, parse, valid_at, MAX_DEPTH};

/// The moment a keyless certificate must have been valid at.
const LOGGED: &str = "when the log took the signature";
/// Fulcio's OIDC issuer extension, v2 (a DER UTF8String).
const ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
/// Fulcio's OIDC issuer extension, v1 (the raw string).
const ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";

/// Who a certificate vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    /// The OIDC issuer that vouched for the signer.
    pub issuer: String,
    /// The signer: an e-mail address or a URI (a CI workflow).
    pub subject: String,
}

/// The signer certificate's public key.
pub fn signer_key(leaf: &[u8]) -> Result<PublicKey, String> {
    let cert = parse(leaf)?;
    PublicKey::from_spki_der(cert.public_key().raw)
        .map_err(|e| format!("the signing certificate's key: {e}"))
}

/// Check that `leaf` chains, through `intermediates` (from the bundle) or
/// the authority's own certificates, to one of `anchors` (the authority's
/// certificates, all trusted), every link valid at `at` (Unix seconds).
pub fn verify_chain(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    anchors: &[Vec<u8>],
    at: i64,
) -> Result<(), String> {
    let leaf_cert = parse(leaf)?;
    valid_at(&leaf_cert, at, "signing", LOGGED)?;
    if let Ok(Some(eku)) = leaf_cert.extended_key_usage() {
        if !eku.value.code_signing {
            return Err("the signing certificate is not for code signing".into());
        }
    }
    let anchors: Vec<X509Certificate<'_>> = anchors.iter().filter_map(|a| parse(a).ok()).collect();
    let pool: Vec<X509Certificate<'_>> =
        intermediates.iter().filter_map(|c| parse(c).ok()).collect();
    let mut current = leaf_cert;
    for _ in 0..MAX_DEPTH {
        if anchors.iter().any(|a| {
            a.subject() == current.issuer()
                && current.verify_signature(Some(a.public_key())).is_ok()
                && valid_at(a, at, "root", LOGGED).is_ok()
        }) {
            return Ok(());
        }
        let next = pool.iter().find(|c| {
            c.subject() == current.issuer()
                && is_ca(c)
                && current.verify_signature(Some(c.public_key())).is_ok()
        });
        match next {
            Some(c) => {
                valid_at(c, at, "intermediate", LOGGED)?;
                current = c.clone();
            }
            None => {
                return Err(format!(
                "the signing certificate (issued by {}) does not chain to a root the policy trusts",
                current.issuer()
            ))
            }
        }
    }
    Err("the certificate chain is too long".into())
}

/// The identity the signer's certificate vouches for.
pub fn identity(leaf: &[u8]) -> Result<CertIdentity, String> {
    let cert = parse(leaf)?;
    let mut subject = None;
    let mut issuer_v1 = None;
    let mut issuer_v2 = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                subject = san.general_names.iter().find_map(|n| match n {
                    GeneralName::URI(u) => Some((*u).to_owned()),
                    GeneralName::RFC822Name(e) => Some((*e).to_owned()),
                    _ => None,
                });
            }
            _ => {
                let oid = ext.oid.to_id_string();
                if oid == ISSUER_V2 {
                    issuer_v2 = parse_der_utf8string(ext.value)
                        .ok()
                        .and_then(|(_, o)| o.as_str().ok().map(str::to_owned));
                } else if oid == ISSUER_V1 {
                    issuer_v1 = std::str::from_utf8(ext.value).ok().map(str::to_owned);
                }
            }
        }
    }
    Ok(CertIdentity {
        issuer: issuer_v2
            .or(issuer_v1)
            .ok_or("the signing certificate names no OIDC issuer")?,
        subject: subject.ok_or("the signing certificate names no signer (no e-mail or URI)")?,
    })
}
