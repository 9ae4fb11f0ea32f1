//! Webhooks of namespaces (their admins) and of the platform (platform
//! admins), their deliveries, test deliveries and redelivery. The event
//! payloads are documented in `docs/webhooks.md`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth_core::events::WebhookSpec;
use berth_core::model::{Webhook, WebhookDelivery, WebhookUpdate};
use berth_core::Paging;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::model::{time, Paged};
use berth_web::WebState;

/// A webhook. Its secret is never shown again after creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookJson {
    /// Id.
    pub id: i64,
    /// Its namespace; absent for a platform webhook.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Where events are posted.
    pub url: String,
    /// Event types it receives.
    pub events: Vec<String>,
    /// `berth` or `cloudevents`.
    pub format: String,
    /// Whether events are delivered to it.
    pub enabled: bool,
    /// Who made it.
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// The generated signing secret: only in the answer that created the
    /// webhook without a secret of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<Webhook> for WebhookJson {
    fn from(w: Webhook) -> Self {
        WebhookJson {
            id: w.id,
            namespace: w.namespace,
            name: w.name,
            url: w.url,
            events: w.events,
            format: w.format,
            enabled: w.enabled,
            created_by: w.created_by,
            created_at: time(w.created_at),
            updated_at: time(w.updated_at),
            secret: None,
        }
    }
}

/// A payload format.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    /// Berth's event object (`docs/webhooks.md`).
    #[default]
    Berth,
    /// A CloudEvents 1.0 structured-mode envelope around it.
    Cloudevents,
}

impl PayloadFormat {
    fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::Berth => "berth",
            PayloadFormat::Cloudevents => "cloudevents",
        }
    }
}

/// An event type a webhook can subscribe to (`docs/webhooks.md`).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum EventType {
    /// An image was pushed, with its tags.
    #[serde(rename = "image.push")]
    ImagePush,
    /// Images were pulled (batched per namespace, with counts).
    #[serde(rename = "image.pull")]
    ImagePull,
    /// An image (a manifest, or the whole image) was deleted.
    #[serde(rename = "image.delete")]
    ImageDelete,
    /// A tag was deleted.
    #[serde(rename = "tag.delete")]
    TagDelete,
    /// A namespace was deleted (platform webhooks).
    #[serde(rename = "namespace.delete")]
    NamespaceDelete,
    /// A synchronization copied its tag.
    #[serde(rename = "sync.succeeded")]
    SyncSucceeded,
    /// A synchronization gave up.
    #[serde(rename = "sync.failed")]
    SyncFailed,
    /// A synchronization left a differing target tag alone.
    #[serde(rename = "sync.conflict")]
    SyncConflict,
    /// A replication task with a remote registry copied or deleted its tag.
    #[serde(rename = "replication.succeeded")]
    ReplicationSucceeded,
    /// A replication task gave up.
    #[serde(rename = "replication.failed")]
    ReplicationFailed,
    /// A replication task left a differing destination tag alone.
    #[serde(rename = "replication.conflict")]
    ReplicationConflict,
    /// A push was refused for the namespace's quota.
    #[serde(rename = "quota.reached")]
    QuotaReached,
    /// A retention run deleted tags.
    #[serde(rename = "retention.run")]
    RetentionRun,
    /// A garbage collection run ended.
    #[serde(rename = "gc.run")]
    GcRun,
    /// A pull was refused by an enforced pull policy.
    #[serde(rename = "pull.denied")]
    PullDenied,
    /// A pull was served that an audited pull policy found unsatisfied.
    #[serde(rename = "pull.unverified")]
    PullUnverified,
    /// An advisory was found to affect an image (once per image and
    /// advisory).
    #[serde(rename = "vulnerability.found")]
    VulnerabilityFound,
}

impl EventType {
    fn as_str(self) -> &'static str {
        use berth_core::events::kind;
        match self {
            EventType::ImagePush => kind::IMAGE_PUSH,
            EventType::ImagePull => kind::IMAGE_PULL,
            EventType::ImageDelete => kind::IMAGE_DELETE,
            EventType::TagDelete => kind::TAG_DELETE,
            EventType::NamespaceDelete => kind::NAMESPACE_DELETE,
            EventType::SyncSucceeded => kind::SYNC_SUCCEEDED,
            EventType::SyncFailed => kind::SYNC_FAILED,
            EventType::SyncConflict => kind::SYNC_CONFLICT,
            EventType::ReplicationSucceeded => kind::REPLICATION_SUCCEEDED,
            EventType::ReplicationFailed => kind::REPLICATION_FAILED,
            EventType::ReplicationConflict => kind::REPLICATION_CONFLICT,
            EventType::QuotaReached => kind::QUOTA_REACHED,
            EventType::RetentionRun => kind::RETENTION_RUN,
            EventType::GcRun => kind::GC_RUN,
            EventType::PullDenied => kind::PULL_DENIED,
            EventType::PullUnverified => kind::PULL_UNVERIFIED,
            EventType::VulnerabilityFound => kind::VULNERABILITY_FOUND,
        }
    }
}

fn event_names(events: &[EventType]) -> Vec<String> {
    events.iter().map(|e| e.as_str().to_owned()).collect()
}

/// A new webhook.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Name: 1 to 64 letters, digits, `-`, `_` or `.`; unique in the
    /// namespace (or the platform).
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", min_length = 1, max_length = 64)]
    pub name: String,
    /// `http://` or `https://` URL the events are posted to, without
    /// credentials. A namespace webhook must reach a public address unless
    /// the server allows private targets.
    #[schema(pattern = "^https?://", max_length = 2048)]
    pub url: String,
    /// Event types (at least one).
    #[schema(min_items = 1)]
    pub events: Vec<EventType>,
    /// Signing secret, 16 to 256 characters; leave out to have one
    /// generated and returned once.
    #[schema(min_length = 16, max_length = 256)]
    pub secret: Option<String>,
    /// Payload format (default `berth`).
    #[serde(default)]
    pub format: PayloadFormat,
    /// Whether events are delivered (default true).
    pub enabled: Option<bool>,
}

impl std::fmt::Debug for CreateWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateWebhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Changes to a webhook; fields left out stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    /// URL.
    #[schema(pattern = "^https?://", max_length = 2048)]
    pub url: Option<String>,
    /// Event types (at least one).
    #[schema(min_items = 1)]
    pub events: Option<Vec<EventType>>,
    /// A new signing secret.
    #[schema(min_length = 16, max_length = 256)]
    pub secret: Option<String>,
    /// Payload format.
    pub format: Option<PayloadFormat>,
    /// Whether events are delivered.
    pub enabled: Option<bool>,
}

impl std::fmt::Debug for UpdateWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateWebhook")
            .field("url", &self.url)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// One event's delivery to a webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryJson {
    /// Delivery id (`Berth-Delivery` header).
    pub id: i64,
    /// The webhook.
    pub webhook: i64,
    /// The event's id (`Berth-Event-Id`; the same on redelivery).
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// `waiting`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The receiver's HTTP status at the last attempt.
    pub response_code: Option<i64>,
    /// The last attempt's duration in milliseconds.
    pub duration_ms: Option<i64>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Queued (RFC 3339).
    pub created_at: String,
    /// Last attempt.
    pub last_attempt_at: Option<String>,
    /// When the receiver took it.
    pub delivered_at: Option<String>,
    /// The event (Berth's JSON); in single-delivery answers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

impl DeliveryJson {
    fn new(d: WebhookDelivery, with_payload: bool) -> Self {
        DeliveryJson {
            id: d.id,
            webhook: d.webhook_id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            response_code: d.response_code,
            duration_ms: d.duration_ms,
            error: d.error,
            created_at: time(d.created_at),
            last_attempt_at: d.last_attempt_at.map(time),
            delivered_at: d.delivered_at.map(time),
            payload: with_payload
                .then(|| serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null)),
        }
    }
}

/// A queued test delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct PingQueued {
    /// The delivery's id.
    pub delivery: i64,
}

/// The states of a delivery.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatusParam {
    /// Queued or waiting to retry.
    Waiting,
    /// Taken by the receiver.
    Succeeded,
    /// Given up.
    Failed,
}

/// Which deliveries to list, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatusParam>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1_000_000_000)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

fn spec(body: CreateWebhook) -> WebhookSpec {
    WebhookSpec {
        name: body.name,
        url: body.url,
        events: event_names(&body.events),
        secret: body.secret,
        format: body.format.as_str().to_owned(),
        enabled: body.enabled.unwrap_or(true),
    }
}

fn created(hook: Webhook, secret: Option<String>) -> (StatusCode, Json<WebhookJson>) {
    let mut json = WebhookJson::from(hook);
    json.secret = secret;
    (StatusCode::CREATED, Json(json))
}

/// The platform's webhooks (platform administrators).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = Vec<WebhookJson>), (status = 403, body = Problem)))]
pub(crate) async fn platform_list(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<Vec<WebhookJson>>> {
    let actor = caller.account()?;
    let hooks = state.webhooks.list(actor, None).await?;
    Ok(Json(hooks.into_iter().map(WebhookJson::from).collect()))
}

/// Create a platform webhook (platform administrators): it receives the
/// events of every namespace, and the platform's own (`gc.run`,
/// `namespace.delete`).
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body(content = CreateWebhook, content_type = "application/json"),
    responses((status = 201, body = WebhookJson), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn platform_create(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<CreateWebhook>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<WebhookJson>)> {
    let actor = caller.account()?;
    let Json(body) = body?;
    let (hook, secret) = state.webhooks.create(actor, None, spec(body)).await?;
    Ok(created(hook, secret))
}

/// A namespace's webhooks (its admins).
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/webhooks", tag = "webhooks",
    params(("ns" = String, Path, description = "Namespace name")),
    responses((status = 200, body = Vec<WebhookJson>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn namespace_list(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Vec<WebhookJson>>> {
    let actor = caller.account()?;
    let Path(ns) = path?;
    let hooks = state.webhooks.list(actor, Some(&ns)).await?;
    Ok(Json(hooks.into_iter().map(WebhookJson::from).collect()))
}

/// Create a webhook of a namespace (its admins): it receives the events
/// of that namespace's images.
#[utoipa::path(post, path = "/api/v1/namespaces/{ns}/webhooks", tag = "webhooks",
    params(("ns" = String, Path, description = "Namespace name")),
    request_body(content = CreateWebhook, content_type = "application/json"),
    responses((status = 201, body = WebhookJson), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn namespace_create(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<CreateWebhook>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<WebhookJson>)> {
    let actor = caller.account()?;
    let Path(ns) = path?;
    let Json(body) = body?;
    let (hook, secret) = state.webhooks.create(actor, Some(&ns), spec(body)).await?;
    Ok(created(hook, secret))
}

/// A webhook.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    responses((status = 200, body = WebhookJson), (status = 404, body = Problem)))]
pub(crate) async fn get_one(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<WebhookJson>> {
    let actor = caller.account()?;
    let Path(id) = path?;
    Ok(Json(state.webhooks.get(actor, id).await?.into()))
}

/// Change a webhook.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    request_body(content = UpdateWebhook, content_type = "application/json"),
    responses((status = 200, body = WebhookJson), (status = 404, body = Problem)))]
pub(crate) async fn update(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
    body: Result<Json<UpdateWebhook>, JsonRejection>,
) -> ApiResult<Json<WebhookJson>> {
    let actor = caller.account()?;
    let Path(id) = path?;
    let Json(body) = body?;
    let update = WebhookUpdate {
        url: body.url,
        events: body.events.as_deref().map(event_names),
        secret: body.secret,
        format: body.format.map(|f| f.as_str().to_owned()),
        enabled: body.enabled,
        now: 0,
    };
    Ok(Json(state.webhooks.update(actor, id, update).await?.into()))
}

/// Delete a webhook with its deliveries.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub(crate) async fn delete(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path(id) = path?;
    state.webhooks.delete(actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a `ping` event to the webhook now (a test delivery, recorded like
/// the others).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/ping", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    responses((status = 202, body = PingQueued), (status = 404, body = Problem)))]
pub(crate) async fn ping(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<(StatusCode, Json<PingQueued>)> {
    let actor = caller.account()?;
    let Path(id) = path?;
    let delivery = state.webhooks.ping(actor, id).await?;
    Ok((StatusCode::ACCEPTED, Json(PingQueued { delivery })))
}

/// A webhook's deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id"), DeliveriesQuery),
    responses((status = 200, body = Paged<DeliveryJson>), (status = 404, body = Problem)))]
pub(crate) async fn deliveries(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
    query: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> ApiResult<Json<Paged<DeliveryJson>>> {
    let actor = caller.account()?;
    let Path(id) = path?;
    let Query(q) = query?;
    let paging = Paging::new(q.page, q.per_page)?;
    let status = q.status.map(|s| match s {
        DeliveryStatusParam::Waiting => "waiting",
        DeliveryStatusParam::Succeeded => "succeeded",
        DeliveryStatusParam::Failed => "failed",
    });
    let (items, total) = state
        .webhooks
        .deliveries(
            actor,
            id,
            status,
            paging.per_page,
            (paging.page - 1).saturating_mul(paging.per_page),
        )
        .await?;
    Ok(Json(Paged {
        items: items
            .into_iter()
            .map(|d| DeliveryJson::new(d, false))
            .collect(),
        total,
        page: paging.page,
        per_page: paging.per_page,
    }))
}

/// One delivery, with the event it carries.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries/{delivery}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id"), ("delivery" = i64, Path, description = "Delivery id")),
    responses((status = 200, body = DeliveryJson), (status = 404, body = Problem)))]
pub(crate) async fn delivery(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(i64, i64)>, PathRejection>,
) -> ApiResult<Json<DeliveryJson>> {
    let actor = caller.account()?;
    let Path((id, delivery)) = path?;
    let d = state.webhooks.delivery(actor, id, delivery).await?;
    Ok(Json(DeliveryJson::new(d, true)))
}

/// Deliver again, with the same event id (receivers dedupe by it); 409
/// while the delivery is still queued.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id"), ("delivery" = i64, Path, description = "Delivery id")),
    responses((status = 202), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn redeliver(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(i64, i64)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path((id, delivery)) = path?;
    state.webhooks.redeliver(actor, id, delivery).await?;
    Ok(StatusCode::ACCEPTED)
}
