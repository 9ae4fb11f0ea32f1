//! Events and webhooks in SQL (`EventStore`): the outbox of events, webhooks,
//! their deliveries and the jobs that carry them out. Written once for both
//! databases.

use async_trait::async_trait;
use sqlx::Row;
use std::collections::HashMap;

use super::jobs::insert_job;
use super::{Db, DbRow, Store};
use crate::error::{MetaError, MetaResult};
use crate::events::{
    delivery_status, DeliveryAttempt, EventStore, NewEvent, NewWebhook, Webhook, WebhookDelivery,
    WebhookUpdate, DELIVER_WEBHOOK_JOB,
};
use crate::platform::NewJob;

const WEBHOOK_COLUMNS: &str = "w.id, n.name AS namespace, w.name, w.url, w.events, w.secret, \
     w.format, w.enabled, w.created_by, w.created_at, w.updated_at";

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, payload, status, attempts, \
     response_code, duration_ms, error, created_at, last_attempt_at, delivered_at";

/// The job that carries out a delivery; one live job per delivery.
fn delivery_job(delivery: i64, now: i64) -> NewJob {
    NewJob {
        kind: DELIVER_WEBHOOK_JOB.to_owned(),
        region: None,
        dedupe_key: Some(format!("webhook:{delivery}")),
        payload: serde_json::json!({ "delivery": delivery }).to_string(),
        run_after: now,
        urgent: false,
    }
}

fn events_json(events: &[String]) -> String {
    serde_json::to_string(events).unwrap_or_else(|_| "[]".to_owned())
}

/// Record and queue each event's deliveries inside a
/// transaction. Returns how many were queued.
pub(crate) async fn insert_events(
    tx: &mut sqlx::Transaction<'_, Db>,
    events: &[NewEvent],
    now: i64,
) -> MetaResult<usize> {
    let mut queued = 0;
    // The webhooks of each namespace, read once per call (a re-match can
    // raise thousands of events for one namespace).
    let mut hooks: HashMap<Option<String>, Vec<Webhook>> = HashMap::new();
    for event in events {
        if !hooks.contains_key(&event.namespace) {
            let sql = format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks w LEFT JOIN namespaces n ON n.id = w.namespace_id \
                 WHERE w.enabled = 1 AND (w.namespace_id IS NULL OR n.name = $1) ORDER BY w.id"
            );
            let rows = sqlx::query(&sql)
                .bind(event.namespace.as_deref())
                .fetch_all(&mut **tx)
                .await?;
            let found = rows
                .iter()
                .map(webhook_row)
                .collect::<MetaResult<Vec<_>>>()?;
            hooks.insert(event.namespace.clone(), found);
        }
        for hook in &hooks[&event.namespace] {
            if hook.events.contains(&event.kind) {
                insert_delivery(tx, hook.id, event, now).await?;
                queued += 1;
            }
        }
    }
    Ok(queued)
}

pub(crate) async fn insert_delivery(
    tx: &mut sqlx::Transaction<'_, Db>,
    webhook: i64,
    event: &NewEvent,
    now: i64,
) -> MetaResult<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, payload, status, created_at) \
         VALUES ($1, $2, $3, $4, 'waiting', $5) RETURNING id",
    )
    .bind(webhook)
    .bind(&event.id)
    .bind(&event.kind)
    .bind(&event.payload)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    insert_job(tx, &delivery_job(id, now), now).await?;
    Ok(id)
}

pub(crate) fn webhook_row(r: &DbRow) -> MetaResult<Webhook> {
    let events: String = r.try_get("events")?;
    let events = serde_json::from_str(&events)
        .map_err(|e| MetaError::Corrupt(format!("webhook events: {e}")))?;
    Ok(Webhook {
        id: r.try_get("id")?,
        namespace: r.try_get("namespace")?,
        name: r.try_get("name")?,
        url: r.try_get("url")?,
        events,
        secret: r.try_get("secret")?,
        format: r.try_get("format")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub(crate) fn delivery_row(r: &DbRow) -> MetaResult<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: r.try_get("id")?,
        webhook_id: r.try_get("webhook_id")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("event_type")?,
        payload: r.try_get("payload")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        response_code: r.try_get("response_code")?,
        duration_ms: r.try_get("duration_ms")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        last_attempt_at: r.try_get("last_attempt_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

#[async_trait]
impl EventStore for Store {
    async fn emit_events(&self, events: &[NewEvent], now: i64) -> MetaResult<usize> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write.begin().await?;
        let queued = insert_events(&mut tx, events, now).await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn deliver_to(
        &self,
        webhook: i64,
        event: &NewEvent,
        now: i64,
    ) -> MetaResult<Option<i64>> {
        let mut tx = self.write.begin().await?;
        let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM webhooks WHERE id = $1")
            .bind(webhook)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Ok(None);
        }
        let id = insert_delivery(&mut tx, webhook, event, now).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    async fn create_webhook(&self, w: &NewWebhook) -> MetaResult<Option<Webhook>> {
        let mut tx = self.write.begin().await?;
        let namespace_id = match &w.namespace {
            Some(ns) => {
                let row: Option<(i64,)> =
                    sqlx::query_as("SELECT id FROM namespaces WHERE name = $1")
                        .bind(ns)
                        .fetch_optional(&mut *tx)
                        .await?;
                match row {
                    Some((id,)) => Some(id),
                    None => return Ok(None),
                }
            }
            None => None,
        };
        let taken: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM webhooks WHERE COALESCE(namespace_id, 0) = $1 AND name = $2",
        )
        .bind(namespace_id.unwrap_or(0))
        .bind(&w.name)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(MetaError::Conflict(format!("a webhook named {}", w.name)));
        }
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO webhooks (namespace_id, name, url, events, secret, format, enabled, created_by, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
        )
        .bind(namespace_id)
        .bind(&w.name)
        .bind(&w.url)
        .bind(events_json(&w.events))
        .bind(&w.secret)
        .bind(&w.format)
        .bind(i64::from(w.enabled))
        .bind(&w.created_by)
        .bind(w.now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.webhook(id)
            .await?
            .map(Some)
            .ok_or_else(|| MetaError::Corrupt(format!("webhook {id} vanished")))
    }

    async fn webhooks(&self, namespace: Option<&str>) -> MetaResult<Vec<Webhook>> {
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks w LEFT JOIN namespaces n ON n.id = w.namespace_id \
             WHERE ($1 IS NULL AND w.namespace_id IS NULL) OR n.name = $1 ORDER BY w.name"
        );
        let rows = sqlx::query(&sql)
            .bind(namespace)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(webhook_row).collect()
    }

    async fn all_webhooks(&self) -> MetaResult<Vec<Webhook>> {
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks w LEFT JOIN namespaces n ON n.id = w.namespace_id ORDER BY w.id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.read).await?;
        rows.iter().map(webhook_row).collect()
    }

    async fn webhook(&self, id: i64) -> MetaResult<Option<Webhook>> {
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks w LEFT JOIN namespaces n ON n.id = w.namespace_id \
             WHERE w.id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        row.as_ref().map(webhook_row).transpose()
    }

    async fn update_webhook(&self, id: i64, u: &WebhookUpdate) -> MetaResult<Option<Webhook>> {
        let done = sqlx::query(
            "UPDATE webhooks SET url = COALESCE($2, url), events = COALESCE($3, events), \
             secret = COALESCE($4, secret), format = COALESCE($5, format), \
             enabled = COALESCE($6, enabled), updated_at = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(u.url.as_deref())
        .bind(u.events.as_deref().map(events_json))
        .bind(u.secret.as_deref())
        .bind(u.format.as_deref())
        .bind(u.enabled.map(i64::from))
        .bind(u.now)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.webhook(id).await
    }

    async fn delete_webhook(&self, id: i64) -> MetaResult<bool> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delivery(&self, id: i64) -> MetaResult<Option<WebhookDelivery>> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        row.as_ref().map(delivery_row).transpose()
    }

    async fn deliveries(
        &self,
        webhook: i64,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> MetaResult<(Vec<WebhookDelivery>, i64)> {
        const WHERE: &str = "WHERE webhook_id = $1 AND ($2 IS NULL OR status = $2)";
        let (total,): (i64,) =
            sqlx::query_as(&format!("SELECT COUNT(*) FROM webhook_deliveries {WHERE}"))
                .bind(webhook)
                .bind(status)
                .fetch_one(&self.read)
                .await?;
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries {WHERE} ORDER BY id DESC LIMIT $3 OFFSET $4"
        );
        let rows = sqlx::query(&sql)
            .bind(webhook)
            .bind(status)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.read)
            .await?;
        let items = rows
            .iter()
            .map(delivery_row)
            .collect::<MetaResult<Vec<_>>>()?;
        Ok((items, total))
    }

    async fn record_delivery(&self, id: i64, a: &DeliveryAttempt) -> MetaResult<()> {
        let delivered = (a.status == delivery_status::SUCCEEDED).then_some(a.at);
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, attempts = $3, response_code = $4, \
             duration_ms = $5, error = $6, last_attempt_at = $7, \
             delivered_at = COALESCE($8, delivered_at) WHERE id = $1",
        )
        .bind(id)
        .bind(&a.status)
        .bind(a.attempts)
        .bind(a.response_code)
        .bind(a.duration_ms)
        .bind(a.error.as_deref())
        .bind(a.at)
        .bind(delivered)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn prune_deliveries(&self, before: i64) -> MetaResult<u64> {
        let done = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE status <> 'waiting' AND created_at < $1",
        )
        .bind(before)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    async fn redeliver(&self, id: i64, now: i64) -> MetaResult<bool> {
        let mut tx = self.write.begin().await?;
        if !insert_job(&mut tx, &delivery_job(id, now), now).await? {
            return Ok(false);
        }
        sqlx::query("UPDATE webhook_deliveries SET status = 'waiting', error = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
