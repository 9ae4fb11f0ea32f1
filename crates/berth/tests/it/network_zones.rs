//! Network zones: internal and external clients told apart by their source
//! address on loopback. The test servers count only 127.0.0.2 (and, behind
//! the trusted proxy 127.0.0.3, what it forwards) as internal, so ordinary
//! clients, which connect from 127.0.0.1, are external: the real clients
//! (skopeo, curl) and reqwest bound to either address.

use std::net::IpAddr;
use std::time::Instant;

use crate::common::cli::*;
use crate::common::*;
use reqwest::{Client, StatusCode};
use serde_json::json;

const INTERNAL: &str = "127.0.0.2";
const EXTERNAL: &str = "127.0.0.1";
const PROXY: &str = "127.0.0.3";

backend_tests!(external_access_switch_over_http);

fn zoned(t: &mut berth::Config) {
    t.network.internal_networks = vec![format!("{INTERNAL}/32")];
    t.network.trusted_proxies = vec![format!("{PROXY}/32")];
}

/// An admin client connecting from `from`.
fn admin_from(from: &str) -> Client {
    use base64::Engine;
    let mut headers = reqwest::header::HeaderMap::new();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    headers.insert("authorization", format!("Basic {basic}").parse().unwrap());
    Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .default_headers(headers)
        .build()
        .unwrap()
}

fn anonymous_from(from: &str) -> Client {
    Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn switch(t: &TestServer, ns: &str, body: serde_json::Value) {
    let r = admin_from(INTERNAL)
        .patch(t.url(&format!("/api/v1/namespaces/{ns}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

async fn pull_status(c: &Client, t: &TestServer, repo: &str) -> (StatusCode, String) {
    let r = c
        .get(t.url(&format!("/v2/{repo}/manifests/1")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap_or_default())
}

async fn push_status(c: &Client, t: &TestServer, repo: &str) -> StatusCode {
    c.post(t.url(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .await
        .unwrap()
        .status()
}

async fn external_access_switch_over_http(b: Backend) {
    let t = TestServer::start_with(b, zoned).await;
    let (internal, external) = (admin_from(INTERNAL), admin_from(EXTERNAL));
    t.push_image("corp/app", "1", b"app").await;

    // Switch on (the default): both zones pull and push.
    assert_eq!(
        pull_status(&external, &t, "corp/app").await.0,
        StatusCode::OK
    );
    assert_eq!(
        push_status(&external, &t, "corp/app").await,
        StatusCode::ACCEPTED
    );

    // Switch off: external pulls and pushes are refused, naming the switch.
    switch(&t, "corp", json!({"external_access": false})).await;
    let (status, body) = pull_status(&external, &t, "corp/app").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["errors"][0]["code"], "DENIED");
    assert!(body.contains("external-access switch"), "{body}");
    assert_eq!(
        push_status(&external, &t, "corp/app").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        pull_status(&internal, &t, "corp/app").await.0,
        StatusCode::OK
    );
    assert_eq!(
        push_status(&internal, &t, "corp/app").await,
        StatusCode::ACCEPTED
    );
    // Namespace-free endpoints are not affected.
    assert_eq!(
        external.get(t.url("/v2/")).send().await.unwrap().status(),
        StatusCode::OK
    );

    // Public: external pulls (anonymous too), but no external pushes.
    switch(&t, "corp", json!({"public": true})).await;
    assert_eq!(
        pull_status(&external, &t, "corp/app").await.0,
        StatusCode::OK
    );
    assert_eq!(
        pull_status(&anonymous_from(EXTERNAL), &t, "corp/app")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        push_status(&external, &t, "corp/app").await,
        StatusCode::FORBIDDEN
    );

    // A trusted proxy's X-Forwarded-For is believed; anyone else's is not.
    switch(&t, "corp", json!({"public": false})).await;
    let via = |from: &str, forwarded: &str| {
        admin_from(from)
            .get(t.url("/v2/corp/app/manifests/1"))
            .header("x-forwarded-for", forwarded.to_owned())
            .send()
    };
    assert_eq!(via(PROXY, INTERNAL).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        via(PROXY, "203.0.113.9").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        via(EXTERNAL, INTERNAL).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    // Back on: external pushes work again.
    switch(&t, "corp", json!({"external_access": true})).await;
    assert_eq!(
        push_status(&external, &t, "corp/app").await,
        StatusCode::ACCEPTED
    );
}

/// skopeo (external) against the switch, and the external download cap
/// measured with real clients: skopeo and curl from the external address
/// are held to the cap, curl from the internal address is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_across_zones() {
    const CAP: u64 = 1 << 20;
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        zoned(c);
        c.network.external_bandwidth = CAP;
    })
    .await;
    let layer: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let config =
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = t.push_blob("zone/big", config.as_bytes()).await;
    let layer_digest = t.push_blob("zone/big", &layer).await;
    let manifest = image_manifest(
        &config_digest,
        config.len(),
        &[(layer_digest.clone(), layer.len())],
        None,
    );
    assert_eq!(
        t.put_manifest("zone/big", "1", OCI_MANIFEST, &manifest)
            .await
            .status(),
        StatusCode::CREATED
    );
    let registry = host(&t);
    let src = format!("docker://{registry}/zone/big:1");
    let creds = format!("admin:{ADMIN_PASSWORD}");
    let dir = tempfile::tempdir().unwrap();

    // The switch off: skopeo (external) is refused and says why.
    switch(&t, "zone", json!({"external_access": false})).await;
    let dest = format!("dir:{}", dir.path().join("refused").display());
    let out = try_run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &src,
            &dest,
        ],
        &[],
        None,
    )
    .await;
    assert!(!out.status.success(), "skopeo copied despite the switch");
    assert!(
        stderr(&out).contains("external-access switch"),
        "{}",
        stderr(&out)
    );

    // On again: skopeo copies, held to the cap (3 MiB at 1 MiB/s).
    switch(&t, "zone", json!({"external_access": true})).await;
    let dest = format!("dir:{}", dir.path().join("copied").display());
    let start = Instant::now();
    run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &src,
            &dest,
        ],
    )
    .await;
    let external_secs = start.elapsed().as_secs_f64();
    let copied = std::fs::read(
        dir.path()
            .join("copied")
            .join(layer_digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert_eq!(copied, layer, "the layer arrives intact");
    assert!(
        external_secs >= 2.5,
        "3 MiB at a 1 MiB/s cap took only {external_secs:.2} s"
    );

    // curl: from the external address capped, from the internal one not.
    let url = t.url(&format!("/v2/zone/big/blobs/{layer_digest}"));
    for (from, capped) in [(EXTERNAL, true), (INTERNAL, false)] {
        let out_file = dir.path().join(format!("curl-{from}"));
        let start = Instant::now();
        run(
            "curl",
            &[
                "-sf",
                "--interface",
                from,
                "-u",
                &creds,
                "-o",
                out_file.to_str().unwrap(),
                &url,
            ],
        )
        .await;
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(std::fs::read(&out_file).unwrap(), layer);
        if capped {
            assert!(secs >= 2.5, "external curl took only {secs:.2} s");
        } else {
            // Uncapped, 3 MiB over loopback takes milliseconds; at the cap it
            // would take 3 s.
            assert!(secs < 2.0, "internal curl took {secs:.2} s");
        }
    }
}
