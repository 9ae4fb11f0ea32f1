//! Compact JWS tokens: header and claims decoded, the signature checked
//! against a JWK set, the registered claims checked against a policy.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Longest token read (a JWT is a few kilobytes at most).
const MAX_TOKEN: usize = 16 * 1024;

/// Why a token or document was refused. The text is safe to show to the
/// caller: it never holds the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not a compact JWS, or its parts are not base64url JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `none`, HMAC, or an algorithm the issuer does not announce.
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(String),
    /// No key of the set has this id (the caller may refresh the set once).
    #[error("no signing key {0:?} is known for this issuer")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// Another issuer.
    #[error("issued by {0:?}, not by the expected issuer")]
    Issuer(String),
    /// No expected audience.
    #[error("the token is not meant for this registry (audience {0:?})")]
    Audience(String),
    /// Past `exp`.
    #[error("the token has expired")]
    Expired,
    /// `iat` or `nbf` in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The nonce of this sign-in is missing or another one.
    #[error("the token's nonce does not match this sign-in")]
    Nonce,
    /// A required claim is missing or of the wrong type.
    #[error("the token has no valid {0:?} claim")]
    MissingClaim(&'static str),
    /// A provider document (metadata, key set) is unusable.
    #[error("{0}")]
    Metadata(String),
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct Policy<'a> {
    /// `iss`, exactly.
    pub issuer: &'a str,
    /// `aud` must hold one of these.
    pub audiences: &'a [String],
    /// Algorithms the issuer announces; anything else is refused.
    pub algorithms: &'a [String],
    /// Now, Unix seconds.
    pub now: i64,
    /// Clock skew allowed on `exp`, `iat`, `nbf`, seconds.
    pub leeway: i64,
    /// The nonce this sign-in sent, when there is one.
    pub nonce: Option<&'a str>,
}

/// A verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// Its claims.
    pub claims: Map<String, Value>,
    /// The key id that verified it.
    pub kid: Option<String>,
    /// The algorithm.
    pub alg: String,
}

/// An issuer's signing keys (`jwks_uri`). Keys of other uses (`enc`) or
/// types Berth cannot verify with are left out, not refused.
#[derive(Debug, Clone, Default)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

impl JwkSet {
    /// Parse `{"keys": [...]}`.
    pub fn parse(bytes: &[u8]) -> Result<JwkSet, TokenError> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<Value>,
        }
        let raw: Raw = serde_json::from_slice(bytes)
            .map_err(|e| TokenError::Metadata(format!("not a JWK set: {e}")))?;
        let keys = raw
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter(|k| !matches!(k.algorithm, AlgorithmParameters::OctetKey(_)))
            .collect();
        Ok(JwkSet { keys })
    }

    /// Whether a key with this id is in the set.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys
            .iter()
            .any(|k| k.common.key_id.as_deref() == Some(kid))
    }

    /// How many usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// Header fields and claims without checking anything: to find which
/// issuer to ask for keys. Never trust what this returns.
pub fn decode_unverified(token: &str) -> Result<(Option<String>, Map<String, Value>), TokenError> {
    let (header, claims, _, _) = split(token)?;
    Ok((header.kid, claims))
}

/// A token's parts: header, claims, the signed text, the signature.
type Parts<'a> = (Header, Map<String, Value>, &'a str, &'a str);

fn split(token: &str) -> Result<Parts<'_>, TokenError> {
    if token.len() > MAX_TOKEN {
        return Err(TokenError::Malformed("longer than 16 KiB".into()));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "not three dot-separated parts".into(),
        ));
    };
    let json = |part: &str, what: &str| -> Result<Vec<u8>, TokenError> {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| TokenError::Malformed(format!("the {what} is not base64url")))
    };
    let header: Header = serde_json::from_slice(&json(h, "header")?)
        .map_err(|_| TokenError::Malformed("the header is not a JOSE header".into()))?;
    let claims: Map<String, Value> = serde_json::from_slice(&json(c, "payload")?)
        .map_err(|_| TokenError::Malformed("the payload is not a JSON object".into()))?;
    Ok((header, claims, &token[..h.len() + 1 + c.len()], s))
}

fn algorithm(name: &str, announced: &[String]) -> Result<Algorithm, TokenError> {
    let refused = || TokenError::Algorithm(name.to_owned());
    let alg = match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return Err(refused()),
    };
    if !announced.iter().any(|a| a == name) {
        return Err(refused());
    }
    Ok(alg)
}

fn key_fits(key: &Jwk, alg: Algorithm) -> bool {
    use Algorithm::*;
    match &key.algorithm {
        AlgorithmParameters::RSA(_) => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
        AlgorithmParameters::EllipticCurve(_) => matches!(alg, ES256 | ES384),
        AlgorithmParameters::OctetKeyPair(_) => alg == EdDSA,
        AlgorithmParameters::OctetKey(_) => false,
    }
}

/// Verify `token`: signature with a key of `keys`, then the policy.
pub fn verify(token: &str, keys: &JwkSet, policy: &Policy<'_>) -> Result<Verified, TokenError> {
    let (header, claims, signed, signature) = split(token)?;
    if header.crit.is_some() {
        return Err(TokenError::Malformed(
            "critical header extensions are not supported".into(),
        ));
    }
    let alg = algorithm(&header.alg, policy.algorithms)?;
    let candidates: Vec<&Jwk> = match &header.kid {
        Some(kid) => keys
            .keys
            .iter()
            .filter(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
            .collect(),
        None => keys.keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(TokenError::UnknownKey(header.kid.unwrap_or_default()));
    }
    let mut verified = false;
    for key in candidates.into_iter().filter(|k| key_fits(k, alg)) {
        let Ok(decoding) = DecodingKey::from_jwk(key) else {
            continue;
        };
        if jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &decoding, alg)
            .unwrap_or(false)
        {
            verified = true;
            break;
        }
    }
    if !verified {
        return Err(TokenError::Signature);
    }
    check_claims(&claims, policy)?;
    Ok(Verified {
        claims,
        kid: header.kid,
        alg: header.alg,
    })
}

fn check_claims(claims: &Map<String, Value>, p: &Policy<'_>) -> Result<(), TokenError> {
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(TokenError::MissingClaim("iss"))?;
    if iss != p.issuer {
        return Err(TokenError::Issuer(iss.to_owned()));
    }
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => return Err(TokenError::MissingClaim("aud")),
    };
    if !aud.iter().any(|a| p.audiences.iter().any(|e| e == a)) {
        return Err(TokenError::Audience(aud.join(" ")));
    }
    let time = |name: &'static str| {
        claims
            .get(name)
            .map(|v| v.as_i64().ok_or(TokenError::MissingClaim(name)))
    };
    let exp = time("exp").ok_or(TokenError::MissingClaim("exp"))??;
    if p.now > exp.saturating_add(p.leeway) {
        return Err(TokenError::Expired);
    }
    let iat = time("iat").ok_or(TokenError::MissingClaim("iat"))??;
    if iat > p.now.saturating_add(p.leeway) {
        return Err(TokenError::NotYetValid);
    }
    if let Some(nbf) = time("nbf").transpose()? {
        if nbf > p.now.saturating_add(p.leeway) {
            return Err(TokenError::NotYetValid);
        }
    }
    if let Some(expected) = p.nonce {
        if claims.get("nonce").and_then(Value::as_str) != Some(expected) {
            return Err(TokenError::Nonce);
        }
    }
    Ok(())
}

/// The PKCE `S256` challenge of a verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
