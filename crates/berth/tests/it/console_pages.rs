//! The web console over plain HTTP, for both metadata backends: login and
//! sessions, every page answering, CSRF on forms, and readable pages for bad
//! input (the browser test drives the same pages in Chromium).

use crate::common::*;
use reqwest::{Client, StatusCode};

backend_tests!(console_pages_forms_and_errors);

fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn login(t: &TestServer, c: &Client, user: &str, password: &str) -> reqwest::Response {
    c.post(t.url("/login"))
        .form(&[
            ("username", user),
            ("password", password),
            ("next", "/account"),
        ])
        .send()
        .await
        .expect("login")
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"_csrf\" value=\"").expect("csrf field") + 20;
    page[at..].split('"').next().expect("csrf value").to_owned()
}

async fn console_pages_forms_and_errors(b: Backend) {
    let t = TestServer::start(b).await;
    let c = browser();

    // Anonymous visitors are sent to the login page.
    let r = c.get(t.url("/namespaces?tab=shared")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header(&r, "location"),
        "/login?next=%2Fnamespaces%3Ftab%3Dshared"
    );
    let r = login(&t, &c, "admin", "wrong").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Wrong account name or password"));

    // Only local paths are followed after login.
    for next in [
        "//evil.example/",
        "/\\evil.example/",
        "https://evil.example/",
    ] {
        let r = c
            .post(t.url("/login"))
            .form(&[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "location"), "/namespaces", "{next}");
    }
    let r = login(&t, &c, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&r, "location"), "/account");
    let cookie = header(&r, "set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let get = |path: &str| c.get(t.url(path)).header("cookie", &cookie).send();

    // Every page answers, as HTML.
    t.push_image("shop/web/app", "1.0", b"layer").await;
    for path in [
        "/namespaces",
        "/namespaces?tab=shared",
        "/namespaces?tab=platform",
        "/namespaces?tab=all&q=sh&sort=-pull_count&page=1",
        "/namespaces/shop",
        "/namespaces/shop?edit=1",
        "/namespaces/shop/tags?image=web%2Fapp",
        "/namespaces/shop/image-permissions?image=web%2Fapp",
        "/namespaces/shop/sync?image=web%2Fapp",
        "/images",
        "/images?show=shared&namespace=shop&q=web&sort=-updated&page=1",
        "/images?show=all&sort=-created",
        "/namespaces/shop/access",
        "/namespaces/shop/policies",
        "/registry-users",
        "/project-groups",
        "/project-groups/admin",
        "/account",
        "/audit?action=namespace.",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(
            header(&r, "content-type").starts_with("text/html"),
            "{path}"
        );
        let body = r.text().await.unwrap();
        assert!(body.contains("Signed in as"), "{path}");
    }
    let page = get("/images").await.unwrap().text().await.unwrap();
    assert!(page.contains("data-image=\"shop/web/app\""), "{page}");
    assert!(
        page.contains("href=\"/namespaces/shop/tags?image=web%2Fapp\""),
        "{page}"
    );
    let page = get("/namespaces/shop/tags?image=web%2Fapp")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!(
        "docker pull {}/shop/web/app:1.0",
        t.url("").trim_start_matches("http://")
    )));

    // Readable error pages.
    for (path, status) in [
        ("/namespaces/nope", StatusCode::NOT_FOUND),
        ("/namespaces/shop/tags?image=NOPE", StatusCode::BAD_REQUEST),
        ("/namespaces/shop/tags?image=missing", StatusCode::NOT_FOUND),
        ("/namespaces?tab=bogus", StatusCode::NOT_FOUND),
        ("/images?show=everything", StatusCode::BAD_REQUEST),
        ("/images?sort=size", StatusCode::BAD_REQUEST),
        ("/images?namespace=Bad%2FName", StatusCode::BAD_REQUEST),
        (
            "/namespaces/shop/image-permissions?image=missing",
            StatusCode::NOT_FOUND,
        ),
        (
            "/namespaces/shop/image-permissions?image=NOPE",
            StatusCode::BAD_REQUEST,
        ),
        ("/no/such/page", StatusCode::NOT_FOUND),
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("<h1>") && body.contains("Back to namespaces"),
            "{path}: {body}"
        );
    }

    // Forms need the CSRF token of the session.
    let page = get("/namespaces").await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&page);
    let post = |path: &str, form: Vec<(&str, &str)>| {
        c.post(t.url(path))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };
    let r = post("/namespaces", vec![("name", "forged")]).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Reload the page"));
    let r = post("/namespaces", vec![("_csrf", "wrong"), ("name", "forged")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        t.get("/api/v1/namespaces/forged").await.status(),
        StatusCode::NOT_FOUND
    );

    // A good form goes to the new page; a bad one back with the message.
    let r = post(
        "/namespaces",
        vec![
            ("_csrf", &csrf),
            ("name", "made-here"),
            ("labels", "team=web"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(header(&r, "location").starts_with("/namespaces/made-here?notice="));
    let r = post("/namespaces", vec![("_csrf", &csrf), ("name", "Bad Name")])
        .await
        .unwrap();
    assert!(
        header(&r, "location").starts_with("/namespaces?error="),
        "{}",
        header(&r, "location")
    );
    let r = post(
        "/namespaces",
        vec![("_csrf", &csrf), ("name", "x2"), ("labels", "novalue")],
    )
    .await
    .unwrap();
    assert!(header(&r, "location").contains("error="));
    let r = post(
        "/namespaces/made-here/edit",
        vec![("_csrf", &csrf), ("public", "on"), ("labels", "a=b")],
    )
    .await
    .unwrap();
    assert!(header(&r, "location").contains("notice=Saved"));
    let v: serde_json::Value = t
        .get("/api/v1/namespaces/made-here")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["public"].as_bool(), v["external_access"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(v["labels"], serde_json::json!({"a": "b"}));

    // Tokens and registry users show their secret once.
    let r = post("/account/tokens", vec![("_csrf", &csrf), ("name", "ci")])
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("berth_pat_") && body.contains("will not be shown again"));
    let r = post("/registry-users", vec![("_csrf", &csrf), ("name", "bot-1")])
        .await
        .unwrap();
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Registry user bot-1 created"));

    // Deleting: a tag, then the namespace (refused, then with its images).
    let r = post(
        "/namespaces/shop/tags/delete",
        vec![("_csrf", &csrf), ("image", "web/app"), ("tag", "nope")],
    )
    .await
    .unwrap();
    assert!(header(&r, "location").contains("error="));
    // Policies: storage use, immutable tags, quota and retention rules.
    let page = get("/namespaces/shop/policies")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("no quota"), "{page}");
    let r = post(
        "/namespaces/shop/policies",
        vec![
            ("_csrf", &csrf),
            ("immutable_tags", "v*, 1.*"),
            ("quota", "5G"),
            ("retention", "repositories=web/* keep_last=1"),
            ("attach_sbom", "on"),
        ],
    )
    .await
    .unwrap();
    assert!(
        header(&r, "location").contains("notice="),
        "{:?}",
        r.headers()
    );
    let page = get("/namespaces/shop/policies")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("5.0 GiB") && page.contains("value=\"v*, 1.*\""),
        "{page}"
    );
    assert!(
        page.contains("repositories=web/* tags=* keep_last=1"),
        "{page}"
    );
    assert!(
        page.contains("name=\"attach_sbom\" value=\"on\" checked"),
        "{page}"
    );
    for (field, value, needle) in [
        ("retention", "keep_last", "key%3Dvalue"),
        ("quota", "lots", "quota"),
        ("immutable_tags", "v[1]", "immutable"),
    ] {
        let r = post(
            "/namespaces/shop/policies",
            vec![("_csrf", &csrf), (field, value)],
        )
        .await
        .unwrap();
        let location = header(&r, "location");
        assert!(
            location.contains("error=") && location.contains(needle),
            "{location}"
        );
    }
    t.push_image("shop/web/app", "2.0", b"layer two").await;
    t.push_image("shop/web/app", "3.0", b"layer three").await;
    let r = post(
        "/namespaces/shop/retention",
        vec![("_csrf", &csrf), ("action", "preview")],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let plan = &page[page.find("id=\"retention-plan\"").expect("plan")..];
    assert!(
        plan.contains("<td>2.0</td>")
            && !plan.contains("<td>3.0</td>")
            && !plan.contains("<td>1.0</td>"),
        "{plan}"
    );
    let r = post(
        "/namespaces/shop/retention",
        vec![("_csrf", &csrf), ("action", "run")],
    )
    .await
    .unwrap();
    assert!(
        header(&r, "location").contains("Retention+deleted+1+tag"),
        "{:?}",
        r.headers()
    );
    assert_eq!(
        t.get("/v2/shop/web/app/manifests/2.0").await.status(),
        StatusCode::NOT_FOUND
    );
    // Immutable tags hold the namespace until the rule goes.
    let r = post(
        "/namespaces/delete",
        vec![
            ("_csrf", &csrf),
            ("name", "shop"),
            ("delete_all_images", "on"),
        ],
    )
    .await
    .unwrap();
    assert!(
        header(&r, "location").contains("immutable"),
        "{:?}",
        r.headers()
    );
    let r = post(
        "/namespaces/shop/policies",
        vec![
            ("_csrf", &csrf),
            ("immutable_tags", ""),
            ("quota", ""),
            ("retention", ""),
        ],
    )
    .await
    .unwrap();
    assert!(header(&r, "location").contains("notice="));

    let r = post(
        "/namespaces/delete",
        vec![("_csrf", &csrf), ("name", "shop")],
    )
    .await
    .unwrap();
    assert!(
        header(&r, "location").contains("error="),
        "refused while it holds images"
    );
    assert_eq!(
        t.get("/v2/shop/web/app/manifests/1.0").await.status(),
        StatusCode::OK
    );
    let r = post(
        "/namespaces/delete",
        vec![
            ("_csrf", &csrf),
            ("name", "shop"),
            ("delete_all_images", "on"),
        ],
    )
    .await
    .unwrap();
    assert!(header(&r, "location").contains("notice="));
    assert_eq!(
        t.get("/v2/shop/web/app/manifests/1.0").await.status(),
        StatusCode::NOT_FOUND
    );

    // Log out ends the session for the API too.
    let r = post("/logout", vec![("_csrf", &csrf)]).await.unwrap();
    assert_eq!(header(&r, "location"), "/login");
    let r = get("/account").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = c
        .get(t.url("/api/v1/accounts/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
