//! Knowing a digest is never a credential: for every way Berth resolves
//! content by digest (blob reads, mounts with and without `from`, the
//! pull-through cache and its default alias, manifests by digest, manifest
//! and index pushes that reference content, referrers, tag lists, the
//! catalog, the management API's image and tag views, upload sessions),
//! a second tenant, a registry user without grants and an anonymous client
//! try a first tenant's private digests, and get nothing.

use crate::common::reference::{client_of, push_remote, Reference};
use crate::common::relay::{free_addr, Relay};
use crate::common::*;
use reqwest::{Method, StatusCode};

backend_tests!(
    private_digests_reach_no_other_tenant,
    a_proxy_namespace_links_only_what_its_upstream_confirms,
    a_remote_that_names_a_private_digest_gets_nothing
);

/// A server with a public default proxy namespace `hub` in front of a
/// reference registry, as docs/other-registries.md configures one.
async fn server_with_proxy(b: Backend, upstream: std::net::SocketAddr) -> TestServer {
    TestServer::start_with(b, |c| {
        c.remotes = vec![berth::config::RemoteSection {
            name: "up".into(),
            url: format!("http://{upstream}"),
            ..Default::default()
        }];
        c.proxy_namespaces = vec![berth::config::ProxyNamespaceSection {
            namespace: "hub".into(),
            remote: "up".into(),
            revalidate_secs: 300,
            default: true,
            public: true,
        }];
    })
    .await
}

fn secret_layer() -> Vec<u8> {
    b"alice's private layer: do not read".repeat(100)
}

async fn status(r: reqwest::RequestBuilder) -> (StatusCode, String) {
    let r = r.send().await.expect("request");
    let s = r.status();
    (s, r.text().await.unwrap_or_default())
}

async fn private_digests_reach_no_other_tenant(b: Backend) {
    let up = Reference::start(None).await;
    let t = server_with_proxy(b, up.addr).await;
    let alice = create_account(&t, "alice").await;
    let bob = create_account(&t, "bob").await;
    let anon = anonymous_client();
    // A registry user of bob's without grants.
    let (s, v) = t
        .api_as(
            &bob,
            Method::POST,
            "/api/v1/registry-users",
            Some(serde_json::json!({"name": "bob-ci", "password": "a-long-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let robot = client_as("bob-ci", "a-long-password");

    // Alice pushes a private image; bob has a namespace of his own.
    let layer = secret_layer();
    let (manifest_digest, _) = t.push_image_as(&alice, "alice/secret", "v1", &layer).await;
    let layer_digest = sha256(&layer);
    t.push_image_as(&bob, "bob/app", "v1", b"bob's own layer")
        .await;
    let (s, v) = t.api(Method::GET, "/api/v1/namespaces/alice", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["public"], false, "created private by the push: {v}");

    let strangers: [(&str, &reqwest::Client); 3] = [
        ("bob", &bob),
        ("bob's registry user", &robot),
        ("anonymous", &anon),
    ];
    for (who, c) in strangers {
        // Alice's repository itself: refused.
        for path in [
            format!("/v2/alice/secret/blobs/{layer_digest}"),
            format!("/v2/alice/secret/manifests/{manifest_digest}"),
            "/v2/alice/secret/tags/list".to_owned(),
            format!("/v2/alice/secret/referrers/{manifest_digest}"),
        ] {
            let (s, body) = status(c.get(t.url(&path))).await;
            assert!(
                s == StatusCode::FORBIDDEN || s == StatusCode::UNAUTHORIZED,
                "{who} GET {path}: {s} {body}"
            );
        }
        // The pull-through cache, by its name and by the default alias of
        // a namespace that does not exist: the upstream never had it.
        for path in [
            format!("/v2/hub/x/blobs/{layer_digest}"),
            format!("/v2/hub/alice/secret/blobs/{layer_digest}"),
            format!("/v2/nowhere/x/blobs/{layer_digest}"),
            format!("/v2/hub/x/manifests/{manifest_digest}"),
            format!("/v2/nowhere/x/manifests/{manifest_digest}"),
        ] {
            for head in [true, false] {
                let req = if head {
                    c.head(t.url(&path))
                } else {
                    c.get(t.url(&path))
                };
                let (s, body) = status(req).await;
                assert_eq!(s, StatusCode::NOT_FOUND, "{who} {head} {path}: {body}");
                assert!(!body.contains("private layer"), "{who} {path}");
            }
        }
    }
    // Nothing was linked into the proxy namespace on the way.
    let (s, v) = t
        .api(Method::GET, "/api/v1/namespaces/hub/repositories", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 0, "{v}");

    // Bob's own repository knows nothing of alice's digests.
    for path in [
        format!("/v2/bob/app/blobs/{layer_digest}"),
        format!("/v2/bob/app/manifests/{manifest_digest}"),
    ] {
        let (s, body) = status(bob.get(t.url(&path))).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (s, body) =
        status(bob.get(t.url(&format!("/v2/bob/app/referrers/{manifest_digest}")))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(!body.contains("sha256"), "no referrers: {body}");

    // Mounts: without `from`, and from alice's repository, become uploads.
    for query in [
        format!("mount={layer_digest}"),
        format!("mount={layer_digest}&from=alice/secret"),
    ] {
        for c in [&bob, &robot_with_push(&t, &bob).await] {
            let r = c
                .post(t.url(&format!("/v2/bob/app/blobs/uploads/?{query}")))
                .send()
                .await
                .expect("mount");
            assert_eq!(r.status(), StatusCode::ACCEPTED, "{query}");
            assert!(header(&r, "location").contains("/blobs/uploads/"));
            let (s, _) = status(c.get(t.url(&format!("/v2/bob/app/blobs/{layer_digest}")))).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "mounted nothing: {query}");
        }
    }

    // Pushes that reference alice's content by digest are refused.
    let config = t.push_blob_as(&bob, "bob/app", b"{}").await;
    let m = image_manifest(&config, 2, &[(layer_digest.clone(), layer.len())], None);
    let r = t
        .put_manifest_as(&bob, "bob/app", "stolen", OCI_MANIFEST, &m)
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    let alice_manifest = t
        .get(&format!("/v2/alice/secret/manifests/{manifest_digest}"))
        .await
        .bytes()
        .await
        .expect("body");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": alice_manifest.len()}],
    });
    let r = t
        .put_manifest_as(
            &bob,
            "bob/app",
            "stolen-index",
            OCI_INDEX,
            &serde_json::to_vec(&index).expect("json"),
        )
        .await;
    assert!(r.status().is_client_error(), "index over alice's manifest");

    // An upload session of alice's cannot be continued by bob in his repo.
    let loc = t.start_upload_as(&alice, "alice/secret").await;
    let id = loc
        .rsplit('/')
        .next()
        .and_then(|s| s.split('?').next())
        .expect("id")
        .to_owned();
    let (s, _) = status(bob.get(t.url(&format!("/v2/bob/app/blobs/uploads/{id}")))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The catalog, the management API's lists and image views.
    let (s, body) = status(bob.get(t.url("/v2/_catalog"))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!body.contains("alice"), "{body}");
    for path in [
        "/api/v1/namespaces/alice/repositories/secret",
        "/api/v1/namespaces/alice/repositories/secret/tags",
        "/api/v1/namespaces/alice/repositories",
    ] {
        let (s, v) = t.api_as(&bob, Method::GET, path, None).await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
            "{path}: {s} {v}"
        );
        assert!(!v.to_string().contains(&manifest_digest), "{path}: {v}");
    }
    let (s, v) = t
        .api_as(&bob, Method::GET, "/api/v1/repositories?shared=true", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v.to_string().contains("alice"), "{v}");

    // Alice herself still reads everything.
    let (s, body) =
        status(alice.get(t.url(&format!("/v2/alice/secret/blobs/{layer_digest}")))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("private layer"));
}

/// Bob's registry user with a push grant on bob's namespace.
async fn robot_with_push(t: &TestServer, bob: &reqwest::Client) -> reqwest::Client {
    let (s, v) = t
        .api_as(
            bob,
            Method::PUT,
            "/api/v1/namespaces/bob/grants/bob-ci",
            Some(serde_json::json!({"pull": true, "push": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    client_as("bob-ci", "a-long-password")
}

/// The cache may keep serving a blob it already holds only when its
/// upstream confirms the digest: then the held bytes are linked rather
/// than fetched again.
async fn a_proxy_namespace_links_only_what_its_upstream_confirms(b: Backend) {
    let up = Reference::start(None).await;
    let relay_addr = free_addr();
    let relay = Relay::start(relay_addr, up.addr).await;
    let t = server_with_proxy(b, relay_addr).await;
    let alice = create_account(&t, "alice").await;
    // A large shared base layer: alice holds it privately, and the
    // upstream holds it too.
    let base: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    t.push_image_as(&alice, "alice/app", "v1", &base).await;
    let upstream = client_of(&up.url(), None);
    push_remote(&upstream, "library/base", "1", &base).await;
    let digest = sha256(&base);

    let anon = anonymous_client();
    let before = relay.downstream_bytes();
    let r = anon
        .get(t.url(&format!("/v2/hub/library/base/blobs/{digest}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("body").to_vec(), base);
    assert!(
        relay.downstream_bytes() - before < 100_000,
        "the upstream confirmed the digest; the bytes held were linked, not fetched again ({} bytes came)",
        relay.downstream_bytes() - before
    );
    // Under a name the upstream does not have, the same digest is unknown.
    let r = anon
        .get(t.url(&format!("/v2/hub/library/other/blobs/{digest}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// A remote registry that claims to hold a layer it does not have: it
/// names the digest and size of another tenant's private layer, answers
/// HEAD for it, and sends other bytes when asked for them.
#[derive(Clone)]
struct Liar {
    layer_digest: String,
    layer_size: usize,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

async fn liar(
    axum::extract::State(l): axum::extract::State<Liar>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::{header, StatusCode as S};
    use axum::response::IntoResponse;
    let path = req.uri().path().to_owned();
    let head = req.method() == axum::http::Method::HEAD;
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok())));
    let blob = |bytes: Vec<u8>| {
        let total = bytes.len();
        match range {
            Some((start, end)) if start < total => {
                let end = end.unwrap_or(total - 1).min(total - 1);
                (
                    S::PARTIAL_CONTENT,
                    [(
                        header::CONTENT_RANGE,
                        format!("bytes {start}-{end}/{total}"),
                    )],
                    bytes[start..=end].to_vec(),
                )
                    .into_response()
            }
            _ if head => ([(header::CONTENT_LENGTH, total.to_string())], ()).into_response(),
            _ => bytes.into_response(),
        }
    };
    if path == "/v2/" {
        return S::OK.into_response();
    }
    if path.ends_with("/tags/list") {
        return axum::Json(serde_json::json!({"name": "evil/app", "tags": ["v1"]})).into_response();
    }
    if path.contains("/manifests/") {
        return ([(header::CONTENT_TYPE, OCI_MANIFEST)], l.manifest.clone()).into_response();
    }
    if path.ends_with(&l.layer_digest) {
        // Not the layer: bytes of the right length, any others.
        return blob(vec![b'?'; l.layer_size]);
    }
    if path.ends_with(&sha256(&l.config)) {
        return blob(l.config.clone());
    }
    S::NOT_FOUND.into_response()
}

/// Through a pull rule and a pull-through cache, a remote that names
/// another tenant's private layer by digest (and lies that it holds it)
/// makes Berth link nothing: the sampled bytes differ, the fetched ones do
/// not hash to the digest.
async fn a_remote_that_names_a_private_digest_gets_nothing(b: Backend) {
    let layer = secret_layer();
    let layer_digest = sha256(&layer);
    let config = br#"{"architecture":"amd64","os":"linux","config":{}}"#.to_vec();
    let manifest = image_manifest(
        &sha256(&config),
        config.len(),
        &[(layer_digest.clone(), layer.len())],
        None,
    );
    let state = Liar {
        layer_digest: layer_digest.clone(),
        layer_size: layer.len(),
        config,
        manifest,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .fallback(axum::routing::any(liar))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let t = TestServer::start_with(b, |c| {
        c.jobs.max_attempts = 2;
        c.jobs.max_backoff_secs = 1;
        c.remotes = vec![berth::config::RemoteSection {
            name: "evil".into(),
            url: format!("http://{addr}"),
            ..Default::default()
        }];
        c.proxy_namespaces = vec![berth::config::ProxyNamespaceSection {
            namespace: "lies".into(),
            remote: "evil".into(),
            revalidate_secs: 300,
            default: false,
            public: true,
        }];
    })
    .await;
    let alice = create_account(&t, "alice").await;
    let bob = create_account(&t, "bob").await;
    t.push_image_as(&alice, "alice/secret", "v1", &layer).await;
    t.push_image_as(&bob, "mirror/own", "v1", b"bob's layer")
        .await;

    // A pull rule into bob's namespace.
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/replication/rules",
            Some(
                serde_json::json!({"name": "from-evil", "direction": "pull", "remote": "evil",
                "filters": {"repositories": {"include": ["evil/app"]}},
                "destination": "mirror", "flatten": 1}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = t
        .api(
            Method::POST,
            &format!("/api/v1/replication/rules/{}/run", v["id"]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let run = v["run"].as_i64().expect("run");
    let mut status = String::new();
    for _ in 0..300 {
        let (_, v) = t
            .api(
                Method::GET,
                &format!("/api/v1/replication/runs/{run}"),
                None,
            )
            .await;
        status = v["status"].as_str().unwrap_or_default().to_owned();
        if !["listing", "running"].contains(&status.as_str()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, "failed",
        "nothing to copy: the bytes are not the digest's"
    );
    for c in [&t.client, &bob] {
        let (s, body) =
            status_of(c.get(t.url(&format!("/v2/mirror/app/blobs/{layer_digest}")))).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    }

    // The pull-through cache, anonymously: whatever comes, never alice's.
    for _ in 0..2 {
        let r = anonymous_client()
            .get(t.url(&format!("/v2/lies/evil/app/blobs/{layer_digest}")))
            .send()
            .await
            .expect("get");
        let body = r.bytes().await.unwrap_or_default();
        assert_ne!(body.to_vec(), layer, "another tenant's layer was served");
    }
    let repo = berth_oci::RepoName::parse("lies/evil/app").expect("name");
    let digest = berth_oci::Digest::parse(&layer_digest).expect("digest");
    let linked = t
        .registry()
        .meta()
        .repo_blob_size(&repo, &digest)
        .await
        .expect("meta");
    assert_eq!(linked, None, "nothing was linked into the cache");
}

async fn status_of(r: reqwest::RequestBuilder) -> (StatusCode, String) {
    status(r).await
}
