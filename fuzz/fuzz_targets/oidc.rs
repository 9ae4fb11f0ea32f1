//! External identity tokens and provider documents: parsing never panics,
//! and no input verifies against a key set the fuzzer cannot sign for.
#![no_main]
use berth_oidc::{claim_strings, parse_metadata, verify, JwkSet, Policy};
use libfuzzer_sys::fuzz_target;

// A P-256 public key whose private half is not in this program.
const KEYS: &[u8] = br#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig",
  "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
  "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

fuzz_target!(|s: &str| {
    let keys = JwkSet::parse(KEYS).unwrap();
    let audiences = ["berth".to_string()];
    let algorithms = ["ES256".to_string(), "RS256".to_string(), "EdDSA".to_string()];
    let policy = Policy {
        issuer: "https://idp",
        audiences: &audiences,
        algorithms: &algorithms,
        now: 1_800_000_000,
        leeway: 30,
        nonce: None,
    };
    assert!(verify(s, &keys, &policy).is_err());
    // The input as a key set: whatever parses, a token still needs a
    // signature from it.
    if let Ok(set) = JwkSet::parse(s.as_bytes()) {
        let _ = verify("e30.e30.", &set, &policy);
    }
    let _ = parse_metadata(s.as_bytes(), "https://idp");
    if let Ok(serde_json::Value::Object(claims)) = serde_json::from_str(s) {
        for path in ["groups", "realm_access.roles", "a.b.c"] {
            let _ = claim_strings(&claims, path);
        }
    }
});
