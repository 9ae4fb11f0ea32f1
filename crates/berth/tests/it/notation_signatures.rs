//! Notation signatures under a signature policy: JWS and COSE envelopes
//! made as the Notary Project specifies (a CA, a code-signing leaf, ES256)
//! and pushed as referrers satisfy a policy with a trust store, trusted
//! identities and registry scopes; an envelope over another digest, an
//! expired signature, another CA's signer, an untrusted identity and a
//! repository outside the scopes are refused with the reason.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::notation::{attach, store, Pki, COSE, IDENTITY, JWS};
use crate::common::*;

backend_tests!(notation_signatures_satisfy_a_policy_through_its_trust_store);

async fn notation_signatures_satisfy_a_policy_through_its_trust_store(backend: Backend) {
    let t = TestServer::start(backend).await;
    let owner = namespace_owner(&t, "owner", "team").await;
    let acme = Pki::new();
    let stranger = Pki::new();
    let mut images = Vec::new();
    for i in 1..=5 {
        images.push(
            t.push_image_as(
                &owner,
                "team/app",
                &format!("v{i}"),
                format!("notation {i}").as_bytes(),
            )
            .await,
        );
    }
    let (elsewhere, em) = t
        .push_image_as(&owner, "team/other", "v1", b"outside the scopes")
        .await;
    let d = |i: usize| images[i - 1].0.clone();
    let n = |i: usize| images[i - 1].1.len();
    attach(
        &t,
        &owner,
        "team/app",
        &d(1),
        JWS,
        &acme.jws(&d(1), n(1), None),
    )
    .await;
    attach(&t, &owner, "team/app", &d(2), COSE, &acme.cose(&d(2), n(2))).await;
    // v1's signature attached to v3; v4's expired on 2026-01-01; v5 by
    // another CA's signer with the same subject.
    attach(
        &t,
        &owner,
        "team/app",
        &d(3),
        JWS,
        &acme.jws(&d(1), n(1), None),
    )
    .await;
    attach(
        &t,
        &owner,
        "team/app",
        &d(4),
        JWS,
        &acme.jws(&d(4), n(4), Some("2026-01-01T00:00:00Z")),
    )
    .await;
    attach(
        &t,
        &owner,
        "team/app",
        &d(5),
        JWS,
        &stranger.jws(&d(5), n(5), None),
    )
    .await;
    attach(
        &t,
        &owner,
        "team/other",
        &elsewhere,
        JWS,
        &acme.jws(&elsewhere, em.len(), None),
    )
    .await;

    let set = |identity: &'static str| {
        let (t, owner, acme) = (&t, &owner, &acme);
        async move {
            let (s, v) = t
                .api_as(
                    owner,
                    Method::PUT,
                    "/api/v1/namespaces/team/signature-policy",
                    Some(json!({"mode": "enforce",
                                "notation": [store("acme", acme, identity, &["team/app"])]})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v
        }
    };
    let v = set(IDENTITY).await;
    assert_eq!(v["notation"][0]["registry_scopes"][0], "team/app", "{v}");
    assert_eq!(v["notation"][0]["trusted_identities"][0], IDENTITY, "{v}");

    for (i, reference) in [
        (1, "v1".to_owned()),
        (1, d(1)),
        (2, "v2".to_owned()),
        (2, d(2)),
    ] {
        let (s, body) = pull_manifest(&t, &owner, "team/app", &reference).await;
        assert_eq!(s, StatusCode::OK, "v{i} {reference}: {body}");
    }
    for (repo, reference, why) in [
        ("team/app", "v3", "is for sha256:"),
        ("team/app", "v4", "the signature has expired"),
        (
            "team/app",
            "v5",
            "acme: the signer's chain is not from its certificates",
        ),
        (
            "team/other",
            "v1",
            "no Notation trust store of the policy speaks for team/other",
        ),
    ] {
        let (s, body) = pull_manifest(&t, &owner, repo, reference).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{repo}:{reference}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["errors"][0]["code"], "DENIED", "{body}");
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{repo}:{reference}: {message}");
    }

    // The image view names the signer and the store.
    let (s, v) = t
        .api_as(
            &owner,
            Method::GET,
            &format!(
                "/api/v1/namespaces/team/repositories/app/manifests/{}/signatures",
                d(2)
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v[0]["verified"], true, "{v}");
    let signer = v[0]["signer"].as_str().unwrap();
    assert!(
        signer.ends_with(" via acme (Notation)")
            && signer.contains("CN=release")
            && signer.contains("L=Seattle"),
        "{v}"
    );

    // Another trusted identity: the same signatures no longer count.
    set("x509.subject: C=US, ST=WA, O=acme, CN=nightly").await;
    let (s, body) = pull_manifest(&t, &owner, "team/app", "v1").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("is not a trusted identity"), "{body}");

    // Bad trust stores are refused with the reason.
    for (bad, why) in [
        (
            json!({"name": "a", "certificates": acme.ca_pem, "trusted_identities": ["CN=release"],
                "registry_scopes": ["*"]}),
            "x509.subject",
        ),
        (
            json!({"name": "a", "certificates": acme.ca_pem, "trusted_identities": ["x509.subject: CN=x"],
                "registry_scopes": ["*"]}),
            "at least C, ST and O",
        ),
        (
            json!({"name": "a", "certificates": acme.ca_pem, "trusted_identities": ["*"],
                "registry_scopes": []}),
            "registry scopes",
        ),
        (
            json!({"name": "a", "certificates": "x", "trusted_identities": ["*"],
                "registry_scopes": ["*"]}),
            "certificates",
        ),
    ] {
        let (s, v) = t
            .api_as(
                &owner,
                Method::PUT,
                "/api/v1/namespaces/team/signature-policy",
                Some(json!({"mode": "enforce", "notation": [bad]})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["detail"].as_str().unwrap().contains(why), "{why}: {v}");
    }
}

/// The platform administrators' "Signature policy" page: a Notation trust
/// store typed as the page explains, in audit mode; namespace members see
/// it on their Signatures tab; others are refused the page.
#[tokio::test]
async fn the_console_sets_the_platform_policy() {
    use crate::common::oidc::{csrf, Browser};
    let t = TestServer::start(Backend::Sqlite).await;
    let owner = namespace_owner(&t, "owner", "team").await;
    let acme = Pki::new();
    let (signed, m) = t.push_image_as(&owner, "team/app", "v1", b"signed").await;
    t.push_image_as(&owner, "team/app", "v2", b"unsigned").await;
    attach(
        &t,
        &owner,
        "team/app",
        &signed,
        COSE,
        &acme.cose(&signed, m.len()),
    )
    .await;

    let base = &t.base;
    let admin = Browser::default();
    admin
        .submit(
            &format!("{base}/login"),
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await;
    let (_, s, page) = admin.open(&format!("{base}/signatures")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("None set"), "{page}");
    let stores = format!(
        "store acme\nidentity {IDENTITY}\nscope team/*\n{}",
        acme.ca_pem
    );
    let (_, _, page) = admin
        .submit(
            &format!("{base}/signatures"),
            &[
                ("_csrf", &csrf(&page)),
                ("mode", "audit"),
                ("notation", &stores),
            ],
        )
        .await;
    assert!(page.contains("Signature policy saved: audit"), "{page}");
    assert!(
        page.contains("Notation trust store") && page.contains("team/*"),
        "{page}"
    );
    // What was typed comes back as typed.
    assert!(
        page.contains("store acme") && page.contains("scope team/*"),
        "{page}"
    );
    let (_, _, page) = admin
        .submit(
            &format!("{base}/signatures"),
            &[
                ("_csrf", &csrf(&page)),
                ("mode", "enforce"),
                ("notation", "store x\nscope *"),
            ],
        )
        .await;
    assert!(page.contains("no CERTIFICATE block"), "{page}");
    assert!(
        page.contains("Mode <strong>audit</strong>"),
        "unchanged: {page}"
    );

    // Audit mode: both served; the member's tab shows the platform's store.
    assert_eq!(
        pull_manifest(&t, &owner, "team/app", "v1").await.0,
        StatusCode::OK
    );
    assert_eq!(
        pull_manifest(&t, &owner, "team/app", "v2").await.0,
        StatusCode::OK
    );
    let b = Browser::default();
    b.submit(
        &format!("{base}/login"),
        &[("username", "owner"), ("password", "a-long-password")],
    )
    .await;
    let (_, _, page) = b.open(&format!("{base}/namespaces/team/signatures")).await;
    assert!(
        page.contains("Notation trust store") && page.contains(">acme<"),
        "{page}"
    );
    let (_, _, page) = b
        .open(&format!(
            "{base}/namespaces/team/image-signatures?image=app"
        ))
        .await;
    assert!(page.contains("via acme (Notation)"), "{page}");
    let (_, s, _) = b.open(&format!("{base}/signatures")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
