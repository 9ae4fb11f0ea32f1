//! berth-client against a hostile registry (a small axum server of the
//! test's own on loopback): a remote's credentials go only to its own
//! host or a token realm configured with it, never to whatever realm or
//! upload location it names; answers it reads whole are bounded; and it
//! follows no redirect from HTTPS to plain HTTP.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use berth_client::{ClientError, ClientOptions, Credentials, RegistryClient};
use berth_oci::{Algorithm, Digest};

/// What a server saw: (path, the Authorization header if any).
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// How the hostile registry behaves.
#[derive(Clone)]
struct Hostile {
    /// Where it sends clients for tokens.
    realm: String,
    /// Where upload sessions live.
    upload_location: String,
    /// Bytes of the manifest it serves.
    manifest_len: usize,
    seen: Seen,
}

async fn registry(State(h): State<Hostile>, req: Request) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = req.uri().path().to_owned();
    h.seen
        .lock()
        .expect("lock")
        .push((path.clone(), auth.clone()));
    if auth.is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                format!("Bearer realm=\"{}\",service=\"hostile\"", h.realm),
            )],
        )
            .into_response();
    }
    if path.ends_with("/blobs/uploads/") {
        return (
            StatusCode::ACCEPTED,
            [(header::LOCATION, h.upload_location.clone())],
        )
            .into_response();
    }
    if path.contains("/manifests/") {
        let body = format!(
            "{{\"schemaVersion\":2,\"pad\":\"{}\"}}",
            "x".repeat(h.manifest_len.saturating_sub(30))
        );
        return (
            [(
                header::CONTENT_TYPE,
                "application/vnd.oci.image.manifest.v1+json",
            )],
            body,
        )
            .into_response();
    }
    if path.ends_with("/tags/list") {
        // A page far larger than any tag list.
        let tags: Vec<String> = (0..2_000_000).map(|i| format!("t{i:08}")).collect();
        return axum::Json(serde_json::json!({"name": "x", "tags": tags})).into_response();
    }
    StatusCode::OK.into_response()
}

/// A token service (or any other host) that records what it receives.
async fn recorder(State(seen): State<Seen>, req: Request) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    seen.lock()
        .expect("lock")
        .push((req.uri().path().to_owned(), auth));
    if req.uri().path().starts_with("/token") {
        return axum::Json(serde_json::json!({"token": "t0ken", "expires_in": 300}))
            .into_response();
    }
    StatusCode::ACCEPTED.into_response()
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn client(url: &str, token_realm: Option<String>) -> RegistryClient {
    RegistryClient::new(
        url,
        ClientOptions {
            credentials: Some(Credentials {
                username: "robot".into(),
                password: "the-remote-password".into(),
            }),
            token_realm,
            ..ClientOptions::default()
        },
    )
    .expect("client")
}

fn credentials_in(seen: &Seen) -> usize {
    seen.lock()
        .expect("lock")
        .iter()
        .filter(|(_, a)| a.as_deref().is_some_and(|a| a.starts_with("Basic")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_only_to_the_remote_or_its_configured_realm() {
    let elsewhere: Seen = Arc::default();
    let other = serve(
        axum::Router::new()
            .fallback(any(recorder))
            .with_state(elsewhere.clone()),
    )
    .await;
    // The token service is on another host: "localhost", where the
    // registry is "127.0.0.1".
    let realm = format!("http://localhost:{}/token", other.port());
    let hostile = Hostile {
        realm: realm.clone(),
        upload_location: format!("http://localhost:{}/uploads/1", other.port()),
        manifest_len: 100,
        seen: Arc::default(),
    };
    let addr = serve(
        axum::Router::new()
            .fallback(any(registry))
            .with_state(hostile.clone()),
    )
    .await;
    let url = format!("http://{addr}");

    // Unconfigured: refused, and the other host saw no credentials.
    let e = client(&url, None)
        .manifest("x", "latest")
        .await
        .expect_err("refused");
    assert!(matches!(e, ClientError::Unauthorized(_)), "{e}");
    assert!(e.to_string().contains("token realm"), "{e}");
    assert_eq!(credentials_in(&elsewhere), 0);

    // Named with the remote: the credentials go there, the token comes back.
    let c = client(
        &url,
        Some(format!("http://localhost:{}/token", other.port())),
    );
    let m = c.manifest("x", "latest").await.expect("manifest");
    assert!(m.is_some());
    assert_eq!(
        credentials_in(&elsewhere),
        1,
        "the configured realm got them"
    );
    let tokens_asked = credentials_in(&elsewhere);
    // An upload location on another host gets no credentials, nor the token.
    let upload = c.start_upload("x").await.expect("upload");
    assert!(upload.location.as_str().contains("/uploads/1"));
    let _ = c
        .upload_chunk(
            "x",
            &upload,
            0,
            1,
            futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"a"))]),
        )
        .await;
    let sent: Vec<_> = elsewhere
        .lock()
        .expect("lock")
        .iter()
        .filter(|(path, _)| path.starts_with("/uploads"))
        .cloned()
        .collect();
    assert!(!sent.is_empty(), "the chunk went to the location");
    assert!(sent.iter().all(|(_, auth)| auth.is_none()), "{sent:?}");
    // Only the token service got credentials (once more, for push).
    let seen = elsewhere.lock().expect("lock").clone();
    for (path, auth) in &seen {
        if auth.as_deref().is_some_and(|a| a.starts_with("Basic")) {
            assert!(path.starts_with("/token"), "credentials sent to {path}");
        }
    }
    assert!(credentials_in(&elsewhere) > tokens_asked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_read_whole_are_bounded() {
    let tokens: Seen = Arc::default();
    let auth = serve(
        axum::Router::new()
            .fallback(any(recorder))
            .with_state(tokens.clone()),
    )
    .await;
    let hostile = Hostile {
        realm: format!("http://127.0.0.1:{}/token", auth.port()),
        upload_location: "/v2/x/blobs/uploads/1".into(),
        manifest_len: 5 << 20,
        seen: Arc::default(),
    };
    let addr = serve(
        axum::Router::new()
            .fallback(any(registry))
            .with_state(hostile),
    )
    .await;
    let c = client(&format!("http://{addr}"), None);
    let too_large = |what: &str, e: Option<ClientError>| match e {
        Some(e) => assert!(e.to_string().contains("more than"), "{what}: {e}"),
        None => panic!("{what}: read whole"),
    };
    too_large("manifest", c.manifest("x", "latest").await.err());
    too_large("tag list", c.tags("x").await.err());
    let d = Digest::of_bytes(Algorithm::Sha256, b"x");
    too_large(
        "manifest by digest",
        c.manifest("x", d.as_str()).await.err(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_realm_that_downgrades_is_refused() {
    // An HTTPS remote may only name an HTTPS token service, and may not be
    // configured with a plain-HTTP one.
    let e = RegistryClient::new(
        "https://registry.example",
        ClientOptions {
            token_realm: Some("http://auth.example/token".into()),
            ..ClientOptions::default()
        },
    )
    .expect_err("refused");
    assert!(e.to_string().contains("https"), "{e}");
}
