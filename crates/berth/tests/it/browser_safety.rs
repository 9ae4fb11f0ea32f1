//! Nothing a tenant pushes runs in the console's origin: manifests are
//! JSON only, every /v2, token and API answer tells a browser to treat it
//! as inert data, blob downloads are attachments, the console allows only
//! its own script and style and no framing, the CSRF token goes only to
//! the console's own pages, and the login's `next` never leaves the site.

use crate::common::*;
use reqwest::{Method, StatusCode};

backend_tests!(
    manifests_are_json_types_only,
    registry_and_api_answers_are_inert,
    console_pages_allow_only_their_own_script,
    login_redirects_stay_on_the_site,
);

const HTML: &str = r#"{"schemaVersion":2,"mediaType":"text/html","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"x":"<script>fetch('/api/v1/session')</script>"}"#;

fn assert_inert(r: &reqwest::Response, what: &str) {
    assert_eq!(header(r, "x-content-type-options"), "nosniff", "{what}");
    let csp = header(r, "content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{what}: {csp}"
    );
}

async fn manifests_are_json_types_only(b: Backend) {
    let mut t = TestServer::start(b).await;
    let tenant = create_account(&t, "mallory").await;
    t.push_blob_as(&tenant, "mallory/page", b"{}").await;
    // What a browser renders or runs is refused as a manifest type,
    // whether the Content-Type or the body says it.
    for content_type in [
        "text/html",
        "text/html; charset=utf-8",
        "application/xhtml+xml",
        "image/svg+xml",
        "application/javascript",
        "text/plain",
    ] {
        let body = HTML.replace("text/html", content_type.split(';').next().unwrap_or(""));
        let r = t
            .put_manifest_as(&tenant, "mallory/page", "x", content_type, body.as_bytes())
            .await;
        assert_error(r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    }
    let r = tenant
        .put(t.url("/v2/mallory/page/manifests/x"))
        .body(HTML)
        .send()
        .await
        .expect("put");
    assert_error(r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    let r = t.get("/v2/mallory/page/tags/list").await;
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(v["tags"].as_array().is_none_or(|t| t.is_empty()), "{v}");

    // A JSON artifact type of one's own is still a manifest.
    let artifact =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json","payload":1}"#;
    let r = t
        .put_manifest_as(
            &tenant,
            "mallory/page",
            "thing",
            "application/vnd.example.thing+json",
            artifact,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // A manifest stored with a page's type before this rule (written
    // straight into the database) is served as bytes, not as a page.
    let digest = sha256(artifact);
    sql_elsewhere(
        &t,
        &format!("UPDATE manifests SET media_type = 'text/html' WHERE digest = '{digest}'"),
    )
    .await;
    t.restart().await;
    for path in [
        "/v2/mallory/page/manifests/thing".to_owned(),
        format!("/v2/mallory/page/manifests/{digest}"),
    ] {
        let r = t.get(&path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header(&r, "content-type"),
            "application/octet-stream",
            "{path}"
        );
        assert_inert(&r, &path);
    }
}

async fn registry_and_api_answers_are_inert(b: Backend) {
    let t = TestServer::start(b).await;
    let (digest, _) = t.push_image("team/app", "v1", b"layer bytes").await;
    let layer = sha256(b"layer bytes");
    let anon = anonymous_client();
    for (what, r) in [
        ("manifest", t.get("/v2/team/app/manifests/v1").await),
        (
            "manifest by digest",
            t.get(&format!("/v2/team/app/manifests/{digest}")).await,
        ),
        ("tag list", t.get("/v2/team/app/tags/list").await),
        ("catalog", t.get("/v2/_catalog").await),
        ("base", t.get("/v2/").await),
        ("unknown", t.get("/v2/team/app/manifests/nope").await),
        ("not an endpoint", t.get("/v2/%3Cscript%3E").await),
        (
            "anonymous challenge",
            anon.get(t.url("/v2/team/app/tags/list"))
                .send()
                .await
                .expect("get"),
        ),
        (
            "token",
            t.client
                .get(t.url("/auth/token?service=berth&scope=repository:team/app:pull"))
                .send()
                .await
                .expect("token"),
        ),
        ("api", t.get("/api/v1/namespaces").await),
        ("api problem", t.get("/api/v1/namespaces/nope").await),
        ("api unknown", t.get("/api/v1/%3Cscript%3E").await),
        ("openapi", t.get("/api/v1/openapi.json").await),
        ("health", t.get("/healthz").await),
    ] {
        if what == "health" {
            assert_eq!(header(&r, "x-content-type-options"), "nosniff");
            continue;
        }
        assert_inert(&r, what);
    }
    // Blob downloads are attachments of bytes, ranged or whole.
    for range in [None, Some("bytes=0-3")] {
        let mut req = t.client.get(t.url(&format!("/v2/team/app/blobs/{layer}")));
        if let Some(r) = range {
            req = req.header("range", r);
        }
        let r = req.send().await.expect("get");
        assert!(r.status().is_success());
        assert_eq!(header(&r, "content-type"), "application/octet-stream");
        assert_eq!(header(&r, "content-disposition"), "attachment");
        assert_inert(&r, "blob");
    }
    let (s, _) = t.api(Method::GET, "/api/v1/session", None).await;
    assert_eq!(s, StatusCode::OK);
}

async fn console_pages_allow_only_their_own_script(b: Backend) {
    let t = TestServer::start(b).await;
    let anon = anonymous_client();
    for path in ["/login", "/namespaces", "/no-such-page", "/assets/app.js"] {
        let r = anon.get(t.url(path)).send().await.expect("get");
        let csp = header(&r, "content-security-policy");
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header(&r, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&r, "referrer-policy"), "same-origin", "{path}");
    }
    // No page carries inline script or style for the policy to block.
    let r = anon.get(t.url("/login")).send().await.expect("get");
    let page = r.text().await.expect("body");
    assert!(
        !page.contains("style=\"") && !page.contains("<script>"),
        "{page}"
    );
}

async fn login_redirects_stay_on_the_site(b: Backend) {
    let t = TestServer::start(b).await;
    let anon = anonymous_client();
    for next in [
        "/\t/evil.example",
        "/\n/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
    ] {
        let r = anon
            .post(t.url("/login"))
            .form(&[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(header(&r, "location"), "/namespaces", "{next:?}");
        // Nor does the login form carry it on.
        let r = anon
            .get(t.url("/login"))
            .query(&[("next", next)])
            .send()
            .await
            .expect("page");
        let page = r.text().await.expect("body");
        assert!(!page.contains("evil.example"), "{next:?}");
    }
    let r = anon
        .post(t.url("/login"))
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "/images?namespace=a"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(header(&r, "location"), "/images?namespace=a");
}
