//! Webhooks in the console: a namespace's "Webhooks" tab and the platform
//! webhooks page, each with its webhooks, their latest deliveries (with
//! redeliver), test deliveries, and a form to add one.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use berth_core::events::{WebhookSpec, EVENT_TYPES};
use berth_core::model::{Webhook, WebhookDelivery, WebhookUpdate};
use berth_core::DirectoryError;
use berth_web::WebState;

use crate::extract::Posted;
use crate::forms::*;
use crate::respond::{html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

/// Deliveries shown per webhook.
const SHOWN: i64 = 10;

/// A webhook with its latest deliveries.
pub struct HookRow {
    pub hook: Webhook,
    pub events: String,
    pub deliveries: Vec<DeliveryRow>,
    pub total: i64,
}

/// A delivery as the table shows it.
pub struct DeliveryRow {
    pub id: i64,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub code: String,
    pub duration: String,
    pub at: String,
    pub error: String,
}

impl DeliveryRow {
    fn new(d: WebhookDelivery) -> Self {
        DeliveryRow {
            id: d.id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            code: d.response_code.map(|c| c.to_string()).unwrap_or_default(),
            duration: d
                .duration_ms
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_default(),
            at: when(d.last_attempt_at.unwrap_or(d.created_at)),
            error: d.error.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "webhooks.html")]
pub struct WebhooksPage {
    pub l: Layout,
    /// The namespace, or `None` for the platform's webhooks.
    pub ns: Option<String>,
    /// Where the page and its forms live.
    pub base: String,
    pub hooks: Vec<HookRow>,
    pub event_types: Vec<&'static str>,
}

async fn render(
    state: &WebState,
    viewer: &Viewer,
    ns: Option<String>,
    q: &HashMap<String, String>,
) -> PageResult {
    let fail = |e: DirectoryError| PageError::from(e).for_viewer(viewer);
    let hooks = state
        .webhooks
        .list(&viewer.principal, ns.as_deref())
        .await
        .map_err(fail)?;
    let mut rows = Vec::with_capacity(hooks.len());
    for hook in hooks {
        let (deliveries, total) = state
            .webhooks
            .deliveries(&viewer.principal, hook.id, None, SHOWN, 0)
            .await
            .map_err(fail)?;
        rows.push(HookRow {
            events: hook.events.join(", "),
            deliveries: deliveries.into_iter().map(DeliveryRow::new).collect(),
            total,
            hook,
        });
    }
    let base = match &ns {
        Some(ns) => format!("/namespaces/{ns}/webhooks"),
        None => "/webhooks".to_owned(),
    };
    let page = WebhooksPage {
        l: Layout::new(
            viewer,
            if ns.is_some() {
                "namespaces"
            } else {
                "webhooks"
            },
        )
        .messages(q),
        ns,
        base,
        hooks: rows,
        event_types: EVENT_TYPES.to_vec(),
    };
    Ok(html(page.render()))
}

pub async fn namespace_page(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(ns): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    render(&state, &viewer, Some(ns), &q).await
}

pub async fn platform_page(
    State(state): State<WebState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    render(&state, &viewer, None, &q).await
}

async fn create(state: &WebState, ns: Option<String>, form: Posted) -> Response {
    let to = match &ns {
        Some(ns) => format!("/namespaces/{ns}/webhooks"),
        None => "/webhooks".to_owned(),
    };
    let secret = form.get("secret");
    let spec = WebhookSpec {
        name: form.get("name").to_owned(),
        url: form.get("url").to_owned(),
        events: form.all("events"),
        secret: (!secret.is_empty()).then(|| secret.to_owned()),
        format: match form.get("format") {
            "" => "berth".to_owned(),
            f => f.to_owned(),
        },
        enabled: true,
    };
    match state
        .webhooks
        .create(&form.viewer.principal, ns.as_deref(), spec)
        .await
    {
        Ok((hook, Some(secret))) => html(
            SecretPage {
                l: Layout::new(&form.viewer, if ns.is_some() { "namespaces" } else { "webhooks" }),
                title: format!("Webhook {} created", hook.name),
                explanation: "Its signing secret: receivers check each request's Berth-Signature with it (docs/webhooks.md).".into(),
                secret,
                back: to,
            }
            .render(),
        ),
        Ok((hook, None)) => outcome(&to, Ok(format!("Webhook {} created.", hook.name))),
        Err(e) => outcome(&to, Err(e)),
    }
}

pub async fn namespace_create(
    State(state): State<WebState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    create(&state, Some(ns), form).await
}

pub async fn platform_create(State(state): State<WebState>, form: Posted) -> Response {
    create(&state, None, form).await
}

/// Where a webhook's page is.
fn page_of(hook: &Webhook) -> String {
    match &hook.namespace {
        Some(ns) => format!("/namespaces/{ns}/webhooks"),
        None => "/webhooks".to_owned(),
    }
}

/// Enable, disable, ping or delete a webhook.
pub async fn action(
    State(state): State<WebState>,
    Path((id, action)): Path<(i64, String)>,
    form: Posted,
) -> Response {
    let actor = &form.viewer.principal;
    let hook = match state.webhooks.get(actor, id).await {
        Ok(h) => h,
        Err(e) => return PageError::from(e).for_viewer(&form.viewer).into_response(),
    };
    let to = page_of(&hook);
    let result = match action.as_str() {
        "enable" | "disable" => state
            .webhooks
            .update(
                actor,
                id,
                WebhookUpdate {
                    enabled: Some(action == "enable"),
                    ..WebhookUpdate::default()
                },
            )
            .await
            .map(|h| {
                format!(
                    "Webhook {} {}.",
                    h.name,
                    if h.enabled { "enabled" } else { "disabled" }
                )
            }),
        "ping" => state
            .webhooks
            .ping(actor, id)
            .await
            .map(|d| format!("Test delivery {d} queued to {}.", hook.name)),
        "delete" => state
            .webhooks
            .delete(actor, id)
            .await
            .map(|()| format!("Webhook {} deleted.", hook.name)),
        other => Err(DirectoryError::Invalid(format!("unknown action {other:?}"))),
    };
    outcome(&to, result)
}

pub async fn redeliver(
    State(state): State<WebState>,
    Path((id, delivery)): Path<(i64, i64)>,
    form: Posted,
) -> Response {
    let actor = &form.viewer.principal;
    let hook = match state.webhooks.get(actor, id).await {
        Ok(h) => h,
        Err(e) => return PageError::from(e).for_viewer(&form.viewer).into_response(),
    };
    let result = state
        .webhooks
        .redeliver(actor, id, delivery)
        .await
        .map(|()| format!("Delivery {delivery} queued again."));
    outcome(&page_of(&hook), result)
}
