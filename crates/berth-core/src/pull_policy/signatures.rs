//! Finding an image's signatures where signing tools put them — the tag
//! `sha256-<hex>.sig` cosign pushes, OCI 1.1 referrers of the cosign
//! signature type, sigstore bundles and Notation envelopes pushed as
//! referrers — and checking each against what a policy trusts.

use std::sync::Arc;

use berth_oci::{Digest, Reference, RepoName, Tag};
use berth_signature::cosign::{ARTIFACT_TYPE, MAX_PAYLOAD};
use berth_signature::notation::{self, verify_envelope, MAX_ENVELOPE};
use berth_signature::sigstore::{
    is_bundle_media_type, parse_bundle, verify_bundle, Bundle, BUNDLE_V03, MAX_BUNDLE,
};
use berth_signature::{signature_layers, signature_tag, verify_layer, SignatureLayer, Trust};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::error::RegistryError;
use crate::registry::Registry;

/// Most signature manifests read for one image.
const MAX_MANIFESTS: usize = 16;
/// Most bytes of payloads and bundles read for one image.
const MAX_READ: usize = 1024 * 1024;

/// What was found: a simple-signing layer with its payload, or a bundle
/// with the subject manifest it may sign.
#[derive(Debug, Clone)]
pub enum Signed {
    /// A cosign signature layer and its payload (or why it is unusable).
    Layer {
        /// The layer.
        layer: SignatureLayer,
        /// Its payload.
        payload: Result<Vec<u8>, String>,
    },
    /// A Notation envelope (or why it is unusable).
    Notation {
        /// Its media type (JWS or COSE).
        media_type: String,
        /// Its bytes.
        envelope: Result<Vec<u8>, String>,
    },
    /// A sigstore bundle (or why it is unusable).
    Bundle {
        /// The bundle.
        bundle: Result<Box<Bundle>, String>,
        /// The subject manifest's bytes.
        manifest: Arc<Vec<u8>>,
    },
}

/// A signature found.
#[derive(Debug, Clone)]
pub struct Found {
    /// Where it was found: `tag sha256-….sig` or `referrer sha256:…`.
    pub source: String,
    /// What it is.
    pub signed: Signed,
}

/// One signature checked against a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureCheck {
    /// Where it was found.
    pub source: String,
    /// Who signed, as verified: a trusted key's name, or a keyless
    /// identity with its authority.
    pub signer: Option<String>,
    /// Why it does not count, when it does not.
    pub problem: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layers {
    #[serde(default)]
    layers: Vec<LayerRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayerRef {
    media_type: String,
    digest: String,
    size: i64,
}

/// Every signature of `digest` in `repo`.
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
    let referrers = registry.meta().referrers(repo, digest, None).await?;
    for r in referrers
        .into_iter()
        .filter(|r| {
            r.artifact_type.as_deref().is_some_and(|t| {
                t == ARTIFACT_TYPE
                    || t == BUNDLE_V03
                    || t == notation::ARTIFACT_TYPE
                    || is_bundle_media_type(t)
            })
        })
        .take(MAX_MANIFESTS)
    {
        match registry
            .get_manifest(repo, &Reference::Digest(r.digest.clone()), false)
            .await
        {
            Ok(m) => manifests.push((format!("referrer {}", r.digest), m.content.clone())),
            Err(RegistryError::ManifestUnknown(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let mut budget = MAX_READ;
    let mut subject: Option<Arc<Vec<u8>>> = None;
    let mut found = Vec::new();
    for (source, content) in manifests {
        if let Ok(layers) = signature_layers(&content) {
            for layer in layers {
                let payload = read_small(
                    registry,
                    repo,
                    &layer.payload_digest,
                    layer.payload_size,
                    MAX_PAYLOAD,
                    &mut budget,
                )
                .await?;
                found.push(Found {
                    source: source.clone(),
                    signed: Signed::Layer { layer, payload },
                });
            }
        }
        let layers = serde_json::from_slice::<Layers>(&content)
            .map(|l| l.layers)
            .unwrap_or_default();
        for l in layers
            .iter()
            .filter(|l| l.media_type == notation::JWS || l.media_type == notation::COSE)
            .take(4)
        {
            let size = u64::try_from(l.size).unwrap_or(u64::MAX);
            let envelope =
                read_small(registry, repo, &l.digest, size, MAX_ENVELOPE, &mut budget).await?;
            found.push(Found {
                source: source.clone(),
                signed: Signed::Notation {
                    media_type: l.media_type.clone(),
                    envelope,
                },
            });
        }
        for l in layers
            .into_iter()
            .filter(|l| is_bundle_media_type(&l.media_type))
            .take(4)
        {
            let size = u64::try_from(l.size).unwrap_or(u64::MAX);
            let bytes =
                read_small(registry, repo, &l.digest, size, MAX_BUNDLE, &mut budget).await?;
            let bundle = bytes.and_then(|b| parse_bundle(&b).map(Box::new));
            let manifest = match &subject {
                Some(m) => m.clone(),
                None => {
                    let m = match registry
                        .get_manifest(repo, &Reference::Digest(digest.clone()), false)
                        .await
                    {
                        Ok(m) => Arc::new(m.content.clone()),
                        Err(RegistryError::ManifestUnknown(_)) => Arc::new(Vec::new()),
                        Err(e) => return Err(e),
                    };
                    subject = Some(m.clone());
                    m
                }
            };
            found.push(Found {
                source: source.clone(),
                signed: Signed::Bundle { bundle, manifest },
            });
        }
    }
    Ok(found)
}

/// A small blob's bytes (a payload, a bundle), read only when it fits both
/// its own bound and what is left of the image's budget; storage failures
/// are errors, a missing or oversized blob is the signature's problem.
async fn read_small(
    registry: &Registry,
    repo: &RepoName,
    digest: &str,
    size: u64,
    max: u64,
    budget: &mut usize,
) -> Result<Result<Vec<u8>, String>, RegistryError> {
    if size > max {
        return Ok(Err(format!(
            "the blob is {size} bytes (at most {max} are read)"
        )));
    }
    if size as usize > *budget {
        return Ok(Err(format!(
            "not read: the image's signatures are over {MAX_READ} bytes in all"
        )));
    }
    let Ok(digest) = Digest::parse(digest) else {
        return Ok(Err(format!("the digest {digest:?} is invalid")));
    };
    let mut read = match registry
        .open_blob(repo, &digest, None, |_| max as usize)
        .await
    {
        Ok(r) => r,
        Err(RegistryError::BlobUnknown(_)) => {
            return Ok(Err(format!("the blob {digest} is not in the repository")))
        }
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::with_capacity(read.total.min(max) as usize);
    while let Some(chunk) = read.body.next().await {
        let chunk = chunk.map_err(RegistryError::Storage)?;
        if bytes.len() + chunk.len() > max as usize || bytes.len() + chunk.len() > *budget {
            return Ok(Err(format!("the blob {digest} is over {max} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    *budget -= bytes.len();
    Ok(Ok(bytes))
}

/// Check what was found for `digest` in `repo` against `trust`, at `now`
/// (Unix seconds; Notation chains must be valid now).
pub fn check(
    found: &[Found],
    repo: &RepoName,
    digest: &Digest,
    now: i64,
    trust: &Trust,
) -> Vec<SignatureCheck> {
    found
        .iter()
        .map(|f| {
            let outcome = match &f.signed {
                Signed::Layer { layer, payload } => match payload {
                    Ok(p) => verify_layer(layer, p, digest.as_str(), trust),
                    Err(e) => Err(e.clone()),
                },
                Signed::Notation {
                    media_type,
                    envelope,
                } => match envelope {
                    Ok(e) => verify_envelope(
                        media_type,
                        e,
                        digest.as_str(),
                        repo.as_str(),
                        now,
                        &trust.stores,
                    )
                    .map(|s| s.label()),
                    Err(e) => Err(e.clone()),
                },
                Signed::Bundle { bundle, manifest } => match bundle {
                    Ok(b) => verify_bundle(b, digest.as_str(), manifest, &trust.authorities)
                        .map(|s| s.label()),
                    Err(e) => Err(e.clone()),
                },
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
