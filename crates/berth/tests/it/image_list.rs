//! "My images": `GET /api/v1/repositories` lists every image a caller may
//! see across namespaces, and `POST /api/v1/repositories/batch-delete`
//! deletes across them; for both metadata backends, over real HTTP.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

backend_tests!(
    images_across_namespaces_follow_each_callers_access,
    image_list_filters_sorts_and_pages,
    image_list_refuses_bad_input,
    images_are_deleted_across_namespaces_by_the_rules,
);

/// Full names of a list's items, in order.
fn repos(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {v}"))
        .iter()
        .map(|i| i["repository"].as_str().expect("repository").to_owned())
        .collect()
}

async fn list(t: &TestServer, c: &reqwest::Client, query: &str) -> Value {
    let (s, v) = t
        .api_as(
            c,
            Method::GET,
            &format!("/api/v1/repositories{query}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{query}: {v}");
    v
}

async fn ok(t: &TestServer, method: Method, path: &str, body: Value) {
    let (s, v) = t.api(method, path, Some(body)).await;
    assert!(s.is_success(), "{path}: {s} {v}");
}

/// Namespaces `team-a` (dev is a guest), `team-b` (in project group `bgroup`,
/// dev a developer there), `team-c` (dev holds `read` on one image only),
/// `pub` (public), the platform namespace `library`, and `other` (private,
/// nobody's); one image each at least, and a repository holding only a blob.
async fn tenants(t: &TestServer) -> reqwest::Client {
    let dev = create_account(t, "dev").await;
    create_account(t, "owner").await;
    ok(
        t,
        Method::POST,
        "/api/v1/project-groups",
        json!({"name": "bgroup", "admin": "owner"}),
    )
    .await;
    for (name, group, public) in [
        ("team-a", None, false),
        ("team-b", Some("bgroup"), false),
        ("team-c", None, false),
        ("pub", None, true),
        ("other", None, false),
    ] {
        let mut body = json!({"name": name, "public": public});
        if let Some(g) = group {
            body["project_group"] = json!(g);
        }
        ok(t, Method::POST, "/api/v1/namespaces", body).await;
    }
    for repo in [
        "team-a/app",
        "team-a/web/frontend",
        "team-b/api",
        "team-b/worker",
        "team-c/only",
        "team-c/hidden",
        "pub/tool",
        "library/base",
        "other/secret",
    ] {
        t.push_image(repo, "1", repo.as_bytes()).await;
    }
    // A repository with a blob and no manifest is not an image yet.
    t.push_blob("team-a/unfinished", b"just a layer").await;
    ok(
        t,
        Method::PUT,
        "/api/v1/namespaces/team-a/members/dev",
        json!({"role": "guest"}),
    )
    .await;
    ok(
        t,
        Method::PUT,
        "/api/v1/project-groups/bgroup/members/dev",
        json!({"role": "developer"}),
    )
    .await;
    ok(
        t,
        Method::PUT,
        "/api/v1/namespaces/team-c/permissions/only/dev",
        json!({"permission": "read"}),
    )
    .await;
    dev
}

async fn images_across_namespaces_follow_each_callers_access(b: Backend) {
    let t = TestServer::start(b).await;
    let dev = tenants(&t).await;
    let mine = [
        "team-a/app",
        "team-a/web/frontend",
        "team-b/api",
        "team-b/worker",
        "team-c/only",
    ];

    // An account: its namespaces' images, and the one it holds a permission on.
    let v = list(&t, &dev, "").await;
    assert_eq!(repos(&v), mine, "{v}");
    assert_eq!(v["total"], 5);
    let first = &v["items"][0];
    assert_eq!(first["name"], "app");
    assert_eq!(first["namespace"], "team-a");
    assert_eq!(first["namespace_status"], "available");
    assert_eq!(first["visibility"], "private");
    assert_eq!(first["tag_count"], 1);
    assert_eq!(first["latest_tag"], "1");
    assert!(first["size"].as_i64().is_some_and(|s| s > 0), "{first}");
    assert!(
        first["pull_command"]
            .as_str()
            .is_some_and(|c| c.ends_with("/team-a/app:1")),
        "{first}"
    );
    assert_eq!(v["items"][2]["project_group"], "bgroup");
    // Shared: public namespaces' images too, the platform's among them.
    let v = list(&t, &dev, "?shared=true").await;
    let mut expected: Vec<&str> = mine.to_vec();
    expected.extend(["library/base", "pub/tool"]);
    expected.sort();
    assert_eq!(repos(&v), expected, "{v}");
    // Platform images only on request.
    let v = list(&t, &dev, "?platform=true").await;
    let mut expected: Vec<&str> = mine.to_vec();
    expected.push("library/base");
    expected.sort();
    assert_eq!(repos(&v), expected);

    // An account of no namespace sees nothing of its own; shared ones on request.
    let stranger = create_account(&t, "stranger").await;
    let v = list(&t, &stranger, "").await;
    assert_eq!(
        (repos(&v), v["total"].clone()),
        (Vec::<String>::new(), json!(0))
    );
    let v = list(&t, &stranger, "?shared=true").await;
    assert_eq!(repos(&v), ["library/base", "pub/tool"]);
    // So does an anonymous caller.
    let anon = anonymous_client();
    assert_eq!(repos(&list(&t, &anon, "").await), Vec::<String>::new());
    assert_eq!(
        repos(&list(&t, &anon, "?shared=true").await),
        ["library/base", "pub/tool"]
    );
    // Asking for one namespace does not widen the scope.
    let v = list(&t, &stranger, "?namespace=other").await;
    assert_eq!(v["total"], 0, "{v}");

    // Everything: platform administrators only.
    let (s, v) = t
        .api_as(&dev, Method::GET, "/api/v1/repositories?all=true", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let v = list(&t, &t.client, "?all=true").await;
    assert_eq!(v["total"], 9, "{v}");
    assert!(repos(&v).contains(&"other/secret".to_owned()));
    // A repository whose last manifest was deleted by digest is no image.
    let (digest, _) = t.push_image("other/gone", "1", b"gone").await;
    assert_eq!(list(&t, &t.client, "?all=true").await["total"], 10);
    let r = t
        .client
        .delete(t.url(&format!("/v2/other/gone/manifests/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(list(&t, &t.client, "?all=true").await["total"], 9);
    let (_, v) = t
        .api(Method::GET, "/api/v1/namespaces/other/repositories", None)
        .await;
    assert_eq!(v["total"], 1, "{v}");
    // Pushed again, it is one again.
    t.push_image("other/gone", "2", b"gone again").await;
    assert_eq!(
        list(&t, &t.client, "?all=true&namespace=other").await["total"],
        2
    );

    // Access changes show at once: the role on team-a goes, so do its images.
    let (s, _) = t
        .api(
            Method::DELETE,
            "/api/v1/namespaces/team-a/members/dev",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        repos(&list(&t, &dev, "").await),
        ["team-b/api", "team-b/worker", "team-c/only"]
    );
    // A namespace turned private leaves the shared list.
    ok(
        &t,
        Method::PATCH,
        "/api/v1/namespaces/pub",
        json!({"public": false}),
    )
    .await;
    assert_eq!(
        repos(&list(&t, &stranger, "?shared=true").await),
        ["library/base"]
    );
}

async fn image_list_filters_sorts_and_pages(b: Backend) {
    let t = TestServer::start(b).await;
    let dev = tenants(&t).await;

    let v = list(&t, &dev, "?namespace=team-b").await;
    assert_eq!(repos(&v), ["team-b/api", "team-b/worker"]);
    let v = list(&t, &dev, "?namespace=team-c").await;
    assert_eq!(
        repos(&v),
        ["team-c/only"],
        "a permission on one image shows that image only"
    );
    assert_eq!(
        list(&t, &dev, "?namespace=pub").await["total"],
        0,
        "pub is not dev's"
    );
    assert_eq!(
        repos(&list(&t, &dev, "?namespace=pub&shared=true").await),
        ["pub/tool"]
    );
    let v = list(&t, &dev, "?project_group=bgroup").await;
    assert_eq!(repos(&v), ["team-b/api", "team-b/worker"]);
    let v = list(&t, &dev, "?q=FRONT").await;
    assert_eq!(repos(&v), ["team-a/web/frontend"], "search ignores case");
    let v = list(&t, &dev, "?q=team-c").await;
    assert_eq!(
        repos(&v),
        ["team-c/only"],
        "search matches the namespace too"
    );
    let v = list(&t, &dev, "?q=50%25").await;
    assert_eq!(v["total"], 0, "wildcards are literal");
    let v = list(&t, &dev, "?shared=true&visibility=public").await;
    assert_eq!(repos(&v), ["library/base", "pub/tool"]);
    let v = list(&t, &dev, "?shared=true&visibility=private").await;
    assert_eq!(v["total"], 5);

    // Sorting: by pulls, by last push, by creation, by name descending.
    for _ in 0..3 {
        let r = t
            .client
            .get(t.url("/v2/team-b/worker/manifests/1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = t
        .client
        .get(t.url("/v2/team-c/only/manifests/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v = list(&t, &dev, "?sort=-pull_count").await;
    assert_eq!(repos(&v)[..2], ["team-b/worker", "team-c/only"]);
    assert_eq!(v["items"][0]["pull_count"], 3);
    // A new push makes an image the most recently updated, not the newest.
    t.push_image("team-a/app", "2", b"app v2").await;
    let v = list(&t, &dev, "?sort=-updated").await;
    assert_eq!(repos(&v)[0], "team-a/app", "{v}");
    assert_eq!(v["items"][0]["latest_tag"], "2");
    let v = list(&t, &dev, "?sort=-created").await;
    assert_eq!(repos(&v)[0], "team-c/only", "{v}");
    let v = list(&t, &dev, "?sort=created").await;
    assert_eq!(repos(&v)[0], "team-a/app", "{v}");
    let v = list(&t, &dev, "?sort=-name").await;
    assert_eq!(repos(&v)[0], "team-c/only");

    // Pages: the window is cut in the database; the total counts them all.
    let v = list(&t, &dev, "?per_page=2&page=2").await;
    assert_eq!(repos(&v), ["team-b/api", "team-b/worker"]);
    assert_eq!(
        (v["total"].clone(), v["page"].clone(), v["per_page"].clone()),
        (json!(5), json!(2), json!(2))
    );
    let v = list(&t, &dev, "?per_page=2&page=3").await;
    assert_eq!(repos(&v), ["team-c/only"]);
    let v = list(&t, &dev, "?per_page=2&page=9").await;
    assert_eq!((repos(&v).len(), v["total"].clone()), (0, json!(5)));
}

async fn image_list_refuses_bad_input(b: Backend) {
    let t = TestServer::start(b).await;
    for query in [
        "?per_page=0",
        "?per_page=101",
        "?page=0",
        "?page=x",
        "?sort=size",
        "?sort=-",
        "?visibility=secret",
        "?namespace=Team",
        "?namespace=a/b",
        "?namespace=",
        "?all=maybe",
        "?shared=2",
    ] {
        let (s, v) = t
            .api(Method::GET, &format!("/api/v1/repositories{query}"), None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert_eq!(v["status"], 400, "{query}: a problem document: {v}");
        assert!(
            v["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{query}: {v}"
        );
    }
    // A name search with quotes or SQL in it is only a search.
    let (s, v) = t
        .api(
            Method::GET,
            "/api/v1/repositories?q=%27%20OR%201%3D1%20--",
            None,
        )
        .await;
    assert_eq!((s, v["total"].clone()), (StatusCode::OK, json!(0)), "{v}");
}

async fn images_are_deleted_across_namespaces_by_the_rules(b: Backend) {
    let t = TestServer::start(b).await;
    let dev = tenants(&t).await;
    let (s, v) = t
        .api_as(
            &dev,
            Method::POST,
            "/api/v1/repositories/batch-delete",
            Some(json!({"names": ["team-b/api", "team-a/app", "other/secret", "team-b/nosuch", "noslash"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["deleted"], json!(["team-b/api"]), "{v}");
    let failed: Vec<(String, String)> = v["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        [
            ("team-a/app".to_owned(), "forbidden".to_owned()),
            ("other/secret".to_owned(), "not_found".to_owned()),
            ("team-b/nosuch".to_owned(), "not_found".to_owned()),
            ("noslash".to_owned(), "invalid".to_owned()),
        ],
        "guests may not delete; others' images are not found"
    );
    assert_eq!(
        repos(&list(&t, &dev, "").await),
        [
            "team-a/app",
            "team-a/web/frontend",
            "team-b/worker",
            "team-c/only"
        ]
    );
    // Anonymous callers delete nothing; an empty or huge batch is refused.
    let (s, _) = t
        .api_as(
            &anonymous_client(),
            Method::POST,
            "/api/v1/repositories/batch-delete",
            Some(json!({"names": ["pub/tool"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = t
        .api(
            Method::POST,
            "/api/v1/repositories/batch-delete",
            Some(json!({"names": []})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let many: Vec<String> = (0..101).map(|i| format!("pub/i{i}")).collect();
    let (s, _) = t
        .api(
            Method::POST,
            "/api/v1/repositories/batch-delete",
            Some(json!({"names": many})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Immutable tags refuse, as everywhere.
    ok(
        &t,
        Method::PUT,
        "/api/v1/namespaces/pub/policies",
        json!({"immutable_tags": ["1"]}),
    )
    .await;
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/repositories/batch-delete",
            Some(json!({"names": ["pub/tool"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["failed"][0]["code"], "forbidden", "{v}");
    assert_eq!(
        repos(&list(&t, &t.client, "?namespace=pub").await),
        ["pub/tool"]
    );
}
