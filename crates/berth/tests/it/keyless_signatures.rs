//! Keyless (sigstore) signatures under a signature policy, with real
//! bundles from the sigstore project's npm tooling: a DSSE statement and a
//! message signature pushed as bundle referrers (cosign's new format) and
//! cosign's older annotations all satisfy a policy trusting the CA, the log
//! and the signer's identity; a wrong identity, an expired certificate, a
//! truncated bundle and an unsigned image are refused with the reason, and
//! a tenant's view of the image names who signed.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::signing::payload;
use crate::common::sigstore::{attach_bundle, attach_legacy, authority, sign, Job, ISSUER, SIGNER};
use crate::common::*;

backend_tests!(s3: keyless_signatures_satisfy_a_policy_for_the_identities_it_names);

async fn pull(t: &TestServer, client: &reqwest::Client, reference: &str) -> (StatusCode, String) {
    pull_manifest(t, client, "team/app", reference).await
}

async fn keyless_signatures_satisfy_a_policy_for_the_identities_it_names(backend: Backend) {
    let t = TestServer::start(backend).await;
    let owner = namespace_owner(&t, "owner", "team").await;
    let mut images = Vec::new();
    for i in 1..=7 {
        let (digest, manifest) = t
            .push_image_as(
                &owner,
                "team/app",
                &format!("v{i}"),
                format!("layer {i}").as_bytes(),
            )
            .await;
        images.push((digest, manifest));
    }
    let d = |i: usize| images[i - 1].0.clone();
    let simple = payload("team/app", &d(3));
    let intruder = "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main";
    let kit = sign(
        &[
            Job::Statement(&d(1)),
            Job::Message(&images[1].1),
            Job::Message(&simple),
            Job::MessageBy(&images[4].1, intruder),
            Job::Statement(&d(7)),
        ],
        None,
    )
    .await;
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 3_600_000;
    let old = sign(&[Job::Statement(&d(6))], Some(hour_ago)).await;
    let bytes = |b: &Value| serde_json::to_vec(b).unwrap();
    attach_bundle(&t, &owner, "team/app", &d(1), &bytes(&kit.bundles[0])).await;
    attach_bundle(&t, &owner, "team/app", &d(2), &bytes(&kit.bundles[1])).await;
    attach_legacy(&t, &owner, "team/app", &d(3), &simple, &kit.bundles[2]).await;
    attach_bundle(&t, &owner, "team/app", &d(5), &bytes(&kit.bundles[3])).await;
    attach_bundle(&t, &owner, "team/app", &d(6), &bytes(&old.bundles[0])).await;
    let whole = bytes(&kit.bundles[4]);
    attach_bundle(&t, &owner, "team/app", &d(7), &whole[..whole.len() / 2]).await;

    // The namespace's administrator trusts two authorities (the current CA
    // and the one whose certificates have expired) for acme's workflows.
    let pattern = "https://github.com/acme/*";
    let (s, v) = t
        .api_as(
            &owner,
            Method::PUT,
            "/api/v1/namespaces/team/signature-policy",
            Some(json!({"mode": "enforce", "keyless": [
                authority("ci", &kit, pattern), authority("old-ci", &old, pattern)]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["keyless"][0]["name"], "ci", "{v}");
    assert_eq!(
        v["keyless"][0]["identities"][0]["subject_pattern"], pattern,
        "{v}"
    );
    assert_eq!(v["keyless"][1]["identities"][0]["issuer"], ISSUER, "{v}");

    // DSSE bundle, message bundle, older annotations: by tag and digest.
    for i in 1..=3 {
        for reference in [format!("v{i}"), d(i)] {
            let (s, body) = pull(&t, &owner, &reference).await;
            assert_eq!(s, StatusCode::OK, "{reference}: {body}");
        }
    }
    for (i, why) in [
        (4, "has no signature"),
        (
            5,
            &format!(
                "signed by {intruder} (issuer {ISSUER}), an identity the policy does not trust"
            ) as &str,
        ),
        (6, "expired"),
        (7, "not a sigstore bundle"),
    ] {
        let (s, body) = pull(&t, &owner, &format!("v{i}")).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "v{i}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["errors"][0]["code"], "DENIED", "{body}");
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("signature policy of namespace team (enforce)")
                && message.contains(why),
            "v{i}: {message}"
        );
    }

    // A member who may pull sees who signed, and why others do not count.
    let reader = create_account(&t, "reader").await;
    let (s, v) = t
        .api_as(
            &owner,
            Method::PUT,
            "/api/v1/namespaces/team/members/reader",
            Some(json!({"role": "guest"})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let signatures = |i: usize| {
        let (t, reader, digest) = (&t, &reader, d(i));
        async move {
            let (s, v) = t
                .api_as(
                    reader,
                    Method::GET,
                    &format!(
                        "/api/v1/namespaces/team/repositories/app/manifests/{digest}/signatures"
                    ),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v
        }
    };
    let v = signatures(1).await;
    assert_eq!(v[0]["verified"], true, "{v}");
    assert_eq!(v[0]["signer"], format!("{SIGNER} ({ISSUER}) via ci"), "{v}");
    assert!(
        v[0]["source"]
            .as_str()
            .unwrap()
            .starts_with("referrer sha256:"),
        "{v}"
    );
    let v = signatures(3).await;
    assert!(v[0]["source"].as_str().unwrap().ends_with(".sig"), "{v}");
    assert_eq!(v[0]["verified"], true, "{v}");
    // The tag list shows the same, on request.
    let (s, v) = t
        .api_as(
            &reader,
            Method::GET,
            "/api/v1/namespaces/team/repositories/app/tags?signatures=true&sort=name&q=v",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items[0]["name"], "v1", "{v}");
    assert_eq!(items[0]["signatures"][0]["verified"], true, "{v}");
    assert_eq!(items[3]["signatures"], json!([]), "v4 is unsigned: {v}");
    let (_, plain) = t
        .api_as(
            &reader,
            Method::GET,
            "/api/v1/namespaces/team/repositories/app/tags",
            None,
        )
        .await;
    assert!(plain["items"][0].get("signatures").is_none(), "{plain}");
    let v = signatures(6).await;
    assert_eq!(v[0]["verified"], false, "{v}");
    assert!(v[0]["problem"].as_str().unwrap().contains("expired"), "{v}");

    // Narrowing the identities to another workflow refuses what was served.
    let (s, v) = t
        .api_as(
            &owner,
            Method::PUT,
            "/api/v1/namespaces/team/signature-policy",
            Some(json!({"mode": "enforce", "keyless": [
                authority("ci", &kit, "https://github.com/acme/other/*")]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, body) = pull(&t, &owner, "v1").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");

    // Bad trust material is refused with the reason.
    for (authority, why) in [
        (
            json!({"name": "a", "certificates": kit.root_pem, "log_keys": [kit.log_key_pem], "identities": []}),
            "identities",
        ),
        (
            json!({"name": "a", "certificates": "nope", "log_keys": [kit.log_key_pem],
                "identities": [{"issuer": ISSUER, "subject": SIGNER}]}),
            "certificates",
        ),
        (
            json!({"name": "a", "certificates": kit.root_pem, "log_keys": [],
                "identities": [{"issuer": ISSUER, "subject": SIGNER}]}),
            "log keys",
        ),
        (
            json!({"name": "a", "certificates": kit.root_pem, "log_keys": [kit.log_key_pem],
                "identities": [{"issuer": ISSUER}]}),
            "exactly one of subject",
        ),
    ] {
        let (s, v) = t
            .api_as(
                &owner,
                Method::PUT,
                "/api/v1/namespaces/team/signature-policy",
                Some(json!({"mode": "enforce", "keyless": [authority]})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["detail"].as_str().unwrap().contains(why), "{why}: {v}");
    }
}
