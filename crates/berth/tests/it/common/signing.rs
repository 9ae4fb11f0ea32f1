//! Signing as cosign does, for the signature-policy tests: a key pair
//! (ECDSA P-256, cosign's default, or Ed25519), the simple-signing payload
//! naming a digest, and the signature manifest pushed under the tag
//! `sha256-<hex>.sig` or as an OCI 1.1 referrer of the image.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

use super::{sha256, TestServer, OCI_CONFIG, OCI_MANIFEST};

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const COSIGN_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A signer: its PEM public key (what a policy trusts) and its private key.
pub struct Signer {
    pub pem: String,
    pair: Pair,
}

fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

impl Signer {
    /// A fresh ECDSA P-256 key, as `cosign generate-key-pair` makes.
    pub fn ecdsa() -> Signer {
        let rng = SystemRandom::new();
        let alg = &ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        // SubjectPublicKeyInfo of id-ecPublicKey on prime256v1 (RFC 5480).
        let prefix = [
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        let der = [&prefix[..], pair.public_key().as_ref()].concat();
        Signer {
            pem: pem(&der),
            pair: Pair::Ecdsa(pair),
        }
    }

    /// A fresh Ed25519 key.
    pub fn ed25519() -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let prefix = [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        let der = [&prefix[..], pair.public_key().as_ref()].concat();
        Signer {
            pem: pem(&der),
            pair: Pair::Ed25519(pair),
        }
    }

    /// The base64 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        let sig = match &self.pair {
            Pair::Ecdsa(p) => p
                .sign(&SystemRandom::new(), message)
                .unwrap()
                .as_ref()
                .to_vec(),
            Pair::Ed25519(p) => p.sign(message).as_ref().to_vec(),
        };
        STANDARD.encode(sig)
    }
}

/// The simple-signing payload cosign signs for `digest`.
pub fn payload(reference: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .unwrap()
}

/// Push a signature manifest over `subject` in `repo` holding `payload`
/// signed as `signature` (base64): under cosign's tag, or as a referrer.
/// Returns the signature manifest's digest.
pub async fn attach(
    t: &TestServer,
    client: &reqwest::Client,
    repo: &str,
    subject: &str,
    payload: &[u8],
    signature: &str,
    as_referrer: bool,
) -> String {
    let annotations = serde_json::json!({"dev.cosignproject.cosign/signature": signature});
    attach_annotated(t, client, repo, subject, payload, annotations, as_referrer).await
}

/// [`attach`] with the layer's annotations given whole (a keyless
/// signature's certificate, chain and Rekor bundle beside the signature).
pub async fn attach_annotated(
    t: &TestServer,
    client: &reqwest::Client,
    repo: &str,
    subject: &str,
    payload: &[u8],
    annotations: serde_json::Value,
    as_referrer: bool,
) -> String {
    let config =
        br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = t.push_blob_as(client, repo, config).await;
    let payload_digest = t.push_blob_as(client, repo, payload).await;
    let mut manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{
            "mediaType": SIMPLE_SIGNING,
            "digest": payload_digest,
            "size": payload.len(),
            "annotations": annotations
        }]
    });
    let reference = if as_referrer {
        manifest["artifactType"] = COSIGN_ARTIFACT.into();
        let subject_size = t
            .head(&format!("/v2/{repo}/manifests/{subject}"))
            .await
            .headers()["content-length"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        manifest["subject"] =
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size});
        None
    } else {
        Some(format!("{}.sig", subject.replace(':', "-")))
    };
    let body = serde_json::to_vec(&manifest).unwrap();
    let digest = sha256(&body);
    let r = t
        .put_manifest_as(
            client,
            repo,
            reference.as_deref().unwrap_or(&digest),
            OCI_MANIFEST,
            &body,
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    digest
}

/// Sign `digest` of `repo` with `signer` as `cosign sign --key` does.
pub async fn cosign_sign(
    t: &TestServer,
    client: &reqwest::Client,
    repo: &str,
    digest: &str,
    signer: &Signer,
) -> String {
    let p = payload(
        &format!("{}/{repo}", t.base.trim_start_matches("http://")),
        digest,
    );
    attach(t, client, repo, digest, &p, &signer.sign(&p), false).await
}

/// An OCI 1.1 artifact of one layer.
pub struct Artifact<'a> {
    /// Its artifact type.
    pub artifact_type: &'a str,
    /// The layer's media type.
    pub media_type: &'a str,
    /// The layer.
    pub blob: &'a [u8],
    /// Its annotations.
    pub annotations: serde_json::Value,
}

/// Push `a` as an artifact whose subject is `subject` (how sigstore
/// bundles and Notation signatures travel). Returns its digest.
pub async fn attach_artifact(
    t: &TestServer,
    client: &reqwest::Client,
    repo: &str,
    subject: &str,
    a: Artifact<'_>,
) -> String {
    let Artifact {
        artifact_type,
        media_type,
        blob,
        annotations,
    } = a;
    let empty = t.push_blob_as(client, repo, b"{}").await;
    let layer = t.push_blob_as(client, repo, blob).await;
    let subject_size = t
        .head(&format!("/v2/{repo}/manifests/{subject}"))
        .await
        .headers()["content-length"]
        .to_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": media_type, "digest": layer, "size": blob.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
        "annotations": annotations,
    });
    let body = serde_json::to_vec(&manifest).unwrap();
    let digest = sha256(&body);
    let r = t
        .put_manifest_as(client, repo, &digest, OCI_MANIFEST, &body)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    digest
}
