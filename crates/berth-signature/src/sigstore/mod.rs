//! Keyless signatures (sigstore): a short-lived certificate from a
//! Fulcio-style CA vouches for the signer's OIDC identity, and a
//! transparency log (Rekor) vouches that the signature existed while the
//! certificate was valid. Checked offline against an [`Authority`] the
//! policy configures: its root certificates, its log keys, and the
//! identities it accepts.
//!
//! Two carriers: a sigstore bundle (v0.1 to v0.3, pushed as a referrer;
//! [`verify_bundle`]) and cosign's older annotations on a simple-signing
//! layer (certificate, chain and a Rekor bundle; [`verify_annotations`]).

mod bundle;
mod certs;
mod tlog;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use crate::x509::certificates_from_pem;
pub use bundle::{
    is_bundle_media_type, pae, parse_bundle, Bundle, Content, TlogEntry, BUNDLE_V03, MAX_BUNDLE,
};
pub use certs::CertIdentity;
pub use tlog::root_from_path;

use crate::keys::PublicKey;
use tlog::Expect;

/// The in-toto statement type a DSSE envelope carries.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// A string matched exactly or by a glob (`*` any run, `?` one character).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Exactly this.
    Exact(String),
    /// A glob.
    Pattern(String),
}

impl Match {
    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        match self {
            Match::Exact(e) => e == s,
            Match::Pattern(p) => berth_oci::glob_match(p, s),
        }
    }
}

/// An identity an authority accepts: the OIDC issuer and the signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRule {
    /// The issuer (the certificate's Fulcio issuer extension).
    pub issuer: Match,
    /// The signer (the certificate's e-mail or URI).
    pub subject: Match,
}

/// A keyless trust root: a CA, a transparency log, and accepted identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// Its name in the policy.
    pub name: String,
    /// Root (and intermediate) certificates, DER; each is trusted.
    pub certificates: Vec<Vec<u8>>,
    /// The transparency log's public keys.
    pub log_keys: Vec<PublicKey>,
    /// Identities accepted; a signer must match one.
    pub identities: Vec<IdentityRule>,
}

/// Who made a keyless signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeylessSigner {
    /// The authority that vouched.
    pub authority: String,
    /// The certificate's identity.
    pub identity: CertIdentity,
    /// When the log took it, Unix seconds.
    pub logged_at: i64,
}

impl KeylessSigner {
    /// How the signer is shown: `subject (issuer) via authority`.
    pub fn label(&self) -> String {
        format!(
            "{} ({}) via {}",
            self.identity.subject, self.identity.issuer, self.authority
        )
    }
}

/// Check a bundle for `subject` (the digest pulled, `sha256:<hex>`).
/// `manifest` is the subject manifest's bytes: a message signature signs
/// them directly. A DSSE envelope must carry an in-toto statement naming
/// the subject.
pub fn verify_bundle(
    bundle: &Bundle,
    subject: &str,
    manifest: &[u8],
    authorities: &[Authority],
) -> Result<KeylessSigner, String> {
    let hex = subject
        .strip_prefix("sha256:")
        .ok_or("only sha256 subjects are verified")?;
    let leaf = bundle.certificates.first().ok_or("no certificate")?;
    match &bundle.content {
        Content::Message { digest, signature } => {
            if hex::encode(digest) != hex {
                return Err(format!(
                    "the bundle signs sha256:{}, not {subject}",
                    hex::encode(digest)
                ));
            }
            if hex::encode(Sha256::digest(manifest)) != hex {
                return Err("the manifest read is not the subject".into());
            }
            let expect = Expect::Hashed {
                digest,
                signature,
                certificate: leaf,
            };
            verify_signed(
                &bundle.certificates,
                &bundle.tlog,
                manifest,
                signature,
                expect,
                authorities,
            )
        }
        Content::Dsse {
            payload_type,
            payload,
            signatures,
        } => {
            if payload_type != IN_TOTO {
                return Err(format!(
                    "a DSSE envelope of type {payload_type:?}, not an in-toto statement"
                ));
            }
            statement_names(payload, hex)?;
            let signed = pae(payload_type, payload);
            let key = certs::signer_key(leaf)?;
            let signature = signatures
                .iter()
                .find(|s| key.verifies(&signed, s))
                .ok_or("the envelope's signature does not verify with its certificate's key")?;
            let expect = Expect::Dsse {
                payload,
                signature,
                certificate: leaf,
            };
            verify_signed(
                &bundle.certificates,
                &bundle.tlog,
                &signed,
                signature,
                expect,
                authorities,
            )
        }
    }
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    #[serde(default)]
    subject: Vec<StatementSubject>,
}

#[derive(Deserialize)]
struct StatementSubject {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

fn statement_names(payload: &[u8], hex: &str) -> Result<(), String> {
    let s: Statement =
        serde_json::from_slice(payload).map_err(|e| format!("the in-toto statement: {e}"))?;
    if !s.kind.starts_with("https://in-toto.io/Statement/") {
        return Err(format!("a statement of type {:?}", s.kind));
    }
    if s.subject
        .iter()
        .any(|x| x.digest.get("sha256").is_some_and(|d| d == hex))
    {
        Ok(())
    } else {
        let named: Vec<String> = s
            .subject
            .iter()
            .filter_map(|x| x.digest.get("sha256").map(|d| format!("sha256:{d}")))
            .collect();
        Err(format!(
            "the statement is about {}, not sha256:{hex}",
            if named.is_empty() {
                "nothing".to_owned()
            } else {
                named.join(", ")
            }
        ))
    }
}

/// cosign's Rekor bundle annotation (`dev.sigstore.cosign/bundle`).
#[derive(Deserialize)]
struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    set: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorPayload {
    body: String,
    integrated_time: i64,
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// Check cosign's older keyless annotations on a simple-signing layer:
/// `certificate` and `chain` (PEM), `rekor_bundle` (JSON), and the
/// `signature` over `payload` (the caller has checked that the payload
/// names the subject).
pub fn verify_annotations(
    certificate: &str,
    chain: Option<&str>,
    rekor_bundle: Option<&str>,
    payload: &[u8],
    signature: &[u8],
    authorities: &[Authority],
) -> Result<KeylessSigner, String> {
    let mut certs = certificates_from_pem(certificate)
        .map_err(|e| format!("the certificate annotation: {e}"))?;
    certs.truncate(1);
    if let Some(chain) = chain {
        certs.extend(
            certificates_from_pem(chain).map_err(|e| format!("the chain annotation: {e}"))?,
        );
    }
    let rb: RekorBundle = serde_json::from_str(rekor_bundle.ok_or(
        "no dev.sigstore.cosign/bundle annotation: a keyless signature needs the log's entry",
    )?)
    .map_err(|e| format!("the Rekor bundle annotation: {e}"))?;
    let body = STANDARD
        .decode(rb.payload.body.trim())
        .map_err(|_| "the Rekor bundle's body is not base64")?;
    let kind = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["kind"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let entry = TlogEntry {
        log_index: rb.payload.log_index,
        log_id: hex::decode(&rb.payload.log_id)
            .map_err(|_| "the Rekor bundle's log id is not hex")?,
        kind,
        integrated_time: rb.payload.integrated_time,
        body_b64: rb.payload.body,
        set: Some(
            STANDARD
                .decode(rb.set.trim())
                .map_err(|_| "the signed entry timestamp is not base64")?,
        ),
        proof: None,
    };
    let digest = Sha256::digest(payload);
    let expect = Expect::Hashed {
        digest: &digest,
        signature,
        certificate: &certs[0],
    };
    verify_signed(&certs, &[entry], payload, signature, expect, authorities)
}

/// The checks both carriers share: the signature under the certificate's
/// key, a log entry of this signature by a trusted log, the chain to a
/// trusted root at the logged time, and an accepted identity.
fn verify_signed(
    certificates: &[Vec<u8>],
    tlog: &[TlogEntry],
    message: &[u8],
    signature: &[u8],
    expect: Expect<'_>,
    authorities: &[Authority],
) -> Result<KeylessSigner, String> {
    if authorities.is_empty() {
        return Err(
            "signed keyless (a certificate), and the policy trusts no keyless authority".into(),
        );
    }
    let leaf = certificates.first().ok_or("no certificate")?;
    if !certs::signer_key(leaf)?.verifies(message, signature) {
        return Err("the signature does not verify with its certificate's key".into());
    }
    if tlog.is_empty() {
        return Err("no transparency-log entry: a keyless signature needs one".into());
    }
    let identity = certs::identity(leaf)?;
    let mut problems = Vec::new();
    for a in authorities {
        let outcome =
            (|| {
                let mut last = String::new();
                let logged_at = tlog
                    .iter()
                    .find_map(|e| match tlog::verify_entry(e, &a.log_keys, expect) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            last = e;
                            None
                        }
                    })
                    .ok_or(last)?;
                certs::verify_chain(leaf, &certificates[1..], &a.certificates, logged_at)?;
                if !a.identities.iter().any(|r| {
                    r.issuer.matches(&identity.issuer) && r.subject.matches(&identity.subject)
                }) {
                    return Err(format!(
                        "signed by {} (issuer {}), an identity the policy does not trust",
                        identity.subject, identity.issuer
                    ));
                }
                Ok(logged_at)
            })();
        match outcome {
            Ok(logged_at) => {
                return Ok(KeylessSigner {
                    authority: a.name.clone(),
                    identity,
                    logged_at,
                })
            }
            Err(e) if authorities.len() == 1 => return Err(e),
            Err(e) => problems.push(format!("{}: {e}", a.name)),
        }
    }
    Err(problems.join("; "))
}

#[cfg(test)]
mod tests;
