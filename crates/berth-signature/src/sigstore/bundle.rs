//! Reading a sigstore bundle (the protobuf-JSON document cosign and the
//! sigstore clients write, media types `…bundle+json;version=0.1|0.2` and
//! `…bundle.v0.3+json`) into what verification needs: the signing
//! certificate (and any chain), the transparency-log entries, and what was
//! signed — a message digest or a DSSE envelope.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Deserializer};

/// Media type of a v0.3 bundle (also the artifact type cosign gives a
/// bundle pushed as a referrer).
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Media types of the older bundle versions.
const BUNDLE_OLDER: [&str; 2] = [
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
];
/// Largest bundle read: real ones are a few kilobytes.
pub const MAX_BUNDLE: u64 = 64 * 1024;
/// Most certificates in a chain or log entries in a bundle looked at.
const MAX_ITEMS: usize = 8;

/// Whether `media_type` names a sigstore bundle this crate reads.
pub fn is_bundle_media_type(media_type: &str) -> bool {
    media_type == BUNDLE_V03
        || BUNDLE_OLDER.contains(&media_type)
        || media_type == "application/vnd.dev.sigstore.bundle.v0.2+json"
}

/// What a bundle says was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A signature over a message, of which the bundle keeps the SHA-256.
    Message {
        /// SHA-256 of the message.
        digest: Vec<u8>,
        /// The signature over the message.
        signature: Vec<u8>,
    },
    /// A DSSE envelope (an in-toto statement, usually).
    Dsse {
        /// The payload's type.
        payload_type: String,
        /// The payload.
        payload: Vec<u8>,
        /// Its signatures (over the DSSE pre-authentication encoding).
        signatures: Vec<Vec<u8>>,
    },
}

/// One transparency-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogEntry {
    /// Index in the log.
    pub log_index: i64,
    /// SHA-256 of the log's public key (SubjectPublicKeyInfo DER).
    pub log_id: Vec<u8>,
    /// Entry kind (`hashedrekord`, `dsse`, `intoto`).
    pub kind: String,
    /// When the log took it, Unix seconds.
    pub integrated_time: i64,
    /// The entry's body, base64 as the log gave it.
    pub body_b64: String,
    /// The signed entry timestamp (the log's promise), when given.
    pub set: Option<Vec<u8>>,
    /// The inclusion proof, when given.
    pub proof: Option<InclusionProof>,
}

/// A Merkle inclusion proof with the log's signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Index of the leaf in the tree.
    pub log_index: i64,
    /// The tree's root hash.
    pub root_hash: Vec<u8>,
    /// The tree's size.
    pub tree_size: i64,
    /// The sibling hashes, leaf upwards.
    pub hashes: Vec<Vec<u8>>,
    /// The signed note (checkpoint) naming the root.
    pub checkpoint: String,
}

/// A bundle, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Its media type.
    pub media_type: String,
    /// Certificates, the signer's first (DER).
    pub certificates: Vec<Vec<u8>>,
    /// Transparency-log entries.
    pub tlog: Vec<TlogEntry>,
    /// What was signed.
    pub content: Content,
}

// The protobuf-JSON shapes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    media_type: String,
    verification_material: Material,
    #[serde(default)]
    message_signature: Option<WireMessage>,
    #[serde(default)]
    dsse_envelope: Option<WireDsse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    #[serde(default)]
    x509_certificate_chain: Option<Chain>,
    #[serde(default)]
    certificate: Option<RawCert>,
    #[serde(default)]
    public_key: Option<serde_json::Value>,
    #[serde(default)]
    tlog_entries: Vec<WireEntry>,
}

#[derive(Deserialize)]
struct Chain {
    #[serde(default)]
    certificates: Vec<RawCert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMessage {
    #[serde(default)]
    message_digest: Option<WireDigest>,
    signature: String,
}

#[derive(Deserialize)]
struct WireDigest {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDsse {
    payload: String,
    payload_type: String,
    #[serde(default)]
    signatures: Vec<WireDsseSig>,
}

#[derive(Deserialize)]
struct WireDsseSig {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEntry {
    #[serde(deserialize_with = "int64")]
    log_index: i64,
    log_id: LogId,
    kind_version: KindVersion,
    #[serde(deserialize_with = "int64")]
    integrated_time: i64,
    #[serde(default)]
    inclusion_promise: Option<Promise>,
    #[serde(default)]
    inclusion_proof: Option<WireProof>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogId {
    key_id: String,
}

#[derive(Deserialize)]
struct KindVersion {
    kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Promise {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireProof {
    #[serde(default, deserialize_with = "int64")]
    log_index: i64,
    root_hash: String,
    #[serde(deserialize_with = "int64")]
    tree_size: i64,
    #[serde(default)]
    hashes: Vec<String>,
    checkpoint: Checkpoint,
}

#[derive(Deserialize)]
struct Checkpoint {
    envelope: String,
}

/// protobuf-JSON writes 64-bit integers as strings; accept numbers too.
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        S(String),
        I(i64),
    }
    match N::deserialize(d)? {
        N::I(i) => Ok(i),
        N::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

fn b64(what: &str, s: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(s.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s.trim()))
        .map_err(|_| format!("the bundle's {what} is not base64"))
}

/// Read a bundle document.
pub fn parse_bundle(bytes: &[u8]) -> Result<Bundle, String> {
    let w: Wire =
        serde_json::from_slice(bytes).map_err(|e| format!("not a sigstore bundle: {e}"))?;
    if !is_bundle_media_type(&w.media_type) {
        return Err(format!(
            "a bundle of media type {:?}, which Berth does not read",
            w.media_type
        ));
    }
    let m = w.verification_material;
    let certificates = match (m.certificate, m.x509_certificate_chain) {
        (Some(c), _) => vec![b64("certificate", &c.raw_bytes)?],
        (None, Some(chain)) if !chain.certificates.is_empty() => chain
            .certificates
            .iter()
            .take(MAX_ITEMS)
            .map(|c| b64("certificate", &c.raw_bytes))
            .collect::<Result<_, _>>()?,
        _ if m.public_key.is_some() => {
            return Err("the bundle names a public key, not a certificate: \
                        verify it as a signature with a key"
                .into())
        }
        _ => return Err("the bundle has no signing certificate".into()),
    };
    let mut tlog = Vec::new();
    for e in m.tlog_entries.into_iter().take(MAX_ITEMS) {
        let proof = match e.inclusion_proof {
            Some(p) => Some(InclusionProof {
                log_index: p.log_index,
                root_hash: b64("root hash", &p.root_hash)?,
                tree_size: p.tree_size,
                hashes: p
                    .hashes
                    .iter()
                    .take(64)
                    .map(|h| b64("proof hash", h))
                    .collect::<Result<_, _>>()?,
                checkpoint: p.checkpoint.envelope,
            }),
            None => None,
        };
        tlog.push(TlogEntry {
            log_index: e.log_index,
            log_id: b64("log id", &e.log_id.key_id)?,
            kind: e.kind_version.kind,
            integrated_time: e.integrated_time,
            body_b64: e.canonicalized_body,
            set: match e.inclusion_promise {
                Some(p) => Some(b64("signed entry timestamp", &p.signed_entry_timestamp)?),
                None => None,
            },
            proof,
        });
    }
    let content = match (w.message_signature, w.dsse_envelope) {
        (Some(ms), None) => {
            let d = ms
                .message_digest
                .ok_or("the message signature has no message digest")?;
            if d.algorithm != "SHA2_256" {
                return Err(format!(
                    "a message digest of algorithm {}, not SHA2_256",
                    d.algorithm
                ));
            }
            Content::Message {
                digest: b64("message digest", &d.digest)?,
                signature: b64("signature", &ms.signature)?,
            }
        }
        (None, Some(env)) => Content::Dsse {
            payload_type: env.payload_type,
            payload: b64("DSSE payload", &env.payload)?,
            signatures: env
                .signatures
                .iter()
                .take(MAX_ITEMS)
                .map(|s| b64("DSSE signature", &s.sig))
                .collect::<Result<_, _>>()?,
        },
        _ => {
            return Err(
                "the bundle needs exactly one of a message signature and a DSSE envelope".into(),
            )
        }
    };
    Ok(Bundle {
        media_type: w.media_type,
        certificates,
        tlog,
        content,
    })
}

/// The DSSE pre-authentication encoding: what a DSSE signature signs.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}
