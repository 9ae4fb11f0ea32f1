//! Webhooks: who may manage them, and the job that delivers an event to
//! one (signed, timed, recorded; retried with backoff by the job queue).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_meta::events::delivery_status;
use berth_meta::{
    DeliveryAttempt, NewWebhook, PlatformStore, Webhook, WebhookDelivery, WebhookUpdate,
};
use serde::Deserialize;

use super::{format, kind, render, sign, Event, EVENT_TYPES};
use crate::access::Principal;
use crate::clock::now_millis;
use crate::jobs::{Attempt, JobFailure};
use crate::secrets::{is_marked, open_marked, Sealer};
use crate::{Directory, DirectoryError, Registry};

type Result<T> = std::result::Result<T, DirectoryError>;

/// Longest webhook URL.
const MAX_URL: usize = 2048;
/// How Berth introduces itself to receivers.
const USER_AGENT: &str = concat!("Berth-Webhook/", env!("CARGO_PKG_VERSION"));

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Whether namespace webhooks may target loopback, private and
    /// link-local addresses (platform webhooks always may). Off by
    /// default, so that a namespace admin cannot probe the network Berth
    /// runs in.
    pub allow_private_targets: bool,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private_targets: false,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What a new webhook asks for.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    /// Name, unique in its namespace (or the platform).
    pub name: String,
    /// Where events are posted (http or https).
    pub url: String,
    /// Event types (see [`EVENT_TYPES`]).
    pub events: Vec<String>,
    /// The signing secret; `None` to have one generated (and shown once).
    pub secret: Option<String>,
    /// `berth` or `cloudevents`.
    pub format: String,
    /// Whether events are delivered.
    pub enabled: bool,
}

impl std::fmt::Debug for WebhookSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSpec")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("format", &self.format)
            .field("enabled", &self.enabled)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
struct DeliveryPayload {
    delivery: i64,
}

/// Webhooks of namespaces and of the platform, and their deliveries.
#[derive(Debug, Clone)]
pub struct Webhooks {
    registry: Registry,
    directory: Directory,
    config: Arc<WebhookConfig>,
    client: reqwest::Client,
    /// Seals secrets at rest (the configured `encryption_key`).
    sealer: Option<Arc<Sealer>>,
}

/// What sealed webhook secrets are bound to.
const SECRET_OWNER: &str = "webhook-secret";

impl Webhooks {
    /// Webhooks over the registry's platform tables.
    pub fn new(
        registry: Registry,
        directory: Directory,
        config: WebhookConfig,
        sealer: Option<Arc<Sealer>>,
    ) -> Self {
        let client = client_builder(&config)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Webhooks {
            registry,
            directory,
            config: Arc::new(config),
            client,
            sealer,
        }
    }

    /// A secret as stored: sealed with the configured key, if any.
    fn stored_secret(&self, secret: &str) -> Result<String> {
        match &self.sealer {
            Some(s) => s
                .seal_marked(secret, SECRET_OWNER)
                .map_err(|e| DirectoryError::Invalid(format!("sealing a webhook secret: {e}"))),
            None => Ok(secret.to_owned()),
        }
    }

    /// Seal the secrets stored in clear (from before a key was configured)
    /// or with a previous key, with the current key. Returns how many.
    pub async fn reseal_secrets(&self) -> Result<usize> {
        let Some(sealer) = &self.sealer else {
            return Ok(0);
        };
        let store = self.store();
        let mut resealed = 0;
        for hook in store.all_webhooks().await? {
            match open_marked(Some(sealer), &hook.secret, SECRET_OWNER) {
                Ok(opened) if opened.is_stale() => {
                    let update = WebhookUpdate {
                        secret: Some(self.stored_secret(opened.value())?),
                        now: now_millis(),
                        ..WebhookUpdate::default()
                    };
                    store.update_webhook(hook.id, &update).await?;
                    resealed += 1;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(webhook = hook.id, error = %e, "a webhook's secret does not open; its deliveries will fail until it is set again");
                }
            }
        }
        Ok(resealed)
    }

    fn store(&self) -> &dyn PlatformStore {
        &*self.registry.platform
    }

    /// Check that `actor` manages webhooks of `namespace` (its admins) or,
    /// with `None`, the platform's (platform admins).
    async fn check_scope(&self, actor: &Principal, namespace: Option<&str>) -> Result<()> {
        match namespace {
            Some(ns) => self.directory.admin_namespace(actor, ns).await.map(|_| ()),
            None if actor.is_platform_admin() => Ok(()),
            None => Err(DirectoryError::Forbidden(
                "platform webhooks are for platform administrators".into(),
            )),
        }
    }

    /// A webhook `actor` manages; `NotFound` otherwise, so that ids of
    /// other namespaces' webhooks are not revealed.
    pub async fn get(&self, actor: &Principal, id: i64) -> Result<Webhook> {
        let hook = self
            .store()
            .webhook(id)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("webhook {id}")))?;
        match self.check_scope(actor, hook.namespace.as_deref()).await {
            Ok(()) => Ok(hook),
            Err(DirectoryError::Forbidden(_)) => {
                Err(DirectoryError::NotFound(format!("webhook {id}")))
            }
            Err(e) => Err(e),
        }
    }

    /// The webhooks of a namespace or, with `None`, of the platform.
    pub async fn list(&self, actor: &Principal, namespace: Option<&str>) -> Result<Vec<Webhook>> {
        self.check_scope(actor, namespace).await?;
        Ok(self.store().webhooks(namespace).await?)
    }

    /// Create a webhook. Returns it and, when the secret was generated,
    /// the secret (shown this once).
    pub async fn create(
        &self,
        actor: &Principal,
        namespace: Option<&str>,
        spec: WebhookSpec,
    ) -> Result<(Webhook, Option<String>)> {
        self.check_scope(actor, namespace).await?;
        check_name(&spec.name)?;
        self.check_url(&spec.url, namespace.is_some())?;
        let events = check_events(&spec.events)?;
        check_format(&spec.format)?;
        let (secret, generated) = match spec.secret {
            Some(s) => {
                check_secret(&s)?;
                (s, None)
            }
            None => {
                let s = crate::password::random_secret(32);
                (s.clone(), Some(s))
            }
        };
        let secret = self.stored_secret(&secret)?;
        let hook = self
            .store()
            .create_webhook(&NewWebhook {
                namespace: namespace.map(str::to_owned),
                name: spec.name.clone(),
                url: spec.url.clone(),
                events,
                secret,
                format: spec.format.clone(),
                enabled: spec.enabled,
                created_by: actor.name().to_owned(),
                now: now_millis(),
            })
            .await?
            .ok_or_else(|| {
                DirectoryError::NotFound(format!("namespace {}", namespace.unwrap_or_default()))
            })?;
        self.directory
            .record(
                actor,
                "webhook.create",
                namespace.unwrap_or("platform"),
                &format!("{} -> {}", hook.name, hook.url),
            )
            .await?;
        Ok((hook, generated))
    }

    /// Change a webhook.
    pub async fn update(
        &self,
        actor: &Principal,
        id: i64,
        mut update: WebhookUpdate,
    ) -> Result<Webhook> {
        let hook = self.get(actor, id).await?;
        if let Some(url) = &update.url {
            self.check_url(url, hook.namespace.is_some())?;
        }
        if let Some(events) = &update.events {
            update.events = Some(check_events(events)?);
        }
        if let Some(f) = &update.format {
            check_format(f)?;
        }
        if let Some(s) = &update.secret {
            check_secret(s)?;
            update.secret = Some(self.stored_secret(s)?);
        }
        update.now = now_millis();
        let changed = self
            .store()
            .update_webhook(id, &update)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("webhook {id}")))?;
        self.directory
            .record(
                actor,
                "webhook.update",
                hook.namespace.as_deref().unwrap_or("platform"),
                &hook.name,
            )
            .await?;
        Ok(changed)
    }

    /// Delete a webhook with its deliveries.
    pub async fn delete(&self, actor: &Principal, id: i64) -> Result<()> {
        let hook = self.get(actor, id).await?;
        self.store().delete_webhook(id).await?;
        self.directory
            .record(
                actor,
                "webhook.delete",
                hook.namespace.as_deref().unwrap_or("platform"),
                &hook.name,
            )
            .await
    }

    /// Queue a `ping` event to the webhook. Returns the delivery's id.
    pub async fn ping(&self, actor: &Principal, id: i64) -> Result<i64> {
        let hook = self.get(actor, id).await?;
        let event = Event::new(kind::PING, hook.namespace.as_deref())
            .actor(actor.name())
            .with("webhook", hook.name.clone())
            .build();
        let delivery = self
            .store()
            .deliver_to(id, &event, now_millis())
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("webhook {id}")))?;
        self.registry.jobs_queued.notify_one();
        Ok(delivery)
    }

    /// A page of a webhook's deliveries, newest first, with the total.
    pub async fn deliveries(
        &self,
        actor: &Principal,
        id: i64,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<WebhookDelivery>, i64)> {
        self.get(actor, id).await?;
        Ok(self.store().deliveries(id, status, limit, offset).await?)
    }

    /// One delivery of a webhook.
    pub async fn delivery(
        &self,
        actor: &Principal,
        id: i64,
        delivery: i64,
    ) -> Result<WebhookDelivery> {
        self.get(actor, id).await?;
        match self.store().delivery(delivery).await? {
            Some(d) if d.webhook_id == id => Ok(d),
            _ => Err(DirectoryError::NotFound(format!("delivery {delivery}"))),
        }
    }

    /// Deliver again (same event id, so receivers can dedupe). `Conflict`
    /// while the delivery is still queued.
    pub async fn redeliver(&self, actor: &Principal, id: i64, delivery: i64) -> Result<()> {
        self.delivery(actor, id, delivery).await?;
        if !self.store().redeliver(delivery, now_millis()).await? {
            return Err(DirectoryError::Conflict(format!(
                "a queued attempt of delivery {delivery}"
            )));
        }
        self.registry.jobs_queued.notify_one();
        self.directory
            .record(
                actor,
                "webhook.redeliver",
                &format!("webhook {id}"),
                &format!("delivery {delivery}"),
            )
            .await
    }

    fn check_url(&self, url: &str, namespace: bool) -> Result<()> {
        if url.len() > MAX_URL {
            return Err(DirectoryError::Invalid(format!(
                "the URL is longer than {MAX_URL} characters"
            )));
        }
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| DirectoryError::Invalid(format!("invalid URL {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(DirectoryError::Invalid(format!(
                "the URL must be http:// or https:// with a host, not {url:?}"
            )));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(DirectoryError::Invalid(
                "put no credentials in the URL: receivers check the signature".into(),
            ));
        }
        if namespace && !self.config.allow_private_targets {
            let host = parsed.host_str().unwrap_or_default();
            let literal = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok();
            let lower = host.to_ascii_lowercase();
            let local_name = lower == "localhost" || lower.ends_with(".localhost");
            if local_name || literal.is_some_and(|ip| !public_address(ip)) {
                return Err(DirectoryError::Invalid(format!(
                    "{url} is a loopback, private or link-local address; namespace webhooks must reach a public address (platform administrators can allow private targets)"
                )));
            }
        }
        Ok(())
    }

    /// Run the job of one delivery.
    pub(crate) async fn run_job(
        &self,
        payload: &str,
        attempt: Attempt,
    ) -> std::result::Result<(), JobFailure> {
        let p: DeliveryPayload = serde_json::from_str(payload)
            .map_err(|e| JobFailure::permanent(format!("invalid payload: {e}")))?;
        let store = self.store();
        let Some(delivery) = store.delivery(p.delivery).await? else {
            return Ok(()); // its webhook was deleted
        };
        if delivery.status != delivery_status::WAITING {
            return Ok(()); // done before a lease ran out
        }
        let Some(hook) = store.webhook(delivery.webhook_id).await? else {
            return Ok(());
        };
        let started = Instant::now();
        let at = now_millis();
        let outcome = if hook.enabled || delivery.event_type == kind::PING {
            self.post(&hook, &delivery).await
        } else {
            Err((None, JobFailure::permanent("the webhook is disabled")))
        };
        let mut record = DeliveryAttempt {
            status: delivery_status::SUCCEEDED.to_owned(),
            attempts: delivery.attempts + 1,
            response_code: None,
            duration_ms: started.elapsed().as_millis() as i64,
            error: None,
            at,
        };
        match outcome {
            Ok(code) => {
                self.registry
                    .stats
                    .webhooks_delivered
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                record.response_code = Some(code);
                store.record_delivery(delivery.id, &record).await?;
                Ok(())
            }
            Err((code, failure)) => {
                self.registry
                    .stats
                    .webhook_attempts_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                record.response_code = code;
                record.error = Some(failure.message.clone());
                record.status = if failure.permanent || attempt.last {
                    delivery_status::FAILED
                } else {
                    delivery_status::WAITING
                }
                .to_owned();
                store.record_delivery(delivery.id, &record).await?;
                Err(failure)
            }
        }
    }

    /// Post one delivery. Returns the receiver's status, or it (if any)
    /// with why the attempt failed.
    async fn post(
        &self,
        hook: &Webhook,
        delivery: &WebhookDelivery,
    ) -> std::result::Result<i64, (Option<i64>, JobFailure)> {
        let fail = |m: String| (None, JobFailure::retry(m));
        let url = reqwest::Url::parse(&hook.url)
            .map_err(|e| (None, JobFailure::permanent(format!("invalid URL: {e}"))))?;
        // A namespace webhook's name is resolved here and the connection
        // pinned to the address checked, so that DNS cannot point it
        // inside afterwards.
        let client = if hook.namespace.is_some() && !self.config.allow_private_targets {
            let host = url.host_str().unwrap_or_default().to_owned();
            let port = url.port_or_known_default().unwrap_or(443);
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| fail(format!("cannot resolve {host}: {e}")))?
                .collect();
            let Some(addr) = addrs.iter().copied().find(|a| public_address(a.ip())) else {
                return Err((
                    None,
                    JobFailure::permanent(format!(
                        "{host} resolves to no public address; namespace webhooks must reach a public address"
                    )),
                ));
            };
            client_builder(&self.config)
                .resolve(&host, addr)
                .build()
                .map_err(|e| fail(format!("HTTP client: {e}")))?
        } else {
            self.client.clone()
        };
        let secret =
            open_marked(self.sealer.as_deref(), &hook.secret, SECRET_OWNER).map_err(|e| {
                (
                    None,
                    JobFailure::permanent(format!("the webhook's secret: {e}")),
                )
            })?;
        let (body, content_type) = render(&hook.format, &delivery.payload);
        let timestamp = now_millis() / 1000;
        let response = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header("Berth-Event", &delivery.event_type)
            .header("Berth-Event-Id", &delivery.event_id)
            .header("Berth-Delivery", delivery.id.to_string())
            .header("Berth-Signature", sign(secret.value(), timestamp, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| fail(format!("POST {}: {}", hook.url, error_chain(&e))))?;
        let code = i64::from(response.status().as_u16());
        // The body is not read: receivers' answers are not recorded.
        drop(response);
        match code {
            200..=299 => Ok(code),
            // Gone: the receiver says it will never take events again.
            410 => Err((
                Some(code),
                JobFailure::permanent(format!("the receiver answered {code}")),
            )),
            _ => Err((
                Some(code),
                JobFailure::retry(format!("the receiver answered {code}")),
            )),
        }
    }
}

fn client_builder(config: &WebhookConfig) -> reqwest::ClientBuilder {
    // No proxy from HTTP(S)_PROXY: a proxy would resolve and connect
    // itself, past the address checked and pinned here.
    reqwest::Client::builder()
        .no_proxy()
        .user_agent(USER_AGENT)
        .timeout(config.timeout)
        .connect_timeout(config.timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
}

/// A reqwest error with its causes ("error sending request" alone says
/// nothing).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Whether an address is on the public internet: not loopback, private,
/// link-local (cloud metadata), shared (CGNAT), benchmarking
/// (198.18.0.0/15), reserved (240.0.0.0/4), unspecified, multicast or
/// documentation; for IPv6 also not unique-local, link-local, discard, and
/// not a translation of an IPv4 address that is none of those (IPv4-mapped
/// and -compatible, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4
/// `2002::/16`, Teredo `2001::/32`: each reaches an IPv4 host through a
/// gateway).
pub(crate) fn public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [b0, b1, ..] = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || b0 == 0
                || b0 >= 240
                || (b0 == 100 && (64..128).contains(&b1))
                || (b0 == 198 && (b1 == 18 || b1 == 19))
                || (b0 == 192 && b1 == 0 && a.octets()[2] == 0))
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return public_address(IpAddr::V4(v4));
            }
            let s = a.segments();
            let embedded = |hi: u16, lo: u16| {
                std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            // IPv4-compatible (deprecated) ::a.b.c.d.
            if s[..6] == [0; 6] && !a.is_loopback() && !a.is_unspecified() {
                return public_address(IpAddr::V4(embedded(s[6], s[7])));
            }
            // NAT64: the IPv4 host in the last 32 bits of the well-known
            // prefix; the local-use prefix is never public.
            if s[0] == 0x64 && s[1] == 0xff9b {
                return s[2..6] == [0; 4] && public_address(IpAddr::V4(embedded(s[6], s[7])));
            }
            // 6to4: the IPv4 host in bits 16-48.
            if s[0] == 0x2002 {
                return public_address(IpAddr::V4(embedded(s[1], s[2])));
            }
            // Teredo: the IPv4 client in the last 32 bits, inverted.
            if s[0] == 0x2001 && s[1] == 0 {
                return public_address(IpAddr::V4(embedded(!s[6], !s[7])));
            }
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x0100 && s[1..4] == [0; 3]))
        }
    }
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(format!(
            "invalid webhook name {name:?}: 1 to 64 letters, digits, '-', '_' or '.'"
        )))
    }
}

fn check_events(events: &[String]) -> Result<Vec<String>> {
    if events.is_empty() {
        return Err(DirectoryError::Invalid(format!(
            "choose at least one event type: {}",
            EVENT_TYPES.join(", ")
        )));
    }
    let mut out = Vec::new();
    for e in events {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(DirectoryError::Invalid(format!(
                "unknown event type {e:?}; the types are: {}",
                EVENT_TYPES.join(", ")
            )));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

fn check_format(f: &str) -> Result<()> {
    if f == format::BERTH || f == format::CLOUDEVENTS {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(format!(
            "unknown payload format {f:?}: use berth or cloudevents"
        )))
    }
}

fn check_secret(s: &str) -> Result<()> {
    if !(16..=256).contains(&s.len()) {
        return Err(DirectoryError::Invalid(
            "the secret must be 16 to 256 characters".into(),
        ));
    }
    if is_marked(s) {
        return Err(DirectoryError::Invalid(
            "a secret may not start with \"sealed:\"".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_only() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            // Benchmarking, reserved, IETF protocol assignments.
            "198.18.0.1",
            "198.19.255.254",
            "240.0.0.1",
            "255.255.255.254",
            "192.0.0.8",
            // IPv4 hosts behind translation: NAT64, 6to4, Teredo, compatible.
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b:1::808:808",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "::169.254.169.254",
            "2001:db8::1",
            "100::1",
        ] {
            assert!(!public_address(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "100.128.0.1",
            "198.20.0.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(public_address(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn event_lists_are_checked_and_deduped() {
        assert_eq!(
            check_events(&["image.push".into(), "image.push".into()]).unwrap(),
            vec!["image.push".to_owned()]
        );
        assert!(check_events(&[]).is_err());
        assert!(check_events(&["ping".into()]).is_err());
        assert!(check_events(&["image.pushed".into()]).is_err());
        assert!(check_name("ci-hook_1.x").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_secret("short").is_err());
        assert!(check_format("xml").is_err());
    }
}
