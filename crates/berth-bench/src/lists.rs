//! List scenarios: paging a large tag list, and the management API's image
//! list across namespaces.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use reqwest::{Client, StatusCode};
use serde_json::json;

use crate::measure::*;
use crate::payload::*;
use crate::target::*;

/// Tag one image `tags` times in `namespace/tags100k` (skipping tags that
/// exist), then read pages of its tag list through the management API:
/// the first, a middle one and the last, in turn, for `secs`.
pub(crate) async fn tag_list(
    t: Target,
    namespace: &str,
    tags: usize,
    secs: u64,
) -> anyhow::Result<()> {
    let repo = format!("{namespace}/tags100k");
    let t = Arc::new(t);
    let base = t.url.clone();
    let (user, pass) = t.creds.clone().unwrap_or_default();
    let list = |page: usize| {
        format!("{base}/api/v1/namespaces/{namespace}/repositories/tags100k/tags?per_page=100&page={page}")
    };
    let have: usize = match t
        .client
        .get(list(1))
        .basic_auth(&user, Some(&pass))
        .send()
        .await?
    {
        r if r.status().is_success() => r.json::<serde_json::Value>().await?["total"]
            .as_u64()
            .unwrap_or(0) as usize,
        _ => 0,
    };
    if have < tags {
        let config = data(512, 77);
        let layer = data(4096, 78);
        let cd = t.push_blob(&repo, config.clone()).await?;
        let ld = t.push_blob(&repo, layer.clone()).await?;
        let body = manifest_body((&cd, config.len()), &[(ld, layer.len())])?;
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(have));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (t, next, body, repo) = (t.clone(), next.clone(), body.clone(), repo.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= tags {
                        return anyhow::Ok(());
                    }
                    t.put_manifest(&repo, &format!("t{i:06}"), body.clone())
                        .await?;
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        emit(
            "berth",
            "tag_100k_setup",
            json!({"tags_per_s": (tags - have) as f64 / start.elapsed().as_secs_f64()}),
        );
    }
    read_tag_pages(&t.client, list, tags, &user, &pass, secs).await
}

pub(crate) async fn read_tag_pages(
    client: &Client,
    list: impl Fn(usize) -> String,
    tags: usize,
    user: &str,
    pass: &str,
    secs: u64,
) -> anyhow::Result<()> {
    let last = tags.div_ceil(100);
    let pages = [1, last / 2, last];
    let urls: Arc<Vec<String>> = Arc::new(pages.iter().map(|p| list(*p)).collect());
    let (user, pass) = (user.to_owned(), pass.to_owned());
    let i = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let make: Arc<dyn Fn(&Client) -> reqwest::RequestBuilder + Send + Sync> =
        Arc::new(move |c: &Client| {
            let n = i.fetch_add(1, Ordering::Relaxed);
            c.get(&urls[n % urls.len()]).basic_auth(&user, Some(&pass))
        });
    let (rps, p50, p99, errors) = rate(client, 1, secs, make).await;
    emit(
        "berth",
        "api_tag_list_100k_page",
        json!({"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors}),
    );
    Ok(())
}

/// Namespaces of the image-list benchmark.
pub(crate) const IMAGE_LIST_NAMESPACES: usize = 10;

/// Push `images` images, `imglist-<k>/img<nnnnnn>`, spread over ten
/// namespaces (skipping a run that has them), each an empty image index
/// (one request, nothing to upload), then read pages of the list across
/// namespaces for `secs` each: by name (the first, a middle and the last
/// page), by last push and by pulls (first pages), and one namespace with
/// a name search.
pub(crate) async fn image_list(t: Target, images: usize, secs: u64) -> anyhow::Result<()> {
    let t = Arc::new(t);
    let base = t.url.clone();
    let (user, pass) = t.creds.clone().unwrap_or_default();
    let api = |path: &str| format!("{base}/api/v1/repositories{path}");
    let have = t
        .client
        .get(api("?all=true&q=imglist-&per_page=1"))
        .basic_auth(&user, Some(&pass))
        .send()
        .await?
        .error_for_status()?
        .json::<serde_json::Value>()
        .await?["total"]
        .as_u64()
        .unwrap_or(0) as usize;
    if have < images {
        // Their own project group, with room for ten namespaces.
        let call = |method: reqwest::Method, path: &str, body: serde_json::Value| {
            t.client
                .request(method, format!("{base}/api/v1{path}"))
                .basic_auth(&user, Some(&pass))
                .json(&body)
                .send()
        };
        let steps = [
            (
                reqwest::Method::POST,
                "/project-groups".to_owned(),
                json!({"name": "imglist", "admin": user}),
            ),
            (
                reqwest::Method::PATCH,
                "/project-groups/imglist".to_owned(),
                json!({"namespace_limit": IMAGE_LIST_NAMESPACES}),
            ),
        ]
        .into_iter()
        .chain((0..IMAGE_LIST_NAMESPACES).map(|k| {
            (
                reqwest::Method::POST,
                "/namespaces".to_owned(),
                json!({"name": format!("imglist-{k}"), "project_group": "imglist"}),
            )
        }));
        for (method, path, body) in steps {
            let r = call(method, &path, body).await?;
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            // Made by an earlier run: fine.
            let exists = status == StatusCode::CONFLICT && text.contains("\"code\":\"conflict\"");
            if !status.is_success() && !exists {
                bail!("{path}: {status} {text}");
            }
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        }))?;
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(have));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (t, next, index) = (t.clone(), next.clone(), index.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= images {
                        return anyhow::Ok(());
                    }
                    let repo = format!("imglist-{}/img{i:06}", i % IMAGE_LIST_NAMESPACES);
                    let r = t
                        .push_req(t.client.put(format!("{}/v2/{repo}/manifests/v1", t.url)))
                        .header("content-type", "application/vnd.oci.image.index.v1+json")
                        .body(index.clone())
                        .send()
                        .await?;
                    if r.status() != StatusCode::CREATED {
                        bail!(
                            "index: {} {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        );
                    }
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        emit(
            "berth",
            "image_100k_setup",
            json!({"images_per_s": (images - have) as f64 / start.elapsed().as_secs_f64()}),
        );
    }
    let last = images.div_ceil(20);
    let kinds: [(&str, Vec<String>); 3] = [
        (
            "api_image_list_100k_page",
            [1, last / 2, last]
                .iter()
                .map(|p| api(&format!("?all=true&page={p}")))
                .collect(),
        ),
        (
            "api_image_list_100k_sorted",
            vec![
                api("?all=true&sort=-updated"),
                api("?all=true&sort=-pull_count"),
            ],
        ),
        (
            "api_image_list_100k_filtered",
            vec![api("?all=true&namespace=imglist-3&q=img0")],
        ),
    ];
    for (scenario, urls) in kinds {
        let urls = Arc::new(urls);
        let (user, pass) = (user.clone(), pass.clone());
        let i = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let make: Arc<dyn Fn(&Client) -> reqwest::RequestBuilder + Send + Sync> =
            Arc::new(move |c: &Client| {
                let n = i.fetch_add(1, Ordering::Relaxed);
                c.get(&urls[n % urls.len()]).basic_auth(&user, Some(&pass))
            });
        let (rps, p50, p99, errors) = rate(&t.client, 1, secs, make).await;
        emit(
            "berth",
            scenario,
            json!({"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors}),
        );
    }
    Ok(())
}
