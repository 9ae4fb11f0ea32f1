//! Notation signature envelopes, both encodings the Notary Project
//! specifies, read into one shape: the JWS JSON serialization
//! (`application/jose+json`) and COSE_Sign1 (`application/cose`).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use coset::cbor::value::Value as Cbor;
use coset::{iana, Label, RegisteredLabel, RegisteredLabelWithPrivate, TaggedCborSerializable};
use serde::Deserialize;
use serde_json::Value;

/// Media type of a JWS envelope.
pub const JWS: &str = "application/jose+json";
/// Media type of a COSE envelope.
pub const COSE: &str = "application/cose";
/// The content type of a Notation payload.
pub const PAYLOAD_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";

/// A signature algorithm Notation allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PSS with SHA-256, -384 or -512.
    Ps256,
    /// See above.
    Ps384,
    /// See above.
    Ps512,
    /// ECDSA P-256 with SHA-256 (r‖s).
    Es256,
    /// ECDSA P-384 with SHA-384 (r‖s).
    Es384,
    /// ECDSA P-521 with SHA-512: not verifiable here.
    Es512,
}

/// An envelope, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The algorithm.
    pub alg: Alg,
    /// Critical headers (names).
    pub crit: Vec<String>,
    /// The payload's content type.
    pub content_type: String,
    /// `io.cncf.notary.signingScheme`.
    pub signing_scheme: String,
    /// `io.cncf.notary.expiry`, Unix seconds, when set.
    pub expiry: Option<i64>,
    /// The payload.
    pub payload: Vec<u8>,
    /// What the signature signs.
    pub signed: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
    /// The certificate chain, signer first (DER).
    pub certificates: Vec<Vec<u8>>,
}

/// Largest envelope read.
pub const MAX_ENVELOPE: u64 = 256 * 1024;
const MAX_CERTS: usize = 10;

#[derive(Deserialize)]
struct Jws {
    payload: String,
    protected: String,
    #[serde(default)]
    header: JwsHeader,
    signature: String,
}

#[derive(Deserialize, Default)]
struct JwsHeader {
    #[serde(default)]
    x5c: Vec<String>,
}

fn alg(name: &str) -> Result<Alg, String> {
    Ok(match name {
        "PS256" => Alg::Ps256,
        "PS384" => Alg::Ps384,
        "PS512" => Alg::Ps512,
        "ES256" => Alg::Es256,
        "ES384" => Alg::Es384,
        "ES512" => Alg::Es512,
        other => {
            return Err(format!(
                "signature algorithm {other:?}, which Notation does not allow"
            ))
        }
    })
}

/// An RFC 3339 time, Unix seconds (what JWS headers carry).
fn rfc3339(s: &str) -> Option<i64> {
    // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// Read a JWS envelope.
pub fn parse_jws(bytes: &[u8]) -> Result<Envelope, String> {
    let j: Jws = serde_json::from_slice(bytes).map_err(|e| format!("not a JWS envelope: {e}"))?;
    let b64u = |what: &str, s: &str| {
        URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| format!("the envelope's {what} is not base64url"))
    };
    let protected: Value = serde_json::from_slice(&b64u("protected header", &j.protected)?)
        .map_err(|_| "the protected header is not JSON".to_owned())?;
    let text = |k: &str| protected.get(k).and_then(Value::as_str).map(str::to_owned);
    let expiry = match text("io.cncf.notary.expiry") {
        Some(t) => Some(rfc3339(&t).ok_or("the expiry is not an RFC 3339 time")?),
        None => None,
    };
    Ok(Envelope {
        alg: alg(&text("alg").unwrap_or_default())?,
        crit: protected
            .get("crit")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        content_type: text("cty").unwrap_or_default(),
        signing_scheme: text("io.cncf.notary.signingScheme").unwrap_or_default(),
        expiry,
        payload: b64u("payload", &j.payload)?,
        signed: format!("{}.{}", j.protected, j.payload).into_bytes(),
        signature: b64u("signature", &j.signature)?,
        certificates: j
            .header
            .x5c
            .iter()
            .take(MAX_CERTS)
            .map(|c| {
                STANDARD
                    .decode(c)
                    .map_err(|_| "an x5c certificate is not base64".to_owned())
            })
            .collect::<Result<_, _>>()?,
    })
}

fn cbor_time(v: &Cbor) -> Option<i64> {
    match v {
        Cbor::Tag(1, inner) => cbor_time(inner),
        Cbor::Integer(i) => i64::try_from(*i).ok(),
        Cbor::Float(f) => Some(*f as i64),
        _ => None,
    }
}

/// Read a COSE_Sign1 envelope.
pub fn parse_cose(bytes: &[u8]) -> Result<Envelope, String> {
    let s = coset::CoseSign1::from_tagged_slice(bytes)
        .map_err(|e| format!("not a COSE_Sign1 envelope: {e}"))?;
    let h = &s.protected.header;
    let alg = match &h.alg {
        Some(RegisteredLabelWithPrivate::Assigned(a)) => match a {
            iana::Algorithm::PS256 => Alg::Ps256,
            iana::Algorithm::PS384 => Alg::Ps384,
            iana::Algorithm::PS512 => Alg::Ps512,
            iana::Algorithm::ES256 => Alg::Es256,
            iana::Algorithm::ES384 => Alg::Es384,
            iana::Algorithm::ES512 => Alg::Es512,
            other => {
                return Err(format!(
                    "signature algorithm {other:?}, which Notation does not allow"
                ))
            }
        },
        _ => return Err("the envelope names no signature algorithm".into()),
    };
    let rest = |name: &str| {
        h.rest
            .iter()
            .find(|(l, _)| matches!(l, Label::Text(t) if t == name))
            .map(|(_, v)| v)
    };
    let expiry = match rest("io.cncf.notary.expiry") {
        Some(v) => Some(cbor_time(v).ok_or("the expiry is not a time")?),
        None => None,
    };
    let chain = s
        .unprotected
        .rest
        .iter()
        .find(|(l, _)| *l == Label::Int(iana::HeaderParameter::X5Chain as i64))
        .map(|(_, v)| v);
    let certificates = match chain {
        Some(Cbor::Bytes(b)) => vec![b.clone()],
        Some(Cbor::Array(a)) => a
            .iter()
            .take(MAX_CERTS)
            .map(|c| match c {
                Cbor::Bytes(b) => Ok(b.clone()),
                _ => Err("an x5chain entry is not a certificate".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    let payload = s
        .payload
        .clone()
        .ok_or("the envelope's payload is detached")?;
    Ok(Envelope {
        alg,
        crit: h
            .crit
            .iter()
            .map(|c| match c {
                RegisteredLabelWithPrivate::Text(t) => t.clone(),
                RegisteredLabelWithPrivate::Assigned(a) => format!("{a:?}"),
                RegisteredLabelWithPrivate::PrivateUse(i) => i.to_string(),
            })
            .collect(),
        content_type: match &h.content_type {
            Some(RegisteredLabel::Text(t)) => t.clone(),
            Some(RegisteredLabel::Assigned(a)) => format!("{a:?}"),
            None => String::new(),
        },
        signing_scheme: match rest("io.cncf.notary.signingScheme") {
            Some(Cbor::Text(t)) => t.clone(),
            _ => String::new(),
        },
        expiry,
        signed: s.tbs_data(b""),
        signature: s.signature.clone(),
        payload,
        certificates,
    })
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_times_are_read_with_their_offset() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339("2023-03-14T16:10:02+08:00"), Some(1_678_781_402));
        assert_eq!(rfc3339("2000-02-29T12:00:00.123-01:30"), Some(951_831_000));
        assert_eq!(rfc3339("yesterday"), None);
    }
}
