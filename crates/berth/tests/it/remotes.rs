//! Remote registries on both databases, against the reference registry
//! with Basic authentication: register, test the connection, passwords
//! sealed at rest and never shown, declared remotes read-only, and who may
//! do what.

use crate::common::reference::Reference;
use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

backend_tests!(remote_registries_are_registered_tested_and_sealed);

const KEY: &str = "an-encryption-key-of-at-least-32-characters";

async fn remote_registries_are_registered_tested_and_sealed(b: Backend) {
    let dr = Reference::start(Some(("alice", "alice-password"))).await;
    let open = Reference::start(None).await;
    let declared_url = open.url();
    let mut t = TestServer::start_with(b, |c| {
        c.encryption_key = Some(berth::config::Secret::new(KEY));
        c.remotes = vec![berth::config::RemoteSection {
            name: "upstream".into(),
            url: declared_url.clone(),
            ..Default::default()
        }];
    })
    .await;
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/remotes",
            Some(json!({"name": "dr", "url": dr.url(), "username": "alice", "password": "alice-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["has_password"], true);
    assert!(v.get("password").is_none(), "{v}");
    assert!(!v.to_string().contains("alice-password"));
    let (s, v) = t.api(Method::GET, "/api/v1/remotes", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let names: Vec<(&str, bool)> = v
        .as_array()
        .expect("list")
        .iter()
        .map(|r| (r["name"].as_str().expect("name"), r["read_only"] == true))
        .collect();
    assert_eq!(names, [("upstream", true), ("dr", false)]);
    assert!(!v.to_string().contains("alice-password"));

    // The connection works; the stored password is sealed.
    let (s, v) = t.api(Method::POST, "/api/v1/remotes/dr/test", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    let stored = t
        .registry()
        .platform()
        .remote("dr")
        .await
        .expect("read")
        .expect("stored");
    let sealed = stored.password_sealed.expect("sealed");
    assert!(
        sealed.starts_with("v1:") && !sealed.contains("alice"),
        "{sealed}"
    );
    // A wrong password: the test says so.
    let (s, v) = t
        .api(
            Method::PATCH,
            "/api/v1/remotes/dr",
            Some(json!({"password": "wrong-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = t.api(Method::POST, "/api/v1/remotes/dr/test", None).await;
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("refused"),
        "{v}"
    );
    // The declared one answers without credentials and is read-only.
    let (_, v) = t
        .api(Method::POST, "/api/v1/remotes/upstream/test", None)
        .await;
    assert_eq!(v["ok"], true, "{v}");
    for (method, body) in [
        (Method::PATCH, Some(json!({"url": "http://example.com"}))),
        (Method::DELETE, None),
    ] {
        let (s, v) = t.api(method, "/api/v1/remotes/upstream", body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("configuration"),
            "{v}"
        );
    }
    // A stopped registry: the test says it cannot be reached.
    let url = open.url();
    open.stop().await;
    let (_, v) = t
        .api(Method::POST, "/api/v1/remotes/upstream/test", None)
        .await;
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["message"].as_str().unwrap_or_default().contains("reach"),
        "{url}: {v}"
    );

    // Bad input, clear errors.
    for (body, status) in [
        (
            json!({"name": "Bad Name", "url": dr.url()}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "url": "ftp://example.com"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "url": "http://u:p@example.com"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "url": dr.url(), "password": "lonely"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "url": dr.url(), "ca_certificate": "not a certificate"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"name": "dr", "url": dr.url()}), StatusCode::CONFLICT),
        (
            json!({"name": "upstream", "url": dr.url()}),
            StatusCode::CONFLICT,
        ),
    ] {
        let (s, v) = t
            .api(Method::POST, "/api/v1/remotes", Some(body.clone()))
            .await;
        assert_eq!(s, status, "{body}: {v}");
    }
    // A real CA certificate is kept and shown.
    let ca = rcgen::generate_simple_self_signed(vec!["registry.internal".to_owned()])
        .expect("cert")
        .cert
        .pem();
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/remotes",
            Some(json!({"name": "tls", "url": "https://registry.internal", "ca_certificate": ca})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["ca_certificate"], ca);
    let (s, _) = t.api(Method::GET, "/api/v1/remotes/nope", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Platform administrators only.
    let bob = create_account(&t, "bob").await;
    let (s, _) = t.api_as(&bob, Method::GET, "/api/v1/remotes", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .api_as(&bob, Method::POST, "/api/v1/remotes/dr/test", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Without the key, what is sealed does not open: the server says so
    // instead of starting (the token signing key is sealed too).
    if let Some(s) = t.server.take() {
        s.shutdown().await.expect("shutdown");
    }
    let mut config = t.config();
    config.remotes.clear();
    let e = berth::start(config).await.expect_err("refused");
    assert!(format!("{e:#}").contains("encryption key"), "{e:#}");
    t.restart_with(|c| c.encryption_key = Some(berth::config::Secret::new(KEY)))
        .await;
    // A server without a key stores no passwords.
    let keyless = TestServer::start(b).await;
    let (s, v) = keyless
        .api(
            Method::POST,
            "/api/v1/remotes",
            Some(json!({"name": "other", "url": dr.url(), "username": "alice", "password": "alice-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("encryption_key"),
        "{v}"
    );
    // Deleted, and audited.
    let (s, _) = t.api(Method::DELETE, "/api/v1/remotes/dr", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let actions = audit_actions(&t).await;
    for a in ["remote.create", "remote.update", "remote.delete"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}
