//! TLS: Berth serves /v2 over rustls from a certificate and key file.

use crate::common::*;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tls_with_configured_certificate() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let dir = tempfile::tempdir().expect("dir");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).expect("cert");
    std::fs::write(&key_path, certified.key_pair.serialize_pem()).expect("key");
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.tls = Some(berth::config::TlsConfig {
            cert: cert_path.clone(),
            key: key_path.clone(),
        });
    })
    .await;
    let port = t.server.as_ref().expect("server").addr().port();
    let client = reqwest::Client::builder()
        .default_headers({
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(
                reqwest::header::AUTHORIZATION,
                reqwest::header::HeaderValue::from_static(
                    "Basic YWRtaW46dGVzdC1hZG1pbi1wYXNzd29yZA==",
                ),
            );
            h
        })
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("pem"),
        )
        .build()
        .expect("client");
    let r = client
        .get(format!("https://localhost:{port}/v2/"))
        .send()
        .await
        .expect("https request");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "docker-distribution-api-version"),
        "registry/2.0"
    );
    // Plain HTTP on the TLS port does not get a registry answer.
    let plain = reqwest::get(format!("http://localhost:{port}/v2/")).await;
    assert!(plain.map(|r| r.status() != StatusCode::OK).unwrap_or(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_with_missing_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let config = berth::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().to_path_buf(),
        tls: Some(berth::config::TlsConfig {
            cert: dir.path().join("none.pem"),
            key: dir.path().join("none.key"),
        }),
        ..berth::Config::default()
    };
    let err = berth::start(config).await.expect_err("must not start");
    assert!(format!("{err:#}").contains("none.pem"), "{err:#}");
}
