//! The console's garbage collection page: a platform administrator starts
//! a preview and a collection and follows them (blobs expected and
//! deleted, rate, share done, time left); anyone else is refused the page
//! and the form.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::oidc::{csrf, Browser};
use crate::common::*;

#[tokio::test]
async fn the_console_starts_collections_and_shows_their_progress() {
    let t = TestServer::start_with(Backend::Sqlite, |c| c.gc.grace_secs = 0).await;
    let owner = namespace_owner(&t, "owner", "team").await;
    // Two images; the second deleted leaves its config and layer behind.
    t.push_image_as(&owner, "team/app", "v1", b"kept").await;
    let (gone, _) = t
        .push_image_as(&owner, "team/app", "v2", b"reclaimed")
        .await;
    let r = owner
        .delete(t.url(&format!("/v2/team/app/manifests/{gone}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let base = &t.base;
    let admin = Browser::default();
    admin
        .submit(
            &format!("{base}/login"),
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await;
    let (_, s, page) = admin.open(&format!("{base}/gc")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"no-runs\""), "{page}");
    assert!(page.contains("id=\"nav-gc\""), "{page}");

    // A preview, then a collection; each run's row once it ended.
    let (_, _, page) = admin
        .submit(
            &format!("{base}/gc"),
            &[("_csrf", &csrf(&page)), ("kind", "preview")],
        )
        .await;
    assert!(page.contains("Preview 1 started."), "{page}");
    let page = finished(&t, &admin, 1).await;
    let (_, _, page) = admin
        .submit(
            &format!("{base}/gc"),
            &[("_csrf", &csrf(&page)), ("kind", "collect")],
        )
        .await;
    assert!(page.contains("Collection 2 started."), "{page}");
    let page = finished(&t, &admin, 2).await;
    let second = row(&page, 2);
    assert!(
        second.contains("<td class=\"gc-blobs\">2 of 2</td>"),
        "{second}"
    );
    assert!(
        second.contains("<td class=\"gc-percent\">100%</td>"),
        "{second}"
    );
    assert!(second.contains("<td class=\"gc-eta\">0 s</td>"), "{second}");
    assert!(second.contains("finished"), "{second}");
    // The preview has no blob step: no rate, no time left.
    let row = row(&page, 1);
    assert!(
        row.contains("preview") && row.contains("<td class=\"gc-eta\">—</td>"),
        "{row}"
    );
    // The API agrees with the page.
    let (_, run) = t.api(Method::GET, "/api/v1/gc/runs/2", None).await;
    assert_eq!(run["blobs_deleted"], 2, "{run}");
    assert_eq!(run["progress"]["blobs_expected"], 2, "{run}");

    // A form without a kind is refused with a reason, and runs nothing.
    let (_, _, page) = admin
        .submit(&format!("{base}/gc"), &[("_csrf", &csrf(&page))])
        .await;
    assert!(page.contains("choose a preview or a collection"), "{page}");
    let (_, runs) = t.api(Method::GET, "/api/v1/gc/runs", None).await;
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{runs}");

    // A namespace owner is refused the page and the form (with a valid
    // token of their own), and nothing starts.
    let b = Browser::default();
    b.submit(
        &format!("{base}/login"),
        &[("username", "owner"), ("password", "a-long-password")],
    )
    .await;
    let (_, s, page) = b.open(&format!("{base}/gc")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("platform administrators"), "{page}");
    let (_, _, account) = b.open(&format!("{base}/account")).await;
    let (_, s, _) = b
        .submit(
            &format!("{base}/gc"),
            &[("_csrf", &csrf(&account)), ("kind", "collect")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, runs) = t.api(Method::GET, "/api/v1/gc/runs", None).await;
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{runs}");
    let (s, _) = t
        .api_as(
            &owner,
            Method::POST,
            "/api/v1/gc/runs",
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// The console page once run `id` has ended.
async fn finished(t: &TestServer, admin: &Browser, id: i64) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, s, page) = admin.open(&format!("{}/gc", t.base)).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let row = row(&page, id);
        if !row.contains("running") {
            return page;
        }
        assert!(Instant::now() < deadline, "run {id} did not end: {row}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The table row of run `id`.
fn row(page: &str, id: i64) -> String {
    let start = page
        .find(&format!("<tr data-run=\"{id}\">"))
        .unwrap_or_else(|| panic!("no row for run {id}: {page}"));
    let end = page[start..].find("</tr>").expect("row end") + start;
    page[start..end].to_owned()
}
