//! Signature policies enforced at pull: cosign signatures made with keys
//! (under cosign's tag and as OCI 1.1 referrers) satisfy a namespace's or
//! the platform's policy; what is unsigned, signed by another key, signed
//! for another digest or tampered with is refused with OCI `DENIED` naming
//! the policy, or, in audit mode, served and audited. Signing tools' reads
//! are never refused, so push → sign → deploy works.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::cli::{host, run, stderr, try_run, ADMIN_CREDS};
use crate::common::signing::{attach, cosign_sign, payload, Signer};
use crate::common::*;

backend_tests!(
    s3: an_enforced_policy_serves_only_what_a_trusted_key_signed,
    audit_mode_serves_and_reports_and_the_platform_default_cannot_be_loosened,
    the_console_sets_a_policy_and_shows_what_it_would_refuse,
);

fn policy(mode: &str, keys: &[(&str, &Signer)], tags: &[&str]) -> Value {
    json!({
        "mode": mode,
        "keys": keys.iter().map(|(n, s)| json!({"name": n, "public_key": s.pem})).collect::<Vec<_>>(),
        "tags": tags,
    })
}

/// A namespace `team` whose administrator is `owner` (no platform rights).
async fn team(t: &TestServer) -> reqwest::Client {
    let owner = create_account(t, "owner").await;
    let (s, v) = t
        .api_as(
            &owner,
            Method::POST,
            "/api/v1/namespaces",
            Some(json!({"name": "team"})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    owner
}

async fn an_enforced_policy_serves_only_what_a_trusted_key_signed(backend: Backend) {
    let t = TestServer::start(backend).await;
    let owner = team(&t).await;
    let release = Signer::ecdsa();
    let stranger = Signer::ed25519();
    let (signed, _) = t
        .push_image_as(&owner, "team/app", "v1", b"signed layer")
        .await;
    let (unsigned, _) = t
        .push_image_as(&owner, "team/app", "v2", b"unsigned layer")
        .await;
    let (by_referrer, _) = t
        .push_image_as(&owner, "team/app", "v3", b"referrer layer")
        .await;
    let (foreign, _) = t
        .push_image_as(&owner, "team/app", "v4", b"signed by a stranger")
        .await;
    let (moved, _) = t
        .push_image_as(&owner, "team/app", "v5", b"signature moved over")
        .await;

    // push → sign: the signing tool reads HEAD of the subject and writes
    // the signature while the policy is already enforced.
    let (s, v) = t
        .api_as(
            &owner,
            Method::PUT,
            "/api/v1/namespaces/team/signature-policy",
            Some(policy("enforce", &[("release", &release)], &[])),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["keys"][0]["kind"], "ecdsa-p256", "{v}");
    assert!(v["keys"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let head = owner
        .head(t.url(&format!("/v2/team/app/manifests/{signed}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK, "HEAD is never refused");
    let sig = cosign_sign(&t, &owner, "team/app", &signed, &release).await;
    let p = payload("elsewhere/app", &by_referrer);
    attach(
        &t,
        &owner,
        "team/app",
        &by_referrer,
        &p,
        &release.sign(&p),
        true,
    )
    .await;
    cosign_sign(&t, &owner, "team/app", &foreign, &stranger).await;
    // A valid signature of v1, pushed as if it were v5's.
    let p = payload("team/app", &signed);
    let sig_of_v1 = release.sign(&p);
    attach(&t, &owner, "team/app", &moved, &p, &sig_of_v1, false).await;

    // Signed, by tag and by digest; by cosign's tag and as a referrer.
    for reference in ["v1", signed.as_str(), "v3", by_referrer.as_str()] {
        let (s, body) = pull_manifest(&t, &owner, "team/app", reference).await;
        assert_eq!(s, StatusCode::OK, "{reference}: {body}");
    }
    // The signing tool's own reads are not governed.
    let sig_tag = format!("{}.sig", signed.replace(':', "-"));
    assert_eq!(
        pull_manifest(&t, &owner, "team/app", &sig_tag).await.0,
        StatusCode::OK
    );
    assert_eq!(
        pull_manifest(&t, &owner, "team/app", &sig).await.0,
        StatusCode::OK
    );

    for (reference, why) in [
        ("v2", "has no signature"),
        ("v4", "signed by no key the policy trusts"),
        ("v5", "the signature is for"),
    ] {
        let (s, body) = pull_manifest(&t, &owner, "team/app", reference).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{reference}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["errors"][0]["code"], "DENIED", "{body}");
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("signature policy of namespace team (enforce)")
                && message.contains(why),
            "{reference}: {message}"
        );
    }
    let (s, _) = pull_manifest(&t, &owner, "team/app", &unsigned).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "by digest too");

    // An index signed as a whole: its platform images, pulled by digest as
    // clients do after reading the index, are trusted through it; an
    // image of an unsigned index is not.
    let (amd64, m1) = t
        .push_image_as(&owner, "team/multi", "amd64-only", b"amd64")
        .await;
    let (arm64, m2) = t
        .push_image_as(&owner, "team/multi", "arm64-only", b"arm64")
        .await;
    let index = |children: &[(&str, usize)]| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": children.iter().map(|(d, n)| json!({
                "mediaType": OCI_MANIFEST, "digest": d, "size": n,
                "platform": {"os": "linux", "architecture": "amd64"}})).collect::<Vec<_>>()
        }))
        .unwrap()
    };
    let signed_index = index(&[(&amd64, m1.len())]);
    let r = t
        .put_manifest_as(&owner, "team/multi", "latest", OCI_INDEX, &signed_index)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = t
        .put_manifest_as(
            &owner,
            "team/multi",
            "other",
            OCI_INDEX,
            &index(&[(&arm64, m2.len())]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    cosign_sign(&t, &owner, "team/multi", &sha256(&signed_index), &release).await;
    let get_index = |reference: &'static str| {
        let (t, owner) = (&t, &owner);
        async move {
            owner
                .get(t.url(&format!("/v2/team/multi/manifests/{reference}")))
                .header("accept", OCI_INDEX)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // By its own tag first: the same verdict as by digest after.
    assert_eq!(
        pull_manifest(&t, &owner, "team/multi", "amd64-only")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(get_index("latest").await, StatusCode::OK);
    assert_eq!(
        pull_manifest(&t, &owner, "team/multi", &amd64).await.0,
        StatusCode::OK
    );
    assert_eq!(get_index("other").await, StatusCode::FORBIDDEN);
    let (s, body) = pull_manifest(&t, &owner, "team/multi", &arm64).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        pull_manifest(&t, &owner, "team/multi", "arm64-only")
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // A tampered payload (its bytes no longer hash to the layer's digest
    // cannot be pushed; re-hashed, the old signature no longer verifies).
    let (tampered, _) = t.push_image_as(&owner, "team/app", "v6", b"tampered").await;
    let mut p = payload("team/app", &tampered);
    let good = release.sign(&p);
    p.extend_from_slice(b" ");
    attach(&t, &owner, "team/app", &tampered, &p, &good, false).await;
    let (s, body) = pull_manifest(&t, &owner, "team/app", "v6").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");

    // The image's signatures as the API shows them.
    let (s, v) = t
        .api_as(
            &owner,
            Method::GET,
            &format!("/api/v1/namespaces/team/repositories/app/manifests/{signed}/signatures"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v[0]["verified"], true, "{v}");
    assert_eq!(v[0]["signer"], "release", "{v}");
    let (_, v) = t
        .api_as(
            &owner,
            Method::GET,
            &format!("/api/v1/namespaces/team/repositories/app/manifests/{foreign}/signatures"),
            None,
        )
        .await;
    assert_eq!(v[0]["verified"], false, "{v}");

    // The dry run names exactly the tags that would be refused.
    let (s, v) = t
        .api_as(
            &owner,
            Method::POST,
            "/api/v1/namespaces/team/signature-policy/dry-run",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut refused: Vec<&str> = v["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tag"].as_str().unwrap())
        .collect();
    refused.sort();
    refused.retain(|t| t.starts_with('v'));
    assert_eq!(refused, ["v2", "v4", "v5", "v6"], "{v}");

    // A revoked key (the policy now trusts another) blocks at once.
    let (s, _) = t
        .api_as(
            &owner,
            Method::PUT,
            "/api/v1/namespaces/team/signature-policy",
            Some(policy("enforce", &[("stranger", &stranger)], &[])),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        pull_manifest(&t, &owner, "team/app", "v1").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        pull_manifest(&t, &owner, "team/app", "v4").await.0,
        StatusCode::OK
    );

    // A tag pattern narrows the policy.
    let (s, _) = t
        .api_as(
            &owner,
            Method::PUT,
            "/api/v1/namespaces/team/signature-policy",
            Some(policy("enforce", &[("release", &release)], &["v1", "v4"])),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        pull_manifest(&t, &owner, "team/app", "v2").await.0,
        StatusCode::OK
    );
    assert_eq!(
        pull_manifest(&t, &owner, "team/app", "v4").await.0,
        StatusCode::FORBIDDEN
    );

    // Refusals are audited and counted.
    let (_, v) = t
        .api(Method::GET, "/api/v1/audit-log?per_page=200", None)
        .await;
    let audit = v["items"].to_string();
    assert!(
        audit.contains("pull.denied") && audit.contains("pull_policy.set"),
        "{audit}"
    );
    // The unsigned image was refused twice (by tag, then by digest):
    // reported once a minute per caller and image, counted each time.
    let reports = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "pull.denied" && e["target"] == format!("team/app@{unsigned}"))
        .count();
    assert_eq!(reports, 1, "{audit}");
    let metrics = t.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("berth_pull_denied_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );

    // Bad settings are refused with the reason, nothing changed.
    for (body, why) in [
        (
            json!({"mode": "enforce", "keys": []}),
            "at least one trusted key",
        ),
        (
            json!({"mode": "strict", "keys": []}),
            "use off, audit or enforce",
        ),
        (
            json!({"mode": "enforce", "keys": [{"name": "k", "public_key": "not a key"}]}),
            "not a PEM public key",
        ),
    ] {
        let (s, v) = t
            .api_as(
                &owner,
                Method::PUT,
                "/api/v1/namespaces/team/signature-policy",
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["detail"].as_str().unwrap().contains(why), "{why}: {v}");
    }
    // Not for a member without the namespace's administration, nor for
    // the platform's policy.
    let (s, _) = t
        .api_as(
            &owner,
            Method::PUT,
            "/api/v1/platform/signature-policy",
            Some(policy("enforce", &[("release", &release)], &[])),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let outsider = create_account(&t, "outsider").await;
    let (s, _) = t
        .api_as(
            &outsider,
            Method::DELETE,
            "/api/v1/namespaces/team/signature-policy",
            None,
        )
        .await;
    assert!(
        s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
        "{s}"
    );
    let (s, _) = t
        .api_as(
            &owner,
            Method::DELETE,
            "/api/v1/namespaces/team/signature-policy",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        pull_manifest(&t, &owner, "team/app", "v2").await.0,
        StatusCode::OK
    );
}

async fn audit_mode_serves_and_reports_and_the_platform_default_cannot_be_loosened(
    backend: Backend,
) {
    let t = TestServer::start(backend).await;
    let owner = team(&t).await;
    let release = Signer::ecdsa();
    let (_, _) = t.push_image_as(&owner, "team/app", "v1", b"unsigned").await;
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/webhooks",
            Some(
                json!({"name": "pulls", "url": "https://hooks.example.com/pulls",
                        "events": ["pull.denied", "pull.unverified"]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Audit: served, audited as unverified.
    let (s, v) = t
        .api(
            Method::PUT,
            "/api/v1/platform/signature-policy",
            Some(policy("audit", &[("release", &release)], &[])),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        pull_manifest(&t, &owner, "team/app", "v1").await.0,
        StatusCode::OK
    );
    let (_, v) = t
        .api(Method::GET, "/api/v1/audit-log?per_page=50", None)
        .await;
    let audit = v["items"].to_string();
    assert!(
        audit.contains("pull.unverified") && audit.contains("platform signature policy (audit)"),
        "{audit}"
    );

    // Enforced by the platform: the namespace's own "off" does not loosen it.
    let (s, _) = t
        .api(
            Method::PUT,
            "/api/v1/platform/signature-policy",
            Some(policy("enforce", &[("release", &release)], &[])),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = t
        .api_as(
            &owner,
            Method::PUT,
            "/api/v1/namespaces/team/signature-policy",
            Some(json!({"mode": "off"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, body) = pull_manifest(&t, &owner, "team/app", "v1").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("platform signature policy (enforce)"),
        "{body}"
    );
    // Members read both policies.
    let (s, v) = t
        .api_as(
            &owner,
            Method::GET,
            "/api/v1/platform/signature-policy",
            None,
        )
        .await;
    assert_eq!((s, v["mode"].as_str()), (StatusCode::OK, Some("enforce")));

    // Both verdicts reached the webhook queue.
    let (_, v) = t.api(Method::GET, "/api/v1/webhooks", None).await;
    let id = v[0]["id"].as_i64().unwrap();
    let mut kinds = String::new();
    for _ in 0..50 {
        let (_, d) = t
            .api(
                Method::GET,
                &format!("/api/v1/webhooks/{id}/deliveries"),
                None,
            )
            .await;
        kinds = d.to_string();
        if kinds.contains("pull.denied") && kinds.contains("pull.unverified") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        kinds.contains("pull.denied") && kinds.contains("pull.unverified"),
        "{kinds}"
    );
}

/// docker, podman and containerd pull images signed with a key, keyless
/// and with Notation, and are refused an unsigned one under an enforced
/// policy, with the policy's message; in audit mode it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_pull_signed_images_and_are_refused_unsigned_ones() {
    use crate::common::{notation, sigstore};
    let t = TestServer::start(Backend::Sqlite).await;
    let release = Signer::ecdsa();
    // Four valid images: signed three ways, and one not.
    let mut digests = Vec::new();
    let mut manifests = Vec::new();
    for (tag, content) in [
        ("signed", "signed and pulled\n"),
        ("unsigned", "never signed\n"),
        ("keyless", "signed keyless\n"),
        ("notation", "signed with notation\n"),
    ] {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "etc/image.txt", content.as_bytes())
            .unwrap();
        let layer = b.into_inner().unwrap();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}
        }))
        .unwrap();
        t.push_blob("e2e/signed", &config).await;
        t.push_blob("e2e/signed", &layer).await;
        let manifest = image_manifest(
            &sha256(&config),
            config.len(),
            &[(sha256(&layer), layer.len())],
            None,
        );
        let r = t
            .put_manifest("e2e/signed", tag, OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        digests.push(sha256(&manifest));
        manifests.push(manifest);
    }
    cosign_sign(&t, &t.client, "e2e/signed", &digests[0], &release).await;
    let kit = sigstore::sign(&[sigstore::Job::Statement(&digests[2])], None).await;
    let bundle = serde_json::to_vec(&kit.bundles[0]).unwrap();
    sigstore::attach_bundle(&t, &t.client, "e2e/signed", &digests[2], &bundle).await;
    let pki = notation::Pki::new();
    let envelope = pki.jws(&digests[3], manifests[3].len(), None);
    notation::attach(
        &t,
        &t.client,
        "e2e/signed",
        &digests[3],
        notation::JWS,
        &envelope,
    )
    .await;
    let mut body = policy("enforce", &[("release", &release)], &[]);
    body["keyless"] = json!([sigstore::authority("ci", &kit, "https://github.com/acme/*")]);
    body["notation"] = json!([notation::store(
        "acme",
        &pki,
        notation::IDENTITY,
        &["e2e/*"]
    )]);
    let (s, v) = t
        .api(
            Method::PUT,
            "/api/v1/namespaces/e2e/signature-policy",
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let host = host(&t);

    // docker
    crate::common::cli::docker_login(&t, "admin", ADMIN_PASSWORD).await;
    for tag in ["signed", "keyless", "notation"] {
        let out = run("docker", &["pull", &format!("{host}/e2e/signed:{tag}")]).await;
        assert!(out.status.success(), "docker {tag}: {}", stderr(&out));
    }
    let out = try_run(
        "docker",
        &["pull", &format!("{host}/e2e/signed:unsigned")],
        &[],
        None,
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("signature policy"),
        "{}",
        stderr(&out)
    );
    // Audit mode: served (and reported).
    body["mode"] = json!("audit");
    let (s, v) = t
        .api(
            Method::PUT,
            "/api/v1/namespaces/e2e/signature-policy",
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let out = run("docker", &["pull", &format!("{host}/e2e/signed:unsigned")]).await;
    assert!(out.status.success(), "audit: {}", stderr(&out));
    body["mode"] = json!("enforce");
    let (s, v) = t
        .api(
            Method::PUT,
            "/api/v1/namespaces/e2e/signature-policy",
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for tag in ["signed", "unsigned", "keyless", "notation"] {
        let _ = run(
            "docker",
            &["rmi", "-f", &format!("{host}/e2e/signed:{tag}")],
        )
        .await;
    }
    let _ = run("docker", &["logout", &host]).await;

    // podman
    let dir = tempfile::tempdir().unwrap();
    let podman = crate::common::cli::Podman::new(dir.path());
    let out = podman.login(&host, ADMIN_PASSWORD).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let auth = podman.authfile.clone();
    let pull_args = |tag: &str| {
        vec![
            "--root".to_owned(),
            format!("{}/root", dir.path().display()),
            "--runroot".to_owned(),
            format!("{}/run", dir.path().display()),
            "--storage-driver".to_owned(),
            "vfs".to_owned(),
            "pull".to_owned(),
            "--tls-verify=false".to_owned(),
            "--authfile".to_owned(),
            auth.clone(),
            format!("{host}/e2e/signed:{tag}"),
        ]
    };
    for (tag, ok) in [
        ("signed", true),
        ("unsigned", false),
        ("keyless", true),
        ("notation", true),
    ] {
        let args = pull_args(tag);
        let out = try_run(
            "podman",
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &[],
            None,
        )
        .await;
        assert_eq!(out.status.success(), ok, "podman {tag}: {}", stderr(&out));
    }

    // containerd
    let address = std::env::var("BERTH_TEST_CTR_ADDRESS")
        .expect("BERTH_TEST_CTR_ADDRESS is not set: run the suite with scripts/test.sh");
    let ns = format!("berth-sig-{}", t.server.as_ref().unwrap().addr().port());
    for (tag, ok) in [
        ("signed", true),
        ("unsigned", false),
        ("keyless", true),
        ("notation", true),
    ] {
        let reference = format!("{host}/e2e/signed:{tag}");
        let out = try_run(
            "ctr",
            &[
                "--address",
                &address,
                "-n",
                &ns,
                "images",
                "pull",
                "--plain-http",
                "--user",
                ADMIN_CREDS,
                "--platform",
                "linux/amd64",
                &reference,
            ],
            &[],
            None,
        )
        .await;
        assert_eq!(out.status.success(), ok, "ctr {tag}: {}", stderr(&out));
    }
}

/// The namespace's "Signatures" tab: its administrator sets a policy with
/// a key pasted as cosign writes it, sees the key's fingerprint, and a dry
/// run lists the tags the policy would refuse; bad keys get the reason.
async fn the_console_sets_a_policy_and_shows_what_it_would_refuse(backend: Backend) {
    use crate::common::oidc::{csrf, Browser};
    let t = TestServer::start(backend).await;
    let owner = team(&t).await;
    let release = Signer::ecdsa();
    let (signed, _) = t.push_image_as(&owner, "team/app", "v1", b"signed").await;
    t.push_image_as(&owner, "team/app", "v2", b"unsigned").await;
    cosign_sign(&t, &owner, "team/app", &signed, &release).await;

    let b = Browser::default();
    let base = &t.base;
    b.submit(
        &format!("{base}/login"),
        &[("username", "owner"), ("password", "a-long-password")],
    )
    .await;
    let (_, s, page) = b.open(&format!("{base}/namespaces/team/signatures")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("None set by the platform administrators"),
        "{page}"
    );
    let token = csrf(&page);
    let keys = format!("release\n{}", release.pem);
    let (_, _, page) = b
        .submit(
            &format!("{base}/namespaces/team/signatures"),
            &[
                ("_csrf", &token),
                ("mode", "enforce"),
                ("keys", &keys),
                ("tags", ""),
            ],
        )
        .await;
    assert!(page.contains("Signature policy saved: enforce"), "{page}");
    assert!(
        page.contains("ecdsa-p256") && page.contains("sha256:"),
        "{page}"
    );
    let (_, _, page) = b
        .open(&format!("{base}/namespaces/team/signatures?dry_run=1"))
        .await;
    assert!(
        page.contains("3 tag(s) checked: 1 would be refused"),
        "{page}"
    );
    assert!(page.contains("has no signature"), "{page}");
    let (_, s, page) = b
        .open(&format!(
            "{base}/namespaces/team/image-signatures?image=app"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("signed by release"), "{page}");
    assert!(page.contains(">unsigned<"), "{page}");

    let (_, _, page) = b
        .submit(
            &format!("{base}/namespaces/team/signatures"),
            &[
                ("_csrf", &token),
                ("mode", "enforce"),
                ("keys", "release\nnot a key"),
                ("tags", ""),
            ],
        )
        .await;
    assert!(page.contains("no PEM block"), "{page}");
    assert_eq!(
        pull_manifest(&t, &owner, "team/app", "v2").await.0,
        StatusCode::FORBIDDEN
    );

    // Members without administration see the page, cannot change it.
    let guest = create_account(&t, "guest").await;
    let (s, _) = t
        .api_as(
            &owner,
            Method::PUT,
            "/api/v1/namespaces/team/members/guest",
            Some(json!({"role": "guest"})),
        )
        .await;
    assert!(s.is_success());
    drop(guest);
    let g = Browser::default();
    g.submit(
        &format!("{base}/login"),
        &[("username", "guest"), ("password", "a-long-password")],
    )
    .await;
    let (_, s, page) = g.open(&format!("{base}/namespaces/team/signatures")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let (_, _, page) = g
        .submit(
            &format!("{base}/namespaces/team/signatures"),
            &[
                ("_csrf", &csrf(&page)),
                ("mode", "off"),
                ("keys", ""),
                ("tags", ""),
            ],
        )
        .await;
    assert!(!page.contains("Signature policy saved"), "{page}");
    assert_eq!(
        pull_manifest(&t, &owner, "team/app", "v2").await.0,
        StatusCode::FORBIDDEN
    );
}
