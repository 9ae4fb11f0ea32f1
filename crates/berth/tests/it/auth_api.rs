//! Token authentication and access control over real HTTP, for both
//! metadata backends: the token endpoint, bearer and Basic credentials, the
//! authorization matrix, catalog filtering, auto-created namespaces, login
//! throttling and token expiry.

use crate::common::*;
use berth_core::access::{Principal, Role};
use berth_core::{NamespaceSpec, RegistryUserSpec};
use reqwest::{Method, StatusCode};

backend_tests!(
    token_endpoint_grants_the_intersection,
    oauth_password_and_refresh_grants,
    bearer_tokens_on_v2,
    mount_without_pull_on_its_source_is_a_plain_upload,
    authorization_matrix,
    catalog_lists_only_what_the_caller_can_pull,
    push_creates_a_missing_namespace,
    a_token_for_a_namespace_to_create_grants_pull_and_push,
    failed_logins_are_throttled_per_user_and_client,
    tokens_expire,
    namespaces_per_group_limit,
);

/// A world with a team, a private and a public namespace holding one image
/// each, and principals of every kind.
async fn world(t: &TestServer) {
    let d = t.directory();
    let sys = Principal::System;
    for name in ["owner", "dev", "guest", "outsider", "disabled"] {
        d.create_account(&sys, name, "", &format!("{name}-password"), false)
            .await
            .expect("account");
    }
    d.create_group(&sys, "team", "", Some("owner"))
        .await
        .expect("group");
    d.set_group_member(&sys, "team", "dev", Role::Developer)
        .await
        .expect("dev");
    d.set_group_member(&sys, "team", "guest", Role::Guest)
        .await
        .expect("guest");
    d.set_group_member(&sys, "team", "disabled", Role::Developer)
        .await
        .expect("disabled");
    d.set_account_disabled(&sys, "disabled", true)
        .await
        .expect("disable");
    for (name, public) in [("private", false), ("public", true)] {
        let spec = NamespaceSpec {
            name: name.into(),
            group: Some("team".into()),
            public,
            ..Default::default()
        };
        d.create_namespace(&sys, &spec).await.expect("namespace");
        t.push_image(
            &format!("{name}/app"),
            "v1",
            format!("layer of {name}").as_bytes(),
        )
        .await;
    }
    t.push_image("library/base", "v1", b"platform layer").await;
    for (user, pull, push) in [
        ("puller", true, false),
        ("pusher", false, true),
        ("off-bot", true, true),
    ] {
        let spec = RegistryUserSpec {
            name: user.into(),
            password: Some(format!("{user}-secret")),
            owner: Some("owner".into()),
            ..Default::default()
        };
        d.create_registry_user(&sys, &spec)
            .await
            .expect("registry user");
        d.set_grant(&sys, user, "private", pull, push)
            .await
            .expect("grant");
    }
    d.set_registry_user_enabled(&sys, "off-bot", false)
        .await
        .expect("disable bot");
}

async fn token(
    t: &TestServer,
    client: &reqwest::Client,
    scopes: &[&str],
) -> (StatusCode, serde_json::Value) {
    let mut url = reqwest::Url::parse(&t.url("/auth/token")).expect("url");
    url.query_pairs_mut().append_pair("service", "berth");
    for s in scopes {
        url.query_pairs_mut().append_pair("scope", s);
    }
    let r = client.get(url).send().await.expect("token request");
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

fn granted(v: &serde_json::Value) -> String {
    v["scope"].as_str().unwrap_or_default().to_owned()
}

async fn token_endpoint_grants_the_intersection(b: Backend) {
    let t = TestServer::start(b).await;
    world(&t).await;
    let anon = anonymous_client();
    let (status, v) = token(
        &t,
        &anon,
        &[
            "repository:public/app:pull,push",
            "repository:private/app:pull",
            "repository:library/base:pull",
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        granted(&v),
        "repository:public/app:pull repository:private/app: repository:library/base:pull"
    );
    assert!(v["token"].is_string() && v["token"] == v["access_token"]);
    assert_eq!(v["expires_in"], 300);
    assert!(v["issued_at"].as_str().is_some_and(|s| s.ends_with('Z')));
    assert!(
        v.get("refresh_token").is_none(),
        "no refresh token for anonymous"
    );
    let dev = client_as("dev", "dev-password");
    let (_, v) = token(
        &t,
        &dev,
        &[
            "repository:private/app:pull,push,delete",
            "registry:catalog:*",
            "repository:BAD NAME:pull",
            "nonsense",
        ],
    )
    .await;
    assert_eq!(
        granted(&v),
        "repository:private/app:pull,push,delete registry:catalog:*"
    );
    let guest = client_as("guest", "guest-password");
    let (_, v) = token(&t, &guest, &["repository:private/app:pull,push"]).await;
    assert_eq!(granted(&v), "repository:private/app:pull");
    let (_, v) = token(
        &t,
        &client_as("pusher", "pusher-secret"),
        &["repository:private/app:pull,push,delete"],
    )
    .await;
    assert_eq!(granted(&v), "repository:private/app:pull,push");
    // Wrong credentials and disabled principals get no token at all.
    for (user, pw) in [
        ("dev", "wrong-password"),
        ("disabled", "disabled-password"),
        ("off-bot", "off-bot-secret"),
        ("nobody", "x"),
    ] {
        let (status, v) = token(&t, &client_as(user, pw), &["repository:public/app:pull"]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{user}");
        assert_eq!(v["errors"][0]["code"], "UNAUTHORIZED");
    }
    // GET with offline_token gives a refresh token to authenticated callers.
    let r = dev
        .get(t.url("/auth/token?service=berth&offline_token=true&client_id=test"))
        .send()
        .await
        .expect("token");
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(v["refresh_token"].is_string());
}

async fn oauth_password_and_refresh_grants(b: Backend) {
    let t = TestServer::start(b).await;
    world(&t).await;
    let anon = anonymous_client();
    let post = |form: Vec<(&'static str, String)>| {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        anon.post(t.url("/auth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let r = post(vec![
        ("grant_type", "password".into()),
        ("username", "dev".into()),
        ("password", "dev-password".into()),
        ("service", "berth".into()),
        ("client_id", "docker".into()),
        ("access_type", "offline".into()),
        (
            "scope",
            "repository:private/app:pull,push repository:public/app:pull".into(),
        ),
    ])
    .await
    .expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        granted(&v),
        "repository:private/app:pull,push repository:public/app:pull"
    );
    let refresh = v["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let r = post(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh.clone()),
        ("service", "berth".into()),
        ("scope", "repository:private/app:pull".into()),
    ])
    .await
    .expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(granted(&v), "repository:private/app:pull");
    // An access token is not a refresh token, and a refresh token stops working when the account is disabled.
    let access = v["access_token"].as_str().expect("access").to_owned();
    let r = post(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", access),
    ])
    .await
    .expect("post");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    t.directory()
        .set_account_disabled(&Principal::System, "dev", true)
        .await
        .expect("disable");
    let r = post(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh),
    ])
    .await
    .expect("post");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Bad requests are answered, not crashed on.
    for form in [
        vec![("grant_type", "client_credentials".into())],
        vec![("username", "dev".into())],
        vec![("grant_type", "password".into())],
    ] {
        let r = post(form).await.expect("post");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    let r = post(vec![
        ("grant_type", "password".into()),
        ("username", "guest".into()),
        ("password", "nope-nope".into()),
    ])
    .await
    .expect("post");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anon.delete(t.url("/auth/token"))
            .send()
            .await
            .expect("delete")
            .status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

async fn bearer(t: &TestServer, user: Option<(&str, &str)>, scopes: &[&str]) -> reqwest::Client {
    let client = match user {
        Some((u, p)) => client_as(u, p),
        None => anonymous_client(),
    };
    let (status, v) = token(t, &client, scopes).await;
    assert_eq!(status, StatusCode::OK);
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {}", v["token"].as_str().expect("token"));
    headers.insert(
        reqwest::header::AUTHORIZATION,
        value.parse().expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// The `scope` parameter of a Bearer challenge.
fn challenge_scope(challenge: &str) -> String {
    let start = challenge.find("scope=\"").expect("scope in challenge") + 7;
    let end = challenge[start..].find('"').expect("closing quote") + start;
    challenge[start..end].to_owned()
}

/// A client that follows the challenge (as docker and the conformance
/// suite do): it asks for exactly the challenge's scopes, then retries.
/// One round trip must be enough, whatever the caller may do on the source.
async fn mount_without_pull_on_its_source_is_a_plain_upload(b: Backend) {
    let t = TestServer::start(b).await;
    world(&t).await;
    let spec = NamespaceSpec {
        name: "outsider".into(),
        group: Some("outsider".into()),
        ..Default::default()
    };
    t.directory()
        .create_namespace(&Principal::System, &spec)
        .await
        .expect("namespace");
    let digest = sha256(b"layer of private");
    let mount = |target: &str| {
        t.url(&format!(
            "/v2/{target}/blobs/uploads/?mount={digest}&from=private/app"
        ))
    };
    for (user, target, mounted) in [
        // outsider may push to its own namespace but not pull private/app.
        ("outsider", "outsider/app", false),
        // dev may do both.
        ("dev", "private/copy", true),
    ] {
        let r = anonymous_client()
            .post(mount(target))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let scope = challenge_scope(&header(&r, "www-authenticate"));
        // Every scope the request wants, space-separated in one parameter.
        assert_eq!(
            scope,
            format!("repository:{target}:pull,push repository:private/app:pull")
        );
        let scopes: Vec<&str> = scope.split(' ').collect();
        let password = format!("{user}-password");
        let client = bearer(&t, Some((user, &password)), &scopes).await;
        let r = client.post(mount(target)).send().await.expect("post");
        if mounted {
            assert_eq!(r.status(), StatusCode::CREATED, "{user}");
            assert_eq!(header(&r, "docker-content-digest"), digest);
        } else {
            // No pull on the source: an upload session instead of a mount.
            assert_eq!(r.status(), StatusCode::ACCEPTED, "{user}");
            let location = t.resolve(&header(&r, "location"));
            assert!(
                location.contains("/v2/outsider/app/blobs/uploads/"),
                "{location}"
            );
            // Nothing was mounted: the blob is still unknown in the target.
            let head = client
                .head(t.url(&format!("/v2/{target}/blobs/{digest}")))
                .send()
                .await
                .expect("head");
            assert_eq!(head.status(), StatusCode::NOT_FOUND);
            // The session works: the client uploads the bytes itself.
            let r = client
                .put(format!("{location}?digest={digest}"))
                .body(b"layer of private".to_vec())
                .send()
                .await
                .expect("put");
            assert_eq!(r.status(), StatusCode::CREATED);
        }
    }
}

async fn bearer_tokens_on_v2(b: Backend) {
    let t = TestServer::start(b).await;
    world(&t).await;
    let dev_pull = bearer(
        &t,
        Some(("dev", "dev-password")),
        &["repository:private/app:pull"],
    )
    .await;
    assert_eq!(
        dev_pull
            .get(t.url("/v2/private/app/manifests/v1"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        dev_pull
            .get(t.url("/v2/"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
    // The token lacks push, which dev may do: 401 insufficient_scope naming the scope.
    let r = dev_pull
        .post(t.url("/v2/private/app/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    let c = header(&r, "www-authenticate");
    assert!(
        c.contains("error=\"insufficient_scope\"")
            && c.contains("scope=\"repository:private/app:pull,push\""),
        "{c}"
    );
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // The token does not cover another repository either.
    assert_eq!(
        dev_pull
            .get(t.url("/v2/public/app/tags/list"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Guest asks for push, gets pull only; pushing is then plainly denied.
    let guest = bearer(
        &t,
        Some(("guest", "guest-password")),
        &["repository:private/app:pull,push"],
    )
    .await;
    assert_error(
        guest
            .post(t.url("/v2/private/app/blobs/uploads/"))
            .send()
            .await
            .expect("post"),
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;
    // Anonymous token on a private repository: authentication required.
    let anon = bearer(&t, None, &["repository:private/app:pull"]).await;
    let r = anon
        .get(t.url("/v2/private/app/manifests/v1"))
        .send()
        .await
        .expect("get");
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // Anonymous token on a public repository: pulls work, /v2/ itself too.
    let anon = bearer(&t, None, &["repository:public/app:pull"]).await;
    assert_eq!(
        anon.get(t.url("/v2/public/app/manifests/v1"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        anon.get(t.url("/v2/")).send().await.expect("get").status(),
        StatusCode::OK
    );
    // Forged and foreign tokens.
    for bad in ["Bearer nonsense", "Bearer a.b.c", "Digest x", "Basic !!!"] {
        let r = anonymous_client()
            .get(t.url("/v2/public/app/tags/list"))
            .header("authorization", bad)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert!(r.headers().contains_key("www-authenticate"));
    }
}

/// Every kind of caller × every action × private/public/platform, over Basic auth.
async fn authorization_matrix(b: Backend) {
    let t = TestServer::start(b).await;
    world(&t).await;
    let callers: Vec<(&str, reqwest::Client, bool)> = vec![
        // (name, client, is_authenticated)
        ("anonymous", anonymous_client(), false),
        ("owner", client_as("owner", "owner-password"), true),
        ("dev", client_as("dev", "dev-password"), true),
        ("guest", client_as("guest", "guest-password"), true),
        ("outsider", client_as("outsider", "outsider-password"), true),
        ("puller", client_as("puller", "puller-secret"), true),
        ("pusher", client_as("pusher", "pusher-secret"), true),
        ("admin", client_as("admin", ADMIN_PASSWORD), true),
    ];
    // Expected (pull, push, delete) per caller and namespace.
    let expect = |who: &str, ns: &str| -> (bool, bool, bool) {
        match (who, ns) {
            ("admin", _) => (true, true, true),
            (_, "library") => (true, false, false),
            (_, "public") if matches!(who, "owner" | "dev") => (true, true, true),
            (_, "public") if who == "pusher" => (true, false, false),
            (_, "public") => (true, false, false),
            ("owner" | "dev", "private") => (true, true, true),
            ("guest" | "puller", "private") => (true, false, false),
            ("pusher", "private") => (true, true, false),
            _ => (false, false, false),
        }
    };
    for ns in ["private", "public", "library"] {
        let repo = if ns == "library" {
            "library/base".to_owned()
        } else {
            format!("{ns}/app")
        };
        for (who, client, authenticated) in &callers {
            let (pull, push, delete) = expect(who, ns);
            let refused = if *authenticated {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            let check = |what: &str, status: StatusCode, allowed: bool| {
                if allowed {
                    assert!(
                        status.is_success() || status == StatusCode::NOT_FOUND,
                        "{who} {what} {repo}: {status}"
                    );
                } else {
                    assert_eq!(status, refused, "{who} {what} {repo}");
                }
            };
            let s = client
                .get(t.url(&format!("/v2/{repo}/manifests/v1")))
                .send()
                .await
                .expect("pull")
                .status();
            check("pull", s, pull);
            let s = client
                .get(t.url(&format!("/v2/{repo}/tags/list")))
                .send()
                .await
                .expect("tags")
                .status();
            check("list tags", s, pull);
            let s = client
                .request(Method::POST, t.url(&format!("/v2/{repo}/blobs/uploads/")))
                .send()
                .await
                .expect("push")
                .status();
            check("push", s, push);
            let s = client
                .delete(t.url(&format!("/v2/{repo}/manifests/no-such-tag")))
                .send()
                .await
                .expect("delete")
                .status();
            check("delete", s, delete);
        }
    }
    // The disabled account and the disabled registry user cannot even log in.
    for (u, p) in [
        ("disabled", "disabled-password"),
        ("off-bot", "off-bot-secret"),
    ] {
        let r = client_as(u, p)
            .get(t.url("/v2/public/app/manifests/v1"))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{u}");
    }
}

async fn catalog_lists_only_what_the_caller_can_pull(b: Backend) {
    let t = TestServer::start(b).await;
    world(&t).await;
    let list = |c: reqwest::Client| {
        let url = t.url("/v2/_catalog");
        async move {
            let r = c.get(url).send().await.expect("catalog");
            assert_eq!(r.status(), StatusCode::OK);
            let v: serde_json::Value = r.json().await.expect("json");
            serde_json::from_value::<Vec<String>>(v["repositories"].clone()).expect("list")
        }
    };
    assert_eq!(
        list(client_as("admin", ADMIN_PASSWORD)).await,
        vec!["library/base", "private/app", "public/app"]
    );
    assert_eq!(
        list(client_as("outsider", "outsider-password")).await,
        vec!["library/base", "public/app"]
    );
    assert_eq!(
        list(client_as("puller", "puller-secret")).await,
        vec!["library/base", "private/app", "public/app"]
    );
    // Pagination still fills pages from what is visible.
    let r = client_as("outsider", "outsider-password")
        .get(t.url("/v2/_catalog?n=1"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        header(&r, "link"),
        "</v2/_catalog?n=1&last=library%2Fbase>; rel=\"next\""
    );
    // Anonymous callers are asked to authenticate for the catalog.
    let r = anonymous_client()
        .get(t.url("/v2/_catalog"))
        .send()
        .await
        .expect("get");
    assert!(header(&r, "www-authenticate").contains("scope=\"registry:catalog:*\""));

    // For every kind of caller, the catalog (chosen by the database) is
    // exactly the repositories the access rules let it pull: a group role,
    // a namespace role, one repository's permission, a registry user's
    // pull or push grant, none.
    t.push_image("private/other", "v1", b"other layer").await;
    t.push_image("hidden/app", "v1", b"hidden layer").await;
    let d = t.directory();
    d.create_account(&Principal::System, "reader", "", "reader-password", false)
        .await
        .expect("reader");
    d.create_account(&Principal::System, "member", "", "member-password", false)
        .await
        .expect("member");
    let (s, v) = t
        .api(
            Method::PUT,
            "/api/v1/namespaces/private/permissions/app/reader",
            Some(serde_json::json!({"permission": "read"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = t
        .api(
            Method::PUT,
            "/api/v1/namespaces/hidden/members/member",
            Some(serde_json::json!({"role": "guest"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let all = list(client_as("admin", ADMIN_PASSWORD)).await;
    assert_eq!(all.len(), 5, "{all:?}");
    for (user, password) in [
        ("owner", "owner-password"),
        ("dev", "dev-password"),
        ("guest", "guest-password"),
        ("outsider", "outsider-password"),
        ("reader", "reader-password"),
        ("member", "member-password"),
        ("puller", "puller-secret"),
        ("pusher", "pusher-secret"),
    ] {
        let c = client_as(user, password);
        let seen = list(c.clone()).await;
        let mut pullable = Vec::new();
        for repo in &all {
            let r = c
                .get(t.url(&format!("/v2/{repo}/tags/list")))
                .send()
                .await
                .expect("tags");
            if r.status() == StatusCode::OK {
                pullable.push(repo.clone());
            }
        }
        assert_eq!(seen, pullable, "{user}");
    }
    assert_eq!(
        list(client_as("reader", "reader-password")).await,
        vec!["library/base", "private/app", "public/app"]
    );
    assert_eq!(
        list(client_as("member", "member-password")).await,
        vec!["hidden/app", "library/base", "public/app"]
    );
}

async fn push_creates_a_missing_namespace(b: Backend) {
    let t = TestServer::start(b).await;
    world(&t).await;
    let dev = client_as("dev", "dev-password");
    let r = dev
        .post(t.url("/v2/fresh-ns/app/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let ns = t.directory().namespace("fresh-ns").await.expect("created");
    assert!(!ns.public);
    let dev_account = t.directory().account("dev").await.expect("dev");
    assert_eq!(Some(ns.group_id), dev_account.default_group_id);
    // Registry users and anonymous callers cannot create namespaces.
    let r = client_as("pusher", "pusher-secret")
        .post(t.url("/v2/other-ns/app/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = anonymous_client()
        .post(t.url("/v2/other-ns/app/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(t.directory().namespace("other-ns").await.is_err());
    // Switched off by configuration.
    let t2 = TestServer::start_with(b, |c| c.access.auto_create_namespaces = false).await;
    let r = t2
        .client
        .post(t2.url("/v2/never/app/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    assert_error(r, StatusCode::FORBIDDEN, "DENIED").await;
}

/// A bearer token of `user` for `scope`: (granted scope, token).
async fn token_of(t: &TestServer, user: &str, password: &str, scope: &str) -> (String, String) {
    let (status, v) = token(t, &client_as(user, password), &[scope]).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    (granted(&v), v["token"].as_str().expect("token").to_owned())
}

/// What docker does on a first push: a token for pull and push, blob
/// checks (unknown, not refused), then the upload that creates the
/// namespace. Within the group's limit; a token granted for a namespace
/// that someone else creates meanwhile writes nothing there.
async fn a_token_for_a_namespace_to_create_grants_pull_and_push(b: Backend) {
    let t = TestServer::start(b).await;
    let tenant = create_account(&t, "tenant").await;
    let (scope, token) = token_of(
        &t,
        "tenant",
        "a-long-password",
        "repository:newns/app:pull,push",
    )
    .await;
    assert_eq!(scope, "repository:newns/app:pull,push");
    let with = |r: reqwest::RequestBuilder| r.bearer_auth(&token);
    let layer = b"the first layer".to_vec();
    let r =
        with(anonymous_client().head(t.url(&format!("/v2/newns/app/blobs/{}", sha256(&layer)))))
            .send()
            .await
            .expect("head");
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "unknown, not refused");
    let r = with(anonymous_client().get(t.url("/v2/newns/app/manifests/latest")))
        .send()
        .await
        .expect("get");
    assert_error(r, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
    let r = with(anonymous_client().post(t.url("/v2/newns/app/blobs/uploads/")))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let ns = t.directory().namespace("newns").await.expect("created");
    assert!(!ns.public, "created private");
    let group = t.directory().group("tenant").await.expect("group");
    assert_eq!(ns.group_id, group.id, "in the tenant's own group");
    t.push_image_as(&tenant, "newns/app", "v1", &layer).await;
    // Someone else's token for it grants nothing now.
    create_account(&t, "stranger").await;
    let (scope, _) = token_of(
        &t,
        "stranger",
        "a-long-password",
        "repository:newns/app:pull,push",
    )
    .await;
    assert_eq!(scope, "repository:newns/app:");

    // A token granted for a missing namespace that another tenant creates
    // before it is used writes nothing there.
    let (scope, token) = token_of(
        &t,
        "tenant",
        "a-long-password",
        "repository:racens/app:pull,push",
    )
    .await;
    assert_eq!(scope, "repository:racens/app:pull,push");
    let (s, v) = t
        .api_as(
            &client_as("stranger", "a-long-password"),
            Method::POST,
            "/api/v1/namespaces",
            Some(serde_json::json!({"name": "racens"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let r = anonymous_client()
        .post(t.url("/v2/racens/app/blobs/uploads/"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("post");
    assert_error(r, StatusCode::FORBIDDEN, "DENIED").await;

    // At the group's namespace limit, the push says so.
    let (s, v) = t
        .api(
            Method::PATCH,
            "/api/v1/project-groups/tenant",
            Some(serde_json::json!({"namespace_limit": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = tenant
        .post(t.url("/v2/onemore/app/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body = r.text().await.expect("body");
    assert!(body.contains("DENIED") && body.contains("limit"), "{body}");
    assert!(t.directory().namespace("onemore").await.is_err());
}

async fn failed_logins_are_throttled_per_user_and_client(b: Backend) {
    let t = TestServer::start(b).await;
    world(&t).await;
    let wrong = client_as("dev", "wrong-password");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            wrong
                .get(t.url("/v2/private/app/tags/list"))
                .send()
                .await
                .expect("get")
                .status(),
        );
    }
    assert!(
        statuses[..6].iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    let r = wrong
        .get(t.url("/v2/private/app/tags/list"))
        .send()
        .await
        .expect("get");
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
    // Even the right password waits out the block for this user from this client...
    let (status, _) = token(&t, &client_as("dev", "dev-password"), &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // ...but other users are not locked out.
    let r = client_as("guest", "guest-password")
        .get(t.url("/v2/private/app/tags/list"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let failures = t
        .directory()
        .store()
        .list_audit(200)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "auth.failure" && e.actor == "dev")
        .count();
    assert!(failures >= 6, "failures audited: {failures}");
}

async fn tokens_expire(b: Backend) {
    // Tokens carry whole seconds (`exp` = issue second + lifetime): a
    // lifetime of 1 s can end a moment after issue, so 2 s leaves the
    // first request at least a second (CI saw the 1 s version flake).
    let t = TestServer::start_with(b, |c| c.auth.token_lifetime_secs = 2).await;
    world(&t).await;
    let c = bearer(
        &t,
        Some(("dev", "dev-password")),
        &["repository:private/app:pull"],
    )
    .await;
    assert_eq!(
        c.get(t.url("/v2/private/app/tags/list"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let r = c
        .get(t.url("/v2/private/app/tags/list"))
        .send()
        .await
        .expect("get");
    assert!(header(&r, "www-authenticate").contains("error=\"invalid_token\""));
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

async fn namespaces_per_group_limit(b: Backend) {
    let t = TestServer::start_with(b, |c| c.access.namespaces_per_group = 2).await;
    world(&t).await;
    // dev's default group ("dev") starts empty: two pushes create two namespaces…
    let dev = client_as("dev", "dev-password");
    for ns in ["dev-one", "dev-two"] {
        let r = dev
            .post(t.url(&format!("/v2/{ns}/app/blobs/uploads/")))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{ns}");
    }
    // …and the third is refused with a message that names the limit.
    let r = dev
        .post(t.url("/v2/dev-three/app/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let text = r.text().await.expect("body");
    assert!(
        text.contains("DENIED") && text.contains("already has 2 namespaces"),
        "{text}"
    );
    assert!(t.directory().namespace("dev-three").await.is_err());
    // Only platform admins change a group's limit.
    let sys = Principal::System;
    let dev_p = t
        .directory()
        .authenticate("dev", "dev-password", None)
        .await
        .expect("login");
    assert!(t
        .directory()
        .set_group_namespace_limit(&dev_p, "dev", Some(10))
        .await
        .is_err());
    t.directory()
        .set_group_namespace_limit(&sys, "dev", Some(3))
        .await
        .expect("raise");
    let r = dev
        .post(t.url("/v2/dev-three/app/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // The limit holds for explicit creation too.
    let spec = NamespaceSpec {
        name: "dev-four".into(),
        group: Some("dev".into()),
        ..Default::default()
    };
    assert!(matches!(
        t.directory().create_namespace(&sys, &spec).await,
        Err(berth_core::DirectoryError::LimitExceeded(_))
    ));
}
