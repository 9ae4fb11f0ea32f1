//! The pull-through cache against the reference registry as its upstream
//! (behind a relay that counts the bytes it sends and stops on demand):
//! a miss fetches and stores, later pulls are local, concurrent misses
//! make one upstream fetch, tags are revalidated after the configured
//! time, cached content is served while the upstream is down, pushes are
//! refused, and the default proxy namespace answers mirror-style names.

use std::time::Duration;

use crate::common::reference::{client_of, push_remote, Reference};
use crate::common::relay::{free_addr, Relay};
use crate::common::*;
use reqwest::{Method, StatusCode};

backend_tests!(a_proxy_namespace_caches_its_upstream);

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

async fn manifest(
    t: &TestServer,
    client: &reqwest::Client,
    path: &str,
) -> (StatusCode, String, Vec<u8>) {
    let r = client
        .get(t.url(path))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("get");
    let status = r.status();
    let digest = r
        .headers()
        .get("docker-content-digest")
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    let body = r.bytes().await.expect("body").to_vec();
    if status != StatusCode::OK {
        eprintln!("{path}: {status} {}", String::from_utf8_lossy(&body));
    }
    (status, digest, body)
}

fn layer_of(manifest: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(manifest).expect("manifest");
    v["layers"][0]["digest"].as_str().expect("layer").to_owned()
}

async fn a_proxy_namespace_caches_its_upstream(b: Backend) {
    let up = Reference::start(None).await;
    let relay_addr = free_addr();
    let relay = Relay::start(relay_addr, up.addr).await;
    let upstream = client_of(&up.url(), None);
    let v1 = push_remote(&upstream, "library/alpine", "3", &content(200_000, 1)).await;
    let t = TestServer::start_with(b, |c| {
        c.remotes = vec![berth::config::RemoteSection {
            name: "up".into(),
            url: format!("http://{relay_addr}"),
            ..Default::default()
        }];
        c.proxy_namespaces = vec![berth::config::ProxyNamespaceSection {
            namespace: "hub".into(),
            remote: "up".into(),
            revalidate_secs: 2,
            default: true,
            public: true,
        }];
    })
    .await;
    let anon = anonymous_client();

    // A miss fetches from the upstream; the blob streams while it is stored.
    let (s, d, m) = manifest(&t, &t.client, "/v2/hub/library/alpine/manifests/3").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d, v1);
    let layer = layer_of(&m);
    let r = t
        .get(&format!("/v2/hub/library/alpine/blobs/{layer}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().to_vec(), content(200_000, 1));
    // The namespace was created public: anonymous pulls work, and later
    // pulls are served here (the relay sends nothing more for them).
    let before = relay.downstream_bytes();
    for _ in 0..3 {
        let r = anon
            .get(t.url(&format!("/v2/hub/library/alpine/blobs/{layer}")))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.unwrap().len(), 200_000);
    }
    assert!(
        relay.downstream_bytes() - before < 10_000,
        "served from the cache"
    );
    // The cached image is an image like any other: listed with its tag.
    let (s, v) = t
        .api(Method::GET, "/api/v1/namespaces/hub/repositories", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v.to_string().contains("library/alpine"), "{v}");

    // A cached layer that rots is fetched again from the upstream by an
    // integrity check with repair.
    let mut rotten = content(200_000, 1);
    rotten[1000] ^= 1;
    crate::integrity::tamper(&t, &layer, Some(rotten)).await;
    let (s, run) = t
        .api(
            Method::POST,
            "/api/v1/integrity/runs",
            Some(serde_json::json!({"repair": true})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{run}");
    let run = crate::integrity::wait_finished(&t, run["id"].as_i64().unwrap()).await;
    assert_eq!(
        (run["damaged"].as_i64(), run["repaired"].as_i64()),
        (Some(1), Some(1)),
        "{run}"
    );
    assert!(
        run["problems"]
            .to_string()
            .contains("repaired from the upstream up of hub/library/alpine"),
        "{run}"
    );
    let r = t
        .get(&format!("/v2/hub/library/alpine/blobs/{layer}"))
        .await;
    assert_eq!(r.bytes().await.unwrap().to_vec(), content(200_000, 1));

    // The API lists the proxy namespace, read-only.
    let (s, v) = t.api(Method::GET, "/api/v1/proxy-namespaces", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v[0]["namespace"], "hub");
    assert_eq!(v[0]["remote"], "up");
    assert_eq!(v[0]["read_only"], true);

    // Concurrent misses of a 6 MB layer make one upstream fetch.
    let big = content(6 << 20, 2);
    push_remote(&upstream, "library/busy", "1", &big).await;
    let (s, _, m) = manifest(&t, &t.client, "/v2/hub/library/busy/manifests/1").await;
    assert_eq!(s, StatusCode::OK);
    let big_layer = layer_of(&m);
    let before = relay.downstream_bytes();
    let mut pulls = Vec::new();
    for _ in 0..6 {
        let (c, url) = (
            t.client.clone(),
            t.url(&format!("/v2/hub/library/busy/blobs/{big_layer}")),
        );
        pulls.push(tokio::spawn(async move {
            let r = c.get(url).send().await.expect("get");
            (r.status(), r.bytes().await.expect("body").len())
        }));
    }
    for p in pulls {
        assert_eq!(p.await.unwrap(), (StatusCode::OK, 6 << 20));
    }
    let sent = relay.downstream_bytes() - before;
    assert!(
        sent < (6 << 20) + (1 << 20),
        "one upstream fetch: {sent} bytes"
    );

    // Pushes are refused with a clear error.
    let r = t
        .put_manifest("hub/library/alpine", "mine", OCI_MANIFEST, &m)
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    let r = t
        .req(Method::POST, "/v2/hub/library/new/blobs/uploads/")
        .await
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("pull-through cache"));

    // The tag moves upstream: served as cached until revalidated.
    let v2 = push_remote(&upstream, "library/alpine", "3", &content(1000, 3)).await;
    let (_, d, _) = manifest(&t, &t.client, "/v2/hub/library/alpine/manifests/3").await;
    assert_eq!(d, v1, "within the revalidation time");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, d, _) = manifest(&t, &t.client, "/v2/hub/library/alpine/manifests/3").await;
    assert_eq!(d, v2, "revalidated with a HEAD and fetched");

    // Mirror-style names reach the default proxy namespace.
    let (s, d, _) = manifest(&t, &anon, "/v2/library/alpine/manifests/3").await;
    assert_eq!((s, d.as_str()), (StatusCode::OK, v2.as_str()));

    // Cached content obeys the namespace's quota: a blob that does not fit
    // is passed through to the client but not kept.
    let (s, v) = t
        .api(
            Method::PUT,
            "/api/v1/namespaces/hub/policies",
            Some(serde_json::json!({"quota_bytes": 6_600_000})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let huge = content(1 << 20, 4);
    push_remote(&upstream, "library/huge", "1", &huge).await;
    let (s, _, m) = manifest(&t, &t.client, "/v2/hub/library/huge/manifests/1").await;
    assert_eq!(s, StatusCode::OK);
    let huge_layer = layer_of(&m);
    for _ in 0..2 {
        let before = relay.downstream_bytes();
        let r = t
            .get(&format!("/v2/hub/library/huge/blobs/{huge_layer}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.unwrap().len(), 1 << 20);
        assert!(
            relay.downstream_bytes() - before >= 1 << 20,
            "not cached over the quota: fetched again"
        );
    }
    let (_, v) = t
        .api(Method::GET, "/api/v1/namespaces/hub/policies", None)
        .await;
    let used = v["used_bytes"].as_i64().expect("used_bytes");
    assert!(used <= 6_600_000, "{v}");

    // A private namespace is never redirected: its names do not show
    // through the cache (anonymous callers are asked to log in, whether the
    // name exists or not).
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/namespaces",
            Some(serde_json::json!({"name": "secret"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _, _) = manifest(&t, &anon, "/v2/secret/none/manifests/1").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, body) = manifest(&t, &t.client, "/v2/secret/none/manifests/1").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("secret/none"));

    // The upstream goes away: cached content is still served; what was
    // never cached is a clear error.
    relay.stop();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (s, d, _) = manifest(&t, &t.client, "/v2/hub/library/alpine/manifests/3").await;
    assert_eq!((s, d.as_str()), (StatusCode::OK, v2.as_str()));
    let r = t
        .get(&format!("/v2/hub/library/alpine/blobs/{layer}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = t
        .client
        .get(t.url("/v2/hub/library/other/manifests/1"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("UNAVAILABLE") && body.contains("up"),
        "{body}"
    );
    up.stop().await;
}
