//! The Notary Project's own test envelopes (notaryproject/notation-go,
//! `internal/testdata/{jws,cose}_signature.sig`, Apache-2.0): a JWS and a
//! COSE envelope, PS256, over a manifest `sha256:19dbd2e4…`, signed by a
//! self-signed certificate `C=US, ST=WA, L=Seattle, O=Notary, CN=alpine`
//! valid 2000–2123.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::*;

const JWS_SIG: &[u8] = include_bytes!("../../testdata/notation/jws_signature.sig");
const COSE_SIG: &[u8] = include_bytes!("../../testdata/notation/cose_signature.sig");
const SUBJECT: &str = "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0";
const IDENTITY: &str = "x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=alpine";
/// 2026-12-01.
const NOW: i64 = 1_796_083_200;

fn signer_cert() -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_slice(JWS_SIG).unwrap();
    STANDARD
        .decode(v["header"]["x5c"][0].as_str().unwrap())
        .unwrap()
}

fn store(identity: &str, scope: &str) -> TrustStore {
    TrustStore {
        name: "notary".into(),
        certificates: vec![signer_cert()],
        identities: vec![TrustedIdentity::parse(identity).unwrap()],
        scopes: vec![scope.into()],
    }
}

#[test]
fn the_notary_projects_jws_and_cose_envelopes_verify() {
    for (media, bytes) in [(JWS, JWS_SIG), (COSE, COSE_SIG)] {
        let s = verify_envelope(
            media,
            bytes,
            SUBJECT,
            "team/app",
            NOW,
            &[store(IDENTITY, "team/*")],
        )
        .unwrap_or_else(|e| panic!("{media}: {e}"));
        assert_eq!(s.store, "notary");
        assert!(
            s.subject.contains("O=Notary") && s.subject.contains("CN=alpine"),
            "{s:?}"
        );
        assert!(s.label().ends_with("via notary (Notation)"));
        // `*` trusts anyone the store vouches for.
        assert!(
            verify_envelope(media, bytes, SUBJECT, "team/app", NOW, &[store("*", "*")]).is_ok()
        );
    }
}

#[test]
fn digest_identity_scope_store_and_time_are_each_enforced() {
    let other = format!("sha256:{}", "0".repeat(64));
    let e = verify_envelope(
        JWS,
        JWS_SIG,
        &other,
        "team/app",
        NOW,
        &[store(IDENTITY, "*")],
    )
    .unwrap_err();
    assert!(e.contains("is for sha256:19dbd2e4"), "{e}");
    let e = verify_envelope(
        COSE,
        COSE_SIG,
        SUBJECT,
        "team/app",
        NOW,
        &[store("x509.subject: C=US, ST=WA, O=acme", "*")],
    )
    .unwrap_err();
    assert!(e.contains("is not a trusted identity"), "{e}");
    let e = verify_envelope(
        JWS,
        JWS_SIG,
        SUBJECT,
        "team/app",
        NOW,
        &[store(IDENTITY, "other/*")],
    )
    .unwrap_err();
    assert!(e.contains("speaks for team/app"), "{e}");
    let mut foreign = store(IDENTITY, "*");
    foreign.certificates = crate::x509::certificates_from_pem(
        serde_json::from_str::<serde_json::Value>(include_str!(
            "../../testdata/sigstore/valid.json"
        ))
        .unwrap()["root_pem"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let e = verify_envelope(JWS, JWS_SIG, SUBJECT, "team/app", NOW, &[foreign]).unwrap_err();
    assert!(e.contains("not from its certificates"), "{e}");
    let e = verify_envelope(
        JWS,
        JWS_SIG,
        SUBJECT,
        "team/app",
        4_900_000_000,
        &[store(IDENTITY, "*")],
    )
    .unwrap_err();
    assert!(e.contains("expired"), "{e}");
    let e = verify_envelope(JWS, JWS_SIG, SUBJECT, "team/app", NOW, &[]).unwrap_err();
    assert!(e.contains("trusts no Notation trust store"), "{e}");
}

#[test]
fn tampered_or_truncated_envelopes_are_refused() {
    let mut v: serde_json::Value = serde_json::from_slice(JWS_SIG).unwrap();
    let sig = v["signature"].as_str().unwrap().to_owned();
    let flipped = if sig.starts_with('A') {
        sig.replacen('A', "B", 1)
    } else {
        format!("A{}", &sig[1..])
    };
    v["signature"] = flipped.into();
    let e = verify_envelope(
        JWS,
        &serde_json::to_vec(&v).unwrap(),
        SUBJECT,
        "r",
        NOW,
        &[store(IDENTITY, "*")],
    )
    .unwrap_err();
    assert!(e.contains("does not verify"), "{e}");
    let e = verify_envelope(
        COSE,
        &COSE_SIG[..COSE_SIG.len() - 40],
        SUBJECT,
        "r",
        NOW,
        &[store(IDENTITY, "*")],
    )
    .unwrap_err();
    assert!(e.contains("not a COSE_Sign1 envelope"), "{e}");
    let e = verify_envelope(JWS, &JWS_SIG[..100], SUBJECT, "r", NOW, &[]).unwrap_err();
    assert!(e.contains("not a JWS envelope"), "{e}");
    let e = verify_envelope("application/json", JWS_SIG, SUBJECT, "r", NOW, &[]).unwrap_err();
    assert!(e.contains("media type"), "{e}");
}

#[test]
fn trusted_identities_are_read_as_notation_writes_them() {
    assert_eq!(TrustedIdentity::parse("*").unwrap(), TrustedIdentity::Any);
    let TrustedIdentity::Subject(p) =
        TrustedIdentity::parse(r"x509.subject: C=US, ST=WA, O=Acme\, Inc., CN=release").unwrap()
    else {
        panic!()
    };
    assert!(p.contains(&("O".into(), "Acme, Inc.".into())), "{p:?}");
    assert!(TrustedIdentity::parse("x509.subject: CN=x")
        .unwrap_err()
        .contains("at least C, ST and O"));
    assert!(TrustedIdentity::parse("CN=x")
        .unwrap_err()
        .contains("x509.subject"));
    assert!(
        TrustedIdentity::parse("x509.subject: C=US, C=DE, ST=x, O=y")
            .unwrap_err()
            .contains("twice")
    );
}
