//! Finding an image's signatures where signing tools put them — the tag
//! `sha256-<hex>.sig` cosign pushes, and OCI 1.1 referrers of the cosign
//! signature type — and checking each against a policy's keys.

use berth_oci::{Digest, Reference, RepoName, Tag};
use berth_signature::cosign::{ARTIFACT_TYPE, MAX_PAYLOAD};
use berth_signature::{signature_layers, signature_tag, verify_layer, SignatureLayer, TrustedKey};
use futures_util::StreamExt;

use crate::error::RegistryError;
use crate::registry::Registry;

/// Most signature manifests read for one image.
const MAX_MANIFESTS: usize = 16;

/// A signature found, with its payload's bytes (or why they could not be
/// read).
#[derive(Debug, Clone)]
pub struct Found {
    /// Where it was found: `tag sha256-….sig` or `referrer sha256:…`.
    pub source: String,
    /// The signature layer.
    pub layer: SignatureLayer,
    /// The payload, or why it is unusable.
    pub payload: Result<Vec<u8>, String>,
}

/// One signature checked against a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureCheck {
    /// Where it was found.
    pub source: String,
    /// The trusted key that verified it.
    pub signer: Option<String>,
    /// Why it does not count, when it does not.
    pub problem: Option<String>,
}

/// Every cosign signature of `digest` in `repo`.
pub async fn find(
    registry: &Registry,
    repo: &RepoName,
    digest: &Digest,
) -> Result<Vec<Found>, RegistryError> {
    let mut manifests: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(tag) = signature_tag(digest.as_str()).and_then(|t| Tag::parse(&t).ok()) {
        match registry
            .get_manifest(repo, &Reference::Tag(tag.clone()), false)
            .await
        {
            Ok(m) => manifests.push((format!("tag {}", tag.as_str()), m.content.clone())),
            Err(RegistryError::ManifestUnknown(_) | RegistryError::NameUnknown(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let referrers = registry
        .meta()
        .referrers(repo, digest, Some(ARTIFACT_TYPE))
        .await?;
    for r in referrers.into_iter().take(MAX_MANIFESTS) {
        match registry
            .get_manifest(repo, &Reference::Digest(r.digest.clone()), false)
            .await
        {
            Ok(m) => manifests.push((format!("referrer {}", r.digest), m.content.clone())),
            Err(RegistryError::ManifestUnknown(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let mut found = Vec::new();
    for (source, content) in manifests {
        let layers = match signature_layers(&content) {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(%source, error = %e, "not a signature manifest");
                continue;
            }
        };
        for layer in layers {
            let payload = payload(registry, repo, &layer).await?;
            found.push(Found {
                source: source.clone(),
                layer,
                payload,
            });
        }
    }
    Ok(found)
}

/// A payload's bytes, read only when small; storage failures are errors,
/// a missing or oversized payload is the signature's problem.
async fn payload(
    registry: &Registry,
    repo: &RepoName,
    layer: &SignatureLayer,
) -> Result<Result<Vec<u8>, String>, RegistryError> {
    if layer.payload_size > MAX_PAYLOAD {
        return Ok(Err(format!(
            "the payload is {} bytes (at most {MAX_PAYLOAD} are read)",
            layer.payload_size
        )));
    }
    let Ok(digest) = Digest::parse(&layer.payload_digest) else {
        return Ok(Err(format!(
            "the payload digest {:?} is invalid",
            layer.payload_digest
        )));
    };
    let mut read = match registry
        .open_blob(repo, &digest, None, |_| MAX_PAYLOAD as usize)
        .await
    {
        Ok(r) => r,
        Err(RegistryError::BlobUnknown(_)) => {
            return Ok(Err(format!(
                "the payload {digest} is not in the repository"
            )))
        }
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::with_capacity(read.total.min(MAX_PAYLOAD) as usize);
    while let Some(chunk) = read.body.next().await {
        let chunk = chunk.map_err(RegistryError::Storage)?;
        if bytes.len() + chunk.len() > MAX_PAYLOAD as usize {
            return Ok(Err(format!("the payload is over {MAX_PAYLOAD} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Ok(bytes))
}

/// Check what was found for `digest` against `keys`.
pub fn check(found: &[Found], digest: &Digest, keys: &[TrustedKey]) -> Vec<SignatureCheck> {
    found
        .iter()
        .map(|f| {
            let outcome = match &f.payload {
                Ok(p) => verify_layer(&f.layer, p, digest.as_str(), keys),
                Err(e) => Err(e.clone()),
            };
            SignatureCheck {
                source: f.source.clone(),
                signer: outcome.as_ref().ok().cloned(),
                problem: outcome.err(),
            }
        })
        .collect()
}

/// Whether a read is one signing and attesting tools make, never governed
/// by pull policies: their tags (`sha256-<hex>.sig`, `.att`, `.sbom`) and
/// manifests that are themselves attached to another (a subject).
pub fn is_attachment(reference: &Reference, subject: Option<&Digest>) -> bool {
    if subject.is_some() {
        return true;
    }
    match reference {
        Reference::Tag(t) => {
            let t = t.as_str();
            t.strip_prefix("sha256-").is_some_and(|rest| {
                [".sig", ".att", ".sbom"].iter().any(|suffix| {
                    rest.strip_suffix(suffix).is_some_and(|hex| {
                        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
                    })
                })
            })
        }
        Reference::Digest(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_tools_reads_are_recognised() {
        let tag = |t: &str| Reference::Tag(Tag::parse(t).unwrap());
        let hex = "a".repeat(64);
        assert!(is_attachment(&tag(&format!("sha256-{hex}.sig")), None));
        assert!(is_attachment(&tag(&format!("sha256-{hex}.att")), None));
        assert!(!is_attachment(&tag("sha256-abc.sig"), None));
        assert!(!is_attachment(&tag("latest"), None));
        let d = Digest::parse(&format!("sha256:{hex}")).unwrap();
        assert!(is_attachment(&Reference::Digest(d.clone()), Some(&d)));
        assert!(!is_attachment(&Reference::Digest(d), None));
    }
}
