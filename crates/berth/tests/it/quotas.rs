//! What bounds a tenant is the platform's: a namespace's storage quota is
//! set by platform administrators and only seen by the namespace's own
//! administrators (API and console), and a project group's storage quota
//! bounds all its namespaces together, checked as each blob is linked,
//! also under concurrent uploads.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

backend_tests!(
    a_namespace_quota_is_the_platforms,
    a_project_group_quota_bounds_all_its_namespaces,
);

/// A monolithic upload (one POST) of `data` into `repo`: the status.
async fn upload(t: &TestServer, client: &reqwest::Client, repo: &str, data: Vec<u8>) -> StatusCode {
    let digest = sha256(&data);
    client
        .post(t.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(data)
        .send()
        .await
        .expect("upload")
        .status()
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

async fn a_namespace_quota_is_the_platforms(b: Backend) {
    let t = TestServer::start(b).await;
    let tenant = create_account(&t, "tenant").await;
    assert_eq!(
        upload(&t, &tenant, "tenantns/app", data(10, 1)).await,
        StatusCode::CREATED
    );
    let path = "/api/v1/namespaces/tenantns/policies";
    let (s, v) = t
        .api(Method::PUT, path, Some(json!({"quota_bytes": 1_048_576})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The namespace's own administrator can neither lift nor raise it.
    for quota in [Value::Null, json!(2_097_152)] {
        let (s, v) = t
            .api_as(
                &tenant,
                Method::PUT,
                path,
                Some(json!({"quota_bytes": quota})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{quota}: {v}");
        assert!(
            v["detail"].as_str().unwrap_or("").contains("platform"),
            "{v}"
        );
    }
    // It changes the rest of the policies, sending the quota back as it is.
    let (s, v) = t
        .api_as(
            &tenant,
            Method::PUT,
            path,
            Some(json!({"immutable_tags": ["v*"], "quota_bytes": 1_048_576})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = t.api_as(&tenant, Method::GET, path, None).await;
    assert_eq!(v["quota_bytes"], 1_048_576, "{v}");
    assert_eq!(v["immutable_tags"], json!(["v*"]), "{v}");

    // The console shows the quota to the tenant read-only, and its form
    // keeps it.
    let (cookie, csrf) = {
        let r = anonymous_client()
            .post(t.url("/api/v1/session"))
            .json(&json!({"username": "tenant", "password": "a-long-password"}))
            .send()
            .await
            .expect("login");
        let cookie = header(&r, "set-cookie")
            .split(';')
            .next()
            .expect("c")
            .to_owned();
        let v: Value = r.json().await.expect("json");
        (cookie, v["csrf_token"].as_str().expect("csrf").to_owned())
    };
    let page = anonymous_client()
        .get(t.url("/namespaces/tenantns/policies"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("quota-read-only") && page.contains("1.0 MiB"),
        "{page}"
    );
    assert!(
        !page.contains("name=\"quota\""),
        "no quota field for the tenant"
    );
    let r = anonymous_client()
        .post(t.url("/namespaces/tenantns/policies"))
        .header("cookie", &cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("immutable_tags", "release-*"),
            ("quota", ""),
            ("retention", ""),
        ])
        .send()
        .await
        .expect("post");
    assert!(r.status().is_redirection());
    let (_, v) = t.api(Method::GET, path, None).await;
    assert_eq!(v["quota_bytes"], 1_048_576, "{v}");
    assert_eq!(v["immutable_tags"], json!(["release-*"]), "{v}");
    // Nor does a group administrator set its group's quota.
    let (s, _) = t
        .api_as(
            &tenant,
            Method::PATCH,
            "/api/v1/project-groups/tenant",
            Some(json!({"storage_quota_bytes": null})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn a_project_group_quota_bounds_all_its_namespaces(b: Backend) {
    let t = TestServer::start(b).await;
    let tenant = create_account(&t, "tenant").await;
    let (s, v) = t
        .api(
            Method::PATCH,
            "/api/v1/project-groups/tenant",
            Some(json!({"storage_quota_bytes": 1_000_000})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["storage_quota_bytes"], 1_000_000);
    assert_eq!(
        upload(&t, &tenant, "tenant-a/app", data(600_000, 1)).await,
        StatusCode::CREATED
    );
    // Another namespace of the group: the group's quota counts both.
    let r = tenant
        .post(t.url(&format!(
            "/v2/tenant-b/app/blobs/uploads/?digest={}",
            sha256(&data(600_000, 2))
        )))
        .body(data(600_000, 2))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body = r.text().await.expect("body");
    assert!(
        body.contains("DENIED") && body.contains("project group tenant"),
        "{body}"
    );
    // Small ones fit.
    assert_eq!(
        upload(&t, &tenant, "tenant-b/app", data(100_000, 3)).await,
        StatusCode::CREATED
    );
    let (_, v) = t
        .api(Method::GET, "/api/v1/project-groups/tenant", None)
        .await;
    assert_eq!(v["storage_used_bytes"], 700_000, "{v}");

    // Concurrent uploads into two more namespaces cannot pass it together.
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let (c, base) = (tenant.clone(), t.base.clone());
        let repo = if i % 2 == 0 {
            "tenant-c/app"
        } else {
            "tenant-d/app"
        };
        tasks.push(tokio::spawn(async move {
            let d = data(150_000, 10 + i);
            c.post(format!(
                "{base}/v2/{repo}/blobs/uploads/?digest={}",
                sha256(&d)
            ))
            .body(d)
            .send()
            .await
            .expect("upload")
            .status()
        }));
    }
    let mut created = 0;
    for task in tasks {
        let s = task.await.expect("join");
        assert!(
            s == StatusCode::CREATED || s == StatusCode::FORBIDDEN,
            "{s}"
        );
        created += usize::from(s == StatusCode::CREATED);
    }
    assert_eq!(created, 2, "700,000 + 2 x 150,000 fill 1,000,000");
    let (_, v) = t
        .api(Method::GET, "/api/v1/project-groups/tenant", None)
        .await;
    assert_eq!(v["storage_used_bytes"], 1_000_000, "{v}");

    // Lifted by a platform administrator, the refused push goes through.
    let (s, _) = t
        .api(
            Method::PATCH,
            "/api/v1/project-groups/tenant",
            Some(json!({"storage_quota_bytes": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        upload(&t, &tenant, "tenant-b/app", data(600_000, 2)).await,
        StatusCode::CREATED
    );
    assert!(audit_actions(&t).await.contains(&"group.quota".to_owned()));
}
