//! Webhooks on both databases, against a real HTTP receiver that checks
//! every signature: pushes, deletes and batched pulls arrive as signed
//! events; a receiver outage across a Berth restart loses none; deliveries
//! are recorded and can be redelivered; CloudEvents; who may manage them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

backend_tests!(
    webhooks_deliver_signed_events_that_survive_outages,
    webhooks_are_managed_by_their_scope,
    secrets_are_sealed_at_rest_and_survive_key_rotation
);

pub(crate) const SECRET: &str = "a-receiver-secret-of-some-length";

/// An event as the receiver took it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    event_id: String,
    delivery: String,
    body: Value,
}

/// A webhook receiver on loopback: checks each signature (refusing bad
/// ones with 401), keeps what it took, and answers `status` (an outage
/// answers 503 and keeps nothing).
#[derive(Clone)]
pub(crate) struct Receiver {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    taken: Arc<Mutex<Vec<Received>>>,
    refused: Arc<AtomicU16>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let status = r.status.load(Ordering::SeqCst);
    if status != 200 {
        return AxumStatus::from_u16(status).expect("status");
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    // Berth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">
    let signature = header("berth-signature");
    let (t, v1) = signature
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_default();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(&body);
    let expected = hex::encode(mac.finalize().into_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let fresh = t.parse::<i64>().is_ok_and(|t| (now - t).abs() < 300);
    if v1 != expected || !fresh {
        r.refused.fetch_add(1, Ordering::SeqCst);
        return AxumStatus::UNAUTHORIZED;
    }
    let body: Value = serde_json::from_slice(&body).expect("JSON body");
    r.taken.lock().expect("lock").push(Received {
        event_id: header("berth-event-id"),
        delivery: header("berth-delivery"),
        body,
    });
    AxumStatus::OK
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let r = Receiver {
            addr: listener.local_addr().expect("addr"),
            status: Arc::new(AtomicU16::new(200)),
            taken: Arc::default(),
            refused: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub(crate) fn taken(&self) -> Vec<Received> {
        self.taken.lock().expect("lock").clone()
    }

    /// Events taken, deduplicated by id (redelivery may repeat one).
    pub(crate) fn events(&self) -> BTreeMap<String, Value> {
        self.taken()
            .into_iter()
            .map(|r| (r.event_id, r.body))
            .collect()
    }

    /// Wait until an event of `kind` matching `pred` arrived.
    pub(crate) async fn wait_for(&self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..300 {
            if let Some(e) = self
                .taken()
                .into_iter()
                .map(|r| r.body)
                .find(|b| b["type"] == kind && pred(b))
            {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {kind} event arrived; got {:?}", self.taken());
    }
}

async fn webhooks_deliver_signed_events_that_survive_outages(b: Backend) {
    let receiver = Receiver::start().await;
    let mut t = TestServer::start_with(b, |c| {
        c.jobs.max_backoff_secs = 2;
    })
    .await;
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/namespaces",
            Some(json!({"name": "team"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // A namespace webhook may not reach loopback unless configured so.
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/namespaces/team/webhooks",
            Some(json!({"name": "ci", "url": receiver.url(), "events": ["image.push"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"].as_str().unwrap_or_default().contains("private"),
        "{v}"
    );
    // A platform webhook may.
    let (s, hook) = t
        .api(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({
                "name": "ci",
                "url": receiver.url(),
                "events": ["image.push", "image.pull", "tag.delete", "image.delete"],
                "secret": SECRET,
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    assert!(hook.get("secret").is_none(), "a given secret is not echoed");
    let id = hook["id"].as_i64().expect("id");
    // One without a secret gets a generated one, shown once.
    let (s, other) = t
        .api(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "other", "url": receiver.url(), "events": ["gc.run"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{other}");
    assert!(
        other["secret"].as_str().is_some_and(|s| s.len() >= 32),
        "{other}"
    );
    let (s, shown) = t
        .api(
            Method::GET,
            &format!("/api/v1/webhooks/{}", other["id"]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(shown.get("secret").is_none(), "never shown again: {shown}");
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "other", "url": receiver.url(), "events": ["gc.run"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, _) = t
        .api(
            Method::DELETE,
            &format!("/api/v1/webhooks/{}", other["id"]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for bad in [
        json!({"name": "x", "url": "ftp://example.com/", "events": ["image.push"]}),
        json!({"name": "x", "url": receiver.url(), "events": []}),
        json!({"name": "x", "url": receiver.url(), "events": ["image.pushed"]}),
        json!({"name": "x", "url": receiver.url(), "events": ["image.push"], "secret": "short"}),
        json!({"name": "x y", "url": receiver.url(), "events": ["image.push"]}),
        json!({"name": "x", "url": receiver.url(), "events": ["image.push"], "format": "xml"}),
    ] {
        let (s, v) = t
            .api(Method::POST, "/api/v1/webhooks", Some(bad.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["status"], 400, "problem JSON: {v}");
    }

    // A push: one signed event with the tags, who and from where.
    let (digest, _) = t.push_image("team/app", "v1", b"layer one").await;
    let push = receiver
        .wait_for("image.push", |e| e["data"]["tags"] == json!(["v1"]))
        .await;
    assert_eq!(push["namespace"], "team");
    assert_eq!(push["actor"], "admin");
    assert_eq!(push["client_address"], "127.0.0.1");
    assert_eq!(push["data"]["repository"], "team/app");
    assert_eq!(push["data"]["digest"], digest);
    let first = receiver.taken().remove(0);
    assert_eq!(
        first.event_id, push["id"],
        "Berth-Event-Id is the event's id"
    );

    // A tag delete over /v2.
    let r = t.delete("/v2/team/app/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let deleted = receiver.wait_for("tag.delete", |_| true).await;
    assert_eq!(deleted["data"]["tag"], "v1");

    // Pulls: one batched event per flush with the counts.
    t.push_image("team/app", "v2", b"layer two").await;
    for _ in 0..3 {
        assert_eq!(
            t.get("/v2/team/app/manifests/v2").await.status(),
            StatusCode::OK
        );
    }
    t.registry().flush_pulls().await.expect("flush");
    let pulls = receiver.wait_for("image.pull", |_| true).await;
    let batch = pulls["data"]["pulls"].as_array().expect("pulls");
    assert_eq!(batch.len(), 1, "{pulls}");
    assert_eq!(batch[0]["repository"], "team/app");
    assert_eq!(batch[0]["tag"], "v2");
    assert_eq!(batch[0]["count"], 3);

    // An outage of the receiver, across a restart of Berth: the event
    // arrives once the receiver is back.
    receiver.status.store(503, Ordering::SeqCst);
    t.push_image("team/app", "v3", b"layer three").await;
    let deliveries = format!("/api/v1/webhooks/{id}/deliveries");
    let mut failed_attempt = false;
    for _ in 0..200 {
        let (_, v) = t.api(Method::GET, &deliveries, None).await;
        if v["items"][0]["response_code"] == 503 {
            assert_eq!(v["items"][0]["status"], "waiting", "{v}");
            assert!(v["items"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("503")));
            failed_attempt = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failed_attempt, "an attempt met the outage");
    t.restart().await;
    receiver.status.store(200, Ordering::SeqCst);
    receiver
        .wait_for("image.push", |e| e["data"]["tags"] == json!(["v3"]))
        .await;
    let (s, v) = t.api(Method::GET, &deliveries, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["items"].as_array().expect("items");
    assert_eq!(v["total"], 5, "{v}");
    let v3 = &items[0];
    assert_eq!(v3["status"], "succeeded", "{v}");
    assert_eq!(v3["response_code"], 200);
    assert!(v3["attempts"].as_i64().expect("attempts") >= 2, "{v3}");
    assert!(v3["delivered_at"].is_string());
    assert!(v3["duration_ms"].is_i64());
    // Every event exactly once, once deduplicated by id.
    let events = receiver.events();
    let mut kinds: Vec<&str> = events
        .values()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "image.pull",
            "image.push",
            "image.push",
            "image.push",
            "tag.delete"
        ],
        "{events:?}"
    );
    assert_eq!(
        receiver.refused.load(Ordering::SeqCst),
        0,
        "every signature held"
    );
    // The restarted node counted its own deliveries.
    let metrics = t.get("/metrics").await.text().await.expect("metrics");
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    assert!(value("berth_webhook_deliveries_total") >= 1);
    let _ = value("berth_webhook_failed_attempts_total");

    // One delivery, with its event; redelivered under the same event id.
    let one = format!("/api/v1/webhooks/{id}/deliveries/{}", v3["id"]);
    let (s, d) = t.api(Method::GET, &one, None).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["payload"]["data"]["tags"], json!(["v3"]));
    let before = receiver.taken().len();
    let (s, v) = t.api(Method::POST, &format!("{one}/redeliver"), None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    for _ in 0..200 {
        if receiver.taken().len() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = receiver.taken().pop().expect("redelivered");
    assert_eq!(again.event_id, d["event_id"]);
    assert_eq!(again.delivery, v3["id"].to_string());
    let (s, v) = t
        .api(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/deliveries/999999/redeliver"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // A test delivery, then CloudEvents.
    let (s, v) = t
        .api(Method::POST, &format!("/api/v1/webhooks/{id}/ping"), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    receiver.wait_for("ping", |_| true).await;
    let (s, v) = t
        .api(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"format": "cloudevents", "events": ["image.delete"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["events"], json!(["image.delete"]));
    let (s, _) = t
        .api(
            Method::DELETE,
            "/api/v1/namespaces/team/repositories/app",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let ce = receiver.wait_for("io.berth.image.delete", |_| true).await;
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["subject"], "team/app");
    assert_eq!(ce["data"]["type"], "image.delete");
    assert_eq!(ce["source"], "/berth/namespaces/team");
    assert_eq!(receiver.refused.load(Ordering::SeqCst), 0);
    // Finished deliveries are pruned by age (garbage collection keeps 30
    // days); queued ones stay.
    let platform = t.registry().platform().clone();
    assert_eq!(platform.prune_deliveries(0).await.expect("prune"), 0);
    let pruned = platform
        .prune_deliveries(berth_core::now_millis() + 1)
        .await
        .expect("prune");
    assert!(pruned >= 6, "{pruned}");
    let (_, v) = t.api(Method::GET, &deliveries, None).await;
    assert_eq!(v["total"], 0, "{v}");
}

async fn webhooks_are_managed_by_their_scope(b: Backend) {
    let receiver = Receiver::start().await;
    let t = TestServer::start_with(b, |c| {
        c.webhooks.allow_private_targets = true;
    })
    .await;
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/namespaces",
            Some(json!({"name": "team"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Allowed by the configuration now.
    let (s, hook) = t
        .api(
            Method::POST,
            "/api/v1/namespaces/team/webhooks",
            Some(json!({"name": "ci", "url": receiver.url(), "events": ["image.push"], "secret": SECRET})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    assert_eq!(hook["namespace"], "team");
    let id = hook["id"].as_i64().expect("id");
    let (s, list) = t
        .api(Method::GET, "/api/v1/namespaces/team/webhooks", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let (_, platform) = t.api(Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(
        platform,
        json!([]),
        "namespace webhooks are not the platform's"
    );
    // Only this namespace's events reach it.
    t.api(
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"name": "other"})),
    )
    .await;
    t.push_image("other/app", "v1", b"elsewhere").await;
    t.push_image("team/app", "v1", b"here").await;
    receiver.wait_for("image.push", |_| true).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let taken = receiver.taken();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].body["data"]["repository"], "team/app");
    // An account that does not administer the namespace sees nothing.
    let bob = create_account(&t, "bob").await;
    let (s, v) = t
        .api_as(&bob, Method::GET, "/api/v1/namespaces/team/webhooks", None)
        .await;
    assert!(
        s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN,
        "{s}: {v}"
    );
    let (s, v) = t
        .api_as(&bob, Method::GET, &format!("/api/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = t.api_as(&bob, Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = t
        .api_as(
            &bob,
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = t
        .api_as(
            &bob,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "x", "url": receiver.url(), "events": ["image.push"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // Disabled: no deliveries.
    let (s, v) = t
        .api(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], false);
    t.push_image("team/app", "v2", b"not told").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.taken().len(), 1);
    // Deleted with its deliveries; the audit log has it all.
    let (s, _) = t
        .api(Method::DELETE, &format!("/api/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t
        .api(
            Method::GET,
            &format!("/api/v1/webhooks/{id}/deliveries"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let actions = audit_actions(&t).await;
    for a in ["webhook.create", "webhook.update", "webhook.delete"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

const KEY_ONE: &str = "the first encryption key, 32 chars or more";
const KEY_TWO: &str = "the second encryption key, 32 chars or more";

/// Ping webhook `id` and wait for the receiver to take it, signed right.
async fn ping_arrives(t: &TestServer, receiver: &Receiver, id: i64) {
    let before = receiver.taken().len();
    let (s, v) = t
        .api(Method::POST, &format!("/api/v1/webhooks/{id}/ping"), None)
        .await;
    assert!(s.is_success(), "{v}");
    for _ in 0..200 {
        if receiver.taken().len() > before {
            assert_eq!(receiver.refused.load(Ordering::SeqCst), 0, "bad signature");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the ping did not arrive");
}

async fn secrets_are_sealed_at_rest_and_survive_key_rotation(b: Backend) {
    let receiver = Receiver::start().await;
    // Before a key is configured, secrets are stored as they are.
    let mut t = TestServer::start(b).await;
    let (s, hook) = t
        .api(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "ci", "url": receiver.url(), "events": ["image.push"], "secret": SECRET})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let id = hook["id"].as_i64().expect("id");
    let secret_sql = format!("SELECT secret FROM webhooks WHERE id = {id}");
    let key_sql = "SELECT value FROM settings WHERE key = 'token_signing_key'";
    assert_eq!(sql_text(&t, &secret_sql).await, SECRET);
    let clear_key = sql_text(&t, key_sql).await;
    create_account(&t, "dev").await;
    let token_of = |t: &TestServer| {
        let url = t.url("/auth/token?service=berth&offline_token=true");
        async move {
            let r = client_as("dev", "a-long-password")
                .get(url)
                .send()
                .await
                .expect("token");
            let v: Value = r.json().await.expect("json");
            v["refresh_token"].as_str().expect("refresh").to_owned()
        }
    };
    let refresh_works = |t: &TestServer, token: String| {
        let url = t.url("/auth/token");
        async move {
            anonymous_client()
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("service", "berth"),
                    ("client_id", "t"),
                ])
                .send()
                .await
                .expect("refresh")
                .status()
                == StatusCode::OK
        }
    };
    let token = token_of(&t).await;

    // With a key, both are sealed at start; nothing reads in clear.
    t.restart_with(|c| c.encryption_key = Some(berth::config::Secret::new(KEY_ONE)))
        .await;
    let sealed_secret = sql_text(&t, &secret_sql).await;
    let sealed_key = sql_text(&t, key_sql).await;
    for (what, v) in [
        ("webhook secret", &sealed_secret),
        ("signing key", &sealed_key),
    ] {
        assert!(v.starts_with("sealed:v1:"), "{what}: {v}");
        assert!(!v.contains(SECRET) && !v.contains(&clear_key), "{what}");
    }
    assert!(
        refresh_works(&t, token.clone()).await,
        "the same signing key"
    );
    ping_arrives(&t, &receiver, id).await;
    // A secret set now is sealed as it is stored.
    let (s, _) = t
        .api(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"secret": SECRET})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(sql_text(&t, &secret_sql).await.starts_with("sealed:v1:"));

    // Rotation: the new key, the old one listed as previous: everything
    // is sealed again with the new key, and still works.
    t.restart_with(|c| {
        c.encryption_key = Some(berth::config::Secret::new(KEY_TWO));
        c.previous_encryption_keys = vec![berth::config::Secret::new(KEY_ONE)];
    })
    .await;
    assert_ne!(sql_text(&t, key_sql).await, sealed_key, "sealed again");
    assert!(refresh_works(&t, token.clone()).await);
    ping_arrives(&t, &receiver, id).await;
    // Then the new key alone.
    t.restart_with(|c| c.encryption_key = Some(berth::config::Secret::new(KEY_TWO)))
        .await;
    assert!(refresh_works(&t, token.clone()).await);
    ping_arrives(&t, &receiver, id).await;

    // A server with a key that opens nothing refuses to start, saying why.
    if let Some(s) = t.server.take() {
        s.shutdown().await.expect("shutdown");
    }
    let mut config = t.config();
    config.encryption_key = Some(berth::config::Secret::new(
        "a third key that was never used here at all",
    ));
    let e = berth::start(config).await.expect_err("refused");
    assert!(format!("{e:#}").contains("encryption"), "{e:#}");
}
