//! cosign signatures with keys: a signature manifest (pushed under the tag
//! `sha256-<hex>.sig`, or as an OCI 1.1 referrer of the image) whose layers
//! are simple-signing payloads, each signed in its
//! `dev.cosignproject.cosign/signature` annotation.
//!
//! A signature counts only when the payload names exactly the digest being
//! pulled, its bytes hash to the layer's digest, and a trusted key
//! verifies the signature over those bytes — or, signed keyless, its
//! certificate, chain and Rekor bundle annotations satisfy a trusted
//! authority (see [`crate::sigstore`]).

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::sigstore::verify_annotations;
use crate::trust::Trust;

/// Media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Artifact type of a signature manifest pushed as a referrer.
pub const ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The annotation holding a keyless signer's certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The annotation holding the certificate's chain (PEM).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// The annotation holding the transparency log's entry (a Rekor bundle).
pub const REKOR_BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// What cosign writes as the payload's type.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";
/// Largest payload read: real ones are a few hundred bytes.
pub const MAX_PAYLOAD: u64 = 64 * 1024;
/// Most signature layers looked at in one manifest.
const MAX_LAYERS: usize = 16;

/// The tag cosign pushes an image's signatures under.
pub fn signature_tag(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("sha256-{hex}.sig"))
}

/// One signature layer of a signature manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// Digest of the payload blob.
    pub payload_digest: String,
    /// Its size.
    pub payload_size: u64,
    /// The base64 signature, when present.
    pub signature: Option<String>,
    /// A keyless signer's certificate, when present.
    pub certificate: Option<String>,
    /// Its chain, when present.
    pub chain: Option<String>,
    /// The log's entry (JSON), when present.
    pub rekor_bundle: Option<String>,
}

/// Why a signature manifest could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cosign signature manifest: {0}")]
pub struct ManifestError(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
    #[serde(default)]
    artifact_type: Option<String>,
}

/// Whether a manifest is a cosign signature manifest (its artifact type,
/// or a simple-signing layer): what signing tools read and write.
pub fn is_signature_manifest(manifest: &[u8]) -> bool {
    serde_json::from_slice::<Manifest>(manifest).is_ok_and(|m| {
        m.artifact_type.as_deref() == Some(ARTIFACT_TYPE)
            || m.layers.iter().any(|l| l.media_type == SIMPLE_SIGNING)
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layer {
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// The simple-signing layers of a signature manifest.
pub fn signature_layers(manifest: &[u8]) -> Result<Vec<SignatureLayer>, ManifestError> {
    let m: Manifest = serde_json::from_slice(manifest).map_err(|e| ManifestError(e.to_string()))?;
    Ok(m.layers
        .into_iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING)
        .take(MAX_LAYERS)
        .map(|mut l| SignatureLayer {
            payload_size: u64::try_from(l.size).unwrap_or(u64::MAX),
            signature: l.annotations.remove(SIGNATURE_ANNOTATION),
            certificate: l.annotations.remove(CERTIFICATE_ANNOTATION),
            chain: l.annotations.remove(CHAIN_ANNOTATION),
            rekor_bundle: l.annotations.remove(REKOR_BUNDLE_ANNOTATION),
            payload_digest: l.digest,
        })
        .collect())
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
    #[serde(default)]
    identity: Option<Identity>,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference", default)]
    reference: String,
}

/// What a simple-signing payload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedClaim {
    /// The manifest digest it signs.
    pub digest: String,
    /// The reference the signer named (informative).
    pub reference: String,
}

/// Read a simple-signing payload.
pub fn parse_payload(payload: &[u8]) -> Result<SignedClaim, String> {
    let p: Payload = serde_json::from_slice(payload)
        .map_err(|e| format!("the payload is no simple-signing document: {e}"))?;
    if p.critical.kind != PAYLOAD_TYPE {
        return Err(format!(
            "the payload's type is {:?}, not {PAYLOAD_TYPE:?}",
            p.critical.kind
        ));
    }
    Ok(SignedClaim {
        digest: p.critical.image.digest,
        reference: p.critical.identity.map(|i| i.reference).unwrap_or_default(),
    })
}

/// Check one signature layer, with its payload's bytes, for `subject` (the
/// digest being pulled). `Ok` names the signer: the trusted key, or the
/// keyless identity and its authority.
pub fn verify_layer(
    layer: &SignatureLayer,
    payload: &[u8],
    subject: &str,
    trust: &Trust,
) -> Result<String, String> {
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(payload)));
    if actual != layer.payload_digest {
        return Err(format!(
            "the payload's bytes are not the layer's digest {}",
            layer.payload_digest
        ));
    }
    let claim = parse_payload(payload)?;
    if claim.digest != subject {
        return Err(format!(
            "the signature is for {}, not for {subject}",
            claim.digest
        ));
    }
    let Some(sig) = &layer.signature else {
        return Err(format!("no {SIGNATURE_ANNOTATION} annotation"));
    };
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig.trim())
        .map_err(|_| "the signature annotation is not base64".to_owned())?;
    if let Some(k) = trust.keys.iter().find(|k| k.key.verifies(payload, &sig)) {
        return Ok(k.name.clone());
    }
    match &layer.certificate {
        Some(cert) => verify_annotations(
            cert,
            layer.chain.as_deref(),
            layer.rekor_bundle.as_deref(),
            payload,
            &sig,
            &trust.authorities,
        )
        .map(|s| s.label()),
        None if trust.keys.is_empty() => Err("the policy trusts no key".into()),
        None => Err("signed by no key the policy trusts".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::TestSigner;
    use crate::keys::{KeyKind, PublicKey};
    use crate::trust::TrustedKey;

    const SUBJECT: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn payload(digest: &str) -> Vec<u8> {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"registry.example/team/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
        .into_bytes()
    }

    fn layer(payload: &[u8], sig: &[u8]) -> SignatureLayer {
        SignatureLayer {
            payload_digest: format!("sha256:{}", hex::encode(Sha256::digest(payload))),
            payload_size: payload.len() as u64,
            signature: Some(base64::engine::general_purpose::STANDARD.encode(sig)),
            certificate: None,
            chain: None,
            rekor_bundle: None,
        }
    }

    #[test]
    fn the_tag_follows_cosigns_schema() {
        assert_eq!(
            signature_tag(SUBJECT).unwrap(),
            format!("sha256-{}.sig", "1".repeat(64))
        );
        assert_eq!(signature_tag("sha512:00"), None);
        assert_eq!(signature_tag("sha256:zz"), None);
    }

    #[test]
    fn a_signature_verifies_only_for_its_digest_and_key() {
        let signer = TestSigner::new(KeyKind::EcdsaP256);
        let other = TestSigner::new(KeyKind::Ed25519);
        let keys = |keys: &[TrustedKey]| Trust {
            keys: keys.to_vec(),
            ..Default::default()
        };
        let all = vec![
            TrustedKey {
                name: "other".into(),
                key: PublicKey::from_pem(&other.pem).unwrap(),
            },
            TrustedKey {
                name: "release".into(),
                key: PublicKey::from_pem(&signer.pem).unwrap(),
            },
        ];
        let p = payload(SUBJECT);
        let good = layer(&p, &signer.sign(&p));
        assert_eq!(
            verify_layer(&good, &p, SUBJECT, &keys(&all)),
            Ok("release".into())
        );

        let e = verify_layer(&good, &p, &SUBJECT.replace('1', "2"), &keys(&all)).unwrap_err();
        assert!(e.contains("not for sha256:2222"), "{e}");
        assert!(verify_layer(&good, &p, SUBJECT, &keys(&all[..1]))
            .unwrap_err()
            .contains("no key the policy trusts"));
        assert!(verify_layer(&good, &p, SUBJECT, &keys(&[]))
            .unwrap_err()
            .contains("trusts no key"));

        // Tampered payload (the digest no longer matches the layer's), or a
        // payload re-hashed to fit with the old signature.
        let mut tampered = p.clone();
        tampered[5] ^= 1;
        assert!(verify_layer(&good, &tampered, SUBJECT, &keys(&all))
            .unwrap_err()
            .contains("not the layer's digest"));
        let refit = layer(&tampered, &signer.sign(&p));
        assert!(verify_layer(&refit, &tampered, SUBJECT, &keys(&all)).is_err());

        // Another image's signature moved over.
        let elsewhere = payload(&SUBJECT.replace('1', "3"));
        let moved = layer(&elsewhere, &signer.sign(&elsewhere));
        assert!(verify_layer(&moved, &elsewhere, SUBJECT, &keys(&all))
            .unwrap_err()
            .contains("not for"));

        let mut unsigned = good.clone();
        unsigned.signature = None;
        assert!(verify_layer(&unsigned, &p, SUBJECT, &keys(&all))
            .unwrap_err()
            .contains("no dev.cosignproject.cosign/signature"));
        let mut garbled = good;
        garbled.signature = Some("!!".into());
        assert!(verify_layer(&garbled, &p, SUBJECT, &keys(&all))
            .unwrap_err()
            .contains("not base64"));
    }

    #[test]
    fn payloads_and_manifests_are_read_strictly() {
        assert!(parse_payload(b"{}").is_err());
        let wrong = String::from_utf8(payload(SUBJECT))
            .unwrap()
            .replace("cosign container image signature", "something else");
        assert!(parse_payload(wrong.as_bytes())
            .unwrap_err()
            .contains("something else"));
        let claim = parse_payload(&payload(SUBJECT)).unwrap();
        assert_eq!(claim.reference, "registry.example/team/app");

        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{SUBJECT}","size":2}},
            "layers":[{{"mediaType":"{SIMPLE_SIGNING}","digest":"{SUBJECT}","size":233,
              "annotations":{{"{SIGNATURE_ANNOTATION}":"MEUC"}}}},
              {{"mediaType":"application/octet-stream","digest":"{SUBJECT}","size":1}}]}}"#
        );
        let layers = signature_layers(manifest.as_bytes()).unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0].signature.as_deref(), Some("MEUC"));
        assert_eq!(layers[0].payload_size, 233);
        assert!(signature_layers(b"not json").is_err());
        assert!(is_signature_manifest(manifest.as_bytes()));
        assert!(!is_signature_manifest(
            br#"{"layers":[{"mediaType":"x","digest":"d","size":1}]}"#
        ));
        assert!(!is_signature_manifest(b"[1]"));
    }
}
