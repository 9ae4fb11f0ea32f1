//! Notation (Notary Project) signatures: an OCI referrer of artifact type
//! `application/vnd.cncf.notary.signature` whose one layer is a JWS or
//! COSE envelope over a payload naming the target manifest, signed by the
//! leaf of an X.509 chain it carries. Checked against trust stores the
//! policy configures, with Notation's trust-policy semantics: registry
//! scopes (which repositories a store speaks for), a trust store of CA
//! certificates, and trusted identities (`x509.subject: C=…, ST=…, O=…`
//! matched against the signer's subject, or `*`).
//!
//! The `notary.x509` signing scheme only: the chain must be valid now
//! (the caller passes the time; there is no clock here). Timestamp
//! countersignatures and the `notary.x509.signingAuthority` scheme are
//! refused with the reason.

mod envelope;

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde::Deserialize;
use x509_parser::prelude::*;

pub use envelope::{parse_cose, parse_jws, Alg, Envelope, COSE, JWS, MAX_ENVELOPE, PAYLOAD_TYPE};

use crate::x509::{is_ca, parse, valid_at, MAX_DEPTH};

/// Artifact type of a Notation signature manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";

/// Critical headers this verifier understands.
const UNDERSTOOD: [&str; 3] = [
    "io.cncf.notary.signingScheme",
    "io.cncf.notary.expiry",
    "io.cncf.notary.signingTime",
];

/// A trusted identity: the subject attributes a signer's certificate must
/// carry, or anyone the store's CAs vouch for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedIdentity {
    /// `*`.
    Any,
    /// `x509.subject: K=V, …` (attribute, value) pairs.
    Subject(Vec<(String, String)>),
}

impl TrustedIdentity {
    /// Read Notation's form: `*` or `x509.subject: C=US, ST=WA, O=acme`.
    /// Like Notation, a subject must name at least C, ST and O.
    pub fn parse(s: &str) -> Result<TrustedIdentity, String> {
        let s = s.trim();
        if s == "*" {
            return Ok(TrustedIdentity::Any);
        }
        let rest = s.strip_prefix("x509.subject:").ok_or_else(|| {
            format!("{s:?}: a trusted identity is `*` or `x509.subject: C=…, ST=…, O=…`")
        })?;
        let mut pairs = Vec::new();
        for part in split_dn(rest) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} in {s:?} is not ATTRIBUTE=value"))?;
            let k = k.trim().to_ascii_uppercase();
            if pairs.iter().any(|(p, _): &(String, String)| *p == k) {
                return Err(format!("{s:?} names {k} twice"));
            }
            pairs.push((k, v.trim().replace("\\,", ",")));
        }
        for needed in ["C", "ST", "O"] {
            if !pairs.iter().any(|(k, _)| k == needed) {
                return Err(format!(
                    "{s:?}: a trusted identity names at least C, ST and O"
                ));
            }
        }
        Ok(TrustedIdentity::Subject(pairs))
    }

    fn matches(&self, subject: &[(String, String)]) -> bool {
        match self {
            TrustedIdentity::Any => true,
            TrustedIdentity::Subject(want) => want.iter().all(|w| subject.contains(w)),
        }
    }
}

/// Split a DN at commas not escaped with a backslash.
fn split_dn(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            ',' if !escaped => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    out.push(s[start..].trim());
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

/// A trust store with the policy statement that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustStore {
    /// Its name in the policy.
    pub name: String,
    /// CA (or self-signed signing) certificates, DER.
    pub certificates: Vec<Vec<u8>>,
    /// Signers accepted.
    pub identities: Vec<TrustedIdentity>,
    /// Repositories it speaks for (globs; `*` all).
    pub scopes: Vec<String>,
}

/// Who made a Notation signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotationSigner {
    /// The trust store that vouched.
    pub store: String,
    /// The signer's subject, as `K=V, …`.
    pub subject: String,
}

impl NotationSigner {
    /// How the signer is shown.
    pub fn label(&self) -> String {
        format!("{} via {} (Notation)", self.subject, self.store)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    target_artifact: Target,
}

#[derive(Deserialize)]
struct Target {
    digest: String,
}

fn subject_of(cert: &X509Certificate<'_>) -> Vec<(String, String)> {
    cert.subject()
        .iter_attributes()
        .filter_map(|a| {
            let name = match a.attr_type().to_id_string().as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.6" => "C",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "1.2.840.113549.1.9.1" => "E",
                _ => return None,
            };
            Some((name.to_owned(), a.as_str().ok()?.to_owned()))
        })
        .collect()
}

fn algorithm(
    alg: Alg,
    spki: &SubjectPublicKeyInfo<'_>,
) -> Result<&'static dyn VerificationAlgorithm, String> {
    use x509_parser::public_key::PublicKey as Pk;
    let key = spki
        .parsed()
        .map_err(|_| "the signer's key is unreadable".to_owned())?;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    Ok(match (alg, key, curve.as_deref()) {
        (Alg::Ps256, Pk::RSA(_), _) => &signature::RSA_PSS_2048_8192_SHA256,
        (Alg::Ps384, Pk::RSA(_), _) => &signature::RSA_PSS_2048_8192_SHA384,
        (Alg::Ps512, Pk::RSA(_), _) => &signature::RSA_PSS_2048_8192_SHA512,
        (Alg::Es256, Pk::EC(_), Some("1.2.840.10045.3.1.7")) => &signature::ECDSA_P256_SHA256_FIXED,
        (Alg::Es384, Pk::EC(_), Some("1.3.132.0.34")) => &signature::ECDSA_P384_SHA384_FIXED,
        (Alg::Es512, _, _) => {
            return Err("ES512 (P-521) signatures are not verified by Berth".into())
        }
        (a, _, _) => {
            return Err(format!(
                "the envelope's algorithm {a:?} does not fit the signer's key"
            ))
        }
    })
}

/// Check an envelope (`media_type` [`JWS`] or [`COSE`]) for `subject` (the
/// digest pulled) in repository `repo`, at time `now` (Unix seconds).
pub fn verify_envelope(
    media_type: &str,
    bytes: &[u8],
    subject: &str,
    repo: &str,
    now: i64,
    stores: &[TrustStore],
) -> Result<NotationSigner, String> {
    let env = match media_type {
        JWS => parse_jws(bytes)?,
        COSE => parse_cose(bytes)?,
        other => return Err(format!("a Notation envelope of media type {other:?}")),
    };
    if let Some(c) = env.crit.iter().find(|c| !UNDERSTOOD.contains(&c.as_str())) {
        return Err(format!(
            "the envelope needs {c:?} understood (a verification plugin or an extension Berth does not run)"
        ));
    }
    if env.signing_scheme != "notary.x509" {
        return Err(format!(
            "signing scheme {:?}: Berth verifies notary.x509 signatures",
            env.signing_scheme
        ));
    }
    if env.content_type != PAYLOAD_TYPE {
        return Err(format!(
            "a payload of type {:?}, not a Notation payload",
            env.content_type
        ));
    }
    let payload: Payload =
        serde_json::from_slice(&env.payload).map_err(|e| format!("the Notation payload: {e}"))?;
    if payload.target_artifact.digest != subject {
        return Err(format!(
            "the signature is for {}, not for {subject}",
            payload.target_artifact.digest
        ));
    }
    if env.expiry.is_some_and(|e| e < now) {
        return Err("the signature has expired (io.cncf.notary.expiry)".into());
    }
    let leaf_der = env
        .certificates
        .first()
        .ok_or("the envelope carries no certificate")?;
    let leaf = parse(leaf_der)?;
    let alg = algorithm(env.alg, leaf.public_key())?;
    UnparsedPublicKey::new(alg, &leaf.public_key().subject_public_key.data)
        .verify(&env.signed, &env.signature)
        .map_err(|_| {
            "the signature does not verify with its certificate's key (tampered?)".to_owned()
        })?;
    if let Ok(Some(ku)) = leaf.key_usage() {
        if !ku.value.digital_signature() {
            return Err("the signing certificate is not for digital signatures".into());
        }
    }
    if let Ok(Some(eku)) = leaf.extended_key_usage() {
        if !eku.value.code_signing {
            return Err("the signing certificate is not for code signing".into());
        }
    }
    // The chain as carried: each certificate issued by the next, all valid now.
    let chain: Vec<X509Certificate<'_>> = env
        .certificates
        .iter()
        .take(MAX_DEPTH)
        .map(|c| parse(c))
        .collect::<Result<_, _>>()?;
    for (i, c) in chain.iter().enumerate() {
        valid_at(c, now, if i == 0 { "signing" } else { "chain" }, "now")?;
        if let Some(issuer) = chain.get(i + 1) {
            if c.issuer() != issuer.subject()
                || !is_ca(issuer)
                || c.verify_signature(Some(issuer.public_key())).is_err()
            {
                return Err("the envelope's certificate chain is broken".into());
            }
        }
    }
    let subject_dn = subject_of(&leaf);
    let mut problems = Vec::new();
    for store in stores {
        if !store.scopes.iter().any(|s| berth_oci::glob_match(s, repo)) {
            continue;
        }
        // The store holds a certificate of the chain, or the issuer of its top.
        let top = chain.last().expect("a leaf at least");
        let anchored = env
            .certificates
            .iter()
            .any(|c| store.certificates.contains(c))
            || store
                .certificates
                .iter()
                .filter_map(|d| parse(d).ok())
                .any(|a| {
                    a.subject() == top.issuer()
                        && top.verify_signature(Some(a.public_key())).is_ok()
                });
        if !anchored {
            problems.push(format!(
                "{}: the signer's chain is not from its certificates",
                store.name
            ));
            continue;
        }
        if !store.identities.iter().any(|i| i.matches(&subject_dn)) {
            problems.push(format!(
                "{}: the signer {} is not a trusted identity",
                store.name,
                dn(&subject_dn)
            ));
            continue;
        }
        return Ok(NotationSigner {
            store: store.name.clone(),
            subject: dn(&subject_dn),
        });
    }
    Err(if problems.is_empty() {
        if stores.is_empty() {
            "signed with Notation, and the policy trusts no Notation trust store".to_owned()
        } else {
            format!("no Notation trust store of the policy speaks for {repo}")
        }
    } else {
        problems.join("; ")
    })
}

fn dn(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
