//! Bearer tokens as clients present them: verification never panics and
//! never accepts what this key did not sign. Tokens this key issued verify.
#![no_main]
use berth_core::access::Principal;
use berth_core::token::{ResourceScope, TokenIssuer, TokenUse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    let issuer = TokenIssuer::new(b"fuzzing key, 32 bytes long......".to_vec(), "berth", "berth");
    let now = 1_800_000_000;
    // Anything the fuzzer makes up is refused, unless it is a token this
    // key signed (which the fuzzer cannot forge).
    if issuer.verify(s, TokenUse::Access, now).is_ok() {
        let other = TokenIssuer::new(b"another key, also 32 bytes long.".to_vec(), "berth", "berth");
        assert!(other.verify(s, TokenUse::Access, now).is_err());
    }
    // A real token round-trips, with the input as its scope.
    let scopes = ResourceScope::parse_all(s.lines());
    let token = issuer.issue(&Principal::Anonymous, scopes, TokenUse::Access, now, 300);
    assert!(issuer.verify(&token, TokenUse::Access, now).is_ok());
    assert!(issuer.verify(&token, TokenUse::Refresh, now).is_err());
});
