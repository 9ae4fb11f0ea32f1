//! Transparency-log evidence, checked offline against a configured log key
//! (Rekor's): the signed entry timestamp (the log's promise to include the
//! entry), the Merkle inclusion proof (RFC 9162) with its signed
//! checkpoint, and that the logged entry is this very signature.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::bundle::{InclusionProof, TlogEntry};
use crate::keys::PublicKey;

/// What the logged entry must record.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// A signature over a message of this SHA-256 (`hashedrekord`).
    Hashed {
        /// SHA-256 of the message.
        digest: &'a [u8],
        /// The signature.
        signature: &'a [u8],
        /// The signer's certificate (DER).
        certificate: &'a [u8],
    },
    /// A DSSE envelope (`dsse`).
    Dsse {
        /// The envelope's payload.
        payload: &'a [u8],
        /// The signature.
        signature: &'a [u8],
        /// The signer's certificate (DER).
        certificate: &'a [u8],
    },
}

fn log_key<'k>(entry: &TlogEntry, keys: &'k [PublicKey]) -> Option<&'k PublicKey> {
    let id = hex::encode(&entry.log_id);
    keys.iter()
        .find(|k| k.fingerprint().strip_prefix("sha256:") == Some(id.as_str()))
}

/// Check one entry; `Ok` is the time the log took it (Unix seconds).
pub fn verify_entry(
    entry: &TlogEntry,
    keys: &[PublicKey],
    expect: Expect<'_>,
) -> Result<i64, String> {
    let key = log_key(entry, keys).ok_or_else(|| {
        format!(
            "logged by a transparency log the policy does not trust (log id {})",
            hex::encode(&entry.log_id)
        )
    })?;
    if entry.set.is_none() && entry.proof.is_none() {
        return Err(
            "the log entry has neither a signed entry timestamp nor an inclusion proof".into(),
        );
    }
    if let Some(set) = &entry.set {
        let promise = format!(
            r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
            entry.body_b64,
            entry.integrated_time,
            hex::encode(&entry.log_id),
            entry.log_index
        );
        if !key.verifies(promise.as_bytes(), set) {
            return Err("the log's signed entry timestamp does not verify".into());
        }
    }
    let body = STANDARD
        .decode(entry.body_b64.trim())
        .map_err(|_| "the log entry's body is not base64".to_owned())?;
    if let Some(proof) = &entry.proof {
        verify_inclusion(proof, &body, key)?;
    }
    check_body(&entry.kind, &body, expect)?;
    Ok(entry.integrated_time)
}

fn verify_inclusion(proof: &InclusionProof, body: &[u8], key: &PublicKey) -> Result<(), String> {
    let mut leaf = Sha256::new();
    leaf.update([0u8]);
    leaf.update(body);
    let root = root_from_path(
        u64::try_from(proof.log_index).map_err(|_| "a negative log index")?,
        u64::try_from(proof.tree_size).map_err(|_| "a negative tree size")?,
        leaf.finalize().into(),
        &proof.hashes,
    )
    .ok_or("the inclusion proof does not fit the tree")?;
    if root.as_slice() != proof.root_hash.as_slice() {
        return Err("the inclusion proof does not lead to the log's root hash".into());
    }
    let (size, root_hash) = verify_checkpoint(&proof.checkpoint, key)?;
    if size != proof.tree_size || root_hash != proof.root_hash {
        return Err("the log's checkpoint names another tree than the inclusion proof".into());
    }
    Ok(())
}

/// RFC 9162 §2.1.3.2: the root a leaf's audit path leads to.
pub fn root_from_path(index: u64, size: u64, leaf: [u8; 32], path: &[Vec<u8>]) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf;
    for p in path {
        if sn == 0 || p.len() != 32 {
            return None;
        }
        let mut h = Sha256::new();
        h.update([1u8]);
        if fn_ & 1 == 1 || fn_ == sn {
            h.update(p);
            h.update(r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            h.update(r);
            h.update(p);
        }
        r = h.finalize().into();
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

/// A signed note (checkpoint): `origin\nsize\nroot\n[other lines]\n\n— name
/// base64(keyhint ‖ signature)\n`. `Ok` is (size, root hash) once a
/// signature line verifies under `key`.
fn verify_checkpoint(note: &str, key: &PublicKey) -> Result<(i64, Vec<u8>), String> {
    let split = note
        .find("\n\n")
        .ok_or("the checkpoint is not a signed note")?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    let mut lines = text.lines();
    let _origin = lines.next().ok_or("the checkpoint has no origin")?;
    let size: i64 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or("the checkpoint has no tree size")?;
    let root = lines
        .next()
        .and_then(|l| STANDARD.decode(l).ok())
        .ok_or("the checkpoint has no root hash")?;
    let signed = sigs.lines().any(|line| {
        line.strip_prefix("\u{2014} ")
            .and_then(|rest| rest.rsplit_once(' '))
            .and_then(|(_, b)| STANDARD.decode(b).ok())
            .is_some_and(|raw| raw.len() > 4 && key.verifies(text.as_bytes(), &raw[4..]))
    });
    if !signed {
        return Err("the log's checkpoint is not signed by the log's key".into());
    }
    Ok((size, root))
}

fn b64_eq(v: Option<&Value>, want: &[u8]) -> bool {
    v.and_then(Value::as_str)
        .and_then(|s| STANDARD.decode(s).ok())
        .is_some_and(|b| b == want)
}

/// Whether a base64 PEM (what Rekor records as a verifier) is `certificate`.
fn verifier_is(v: Option<&Value>, certificate: &[u8]) -> bool {
    v.and_then(Value::as_str)
        .and_then(|s| STANDARD.decode(s).ok())
        .and_then(|pem| {
            x509_parser::pem::parse_x509_pem(&pem)
                .ok()
                .map(|(_, p)| p.contents == certificate)
        })
        .unwrap_or(false)
}

fn check_body(kind: &str, body: &[u8], expect: Expect<'_>) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "the log entry's body is not JSON")?;
    if v["kind"].as_str() != Some(kind) {
        return Err("the log entry's body is of another kind than announced".into());
    }
    let spec = &v["spec"];
    let same = match (kind, expect) {
        (
            "hashedrekord",
            Expect::Hashed {
                digest,
                signature,
                certificate,
            },
        ) => {
            spec["data"]["hash"]["algorithm"].as_str() == Some("sha256")
                && spec["data"]["hash"]["value"].as_str() == Some(hex::encode(digest).as_str())
                && b64_eq(spec["signature"].get("content"), signature)
                && verifier_is(spec["signature"]["publicKey"].get("content"), certificate)
        }
        (
            "dsse",
            Expect::Dsse {
                payload,
                signature,
                certificate,
            },
        ) => {
            if let Some(env) = spec["proposedContent"]["envelope"].as_str() {
                // As proposed: the envelope itself and its verifiers.
                let env: Value = serde_json::from_str(env).unwrap_or(Value::Null);
                b64_eq(env.get("payload"), payload)
                    && env["signatures"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| b64_eq(s.get("sig"), signature)))
                    && spec["proposedContent"]["verifiers"]
                        .as_array()
                        .is_some_and(|vs| vs.iter().any(|v| verifier_is(Some(v), certificate)))
            } else {
                // As Rekor canonicalises it: hashes and signatures.
                spec["payloadHash"]["algorithm"].as_str() == Some("sha256")
                    && spec["payloadHash"]["value"].as_str()
                        == Some(hex::encode(Sha256::digest(payload)).as_str())
                    && spec["signatures"].as_array().is_some_and(|s| {
                        s.iter().any(|s| {
                            b64_eq(s.get("signature"), signature)
                                && verifier_is(s.get("verifier"), certificate)
                        })
                    })
            }
        }
        (other, _) => {
            return Err(format!(
                "a log entry of kind {other:?}, which does not record this signature"
            ))
        }
    };
    if same {
        Ok(())
    } else {
        Err("the log entry records another signature than this one".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        h.finalize().into()
    }

    #[test]
    fn audit_paths_lead_to_the_root_only_from_their_leaf() {
        // A tree of five leaves: ((a b) (c d)) e.
        let leaves: Vec<[u8; 32]> = (0u8..5).map(|i| Sha256::digest([0, i]).into()).collect();
        let ab = node(&leaves[0], &leaves[1]);
        let cd = node(&leaves[2], &leaves[3]);
        let abcd = node(&ab, &cd);
        let root = node(&abcd, &leaves[4]);
        let path_c = vec![leaves[3].to_vec(), ab.to_vec(), leaves[4].to_vec()];
        assert_eq!(root_from_path(2, 5, leaves[2], &path_c), Some(root));
        assert_ne!(root_from_path(2, 5, leaves[3], &path_c), Some(root));
        assert_eq!(
            root_from_path(4, 5, leaves[4], &[abcd.to_vec()]),
            Some(root)
        );
        assert_eq!(root_from_path(5, 5, leaves[4], &[abcd.to_vec()]), None);
        assert_eq!(root_from_path(0, 1, leaves[0], &[]), Some(leaves[0]));
        // A path too long or too short for the tree.
        assert_eq!(root_from_path(2, 5, leaves[2], &path_c[..2]), None);
        let mut long = path_c.clone();
        long.push(ab.to_vec());
        assert_eq!(root_from_path(2, 5, leaves[2], &long), None);
    }
}
