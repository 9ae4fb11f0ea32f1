//! Webhooks and their deliveries ([`EventStore`]). An event is written as
//! one delivery per subscribed webhook plus a job that carries it out, in
//! the transaction of whatever caused the event (a push, a
//! synchronization's end), so that no event is lost to a crash.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::MetaResult;

/// The job kind that delivers one webhook delivery.
pub const DELIVER_WEBHOOK_JOB: &str = "deliver_webhook";

/// Delivery statuses.
pub mod delivery_status {
    /// Queued or waiting for a retry.
    pub const WAITING: &str = "waiting";
    /// The receiver answered 2xx.
    pub const SUCCEEDED: &str = "succeeded";
    /// Given up after the last attempt.
    pub const FAILED: &str = "failed";
}

/// An event to deliver to every webhook subscribed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique id; receivers dedupe by it.
    pub id: String,
    /// Event type, e.g. `image.push`.
    pub kind: String,
    /// The namespace it is about: its webhooks and the platform's get it;
    /// `None`: only the platform's.
    pub namespace: Option<String>,
    /// The event as Berth's JSON.
    pub payload: String,
}

/// A webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Id.
    pub id: i64,
    /// Its namespace; `None` for a platform-wide webhook.
    pub namespace: Option<String>,
    /// Name, unique in its namespace (or the platform).
    pub name: String,
    /// Where events are posted.
    pub url: String,
    /// Event types it receives.
    pub events: Vec<String>,
    /// The signing secret.
    pub secret: String,
    /// `berth` or `cloudevents`.
    pub format: String,
    /// Whether events are delivered to it.
    pub enabled: bool,
    /// Who made it.
    pub created_by: String,
    /// When, Unix milliseconds.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

impl Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &"<redacted>")
            .field("format", &self.format)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// A webhook to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// Namespace, or `None` for the platform.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// URL.
    pub url: String,
    /// Event types.
    pub events: Vec<String>,
    /// Signing secret.
    pub secret: String,
    /// Payload format.
    pub format: String,
    /// Enabled.
    pub enabled: bool,
    /// Author.
    pub created_by: String,
    /// Now, Unix milliseconds.
    pub now: i64,
}

impl Debug for NewWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhook")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Changes to a webhook; `None` keeps a field.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WebhookUpdate {
    /// URL.
    pub url: Option<String>,
    /// Event types.
    pub events: Option<Vec<String>>,
    /// A new secret.
    pub secret: Option<String>,
    /// Payload format.
    pub format: Option<String>,
    /// Enabled.
    pub enabled: Option<bool>,
    /// Now, Unix milliseconds.
    pub now: i64,
}

impl Debug for WebhookUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookUpdate")
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("format", &self.format)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// One event's delivery to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// Id.
    pub id: i64,
    /// The webhook.
    pub webhook_id: i64,
    /// The event's id (the same on every redelivery).
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// The event as Berth's JSON.
    pub payload: String,
    /// See [`delivery_status`].
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The last attempt's HTTP status, if the receiver answered.
    pub response_code: Option<i64>,
    /// The last attempt's duration, milliseconds.
    pub duration_ms: Option<i64>,
    /// The last attempt's error.
    pub error: Option<String>,
    /// Queued, Unix milliseconds.
    pub created_at: i64,
    /// Last attempt.
    pub last_attempt_at: Option<i64>,
    /// When a receiver took it.
    pub delivered_at: Option<i64>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// New status.
    pub status: String,
    /// Attempts, this one included.
    pub attempts: i64,
    /// HTTP status, if any.
    pub response_code: Option<i64>,
    /// Milliseconds.
    pub duration_ms: i64,
    /// Error, if it failed.
    pub error: Option<String>,
    /// When, Unix milliseconds.
    pub at: i64,
}

/// Webhooks and deliveries.
#[async_trait]
pub trait EventStore: Send + Sync + Debug {
    /// Record a delivery (and queue its job) for every enabled webhook
    /// subscribed to each event. Returns how many deliveries were queued.
    async fn emit_events(&self, events: &[NewEvent], now: i64) -> MetaResult<usize>;
    /// Queue one event for one webhook only (a test delivery). Returns the
    /// delivery's id; `None` for an unknown webhook.
    async fn deliver_to(&self, webhook: i64, event: &NewEvent, now: i64)
        -> MetaResult<Option<i64>>;

    /// Create a webhook: `Conflict` when its name is taken; `None` for an
    /// unknown namespace.
    async fn create_webhook(&self, webhook: &NewWebhook) -> MetaResult<Option<Webhook>>;
    /// The webhooks of a namespace, or with `None` the platform's.
    async fn webhooks(&self, namespace: Option<&str>) -> MetaResult<Vec<Webhook>>;
    /// Every webhook, of namespaces and of the platform.
    async fn all_webhooks(&self) -> MetaResult<Vec<Webhook>>;
    /// One webhook.
    async fn webhook(&self, id: i64) -> MetaResult<Option<Webhook>>;
    /// Change a webhook. Returns it, or `None` when unknown.
    async fn update_webhook(&self, id: i64, update: &WebhookUpdate) -> MetaResult<Option<Webhook>>;
    /// Delete a webhook and its deliveries. Returns whether it existed.
    async fn delete_webhook(&self, id: i64) -> MetaResult<bool>;

    /// A delivery.
    async fn delivery(&self, id: i64) -> MetaResult<Option<WebhookDelivery>>;
    /// A page of a webhook's deliveries, newest first, with the total.
    async fn deliveries(
        &self,
        webhook: i64,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> MetaResult<(Vec<WebhookDelivery>, i64)>;
    /// Write how an attempt ended.
    async fn record_delivery(&self, id: i64, attempt: &DeliveryAttempt) -> MetaResult<()>;
    /// Deliver again: back to waiting with a new job. Returns false when
    /// the delivery is still queued (nothing to do).
    async fn redeliver(&self, id: i64, now: i64) -> MetaResult<bool>;
    /// Forget finished deliveries (succeeded or failed) queued before
    /// `before`. Returns how many.
    async fn prune_deliveries(&self, before: i64) -> MetaResult<u64>;
}
