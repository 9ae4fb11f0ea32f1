//! Image signatures: keys, signature manifests, payloads and sigstore
//! bundles never panic to parse, no input verifies against a key the
//! fuzzer cannot sign for, and no bundle verifies for a digest it does not
//! name.
#![no_main]
use berth_signature::notation::{self, verify_envelope, TrustStore, TrustedIdentity};
use berth_signature::sigstore::{
    certificates_from_pem, parse_bundle, verify_annotations, verify_bundle, Authority,
    IdentityRule, Match,
};
use berth_signature::{
    parse_payload, signature_layers, verify_layer, PublicKey, SignatureLayer, Trust, TrustedKey,
};
use libfuzzer_sys::fuzz_target;

// The CA and log of the crate's test bundles (corpus: bundle-*.json).
const VECTORS: &str = include_str!("../../crates/berth-signature/testdata/sigstore/valid.json");

// A P-256 public key whose private half is not in this program.
const KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7
6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==
-----END PUBLIC KEY-----";

fuzz_target!(|data: &[u8]| {
    let key = PublicKey::from_pem(KEY).expect("the fixed key");
    let vectors: serde_json::Value = serde_json::from_str(VECTORS).expect("vectors");
    let authorities = vec![Authority {
        name: "ci".into(),
        certificates: certificates_from_pem(vectors["root_pem"].as_str().unwrap()).unwrap(),
        log_keys: vec![PublicKey::from_pem(vectors["log_key_pem"].as_str().unwrap()).unwrap()],
        identities: vec![IdentityRule {
            issuer: Match::Pattern("*".into()),
            subject: Match::Pattern("*".into()),
        }],
    }];
    let keys = Trust {
        keys: vec![TrustedKey { name: "k".into(), key }],
        authorities: authorities.clone(),
        stores: Vec::new(),
    };
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = PublicKey::from_pem(s);
        let _ = certificates_from_pem(s);
        let _ = verify_annotations(s, Some(s), Some(s), data, data, &authorities);
    }
    // Notation envelopes (corpus: the Notary Project's JWS and COSE test
    // envelopes), against a store of any certificate they carry: none
    // verifies for a digest its payload does not name.
    let other = format!("sha256:{}", "f".repeat(64));
    for media in [notation::JWS, notation::COSE] {
        let env = match media {
            notation::JWS => notation::parse_jws(data),
            _ => notation::parse_cose(data),
        };
        if let Ok(env) = env {
            let store = TrustStore {
                name: "s".into(),
                certificates: env.certificates.clone(),
                identities: vec![TrustedIdentity::Any],
                scopes: vec!["*".into()],
            };
            assert!(verify_envelope(media, data, &other, "r", 1_800_000_000, &[store]).is_err());
        }
    }
    if let Ok(bundle) = parse_bundle(data) {
        let other = format!("sha256:{}", "f".repeat(64));
        assert!(verify_bundle(&bundle, &other, data, &authorities).is_err());
    }
    let _ = PublicKey::from_spki_der(data);
    let _ = parse_payload(data);
    if let Ok(layers) = signature_layers(data) {
        for l in layers {
            let _ = verify_layer(&l, data, "sha256:00", &keys);
        }
    }
    // The input as a payload, with its digest right and any signature:
    // never verified.
    let digest = {
        use std::fmt::Write;
        let mut hex = String::from("sha256:");
        for b in sha256_of(data) {
            let _ = write!(hex, "{b:02x}");
        }
        hex
    };
    let layer = SignatureLayer {
        payload_digest: digest,
        payload_size: data.len() as u64,
        signature: Some("MEUCIQDa".into()),
        certificate: None,
        chain: None,
        rekor_bundle: None,
    };
    if let Ok(claim) = parse_payload(data) {
        assert!(verify_layer(&layer, data, &claim.digest, &keys).is_err());
    }
});

fn sha256_of(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}
