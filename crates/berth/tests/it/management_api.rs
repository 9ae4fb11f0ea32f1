//! The /api/v1 management API over real HTTP, for both metadata backends:
//! every endpoint, its permission checks and its answers to bad input.

use crate::common::*;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

backend_tests!(
    namespaces_are_created_listed_filtered_and_changed,
    images_and_tags_show_statistics_and_delete_by_the_rules,
    namespace_deletes_follow_the_rules,
    members_grants_permissions_and_visibility,
    registry_users_accounts_and_groups,
    tokens_and_console_sessions,
    audit_log_filters_and_limits,
    bad_requests_get_problem_documents,
);

/// Send a JSON request; returns status and parsed body (Null when empty).
async fn call(
    c: &Client,
    t: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = c.request(method, t.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    let is_problem = r
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/problem+json");
    let text = r.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    if status.is_client_error() || status.is_server_error() {
        assert!(is_problem, "{status} without a problem document: {text}");
        assert_eq!(value["status"], status.as_u16());
        assert!(
            value["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{text}"
        );
    }
    (status, value)
}

async fn admin(
    t: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call(&t.client, t, method, path, body).await
}

fn names(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {v}"))
        .iter()
        .map(|i| i["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn namespaces_are_created_listed_filtered_and_changed(b: Backend) {
    let t = TestServer::start(b).await;
    for (name, public, labels) in [
        ("alpha", true, json!({"tier": "web", "team": "a"})),
        ("beta", false, json!({"tier": "db"})),
        ("gamma_1", false, json!({})),
    ] {
        let (s, v) = admin(
            &t,
            Method::POST,
            "/api/v1/namespaces",
            Some(json!({"name": name, "public": public, "labels": labels, "description": "d", "category": "apps"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["name"], name);
        assert_eq!(v["status"], "available");
        assert_eq!(v["project_group"], "admin");
        assert_eq!(v["image_count"], 0);
        assert!(v["resource_id"].as_str().unwrap().starts_with("ns-"));
    }
    let (s, v) = admin(
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "alpha"})),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (s, v) = admin(
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "Bad/Name"})),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid"))
    );
    let (s, _) = admin(
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "x1", "labels": {"k": "a\"b"}})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Lists: the platform namespace plus ours, filtered, sorted, paged.
    let (_, v) = admin(&t, Method::GET, "/api/v1/namespaces", None).await;
    assert_eq!(names(&v), ["alpha", "beta", "gamma_1", "library"]);
    assert_eq!(v["total"], 4);
    let (_, v) = admin(&t, Method::GET, "/api/v1/namespaces?label=tier", None).await;
    assert_eq!(names(&v), ["alpha", "beta"]);
    let (_, v) = admin(&t, Method::GET, "/api/v1/namespaces?label=tier=web", None).await;
    assert_eq!(names(&v), ["alpha"]);
    let (_, v) = admin(
        &t,
        Method::GET,
        "/api/v1/namespaces?visibility=private",
        None,
    )
    .await;
    assert_eq!(names(&v), ["beta", "gamma_1"]);
    let (_, v) = admin(&t, Method::GET, "/api/v1/namespaces?q=a_1", None).await;
    assert_eq!(names(&v), ["gamma_1"], "'_' is not a wildcard");
    let (_, v) = admin(
        &t,
        Method::GET,
        "/api/v1/namespaces?sort=-name&per_page=2&page=2",
        None,
    )
    .await;
    assert_eq!(names(&v), ["beta", "alpha"]);
    assert_eq!(
        (v["total"].as_i64(), v["page"].as_i64()),
        (Some(4), Some(2))
    );
    let (_, v) = admin(
        &t,
        Method::GET,
        "/api/v1/namespaces?project_group=nobody",
        None,
    )
    .await;
    assert_eq!(v["total"], 0);

    // Shared: public ones, for anyone.
    let anon = anonymous_client();
    let (s, v) = call(&anon, &t, Method::GET, "/api/v1/shared/namespaces", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(names(&v), ["alpha", "library"]);
    let (s, _) = call(
        &anon,
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "anon"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(&anon, &t, Method::GET, "/api/v1/namespaces/beta", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "private namespaces do not leak");
    let (s, v) = call(&anon, &t, Method::GET, "/api/v1/namespaces/alpha", None).await;
    assert_eq!(
        (s, v["labels"]["tier"].as_str()),
        (StatusCode::OK, Some("web"))
    );

    // Update.
    let (s, v) = admin(
        &t,
        Method::PATCH,
        "/api/v1/namespaces/beta",
        Some(json!({"public": true, "description": "now public", "labels": {"tier": "cache"}, "external_access": false})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["public"], true);
    assert_eq!(v["external_access"], false);
    assert_eq!(v["description"], "now public");
    assert_eq!(v["category"], "apps", "absent fields stay");
    assert_eq!(v["labels"], json!({"tier": "cache"}));
    let (s, _) = admin(
        &t,
        Method::PATCH,
        "/api/v1/namespaces/library",
        Some(json!({"public": false})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "the platform namespace stays public"
    );
    let (s, _) = admin(
        &t,
        Method::PATCH,
        "/api/v1/namespaces/nope",
        Some(json!({"public": true})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A plain account sees its own (none yet) and may not list all.
    let dev = create_account(&t, "dev").await;
    let (_, v) = call(&dev, &t, Method::GET, "/api/v1/namespaces", None).await;
    assert_eq!(v["total"], 0);
    let (s, _) = call(&dev, &t, Method::GET, "/api/v1/namespaces?tab=all", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &dev,
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "devspace"})),
    )
    .await;
    assert_eq!(
        (s, v["project_group"].as_str()),
        (StatusCode::CREATED, Some("dev"))
    );
    let (_, v) = call(&dev, &t, Method::GET, "/api/v1/namespaces?tab=mine", None).await;
    assert_eq!(names(&v), ["devspace"]);
    let (s, _) = call(
        &dev,
        &t,
        Method::PATCH,
        "/api/v1/namespaces/alpha",
        Some(json!({"public": false})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &dev,
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "elsewhere", "project_group": "admin"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
}

async fn images_and_tags_show_statistics_and_delete_by_the_rules(b: Backend) {
    let t = TestServer::start(b).await;
    let (d1, _) = t.push_image("shop/web/frontend", "1.0", b"layer one").await;
    t.push_image("shop/web/frontend", "2.0", b"layer two").await;
    t.push_image("shop/api", "latest", b"api layer").await;

    let (s, v) = admin(
        &t,
        Method::GET,
        "/api/v1/namespaces/shop/repositories",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(names(&v), ["api", "web/frontend"]);
    let web = &v["items"][1];
    assert_eq!(web["repository"], "shop/web/frontend");
    assert_eq!(web["tag_count"], 2);
    assert_eq!(web["latest_tag"], "2.0");
    assert!(web["size"].as_i64().unwrap() > "layer onelayer two".len() as i64);
    let host = t.url("").trim_start_matches("http://").to_owned();
    assert_eq!(
        web["pull_command"],
        format!("docker pull {host}/shop/web/frontend:2.0")
    );
    assert_eq!(web["pull_count"], 0);

    // Pulls count at once, per tag and per image; a pull by digest counts
    // for the tags pointing at it.
    for _ in 0..2 {
        assert_eq!(
            t.get("/v2/shop/web/frontend/manifests/1.0").await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        t.get(&format!("/v2/shop/web/frontend/manifests/{d1}"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        t.head("/v2/shop/web/frontend/manifests/2.0").await.status(),
        StatusCode::OK
    );
    let (_, v) = admin(
        &t,
        Method::GET,
        "/api/v1/namespaces/shop/repositories/web%2Ffrontend",
        None,
    )
    .await;
    assert_eq!(v["pull_count"], 3, "{v}");
    assert!(v["last_pulled"].is_string());
    let (_, v) = admin(
        &t,
        Method::GET,
        "/api/v1/namespaces/shop/repositories/web%2Ffrontend/tags?sort=-pull_count",
        None,
    )
    .await;
    assert_eq!(names(&v), ["1.0", "2.0"]);
    let tag = &v["items"][0];
    assert_eq!(tag["pull_count"], 3);
    assert_eq!(tag["digest"], d1);
    assert_eq!(tag["media_type"], OCI_MANIFEST);
    assert_eq!(
        tag["pull_command"],
        format!("docker pull {host}/shop/web/frontend:1.0")
    );
    assert_eq!(tag["platforms"], json!([]));
    assert_eq!(v["items"][1]["pull_count"], 0, "HEAD is not a pull");
    for (query, expect) in [
        ("per_page=1&page=2", "2.0"),
        ("per_page=1&sort=-pushed", "2.0"),
        ("per_page=1&page=2&sort=-pushed", "1.0"),
        ("q=2.", "2.0"),
    ] {
        let (_, v) = admin(
            &t,
            Method::GET,
            &format!("/api/v1/namespaces/shop/repositories/web%2Ffrontend/tags?{query}"),
            None,
        )
        .await;
        assert_eq!(names(&v), [expect], "{query}");
    }
    let (_, v) = admin(&t, Method::GET, "/api/v1/namespaces/shop", None).await;
    assert_eq!(
        (v["image_count"].as_i64(), v["pull_count"].as_i64()),
        (Some(2), Some(3))
    );

    // An index: its platforms show, and pulling a child does not count twice.
    let (child, child_bytes) = t
        .push_image("shop/multi", "amd64-only", b"amd64 layer")
        .await;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": child_bytes.len(),
         "platform": {"os": "linux", "architecture": "amd64"}}]});
    let index = serde_json::to_vec(&index).unwrap();
    assert_eq!(
        t.put_manifest("shop/multi", "v1", OCI_INDEX, &index)
            .await
            .status(),
        StatusCode::CREATED
    );
    t.get("/v2/shop/multi/manifests/v1").await;
    t.get(&format!("/v2/shop/multi/manifests/{child}")).await;
    let (_, v) = admin(
        &t,
        Method::GET,
        "/api/v1/namespaces/shop/repositories/multi/tags?q=v",
        None,
    )
    .await;
    assert_eq!(v["items"][0]["platforms"], json!(["linux/amd64"]));
    assert!(v["items"][0]["size"].as_i64().unwrap() > index.len() as i64);
    let (_, v) = admin(
        &t,
        Method::GET,
        "/api/v1/namespaces/shop/repositories/multi",
        None,
    )
    .await;
    assert_eq!(v["pull_count"], 1, "{v}");

    // Deleting tags: the last one takes the image.
    let (s, v) = admin(
        &t,
        Method::DELETE,
        "/api/v1/namespaces/shop/repositories/web%2Ffrontend/tags/1.0",
        None,
    )
    .await;
    assert_eq!((s, &v["image_deleted"]), (StatusCode::OK, &json!(false)));
    assert_eq!(
        t.get("/v2/shop/web/frontend/manifests/1.0").await.status(),
        StatusCode::NOT_FOUND
    );
    let (s, _) = admin(
        &t,
        Method::DELETE,
        "/api/v1/namespaces/shop/repositories/web%2Ffrontend/tags/1.0",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = admin(
        &t,
        Method::DELETE,
        "/api/v1/namespaces/shop/repositories/web%2Ffrontend/tags/2.0",
        None,
    )
    .await;
    assert_eq!((s, &v["image_deleted"]), (StatusCode::OK, &json!(true)));
    let (s, _) = admin(
        &t,
        Method::GET,
        "/api/v1/namespaces/shop/repositories/web%2Ffrontend",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Batches: tags, then images.
    let (_, v) = admin(
        &t,
        Method::POST,
        "/api/v1/namespaces/shop/repositories/multi/tags/batch-delete",
        Some(json!({"names": ["v1", "nope", "Bad Tag"]})),
    )
    .await;
    assert_eq!(v["deleted"], json!(["v1"]));
    let codes: Vec<&str> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["not_found", "invalid"]);
    let (_, v) = admin(
        &t,
        Method::POST,
        "/api/v1/namespaces/shop/repositories/batch-delete",
        Some(json!({"names": ["api", "multi", "gone"]})),
    )
    .await;
    assert_eq!(v["deleted"], json!(["api", "multi"]), "{v}");
    let (_, v) = admin(
        &t,
        Method::GET,
        "/api/v1/namespaces/shop/repositories",
        None,
    )
    .await;
    assert_eq!(v["total"], 0);
    assert_eq!(
        t.get("/v2/shop/api/manifests/latest").await.status(),
        StatusCode::NOT_FOUND
    );

    // Platform images, for everyone.
    t.push_image("library/base", "1", b"base").await;
    let (s, v) = call(
        &anonymous_client(),
        &t,
        Method::GET,
        "/api/v1/platform/repositories",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(names(&v), ["base"]);
    let (s, _) = call(
        &anonymous_client(),
        &t,
        Method::DELETE,
        "/api/v1/namespaces/library/repositories/base",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn namespace_deletes_follow_the_rules(b: Backend) {
    let t = TestServer::start(b).await;
    t.push_image("full/app", "1", b"app").await;
    t.push_image("full/tools/cli", "1", b"cli").await;
    admin(
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "empty"})),
    )
    .await;
    admin(
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "full2"})),
    )
    .await;
    t.push_image("full2/x", "1", b"x").await;

    let (s, v) = admin(&t, Method::DELETE, "/api/v1/namespaces/full", None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(v["detail"].as_str().unwrap().contains("2 image(s)"), "{v}");
    assert_eq!(
        t.get("/v2/full/app/manifests/1").await.status(),
        StatusCode::OK,
        "nothing lost"
    );
    let (s, v) = admin(
        &t,
        Method::DELETE,
        "/api/v1/namespaces/full?delete_all_images=true",
        None,
    )
    .await;
    assert_eq!(
        (s, v["images_deleted"].as_i64()),
        (StatusCode::OK, Some(2)),
        "{v}"
    );
    assert_eq!(
        t.get("/v2/full/app/manifests/1").await.status(),
        StatusCode::NOT_FOUND
    );
    let (s, _) = admin(&t, Method::GET, "/api/v1/namespaces/full", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = admin(&t, Method::DELETE, "/api/v1/namespaces/library", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = admin(
        &t,
        Method::DELETE,
        "/api/v1/namespaces/empty?delete_all_images=maybe",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, v) = admin(
        &t,
        Method::POST,
        "/api/v1/namespaces/batch-delete",
        Some(json!({"names": ["empty", "full2", "missing"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["deleted"], json!(["empty"]));
    let codes: Vec<&str> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["conflict", "not_found"]);
    let (_, v) = admin(
        &t,
        Method::POST,
        "/api/v1/namespaces/batch-delete",
        Some(json!({"names": ["full2"], "delete_all_images": true})),
    )
    .await;
    assert_eq!(v["deleted"], json!(["full2"]));
    let (s, _) = admin(
        &t,
        Method::POST,
        "/api/v1/namespaces/batch-delete",
        Some(json!({"names": []})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, v) = admin(
        &t,
        Method::GET,
        "/api/v1/audit-log?action=repository.delete",
        None,
    )
    .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 3, "{v}");
}

async fn members_grants_permissions_and_visibility(b: Backend) {
    let t = TestServer::start(b).await;
    let dev = create_account(&t, "dev").await;
    let guest = create_account(&t, "guest").await;
    admin(
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "team"})),
    )
    .await;
    t.push_image("team/app", "1", b"app").await;
    t.push_image("team/secret", "1", b"secret").await;

    // Before any role: private namespace invisible.
    let (s, _) = call(
        &guest,
        &t,
        Method::GET,
        "/api/v1/namespaces/team/repositories",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Deleting another tenant's namespace is answered exactly like
    // deleting one that does not exist, one by one and in a batch.
    let (s, other) = call(&guest, &t, Method::DELETE, "/api/v1/namespaces/team", None).await;
    let (s2, missing) = call(
        &guest,
        &t,
        Method::DELETE,
        "/api/v1/namespaces/nosuch",
        None,
    )
    .await;
    assert_eq!((s, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(
        other["detail"].as_str().map(|d| d.replace("team", "X")),
        missing["detail"].as_str().map(|d| d.replace("nosuch", "X")),
    );
    let (s, v) = call(
        &guest,
        &t,
        Method::POST,
        "/api/v1/namespaces/batch-delete",
        Some(json!({"names": ["team", "nosuch"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["deleted"], json!([]));
    let failed = v["failed"].as_array().expect("failed");
    assert_eq!(failed.len(), 2, "{v}");
    assert_eq!(failed[0]["code"], failed[1]["code"], "{v}");
    assert_eq!(failed[0]["code"], "not_found");
    assert_eq!(
        failed[0]["detail"].as_str().map(|d| d.replace("team", "X")),
        failed[1]["detail"]
            .as_str()
            .map(|d| d.replace("nosuch", "X")),
        "{v}"
    );

    // A namespace role.
    let (s, _) = admin(
        &t,
        Method::PUT,
        "/api/v1/namespaces/team/members/dev",
        Some(json!({"role": "developer"})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = admin(
        &t,
        Method::PUT,
        "/api/v1/namespaces/team/members/dev",
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = admin(
        &t,
        Method::PUT,
        "/api/v1/namespaces/team/members/ghost",
        Some(json!({"role": "guest"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = call(
        &dev,
        &t,
        Method::GET,
        "/api/v1/namespaces/team/members",
        None,
    )
    .await;
    assert_eq!(v, json!([{"account": "dev", "role": "developer"}]));
    let (_, v) = call(
        &dev,
        &t,
        Method::GET,
        "/api/v1/namespaces/team/repositories",
        None,
    )
    .await;
    assert_eq!(names(&v), ["app", "secret"]);
    let (s, _) = call(
        &dev,
        &t,
        Method::PUT,
        "/api/v1/namespaces/team/members/guest",
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "developers do not administer");

    // A per-repository permission shows that image only.
    let (s, _) = admin(
        &t,
        Method::PUT,
        "/api/v1/namespaces/team/permissions/app/guest",
        Some(json!({"permission": "read"})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = admin(
        &t,
        Method::PUT,
        "/api/v1/namespaces/team/permissions/app/guest",
        Some(json!({"permission": "all"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, v) = call(
        &guest,
        &t,
        Method::GET,
        "/api/v1/namespaces/team/repositories",
        None,
    )
    .await;
    assert_eq!(names(&v), ["app"]);
    let (s, _) = call(
        &guest,
        &t,
        Method::GET,
        "/api/v1/namespaces/team/repositories/secret/tags",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &guest,
        &t,
        Method::DELETE,
        "/api/v1/namespaces/team/repositories/app/tags/1",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "read permission does not delete");
    let (_, v) = admin(&t, Method::GET, "/api/v1/namespaces/team/permissions", None).await;
    assert_eq!(
        v,
        json!([{"repository": "app", "account": "guest", "permission": "read"}])
    );
    let (s, _) = admin(
        &t,
        Method::DELETE,
        "/api/v1/namespaces/team/permissions/app/guest",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(
        &guest,
        &t,
        Method::GET,
        "/api/v1/namespaces/team/repositories",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Grants to a registry user, which can then pull with docker login credentials.
    let (s, v) = admin(
        &t,
        Method::POST,
        "/api/v1/registry-users",
        Some(json!({"name": "ci-bot", "description": "CI"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let password = v["password"]
        .as_str()
        .expect("generated password")
        .to_owned();
    let (s, _) = admin(
        &t,
        Method::PUT,
        "/api/v1/namespaces/team/grants/ci-bot",
        Some(json!({"pull": true, "push": false})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = admin(&t, Method::GET, "/api/v1/namespaces/team/grants", None).await;
    assert_eq!(
        v,
        json!([{"registry_user": "ci-bot", "pull": true, "push": false}])
    );
    let bot = client_as("ci-bot", &password);
    let r = bot
        .get(t.url("/v2/team/app/manifests/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (s, _) = call(&bot, &t, Method::GET, "/api/v1/namespaces", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "registry users do not manage");
    let (s, _) = admin(
        &t,
        Method::DELETE,
        "/api/v1/namespaces/team/grants/ci-bot",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let r = bot
        .get(t.url("/v2/team/app/manifests/1"))
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == StatusCode::FORBIDDEN || r.status() == StatusCode::UNAUTHORIZED,
        "{}",
        r.status()
    );
}

async fn registry_users_accounts_and_groups(b: Backend) {
    let t = TestServer::start(b).await;
    let dev = create_account(&t, "dev").await;

    // Accounts: admins only.
    let (s, _) = call(&dev, &t, Method::GET, "/api/v1/accounts", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, v) = admin(&t, Method::GET, "/api/v1/accounts", None).await;
    assert_eq!(names_of(&v, "name"), ["admin", "dev"]);
    let (s, _) = admin(
        &t,
        Method::POST,
        "/api/v1/accounts",
        Some(json!({"name": "x", "password": "short"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = admin(
        &t,
        Method::POST,
        "/api/v1/accounts",
        Some(json!({"name": "dev", "password": "a-long-password"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Me: passwords.
    let (_, v) = call(&dev, &t, Method::GET, "/api/v1/accounts/me", None).await;
    assert_eq!(
        (v["name"].as_str(), v["has_registry_password"].as_bool()),
        (Some("dev"), Some(false))
    );
    let (s, v) = call(
        &dev,
        &t,
        Method::PATCH,
        "/api/v1/accounts/me",
        Some(json!({"registry_password": "registry-secret-1"})),
    )
    .await;
    assert_eq!(
        (s, v["has_registry_password"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let r = client_as("dev", "registry-secret-1")
        .get(t.url("/v2/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "docker login with the registry password"
    );
    let (s, _) = call(
        &dev,
        &t,
        Method::PATCH,
        "/api/v1/accounts/me",
        Some(json!({"registry_password": "x", "clear_registry_password": true})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = call(
        &dev,
        &t,
        Method::PATCH,
        "/api/v1/accounts/me",
        Some(json!({"clear_registry_password": true})),
    )
    .await;
    assert_eq!(
        (s, v["has_registry_password"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let (s, _) = call(
        &dev,
        &t,
        Method::PATCH,
        "/api/v1/accounts/me",
        Some(json!({"console_password": "new-console-pw"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let dev = client_as("dev", "new-console-pw");
    let (s, _) = call(&dev, &t, Method::GET, "/api/v1/accounts/me", None).await;
    assert_eq!(s, StatusCode::OK);

    // Registry users: chosen password, change, disable, delete; owners only.
    let (s, v) = call(&dev, &t, Method::POST, "/api/v1/registry-users", Some(json!({"name": "dev-bot", "password": "bot-password-1", "expires": "2999-01-01T00:00:00Z"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["password"].clone(), v["user"]["owner"].as_str()),
        (Value::Null, Some("dev"))
    );
    assert_eq!(v["user"]["expires"], "2999-01-01T00:00:00Z");
    let (s, _) = call(
        &dev,
        &t,
        Method::POST,
        "/api/v1/registry-users",
        Some(json!({"name": "bot2", "expires": "soon"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(
        &dev,
        &t,
        Method::POST,
        "/api/v1/registry-users",
        Some(json!({"name": "bot3", "owner": "admin"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, v) = call(&dev, &t, Method::GET, "/api/v1/registry-users", None).await;
    assert_eq!(names_of(&v, "name"), ["dev-bot"]);
    let (s, v) = call(
        &dev,
        &t,
        Method::PATCH,
        "/api/v1/registry-users/dev-bot",
        Some(json!({"generate_password": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let new_password = v["password"].as_str().unwrap().to_owned();
    assert_eq!(
        client_as("dev-bot", &new_password)
            .get(t.url("/v2/"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (s, _) = call(
        &dev,
        &t,
        Method::PATCH,
        "/api/v1/registry-users/dev-bot",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        client_as("dev-bot", &new_password)
            .get(t.url("/v2/"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let other = create_account(&t, "other").await;
    let (s, _) = call(
        &other,
        &t,
        Method::DELETE,
        "/api/v1/registry-users/dev-bot",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &dev,
        &t,
        Method::DELETE,
        "/api/v1/registry-users/dev-bot",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(
        &dev,
        &t,
        Method::DELETE,
        "/api/v1/registry-users/dev-bot",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Disable an account: its logins stop.
    let (s, v) = admin(
        &t,
        Method::PATCH,
        "/api/v1/accounts/other",
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!((s, v["disabled"].as_bool()), (StatusCode::OK, Some(true)));
    let (s, _) = call(&other, &t, Method::GET, "/api/v1/accounts/me", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = admin(
        &t,
        Method::PATCH,
        "/api/v1/accounts/admin",
        Some(json!({"disabled": true})),
    )
    .await;
    // A valid request of something not allowed: forbidden, not invalid.
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Project groups and the namespace limit.
    let (_, v) = call(&dev, &t, Method::GET, "/api/v1/project-groups", None).await;
    assert_eq!(names_of(&v, "name"), ["dev"]);
    assert_eq!(
        (
            v[0]["effective_namespace_limit"].as_i64(),
            v[0]["namespace_count"].as_i64()
        ),
        (Some(8), Some(0))
    );
    let (s, _) = call(
        &dev,
        &t,
        Method::POST,
        "/api/v1/project-groups",
        Some(json!({"name": "g2"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = admin(
        &t,
        Method::POST,
        "/api/v1/project-groups",
        Some(json!({"name": "platform-team", "admin": "dev"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = call(
        &dev,
        &t,
        Method::PATCH,
        "/api/v1/project-groups/dev",
        Some(json!({"namespace_limit": 1})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "only platform admins change limits"
    );
    let (s, v) = admin(
        &t,
        Method::PATCH,
        "/api/v1/project-groups/dev",
        Some(json!({"namespace_limit": 1})),
    )
    .await;
    assert_eq!(
        (s, v["effective_namespace_limit"].as_i64()),
        (StatusCode::OK, Some(1))
    );
    call(
        &dev,
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "first"})),
    )
    .await;
    let (s, v) = call(
        &dev,
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "second"})),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("limit_exceeded"))
    );
    assert!(v["detail"].as_str().unwrap().contains("limit"), "{v}");
    let (_, v) = admin(
        &t,
        Method::PATCH,
        "/api/v1/project-groups/dev",
        Some(json!({"namespace_limit": null})),
    )
    .await;
    assert_eq!(
        (
            v["namespace_limit"].clone(),
            v["effective_namespace_limit"].as_i64()
        ),
        (Value::Null, Some(8))
    );
    let (s, _) = call(
        &dev,
        &t,
        Method::PUT,
        "/api/v1/project-groups/platform-team/members/other",
        Some(json!({"role": "guest"})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = call(
        &dev,
        &t,
        Method::GET,
        "/api/v1/project-groups/platform-team",
        None,
    )
    .await;
    assert_eq!(
        v["members"],
        json!([{"account": "dev", "role": "admin"}, {"account": "other", "role": "guest"}])
    );
    let (s, _) = call(
        &dev,
        &t,
        Method::DELETE,
        "/api/v1/project-groups/platform-team/members/other",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = admin(&t, Method::GET, "/api/v1/project-groups/none", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

fn names_of(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|i| i[key].as_str().unwrap().to_owned())
        .collect()
}

async fn tokens_and_console_sessions(b: Backend) {
    let t = TestServer::start(b).await;
    create_account(&t, "dev").await;
    let dev = client_as("dev", "a-long-password");

    // Personal API tokens.
    let (s, v) = call(
        &dev,
        &t,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({"name": "laptop"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let secret = v["secret"].as_str().unwrap().to_owned();
    let id = v["token"]["id"].as_i64().unwrap();
    assert!(
        secret.starts_with("berth_pat_")
            && secret.starts_with(v["token"]["prefix"].as_str().unwrap())
    );
    let (s, _) = call(
        &dev,
        &t,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({"name": "old", "expires": "2001-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let bearer = |s: &str| {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("authorization", format!("Bearer {s}").parse().unwrap());
        Client::builder().default_headers(h).build().unwrap()
    };
    let (s, v) = call(
        &bearer(&secret),
        &t,
        Method::GET,
        "/api/v1/accounts/me",
        None,
    )
    .await;
    assert_eq!((s, v["name"].as_str()), (StatusCode::OK, Some("dev")));
    let (_, v) = call(&dev, &t, Method::GET, "/api/v1/tokens", None).await;
    assert!(v[0]["last_used"].is_string(), "{v}");
    let (s, _) = call(
        &bearer("berth_pat_wrong"),
        &t,
        Method::GET,
        "/api/v1/accounts/me",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(
        &bearer("some.jwt.token"),
        &t,
        Method::GET,
        "/api/v1/accounts/me",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = admin(&t, Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "not the admin's token");
    let (s, _) = call(
        &dev,
        &t,
        Method::DELETE,
        &format!("/api/v1/tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(
        &bearer(&secret),
        &t,
        Method::GET,
        "/api/v1/accounts/me",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "revoked");

    // Console session: cookie, CSRF on changes, logout.
    let anon = anonymous_client();
    let (s, _) = call(
        &anon,
        &t,
        Method::POST,
        "/api/v1/session",
        Some(json!({"username": "dev", "password": "wrong"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let r = anon
        .post(t.url("/api/v1/session"))
        .json(&json!({"username": "dev", "password": "a-long-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let set_cookie = header(&r, "set-cookie");
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let v: Value = r.json().await.unwrap();
    let csrf = v["csrf_token"].as_str().unwrap().to_owned();
    let with_cookie =
        |method: Method, path: &str| anon.request(method, t.url(path)).header("cookie", &cookie);
    // The token goes only to the console's own pages, as the browser
    // tells: a script riding the cookie (elsewhere, or in a sandboxed
    // answer with an opaque origin) does not get it.
    let r = with_cookie(Method::GET, "/api/v1/session")
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "cache-control"), "no-store");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["account"].as_str(), v["csrf_token"].as_str()),
        (Some("dev"), Some(csrf.as_str()))
    );
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "null"),
        ("origin", "https://evil.example"),
        ("x-nothing", "cookie alone"),
    ] {
        let r = with_cookie(Method::GET, "/api/v1/session")
            .header(name, value)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["account"], "dev");
        assert!(v["csrf_token"].is_null(), "{name}: {value}: {v}");
    }
    let r = with_cookie(Method::POST, "/api/v1/namespaces")
        .header("x-csrf-token", &csrf)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"name": "viacookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "from another site");
    let r = with_cookie(Method::POST, "/api/v1/namespaces")
        .json(&json!({"name": "viacookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let r = with_cookie(Method::POST, "/api/v1/namespaces")
        .header("x-csrf-token", "forged")
        .json(&json!({"name": "viacookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "wrong CSRF token");
    let r = with_cookie(Method::POST, "/api/v1/namespaces")
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "viacookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = with_cookie(Method::DELETE, "/api/v1/session")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(header(&r, "set-cookie").contains("Max-Age=0"));
    let r = with_cookie(Method::GET, "/api/v1/accounts/me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "session ended");
}

async fn audit_log_filters_and_limits(b: Backend) {
    let t = TestServer::start(b).await;
    let dev = create_account(&t, "dev").await;
    admin(
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "ns1"})),
    )
    .await;
    admin(
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "ns10"})),
    )
    .await;
    call(
        &dev,
        &t,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "devns"})),
    )
    .await;
    t.push_image("ns1/app", "1", b"a").await;
    admin(
        &t,
        Method::DELETE,
        "/api/v1/namespaces/ns1/repositories/app/tags/1",
        None,
    )
    .await;

    let targets = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["target"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, v) = admin(&t, Method::GET, "/api/v1/audit-log?namespace=ns1", None).await;
    // The push, the tag delete and the image delete it took, the namespace.
    assert_eq!(targets(&v), ["ns1/app", "ns1/app", "ns1/app", "ns1"], "{v}");
    let (_, v) = admin(&t, Method::GET, "/api/v1/audit-log?action=namespace.", None).await;
    assert_eq!(targets(&v), ["devns", "ns10", "ns1"]);
    let (_, v) = admin(&t, Method::GET, "/api/v1/audit-log?actor=dev", None).await;
    assert_eq!(targets(&v), ["devns"]);
    let (_, v) = admin(
        &t,
        Method::GET,
        "/api/v1/audit-log?since=2999-01-01T00:00:00Z",
        None,
    )
    .await;
    assert_eq!(v["items"], json!([]));
    let (_, v) = admin(&t, Method::GET, "/api/v1/audit-log?limit=2", None).await;
    let before = v["next_before"].as_i64().expect("more pages");
    let (_, v2) = admin(
        &t,
        Method::GET,
        &format!("/api/v1/audit-log?limit=2&before={before}"),
        None,
    )
    .await;
    assert!(v2["items"][0]["id"].as_i64().unwrap() < before);
    let (s, _) = admin(&t, Method::GET, "/api/v1/audit-log?limit=0", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = admin(&t, Method::GET, "/api/v1/audit-log?since=yesterday", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Others see their own entries, and their namespaces'.
    let (_, v) = call(&dev, &t, Method::GET, "/api/v1/audit-log", None).await;
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "dev"),
        "{v}"
    );
    let (s, _) = call(&dev, &t, Method::GET, "/api/v1/audit-log?actor=admin", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &dev,
        &t,
        Method::GET,
        "/api/v1/audit-log?namespace=devns&actor=dev",
        None,
    )
    .await;
    assert_eq!((s, targets(&v)), (StatusCode::OK, vec!["devns".to_owned()]));
}

async fn bad_requests_get_problem_documents(b: Backend) {
    let t = TestServer::start(b).await;
    let cases: &[(Method, &str, Option<&str>, StatusCode)] = &[
        (
            Method::GET,
            "/api/v1/nothing-here",
            None,
            StatusCode::NOT_FOUND,
        ),
        (Method::GET, "/api", None, StatusCode::NOT_FOUND),
        (
            Method::PUT,
            "/api/v1/namespaces",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/api/v1/namespaces",
            Some("{not json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/namespaces",
            Some(r#"{"name":"a1","bogus":1}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/namespaces",
            Some(r#"{"public":true}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/namespaces?page=0",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/namespaces?per_page=1000",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/namespaces?page=x",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/namespaces?sort=size",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/namespaces?tab=everything",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/namespaces?visibility=hidden",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/namespaces/library/repositories/UPPER",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/namespaces/library/repositories/x/tags?sort=-bogus",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            "/api/v1/tokens/abc",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/namespaces/nope/repositories",
            None,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, path, body, status) in cases {
        let mut req = t.client.request(method.clone(), t.url(path));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), *status, "{method} {path}");
        assert_eq!(
            header(&r, "content-type"),
            "application/problem+json",
            "{method} {path}"
        );
        let v: Value = r.json().await.unwrap();
        assert!(
            v["code"].is_string() && v["detail"].is_string(),
            "{method} {path}: {v}"
        );
    }
    let r = anonymous_client()
        .get(t.url("/api/v1/accounts/me"))
        .header("authorization", "Basic bm9wZTpub3Bl")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&r, "www-authenticate").contains("Basic"));
    let r = t.get("/api/v1/openapi.json").await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["paths"]["/api/v1/namespaces/{ns}/repositories/{repo}/tags"]["get"].is_object());
}
