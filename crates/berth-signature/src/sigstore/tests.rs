//! Real bundles made by the sigstore project's npm tooling (@sigstore/sign
//! with @sigstore/mock's Fulcio and Rekor; `crates/berth/tests/it/support/
//! sigstore-sign.mjs`): a message signature over a manifest (v0.2, chain),
//! a DSSE in-toto statement naming it (v0.3), and a message signature over
//! a simple-signing payload (turned into cosign's older annotations).
//! `expired.json` came from a CA whose clock was an hour behind.

use serde_json::Value;

use super::*;

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const SIGNER: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";

struct Vectors {
    json: Value,
}

impl Vectors {
    fn valid() -> Vectors {
        Vectors {
            json: serde_json::from_str(include_str!("../../testdata/sigstore/valid.json")).unwrap(),
        }
    }
    fn expired() -> Vectors {
        Vectors {
            json: serde_json::from_str(include_str!("../../testdata/sigstore/expired.json"))
                .unwrap(),
        }
    }
    fn s(&self, k: &str) -> &str {
        self.json[k].as_str().unwrap()
    }
    fn bundle_bytes(&self, i: usize) -> Vec<u8> {
        serde_json::to_vec(&self.json["bundles"][i]).unwrap()
    }
    fn bundle(&self, i: usize) -> Bundle {
        parse_bundle(&self.bundle_bytes(i)).unwrap()
    }
    fn authority(&self, identities: Vec<IdentityRule>) -> Authority {
        Authority {
            name: "ci".into(),
            certificates: certificates_from_pem(self.s("root_pem")).unwrap(),
            log_keys: vec![PublicKey::from_pem(self.s("log_key_pem")).unwrap()],
            identities,
        }
    }
    fn trusting(&self) -> Vec<Authority> {
        vec![self.authority(vec![IdentityRule {
            issuer: Match::Exact(ISSUER.into()),
            subject: Match::Exact(SIGNER.into()),
        }])]
    }
}

#[test]
fn bundles_of_both_kinds_and_versions_verify() {
    let v = Vectors::valid();
    let manifest = v.s("manifest").as_bytes();
    let subject = v.s("subject");

    let message = v.bundle(0);
    assert!(message.media_type.ends_with("version=0.2"));
    let signer = verify_bundle(&message, subject, manifest, &v.trusting()).unwrap();
    assert_eq!(signer.identity.subject, SIGNER);
    assert_eq!(signer.identity.issuer, ISSUER);
    assert_eq!(signer.authority, "ci");
    assert!(signer.label().contains("via ci"));

    let dsse = v.bundle(1);
    assert_eq!(dsse.media_type, BUNDLE_V03);
    assert!(matches!(dsse.content, Content::Dsse { .. }));
    assert!(verify_bundle(&dsse, subject, manifest, &v.trusting()).is_ok());
}

#[test]
fn identities_are_matched_exactly_or_by_pattern() {
    let v = Vectors::valid();
    let (bundle, subject, manifest) = (v.bundle(1), v.s("subject"), v.s("manifest").as_bytes());
    let with = |issuer: Match, signer: Match| {
        verify_bundle(
            &bundle,
            subject,
            manifest,
            &[v.authority(vec![IdentityRule {
                issuer,
                subject: signer,
            }])],
        )
    };
    assert!(with(
        Match::Exact(ISSUER.into()),
        Match::Pattern("https://github.com/acme/*@refs/heads/main".into())
    )
    .is_ok());
    let e = with(
        Match::Exact(ISSUER.into()),
        Match::Pattern("https://github.com/other/*".into()),
    )
    .unwrap_err();
    assert!(e.contains("an identity the policy does not trust"), "{e}");
    assert!(e.contains(SIGNER), "{e}");
    assert!(with(
        Match::Exact("https://accounts.google.com".into()),
        Match::Exact(SIGNER.into())
    )
    .is_err());
    // No identity at all accepts no one.
    assert!(verify_bundle(&bundle, subject, manifest, &[v.authority(vec![])]).is_err());
}

#[test]
fn a_bundle_counts_only_for_its_own_digest() {
    let v = Vectors::valid();
    let other = format!("sha256:{}", "0".repeat(64));
    let e = verify_bundle(&v.bundle(0), &other, b"x", &v.trusting()).unwrap_err();
    assert!(e.contains("not sha256:0000"), "{e}");
    let e = verify_bundle(&v.bundle(1), &other, b"x", &v.trusting()).unwrap_err();
    assert!(e.contains("the statement is about sha256:"), "{e}");
}

#[test]
fn an_expired_certificate_an_unknown_root_or_log_is_refused() {
    let v = Vectors::valid();
    let old = Vectors::expired();
    let e = verify_bundle(
        &old.bundle(0),
        old.s("subject"),
        old.s("manifest").as_bytes(),
        &old.trusting(),
    )
    .unwrap_err();
    assert!(e.contains("expired"), "{e}");

    // The valid bundle against another CA's root, or another log's key.
    let mut wrong_root = v.trusting();
    wrong_root[0].certificates = certificates_from_pem(old.s("root_pem")).unwrap();
    let e = verify_bundle(
        &v.bundle(1),
        v.s("subject"),
        v.s("manifest").as_bytes(),
        &wrong_root,
    )
    .unwrap_err();
    assert!(
        e.contains("does not chain to a root the policy trusts"),
        "{e}"
    );
    let mut wrong_log = v.trusting();
    wrong_log[0].log_keys = vec![PublicKey::from_pem(old.s("log_key_pem")).unwrap()];
    let e = verify_bundle(
        &v.bundle(1),
        v.s("subject"),
        v.s("manifest").as_bytes(),
        &wrong_log,
    )
    .unwrap_err();
    assert!(
        e.contains("transparency log the policy does not trust"),
        "{e}"
    );
    let e = verify_bundle(
        &v.bundle(1),
        v.s("subject"),
        v.s("manifest").as_bytes(),
        &[],
    )
    .unwrap_err();
    assert!(e.contains("trusts no keyless authority"), "{e}");
}

#[test]
fn tampered_log_evidence_is_refused() {
    let v = Vectors::valid();
    let (subject, manifest) = (v.s("subject"), v.s("manifest").as_bytes());
    let check = |edit: &dyn Fn(&mut Value)| {
        let mut b = v.json["bundles"][1].clone();
        edit(&mut b);
        let bundle = parse_bundle(&serde_json::to_vec(&b).unwrap())?;
        verify_bundle(&bundle, subject, manifest, &v.trusting())
    };
    let entry = "/verificationMaterial/tlogEntries/0";
    // A later integration time than the log promised.
    let e = check(&|b| {
        let t = b.pointer_mut(&format!("{entry}/integratedTime")).unwrap();
        *t = Value::String("1796569999".into());
    })
    .unwrap_err();
    assert!(e.contains("signed entry timestamp does not verify"), "{e}");
    // Without the promise, the inclusion proof alone must hold.
    assert!(check(&|b| {
        b.pointer_mut(entry)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("inclusionPromise");
    })
    .is_ok());
    let e = check(&|b| {
        let e = b.pointer_mut(entry).unwrap().as_object_mut().unwrap();
        e.remove("inclusionPromise");
        e["inclusionProof"]["rootHash"] = Value::String(STANDARD.encode([7u8; 32]));
    })
    .unwrap_err();
    assert!(e.contains("root hash"), "{e}");
    let e = check(&|b| {
        let e = b.pointer_mut(entry).unwrap().as_object_mut().unwrap();
        e.remove("inclusionPromise");
        let cp = e["inclusionProof"]["checkpoint"]["envelope"]
            .as_str()
            .unwrap()
            .replacen("rekor", "rekoR", 1);
        e["inclusionProof"]["checkpoint"]["envelope"] = Value::String(cp);
    })
    .unwrap_err();
    assert!(e.contains("checkpoint is not signed"), "{e}");
    let e = check(&|b| {
        let e = b.pointer_mut(entry).unwrap().as_object_mut().unwrap();
        e.remove("inclusionPromise");
        e.remove("inclusionProof");
    })
    .unwrap_err();
    assert!(
        e.contains("neither a signed entry timestamp nor an inclusion proof"),
        "{e}"
    );
    let e = check(&|b| {
        b["verificationMaterial"]["tlogEntries"] = Value::Array(vec![]);
    })
    .unwrap_err();
    assert!(e.contains("needs one"), "{e}");
    // Another signature swapped in: it no longer verifies.
    let e = check(&|b| {
        b["dsseEnvelope"]["payload"] =
            Value::String(STANDARD.encode(br#"{"_type":"https://in-toto.io/Statement/v1"}"#));
    })
    .unwrap_err();
    assert!(e.contains("statement is about nothing"), "{e}");
}

#[test]
fn truncated_or_foreign_bundles_are_refused_clearly() {
    let v = Vectors::valid();
    let bytes = v.bundle_bytes(1);
    let e = parse_bundle(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(e.contains("not a sigstore bundle"), "{e}");
    let mut b = v.json["bundles"][1].clone();
    b["mediaType"] = Value::String("application/json".into());
    assert!(parse_bundle(&serde_json::to_vec(&b).unwrap())
        .unwrap_err()
        .contains("media type"));
    let mut b = v.json["bundles"][1].clone();
    b["verificationMaterial"]
        .as_object_mut()
        .unwrap()
        .remove("certificate");
    b["verificationMaterial"]["publicKey"] = serde_json::json!({"hint": "x"});
    assert!(parse_bundle(&serde_json::to_vec(&b).unwrap())
        .unwrap_err()
        .contains("public key"));
}

#[test]
fn cosigns_older_annotations_verify() {
    let v = Vectors::valid();
    let b = &v.json["bundles"][2];
    let cert = STANDARD
        .decode(
            b["verificationMaterial"]["x509CertificateChain"]["certificates"][0]["rawBytes"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        STANDARD.encode(&cert)
    );
    let e = &b["verificationMaterial"]["tlogEntries"][0];
    let rekor = serde_json::json!({
        "SignedEntryTimestamp": e["inclusionPromise"]["signedEntryTimestamp"],
        "Payload": {
            "body": e["canonicalizedBody"],
            "integratedTime": e["integratedTime"].as_str().unwrap().parse::<i64>().unwrap(),
            "logIndex": e["logIndex"].as_str().unwrap().parse::<i64>().unwrap(),
            "logID": hex::encode(STANDARD.decode(e["logId"]["keyId"].as_str().unwrap()).unwrap()),
        }
    })
    .to_string();
    let sig = STANDARD
        .decode(b["messageSignature"]["signature"].as_str().unwrap())
        .unwrap();
    let payload = v.s("simple_signing").as_bytes();
    let signer =
        verify_annotations(&pem, None, Some(&rekor), payload, &sig, &v.trusting()).unwrap();
    assert_eq!(signer.identity.subject, SIGNER);
    // The payload changed, or no Rekor bundle: refused.
    let mut other = payload.to_vec();
    other[3] ^= 1;
    assert!(verify_annotations(&pem, None, Some(&rekor), &other, &sig, &v.trusting()).is_err());
    let e = verify_annotations(&pem, None, None, payload, &sig, &v.trusting()).unwrap_err();
    assert!(e.contains("dev.sigstore.cosign/bundle"), "{e}");
    // A signature of another entry under the same log promise.
    let other_sig = STANDARD
        .decode(
            v.json["bundles"][0]["messageSignature"]["signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert!(
        verify_annotations(&pem, None, Some(&rekor), payload, &other_sig, &v.trusting()).is_err()
    );
}
