use super::*;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

struct Signer {
    kid: String,
    alg: &'static str,
    sign: SignFn,
    jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn es256(kid: &str) -> Signer {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    Signer {
        kid: kid.into(),
        alg: "ES256",
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                    "x": b64(&point[1..33]), "y": b64(&point[33..])}),
        sign: Box::new(move |m| {
            pair.sign(&SystemRandom::new(), m)
                .unwrap()
                .as_ref()
                .to_vec()
        }),
    }
}

fn ed25519(kid: &str) -> Signer {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    Signer {
        kid: kid.into(),
        alg: "EdDSA",
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                    "x": b64(pair.public_key().as_ref())}),
        sign: Box::new(move |m| pair.sign(m).as_ref().to_vec()),
    }
}

fn token_with(header: Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = sign(signed.as_bytes());
    format!("{signed}.{}", b64(&sig))
}

fn token(s: &Signer, claims: &Value) -> String {
    token_with(
        json!({"alg": s.alg, "kid": s.kid, "typ": "JWT"}),
        claims,
        &s.sign,
    )
}

const NOW: i64 = 1_800_000_000;

fn claims() -> Value {
    json!({"iss": "https://idp", "aud": ["berth", "other"], "sub": "alice",
           "exp": NOW + 300, "iat": NOW - 10, "nonce": "n-1"})
}

fn set(signers: &[&Signer]) -> JwkSet {
    let keys: Vec<Value> = signers.iter().map(|s| s.jwk.clone()).collect();
    JwkSet::parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
}

fn check(token: &str, keys: &JwkSet) -> Result<Verified, TokenError> {
    let audiences = ["berth".to_string()];
    let algorithms = ["ES256".to_string(), "EdDSA".to_string()];
    verify(
        token,
        keys,
        &Policy {
            issuer: "https://idp",
            audiences: &audiences,
            algorithms: &algorithms,
            now: NOW,
            leeway: 30,
            nonce: Some("n-1"),
        },
    )
}

#[test]
fn es256_and_eddsa_tokens_verify() {
    let (a, b) = (es256("a"), ed25519("b"));
    let keys = set(&[&a, &b]);
    let v = check(&token(&a, &claims()), &keys).unwrap();
    assert_eq!((v.kid.as_deref(), v.alg.as_str()), (Some("a"), "ES256"));
    assert_eq!(v.claims["sub"], "alice");
    assert!(check(&token(&b, &claims()), &keys).is_ok());
    // Without a key id every key of the fitting type is tried.
    let no_kid = token_with(json!({"alg": "ES256"}), &claims(), &a.sign);
    assert!(check(&no_kid, &keys).is_ok());
}

#[test]
fn none_hmac_and_unannounced_algorithms_are_refused() {
    let a = es256("a");
    let keys = set(&[&a]);
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","kid":"a"}"#),
        b64(claims().to_string().as_bytes())
    );
    assert_eq!(
        check(&none, &keys),
        Err(TokenError::Algorithm("none".into()))
    );
    // The classic confusion: HMAC keyed with the public key's text.
    let public = a.jwk.to_string();
    let hs = token_with(json!({"alg": "HS256", "kid": "a"}), &claims(), |m| {
        use ring::hmac;
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, public.as_bytes()), m)
            .as_ref()
            .to_vec()
    });
    assert_eq!(
        check(&hs, &keys),
        Err(TokenError::Algorithm("HS256".into()))
    );
    // An asymmetric algorithm the issuer does not announce.
    let rs = token_with(json!({"alg": "RS256", "kid": "a"}), &claims(), &a.sign);
    assert_eq!(
        check(&rs, &keys),
        Err(TokenError::Algorithm("RS256".into()))
    );
}

#[test]
fn unknown_keys_tampering_and_wrong_key_types_are_refused() {
    let (a, b) = (es256("a"), es256("b"));
    assert_eq!(
        check(&token(&b, &claims()), &set(&[&a])),
        Err(TokenError::UnknownKey("b".into()))
    );
    let good = token(&a, &claims());
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut c = claims();
    c["sub"] = json!("mallory");
    parts[1] = b64(c.to_string().as_bytes());
    assert_eq!(
        check(&parts.join("."), &set(&[&a])),
        Err(TokenError::Signature)
    );
    // An EdDSA key under the id an ES256 token names.
    let mut other = ed25519("a");
    other.kid = "a".into();
    assert_eq!(check(&good, &set(&[&other])), Err(TokenError::Signature));
    // A symmetric key in the set is never used.
    let oct = JwkSet::parse(br#"{"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0"}]}"#).unwrap();
    assert!(oct.is_empty());
}

#[test]
fn registered_claims_are_checked() {
    let a = es256("a");
    let keys = set(&[&a]);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        check(&token(&a, &c), &keys)
    };
    assert_eq!(
        with(&|c| c["iss"] = json!("https://evil")),
        Err(TokenError::Issuer("https://evil".into()))
    );
    assert_eq!(
        with(&|c| c["aud"] = json!("someone-else")),
        Err(TokenError::Audience("someone-else".into()))
    );
    assert!(with(&|c| c["aud"] = json!("berth")).is_ok());
    assert_eq!(
        with(&|c| c["exp"] = json!(NOW - 31)),
        Err(TokenError::Expired)
    );
    assert!(
        with(&|c| c["exp"] = json!(NOW - 29)).is_ok(),
        "within the leeway"
    );
    assert_eq!(
        with(&|c| c["iat"] = json!(NOW + 60)),
        Err(TokenError::NotYetValid)
    );
    assert_eq!(
        with(&|c| c["nbf"] = json!(NOW + 60)),
        Err(TokenError::NotYetValid)
    );
    assert_eq!(with(&|c| c["nonce"] = json!("n-2")), Err(TokenError::Nonce));
    assert_eq!(
        with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))),
        Err(TokenError::MissingClaim("exp"))
    );
    assert_eq!(
        with(&|c| c["exp"] = json!("soon")),
        Err(TokenError::MissingClaim("exp"))
    );
}

#[test]
fn malformed_tokens_are_refused() {
    let keys = set(&[&es256("a")]);
    for t in ["", "a.b", "a.b.c.d", "!!.!!.!!", &"a".repeat(20_000)] {
        assert!(
            matches!(check(t, &keys), Err(TokenError::Malformed(_))),
            "{t:.20}"
        );
    }
    let crit = token_with(
        json!({"alg": "ES256", "crit": ["x"]}),
        &claims(),
        |_| vec![],
    );
    assert!(matches!(check(&crit, &keys), Err(TokenError::Malformed(_))));
}

#[test]
fn pkce_s256_matches_rfc_7636() {
    assert_eq!(
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}
