//! Image signatures: keys, signature manifests and payloads never panic to
//! parse, and no input verifies against a key the fuzzer cannot sign for.
#![no_main]
use berth_signature::{
    parse_payload, signature_layers, verify_layer, PublicKey, SignatureLayer, TrustedKey,
};
use libfuzzer_sys::fuzz_target;

// A P-256 public key whose private half is not in this program.
const KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7
6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==
-----END PUBLIC KEY-----";

fuzz_target!(|data: &[u8]| {
    let key = PublicKey::from_pem(KEY).expect("the fixed key");
    let keys = [TrustedKey { name: "k".into(), key }];
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = PublicKey::from_pem(s);
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
    };
    if let Ok(claim) = parse_payload(data) {
        assert!(verify_layer(&layer, data, &claim.digest, &keys).is_err());
    }
});

fn sha256_of(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}
