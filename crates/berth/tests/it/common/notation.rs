//! Notation signatures made as the Notary Project's specification
//! describes, for the signature-policy tests: a CA and a code-signing leaf
//! (rcgen), the payload naming the target manifest, a JWS (JSON
//! serialization) or COSE_Sign1 envelope signed with ES256 over it with the
//! chain in `x5c`/`x5chain`, pushed as an OCI 1.1 referrer of artifact
//! type `application/vnd.cncf.notary.signature`.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use coset::cbor::value::Value as Cbor;
use coset::{iana, CoseSign1Builder, HeaderBuilder, Label, TaggedCborSerializable};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

use super::signing::{attach_artifact, Artifact};
use super::{TestServer, OCI_MANIFEST};

pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
pub const JWS: &str = "application/jose+json";
pub const COSE: &str = "application/cose";
const PAYLOAD_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
pub const IDENTITY: &str = "x509.subject: C=US, ST=WA, L=Seattle, O=acme, CN=release";

/// A CA and a signing certificate under it, with the signer's key.
pub struct Pki {
    /// The CA certificate, PEM (what a trust store holds).
    pub ca_pem: String,
    ca_der: Vec<u8>,
    leaf_der: Vec<u8>,
    key: EcdsaKeyPair,
}

impl Pki {
    /// A CA `O=acme` and a leaf `C=US, ST=WA, L=Seattle, O=acme, CN=release`.
    pub fn new() -> Pki {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        for (t, v) in [
            (rcgen::DnType::CountryName, "US"),
            (rcgen::DnType::StateOrProvinceName, "WA"),
            (rcgen::DnType::OrganizationName, "acme"),
            (rcgen::DnType::CommonName, "acme signing root"),
        ] {
            ca.distinguished_name.push(t, v);
        }
        let ca_cert = ca.self_signed(&ca_key).expect("CA");
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
        for (t, v) in [
            (rcgen::DnType::CountryName, "US"),
            (rcgen::DnType::StateOrProvinceName, "WA"),
            (rcgen::DnType::LocalityName, "Seattle"),
            (rcgen::DnType::OrganizationName, "acme"),
            (rcgen::DnType::CommonName, "release"),
        ] {
            leaf.distinguished_name.push(t, v);
        }
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).expect("leaf");
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &leaf_key.serialize_der(),
            &SystemRandom::new(),
        )
        .expect("pkcs8");
        Pki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            leaf_der: leaf_cert.der().to_vec(),
            key,
        }
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.key
            .sign(&SystemRandom::new(), data)
            .expect("sign")
            .as_ref()
            .to_vec()
    }

    fn payload(digest: &str, size: usize) -> Vec<u8> {
        serde_json::to_vec(&json!({"targetArtifact": {
            "mediaType": OCI_MANIFEST, "digest": digest, "size": size}}))
        .unwrap()
    }

    /// A JWS envelope over `digest` (a manifest of `size` bytes);
    /// `expiry` sets `io.cncf.notary.expiry` (RFC 3339).
    pub fn jws(&self, digest: &str, size: usize, expiry: Option<&str>) -> Vec<u8> {
        let mut protected = json!({
            "alg": "ES256",
            "crit": ["io.cncf.notary.signingScheme"],
            "cty": PAYLOAD_TYPE,
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": "2026-12-01T10:00:00Z",
        });
        if let Some(e) = expiry {
            protected["io.cncf.notary.expiry"] = e.into();
            protected["crit"] = json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]);
        }
        let protected = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&protected).unwrap());
        let payload = URL_SAFE_NO_PAD.encode(Self::payload(digest, size));
        let signature = self.sign(format!("{protected}.{payload}").as_bytes());
        serde_json::to_vec(&json!({
            "payload": payload,
            "protected": protected,
            "header": {
                "x5c": [STANDARD.encode(&self.leaf_der), STANDARD.encode(&self.ca_der)],
                "io.cncf.notary.signingAgent": "berth-test",
            },
            "signature": URL_SAFE_NO_PAD.encode(signature),
        }))
        .unwrap()
    }

    /// A COSE_Sign1 envelope over `digest`.
    pub fn cose(&self, digest: &str, size: usize) -> Vec<u8> {
        let protected = HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES256)
            .add_critical_label(coset::RegisteredLabelWithPrivate::Text(
                "io.cncf.notary.signingScheme".into(),
            ))
            .content_type(PAYLOAD_TYPE.into())
            .text_value(
                "io.cncf.notary.signingScheme".into(),
                Cbor::Text("notary.x509".into()),
            )
            .text_value(
                "io.cncf.notary.signingTime".into(),
                Cbor::Tag(1, Box::new(Cbor::Integer(1_796_119_200.into()))),
            )
            .build();
        let mut unprotected = HeaderBuilder::new().build();
        unprotected.rest.push((
            Label::Int(iana::HeaderParameter::X5Chain as i64),
            Cbor::Array(vec![
                Cbor::Bytes(self.leaf_der.clone()),
                Cbor::Bytes(self.ca_der.clone()),
            ]),
        ));
        CoseSign1Builder::new()
            .protected(protected)
            .unprotected(unprotected)
            .payload(Self::payload(digest, size))
            .create_signature(b"", |tbs| self.sign(tbs))
            .build()
            .to_tagged_vec()
            .expect("COSE")
    }
}

/// Push `envelope` (media type `media_type`) as a Notation signature of
/// `subject` in `repo`, as `notation sign` does. Returns its digest.
pub async fn attach(
    t: &TestServer,
    client: &reqwest::Client,
    repo: &str,
    subject: &str,
    media_type: &str,
    envelope: &[u8],
) -> String {
    let annotations = json!({"io.cncf.notary.x509chain.thumbprint#S256": "[]"});
    attach_artifact(
        t,
        client,
        repo,
        subject,
        Artifact {
            artifact_type: ARTIFACT_TYPE,
            media_type,
            blob: envelope,
            annotations,
        },
    )
    .await
}

/// A trust store for a policy.
pub fn store(name: &str, pki: &Pki, identity: &str, scopes: &[&str]) -> serde_json::Value {
    json!({"name": name, "certificates": pki.ca_pem,
           "trusted_identities": [identity], "registry_scopes": scopes})
}
