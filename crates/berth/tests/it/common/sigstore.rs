//! Keyless signing with the sigstore project's npm tooling, run by
//! `support/sigstore-sign.mjs` (@sigstore/sign while @sigstore/mock answers
//! for Fulcio and Rekor under an ephemeral CA and log key), and the two
//! ways signatures reach a registry: a sigstore bundle pushed as an OCI
//! 1.1 referrer (cosign's new bundle format) and cosign's older
//! annotations on a simple-signing layer.

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::signing::{attach_annotated, attach_artifact, Artifact};
use super::TestServer;

pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const SIGNER: &str =
    "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";

/// One thing to sign.
pub enum Job<'a> {
    /// A message signature over these bytes (a manifest, or a cosign
    /// simple-signing payload).
    Message(&'a [u8]),
    /// A DSSE envelope of an in-toto statement naming `digest`.
    Statement(&'a str),
    /// A message signature by another signer.
    MessageBy(&'a [u8], &'a str),
}

/// What one run made: the CA's root and the log's key to trust, and a
/// bundle per job.
pub struct Kit {
    pub root_pem: String,
    pub log_key_pem: String,
    pub bundles: Vec<Value>,
}

/// Sign `jobs` as [`SIGNER`] under a fresh CA and log; `ca_clock_ms`
/// backdates the CA (its certificates then expire ten minutes later).
pub async fn sign(jobs: &[Job<'_>], ca_clock_ms: Option<i64>) -> Kit {
    let modules = std::env::var("BERTH_TEST_SIGSTORE_MODULES").expect(
        "BERTH_TEST_SIGSTORE_MODULES is not set: run the suite with scripts/test.sh, which installs the sigstore tooling",
    );
    let jobs: Vec<Value> = jobs
        .iter()
        .map(|j| match j {
            Job::Message(b) => json!({"kind": "message", "payload_b64": STANDARD.encode(b)}),
            Job::MessageBy(b, who) => {
                json!({"kind": "message", "payload_b64": STANDARD.encode(b), "subject": who})
            }
            Job::Statement(digest) => {
                let statement = json!({
                    "_type": "https://in-toto.io/Statement/v1",
                    "subject": [{"name": "image", "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
                    "predicateType": "https://sigstore.dev/cosign/sign/v1",
                    "predicate": {}
                });
                json!({"kind": "dsse", "payload_type": "application/vnd.in-toto+json",
                       "payload_b64": STANDARD.encode(statement.to_string())})
            }
        })
        .collect();
    let mut req = json!({"modules": modules, "subject": SIGNER, "issuer": ISSUER, "jobs": jobs});
    if let Some(c) = ca_clock_ms {
        req["ca_clock_ms"] = c.into();
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("request.json");
    std::fs::write(&file, req.to_string()).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/sigstore-sign.mjs");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&file)
        .output()
        .await
        .expect("run node");
    assert!(
        out.status.success(),
        "sigstore-sign.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("signer output");
    Kit {
        root_pem: v["root_pem"].as_str().unwrap().to_owned(),
        log_key_pem: v["log_key_pem"].as_str().unwrap().to_owned(),
        bundles: v["bundles"].as_array().unwrap().clone(),
    }
}

/// Push `bundle` (its bytes as given) as a referrer of `subject`, the way
/// cosign's new bundle format does. Returns the referrer's digest.
pub async fn attach_bundle(
    t: &TestServer,
    client: &reqwest::Client,
    repo: &str,
    subject: &str,
    bundle: &[u8],
) -> String {
    attach_artifact(
        t,
        client,
        repo,
        subject,
        Artifact {
            artifact_type: BUNDLE_V03,
            media_type: BUNDLE_V03,
            blob: bundle,
            annotations: json!({}),
        },
    )
    .await
}

/// Push a keyless signature the way older cosign releases do: `payload`
/// (simple signing) in a signature manifest under cosign's tag, with the
/// signature, certificate and Rekor bundle annotations taken from
/// `bundle` (a message-signature bundle over `payload`).
pub async fn attach_legacy(
    t: &TestServer,
    client: &reqwest::Client,
    repo: &str,
    subject: &str,
    payload: &[u8],
    bundle: &Value,
) -> String {
    let vm = &bundle["verificationMaterial"];
    let cert = vm["x509CertificateChain"]["certificates"][0]["rawBytes"]
        .as_str()
        .or_else(|| vm["certificate"]["rawBytes"].as_str())
        .unwrap();
    let der = STANDARD.decode(cert).unwrap();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        STANDARD.encode(der)
    );
    let e = &vm["tlogEntries"][0];
    let rekor = json!({
        "SignedEntryTimestamp": e["inclusionPromise"]["signedEntryTimestamp"],
        "Payload": {
            "body": e["canonicalizedBody"],
            "integratedTime": e["integratedTime"].as_str().unwrap().parse::<i64>().unwrap(),
            "logIndex": e["logIndex"].as_str().unwrap().parse::<i64>().unwrap(),
            "logID": hex(&STANDARD.decode(e["logId"]["keyId"].as_str().unwrap()).unwrap()),
        }
    });
    let annotations = json!({
        "dev.cosignproject.cosign/signature": bundle["messageSignature"]["signature"],
        "dev.sigstore.cosign/certificate": pem,
        "dev.sigstore.cosign/bundle": rekor.to_string(),
    });
    attach_annotated(t, client, repo, subject, payload, annotations, false).await
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A keyless authority for a policy, accepting signers matching `pattern`.
pub fn authority(name: &str, kit: &Kit, pattern: &str) -> Value {
    json!({
        "name": name,
        "certificates": kit.root_pem,
        "log_keys": [kit.log_key_pem],
        "identities": [{"issuer": ISSUER, "subject_pattern": pattern}],
    })
}
