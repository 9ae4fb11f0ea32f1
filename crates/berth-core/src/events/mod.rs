//! What Berth tells the outside: events (a push, a delete, a batch of
//! pulls, a synchronization's result, a collection run) and the webhooks
//! they are delivered to ([`Webhooks`]).
//!
//! An event is Berth's JSON object (documented in `docs/webhooks.md`):
//! `id` (receivers dedupe by it), `type`, `occurred_at`, `namespace`,
//! `actor`, `client_address` and a type-specific `data`. A webhook may ask
//! for it as a CloudEvents 1.0 structured-mode envelope instead. Every body
//! is signed with the webhook's secret ([`sign`]).
//!
//! Layering: above the registry and the directory; the job worker
//! (`crate::jobs`) runs deliveries, the HTTP surfaces manage webhooks.

mod webhooks;

use berth_meta::NewEvent;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::token::rfc3339;

pub use webhooks::{WebhookConfig, WebhookSpec, Webhooks};

/// Event types a webhook may subscribe to.
pub mod kind {
    /// An image was pushed (a manifest, with the tags it got).
    pub const IMAGE_PUSH: &str = "image.push";
    /// Images were pulled (a batch per namespace, with counts).
    pub const IMAGE_PULL: &str = "image.pull";
    /// An image (a manifest, or a repository with all its tags) was deleted.
    pub const IMAGE_DELETE: &str = "image.delete";
    /// A tag was deleted.
    pub const TAG_DELETE: &str = "tag.delete";
    /// A namespace was deleted (platform webhooks only: a namespace's own
    /// webhooks go with it).
    pub const NAMESPACE_DELETE: &str = "namespace.delete";
    /// A synchronization copied its tag.
    pub const SYNC_SUCCEEDED: &str = "sync.succeeded";
    /// A synchronization gave up.
    pub const SYNC_FAILED: &str = "sync.failed";
    /// A synchronization left a differing target tag alone.
    pub const SYNC_CONFLICT: &str = "sync.conflict";
    /// A replication task with a remote registry copied (or deleted) its tag.
    pub const REPLICATION_SUCCEEDED: &str = "replication.succeeded";
    /// A replication task gave up.
    pub const REPLICATION_FAILED: &str = "replication.failed";
    /// A replication task left a differing destination tag alone.
    pub const REPLICATION_CONFLICT: &str = "replication.conflict";
    /// A push was refused because the namespace's quota is used up.
    pub const QUOTA_REACHED: &str = "quota.reached";
    /// A retention run deleted tags.
    pub const RETENTION_RUN: &str = "retention.run";
    /// A garbage collection run ended.
    pub const GC_RUN: &str = "gc.run";
    /// A pull was refused by an enforced pull policy.
    pub const PULL_DENIED: &str = "pull.denied";
    /// A pull was served that an audited pull policy found unsatisfied.
    pub const PULL_UNVERIFIED: &str = "pull.unverified";
    /// A newly imported advisory (or a new image's inventory) found an
    /// image affected: once per image and advisory.
    pub const VULNERABILITY_FOUND: &str = "vulnerability.found";
    /// A test delivery (never subscribed to: sent on request).
    pub const PING: &str = "ping";
}

/// Every type a webhook may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    kind::IMAGE_PUSH,
    kind::IMAGE_PULL,
    kind::IMAGE_DELETE,
    kind::TAG_DELETE,
    kind::NAMESPACE_DELETE,
    kind::SYNC_SUCCEEDED,
    kind::SYNC_FAILED,
    kind::SYNC_CONFLICT,
    kind::REPLICATION_SUCCEEDED,
    kind::REPLICATION_FAILED,
    kind::REPLICATION_CONFLICT,
    kind::QUOTA_REACHED,
    kind::RETENTION_RUN,
    kind::GC_RUN,
    kind::PULL_DENIED,
    kind::PULL_UNVERIFIED,
    kind::VULNERABILITY_FOUND,
];

/// An event being built.
#[derive(Debug, Clone)]
pub struct Event {
    kind: &'static str,
    namespace: Option<String>,
    actor: Option<String>,
    client_address: Option<String>,
    data: Map<String, Value>,
}

impl Event {
    /// An event of `kind` about `namespace` (`None`: the platform's).
    pub fn new(kind: &'static str, namespace: Option<&str>) -> Self {
        Event {
            kind,
            namespace: namespace.map(str::to_owned),
            actor: None,
            client_address: None,
            data: Map::new(),
        }
    }

    /// Who caused it.
    pub fn actor(mut self, actor: &str) -> Self {
        self.actor = Some(actor.to_owned());
        self
    }

    /// From where.
    pub fn client_address(mut self, addr: Option<&str>) -> Self {
        self.client_address = addr.map(str::to_owned);
        self
    }

    /// A field of `data`.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_owned(), value.into());
        self
    }

    /// The event with a fresh id and the current time.
    pub fn build(self) -> NewEvent {
        let id = uuid::Uuid::new_v4().to_string();
        let payload = json!({
            "id": id,
            "type": self.kind,
            "occurred_at": rfc3339(crate::now_millis() / 1000),
            "namespace": self.namespace,
            "actor": self.actor,
            "client_address": self.client_address,
            "data": Value::Object(self.data),
        });
        NewEvent {
            id,
            kind: self.kind.to_owned(),
            namespace: self.namespace,
            payload: payload.to_string(),
        }
    }
}

/// Payload formats.
pub mod format {
    /// Berth's event object as it is.
    pub const BERTH: &str = "berth";
    /// A CloudEvents 1.0 structured-mode envelope whose `data` is Berth's
    /// event object.
    pub const CLOUDEVENTS: &str = "cloudevents";
}

/// The body and content type a webhook of `format` receives for an event
/// stored as Berth's JSON.
pub fn render(format: &str, payload: &str) -> (String, &'static str) {
    if format != format::CLOUDEVENTS {
        return (payload.to_owned(), "application/json");
    }
    let event: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
    let field = |k: &str| event.get(k).cloned().unwrap_or(Value::Null);
    let source = match event.get("namespace").and_then(Value::as_str) {
        Some(ns) => format!("/berth/namespaces/{ns}"),
        None => "/berth".to_owned(),
    };
    let mut envelope = json!({
        "specversion": "1.0",
        "id": field("id"),
        "source": source,
        "type": format!("io.berth.{}", event.get("type").and_then(Value::as_str).unwrap_or("event")),
        "time": field("occurred_at"),
        "datacontenttype": "application/json",
        "data": event,
    });
    let subject = envelope["data"]["data"]["repository"].clone();
    if subject.is_string() {
        envelope["subject"] = subject;
    }
    (envelope.to_string(), "application/cloudevents+json")
}

/// The `Berth-Signature` header value for a body sent at `timestamp`
/// (Unix seconds): `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
/// Receivers recompute it and refuse a timestamp too far from their clock.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_id_type_and_data() {
        let e = Event::new(kind::IMAGE_PUSH, Some("team"))
            .actor("alice")
            .client_address(Some("10.0.0.1"))
            .with("repository", "team/app")
            .build();
        let v: Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(v["id"], e.id);
        assert_eq!(v["type"], "image.push");
        assert_eq!(v["namespace"], "team");
        assert_eq!(v["actor"], "alice");
        assert_eq!(v["data"]["repository"], "team/app");
        assert!(v["occurred_at"].as_str().unwrap().ends_with('Z'));
        let other = Event::new(kind::IMAGE_PUSH, None).build();
        assert_ne!(other.id, e.id);
    }

    #[test]
    fn cloudevents_wrap_the_event() {
        let e = Event::new(kind::TAG_DELETE, Some("team"))
            .with("repository", "team/app")
            .build();
        let (body, ct) = render(format::CLOUDEVENTS, &e.payload);
        assert_eq!(ct, "application/cloudevents+json");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["id"], e.id);
        assert_eq!(v["type"], "io.berth.tag.delete");
        assert_eq!(v["source"], "/berth/namespaces/team");
        assert_eq!(v["subject"], "team/app");
        assert_eq!(v["data"]["data"]["repository"], "team/app");
        let (plain, ct) = render(format::BERTH, &e.payload);
        assert_eq!(
            (plain.as_str(), ct),
            (e.payload.as_str(), "application/json")
        );
    }

    #[test]
    fn signatures_match_a_known_vector() {
        // HMAC-SHA256("key", "1.body"), computed independently with openssl:
        // printf '1.body' | openssl dgst -sha256 -hmac key
        let sig = sign("key", 1, "body");
        assert_eq!(
            sig,
            "t=1,v1=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
        );
        assert_ne!(sign("key", 2, "body"), sig);
        assert_ne!(sign("other", 1, "body"), sig);
    }
}
