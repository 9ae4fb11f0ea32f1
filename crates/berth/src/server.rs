//! Wiring and serving: open the stores, build the router, run background
//! jobs, shut down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_core::events::Webhooks;
use berth_core::identity::{Issuers, Ldap, MappingTable, SignIn, Workload};
use berth_core::integrity::Integrity;
use berth_core::jobs::Worker;
use berth_core::platform::{Proxy, Remotes, Replications, RuleTriggers, Synchronizer};
use berth_core::pull_policy::PullPolicies;
use berth_core::read_cache::ReadCache;
use berth_core::secrets::Sealer;
use berth_core::{Auth, Collector, Directory, Management, ManagementConfig, Registry};
use berth_meta::{
    DirectoryStore, GcStore, ManagementStore, MetaStore, PlatformStore, PostgresStore, SqliteStore,
};
use tokio::task::JoinHandle;

use crate::connections::{ConnectionLimits, IdleTimeoutBody, LimitAcceptor};
use crate::metrics::{self, Metrics};
use crate::Config;

/// Most bytes a connection buffers when reading a request. hyper's default
/// (~400 KiB) lets every connection that once streamed an upload keep that
/// much for as long as it stays open: at 64 concurrent pushers that was
/// most of the server's memory. Uploads stream in blocks either way.
const CONNECTION_BUFFER: usize = 64 << 10;

/// How often freed memory is returned to the system.
const MEMORY_TRIM: Duration = Duration::from_secs(5);

/// How often a released space reserve is written again if there is room.
const RESERVE_CHECK: Duration = Duration::from_secs(10);

/// How often idle uploads are swept.
const UPLOAD_SWEEP: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
struct AppState {
    registry: Registry,
    metrics: Arc<Metrics>,
    pull_policies: PullPolicies,
    /// The database's schema version when this node started.
    schema_version: i64,
    integrity: Integrity,
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    registry: Registry,
    directory: Directory,
    collector: Collector,
    synchronizer: Synchronizer,
    worker: Worker,
    grace: Duration,
    serve: JoinHandle<std::io::Result<()>>,
    jobs: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The registry service (for tests and admin commands).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The directory service (for tests and admin commands).
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The garbage collector (for tests and admin commands).
    pub fn collector(&self) -> &Collector {
        &self.collector
    }

    /// Synchronization rules and records (for tests and admin commands).
    pub fn synchronizer(&self) -> &Synchronizer {
        &self.synchronizer
    }

    /// The job queue's worker (for tests: `run_ready`).
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Stop accepting, let in-flight requests finish (bounded by the grace
    /// period), then flush pending counters.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(self.grace));
        let served = self.serve.await;
        for job in &self.jobs {
            job.abort();
        }
        let flushed = self.registry.flush_pulls().await;
        if let Err(e) = &flushed {
            tracing::error!(error = %e, "could not write pending pull counts on shutdown");
        }
        served.context("server task")?.context("server")?;
        flushed?;
        tracing::info!("shut down cleanly");
        Ok(())
    }

    /// Serve until SIGINT or SIGTERM, then shut down gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("signal received, shutting down");
        self.shutdown().await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The metadata database, as its two contracts.
pub(crate) type Stores = (
    Arc<dyn MetaStore>,
    Arc<dyn DirectoryStore>,
    Arc<dyn ManagementStore>,
    Arc<dyn GcStore>,
    Arc<dyn PlatformStore>,
);

/// Open the configured database (applying migrations).
pub(crate) async fn open_stores(config: &Config) -> anyhow::Result<Stores> {
    Ok(match &config.database.url {
        Some(url) => {
            let store = Arc::new(
                PostgresStore::connect_with(
                    url.expose(),
                    config.database.max_connections,
                    Duration::from_secs(config.database.acquire_timeout_secs),
                )
                .await
                .context("connecting to PostgreSQL")?,
            );
            (
                store.clone(),
                store.clone(),
                store.clone(),
                store.clone(),
                store,
            )
        }
        None => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating {}", config.data_dir.display()))?;
            let path = config.data_dir.join("berth.db");
            let store = Arc::new(
                SqliteStore::open(&path)
                    .await
                    .with_context(|| format!("opening {}", path.display()))?,
            );
            (
                store.clone(),
                store.clone(),
                store.clone(),
                store.clone(),
                store,
            )
        }
    })
}

/// Create the platform administrator on first start.
pub(crate) async fn bootstrap(directory: &Directory, config: &Config) -> anyhow::Result<()> {
    let given = config.admin_password.as_ref().map(|s| s.expose());
    if let Some(generated) = directory
        .bootstrap(given)
        .await
        .context("creating the platform administrator")?
    {
        // Shown once, as the issue of first start asks; set BERTH_ADMIN_PASSWORD to choose it.
        tracing::warn!(
            "created the platform administrator 'admin' with the generated password {generated} \
             (shown only this once; change it with `berth admin account password admin`)"
        );
    } else if given.is_some() {
        tracing::debug!(
            "platform administrator exists; BERTH_ADMIN_PASSWORD is only used on first start"
        );
    }
    Ok(())
}

/// The host (and port) clients pull from: the external URL's authority, or
/// the address Berth listens on.
fn registry_host(external_url: Option<&str>, addr: SocketAddr) -> String {
    if let Some(url) = external_url {
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let host = rest.split('/').next().unwrap_or(rest);
        if !host.is_empty() {
            return host.to_owned();
        }
    }
    if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Open the stores, bind the listener and start serving in the background.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (meta, directory_store, management_store, gc_store, platform) =
        open_stores(&config).await?;
    let schema_version = meta
        .schema_version()
        .await
        .context("reading the schema version")?;
    // Hot reads from memory, dropped as the change feed announces changes.
    let read_cache = Arc::new(ReadCache::new(
        (config.read_cache_mib as usize).saturating_mul(1 << 20),
    ));
    let directory = Directory::new(directory_store.clone(), config.access.to_core())
        .with_read_cache(read_cache.clone());
    bootstrap(&directory, &config).await?;
    let regions = config.open_regions(meta.clone())?;
    let blobs = regions.local().blobs.clone();
    let change_feed = meta.change_feed();
    let mut registry = Registry::new(meta, platform.clone(), regions, config.registry.to_core())
        .with_triggers(Arc::new(RuleTriggers::new(platform)))
        .with_read_cache(read_cache.clone());
    if let Some(reserve) = config.space_reserve() {
        registry = registry.with_reserve(reserve);
    }
    let integrity = Integrity::new(
        gc_store.clone(),
        registry.clone(),
        directory_store.clone(),
        config.integrity.to_core(),
    );
    let collector = Collector::new(
        registry.clone(),
        gc_store,
        blobs,
        directory_store,
        config.gc.to_core(),
    );
    let metrics = Arc::new(Metrics::default());
    // One key seals every secret at rest; previous keys only open.
    let sealer = config
        .encryption_key
        .as_ref()
        .map(|k| {
            Sealer::new(k.expose()).and_then(|s| {
                s.with_previous(config.previous_encryption_keys.iter().map(|k| k.expose()))
            })
        })
        .transpose()
        .context("encryption_key")?
        .map(Arc::new);
    let issuers = Arc::new(
        Issuers::new(config.identity.to_core()?)
            .map_err(|e| anyhow::anyhow!(e))
            .context("identity providers")?,
    );
    let workload = Workload::new(
        directory.clone(),
        issuers.clone(),
        config
            .identity
            .trust_rules
            .iter()
            .map(|r| r.to_core())
            .collect(),
    );
    let mappings: Vec<_> = config
        .identity
        .group_mappings
        .iter()
        .map(|m| m.to_core())
        .collect::<anyhow::Result<_>>()?;
    let origins = config
        .identity
        .oidc
        .iter()
        .map(|p| format!("oidc:{}", p.name))
        .chain(
            config
                .identity
                .ldap
                .iter()
                .map(|d| format!("ldap:{}", d.name)),
        )
        .collect();
    let mappings = MappingTable::new(mappings, origins, directory.clone());
    let sign_in = SignIn::new(
        config.identity.oidc.iter().map(|p| p.to_core()).collect(),
        mappings.clone(),
        issuers.clone(),
        directory.clone(),
    );
    let ldap = Ldap::new(
        config
            .identity
            .ldap
            .iter()
            .map(|d| d.to_core())
            .collect::<anyhow::Result<_>>()?,
        mappings,
        directory.clone(),
    );
    let auth = Arc::new(
        Auth::new(directory.clone(), config.auth.to_core(), sealer.as_deref())
            .await
            .context("loading the token signing key")?
            .with_workload(workload.clone())
            .with_ldap(ldap.clone()),
    );
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let management = Management::new(
        directory.clone(),
        registry.clone(),
        management_store,
        ManagementConfig {
            registry_host: registry_host(config.external_url.as_deref(), addr),
            session_lifetime: Duration::from_secs(config.auth.session_lifetime_secs),
        },
    );
    // Pull-policy verdicts follow the same change feed as the read cache.
    read_cache.listen(management.pull_policies().listener());
    let state = AppState {
        registry: registry.clone(),
        metrics: metrics.clone(),
        pull_policies: management.pull_policies().clone(),
        schema_version,
        integrity: integrity.clone(),
    };
    let synchronizer = Synchronizer::new(registry.clone(), directory.clone());
    let remotes = Remotes::new(
        registry.clone(),
        directory.clone(),
        config
            .remotes
            .iter()
            .map(|r| r.to_core())
            .collect::<anyhow::Result<_>>()?,
        sealer.clone(),
    );
    let webhooks = Webhooks::new(
        registry.clone(),
        directory.clone(),
        config.webhooks.to_core(),
        sealer.clone(),
    );
    let resealed = webhooks
        .reseal_secrets()
        .await
        .context("sealing webhook secrets")?
        + remotes
            .reseal_passwords()
            .await
            .context("sealing remote passwords")?;
    if resealed > 0 {
        tracing::info!(
            resealed,
            "secrets at rest sealed again with the current encryption key"
        );
    }
    let replications = Replications::new(registry.clone(), directory.clone(), remotes.clone());
    let proxy = if config.proxy_namespaces.is_empty() {
        None
    } else {
        let proxy = Proxy::new(
            registry.clone(),
            directory.clone(),
            remotes.clone(),
            config
                .proxy_namespaces
                .iter()
                .map(|p| p.to_core())
                .collect(),
        );
        proxy
            .prepare()
            .await
            .context("preparing the proxy namespaces")?;
        Some(proxy)
    };
    // Cached blobs of proxy namespaces are repaired from their upstreams.
    let integrity = match &proxy {
        Some(p) => integrity.with_proxy(p.clone()),
        None => integrity,
    };
    let network = Arc::new(config.network_policy()?);
    let api = berth_web::WebState {
        management,
        collector: collector.clone(),
        integrity: integrity.clone(),
        sync: synchronizer.clone(),
        webhooks: webhooks.clone(),
        remotes,
        replications: replications.clone(),
        proxy: proxy.clone(),
        auth: auth.clone(),
        workload,
        sign_in,
        ldap: ldap.clone(),
        external_url: config.external_url.clone(),
        secure_cookies: config.tls.is_some()
            || config
                .external_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
        network: network.clone(),
    };
    let v2 = berth_registry::V2State {
        registry: registry.clone(),
        management: api.management.clone(),
        auth: auth.clone(),
        external_url: config.external_url.clone(),
        tls: config.tls.is_some(),
        network,
        external_bandwidth: config.network.external_bandwidth,
        proxy,
    };
    let scheduled_management = api.management.clone();
    let body_idle = Duration::from_secs(config.connections.body_idle_timeout_secs);
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .layer(axum::middleware::map_response(
            |mut r: Response| async move {
                r.headers_mut().insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    header::HeaderValue::from_static("nosniff"),
                );
                r
            },
        ))
        .with_state(state)
        .merge(berth_registry::router(v2))
        .merge(berth_api::router(api.clone()))
        .merge(berth_console::router(api))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(close_if_body_unread))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let (parts, body) = req.into_parts();
                let body = axum::body::Body::new(IdleTimeoutBody::new(body, body_idle));
                next.run(axum::extract::Request::from_parts(parts, body))
            },
        ));

    crate::connections::raise_open_file_limit();
    let limits = Arc::new(ConnectionLimits::new(
        config.connections.max_connections,
        config.connections.max_connections_per_client,
        config.network.to_core()?.trusted_proxies,
    ));
    let header_timeout = Duration::from_secs(config.connections.header_read_timeout_secs);
    let handle = axum_server::Handle::new();
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    // Every connection is counted against the bounds and gets TCP_NODELAY:
    // without it, the last small write of a response could wait for the
    // client's delayed ACK (40 ms), which showed as a 60 ms p99 for
    // push-then-pull of a 1 MB image read in 64 KiB pieces
    // (docs/benchmarks.md). Go's server, the reference, sets it too.
    // hyper enforces the header read timeout only with a timer; it also
    // closes kept-alive connections idle for that long.
    let serve = match &config.tls {
        Some(tls) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .with_context(|| {
                    format!(
                        "loading TLS certificate {} and key {}",
                        tls.cert.display(),
                        tls.key.display()
                    )
                })?;
            let mut server = axum_server::from_tcp_rustls(listener, rustls)?
                .map(|tls| tls.acceptor(LimitAcceptor::new(limits, false, header_timeout)))
                .handle(handle.clone());
            server
                .http_builder()
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(CONNECTION_BUFFER);
            tokio::spawn(async move { server.serve(service).await })
        }
        None => {
            let mut server = axum_server::from_tcp(listener)?
                .acceptor(LimitAcceptor::new(limits, true, header_timeout))
                .handle(handle.clone());
            server
                .http_builder()
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(CONNECTION_BUFFER);
            tokio::spawn(async move { server.serve(service).await })
        }
    };
    let worker = Worker::new(
        registry.clone(),
        synchronizer.clone(),
        replications,
        webhooks,
        collector.clone(),
        config.jobs.to_core(),
    );
    let mut jobs = vec![
        tokio::spawn(worker.clone().run()),
        tokio::spawn({
            let cache = read_cache.clone();
            async move { cache.follow(change_feed).await }
        }),
        tokio::spawn(trim_memory_job()),
        tokio::spawn(flush_pulls_job(
            registry.clone(),
            Duration::from_secs(config.pull_flush_secs),
        )),
        tokio::spawn(expire_uploads_job(registry.clone())),
        tokio::spawn(reserve_job(registry.clone())),
        tokio::spawn({
            let auth = auth.clone();
            async move { auth.follow_credential_changes(Duration::from_secs(1)).await }
        }),
    ];
    if let Some(period) = config
        .identity
        .ldap
        .iter()
        .map(|d| d.cache_secs.max(1))
        .min()
    {
        let ldap = ldap.clone();
        jobs.push(tokio::spawn(async move {
            ldap.keep_sweeping(Duration::from_secs(period)).await
        }));
    }
    if config.gc.retention_interval_secs > 0 {
        jobs.push(tokio::spawn(retention_job(
            scheduled_management,
            Duration::from_secs(config.gc.retention_interval_secs),
        )));
    }
    if !config.gc.to_core().interval.is_zero() {
        jobs.push(tokio::spawn(gc_job(collector.clone(), registry.clone())));
    }
    jobs.push(tokio::spawn(sample_storage(integrity.clone())));
    if !integrity.config().scrub_interval.is_zero() {
        jobs.push(tokio::spawn(scrub_job(integrity.clone(), registry.clone())));
    }
    tracing::info!(
        %addr,
        tls = config.tls.is_some(),
        database = if config.database.url.is_some() { "postgres" } else { "sqlite" },
        storage = %config.storage_description(),
        "berth is listening"
    );
    Ok(RunningServer {
        addr,
        handle,
        registry,
        directory,
        collector,
        synchronizer,
        worker,
        grace: Duration::from_secs(config.shutdown_grace_secs),
        serve,
        jobs,
    })
}

async fn flush_pulls_job(registry: Registry, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = registry.flush_pulls().await {
            tracing::warn!(error = %e, "writing pull counts failed; will retry");
        }
    }
}

async fn expire_uploads_job(registry: Registry) {
    let mut tick = tokio::time::interval(UPLOAD_SWEEP);
    loop {
        tick.tick().await;
        match registry.expire_uploads().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired idle upload sessions"),
            Err(e) => tracing::warn!(error = %e, "expiring uploads failed"),
        }
    }
}

/// Put the space reserve back once there is room again (after an
/// operator freed space, or another process released it).
async fn reserve_job(registry: Registry) {
    let mut tick = tokio::time::interval(RESERVE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        registry.restore_reserve().await;
    }
}

/// Middleware: a response given before its request's body was read to the
/// end (a chunk refused for its range, an unknown upload, a denied push)
/// says `Connection: close`. The rest of the body is still on the
/// connection, so hyper closes it after the response; without the header a
/// client could send its next request down it and see the connection
/// drop instead of an answer.
async fn close_if_body_unread(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use std::sync::atomic::{AtomicBool, Ordering};
    if http_body::Body::is_end_stream(req.body()) {
        return next.run(req).await;
    }
    let ended = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&ended);
    let (parts, body) = req.into_parts();
    let end = futures_util::stream::poll_fn(move |_| {
        seen.store(true, Ordering::Release);
        std::task::Poll::Ready(None)
    });
    let body =
        axum::body::Body::from_stream(futures_util::StreamExt::chain(body.into_data_stream(), end));
    let mut response = next
        .run(axum::extract::Request::from_parts(parts, body))
        .await;
    if !ended.load(Ordering::Acquire) {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The namespaces' retention rules on a schedule. The first run waits one interval.
async fn retention_job(management: Management, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // One node per interval: the one holding the lease.
        match management
            .registry()
            .try_lease("retention", every / 2)
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::error!(error = %e, "cannot take the retention lease");
                continue;
            }
        }
        match management.run_all_retention().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(tags_deleted = n, "retention rules applied"),
            Err(e) => tracing::error!(error = %e, "applying retention rules failed"),
        }
    }
}

/// Give freed memory back to the system every few seconds (a blocking
/// call of a few milliseconds at most, off the async workers), the blob
/// store's spare upload buffers too once no large upload runs.
async fn trim_memory_job() {
    let mut tick = tokio::time::interval(MEMORY_TRIM);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let _ = tokio::task::spawn_blocking(|| {
            berth_blob::release_idle_buffers();
            crate::memory::trim();
        })
        .await;
    }
}

/// At start, report (never refuse to serve) when the storage lacks blobs
/// the database stored last: a database restored from a later point than
/// the bucket, or a bucket pointed at by mistake.
async fn sample_storage(integrity: Integrity) {
    const SAMPLE: i64 = 100;
    match integrity.sample_newest(SAMPLE).await {
        Ok((0, _)) => {}
        Ok((missing, of)) => tracing::error!(
            missing,
            of,
            "blob storage lacks {missing} of the {of} blobs the database stored last: was the \
             database restored from a later point than the storage? Pulls of those blobs \
             answer BLOB_UNKNOWN; run `berth fsck` for the full list (docs/operations.md)"
        ),
        Err(e) => tracing::warn!(error = %e, "could not sample blob storage at start"),
    }
}

/// The scheduled integrity scrub, at its configured rate, repairing what
/// another region holds a good copy of. The first run waits one interval.
async fn scrub_job(integrity: Integrity, registry: Registry) {
    let every = integrity.config().scrub_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // One node per interval (as the collection).
        match registry.try_lease("scrub", every / 2).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::error!(error = %e, "cannot take the scrub lease");
                continue;
            }
        }
        // What it finds is recorded, audited and logged by the check.
        if let Err(e) = integrity.scrub().await {
            tracing::error!(error = %e, "the scheduled integrity scrub could not run");
        }
    }
}

/// The scheduled garbage collection. The first run waits one interval.
async fn gc_job(collector: Collector, registry: Registry) {
    let every = collector.config().interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // One node per interval: the one holding the lease (runs on other
        // nodes would be safe, only wasted).
        match registry.try_lease("gc", every / 2).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::error!(error = %e, "cannot take the collection lease");
                continue;
            }
        }
        // A run's own failure is recorded, audited and logged by the collector.
        if let Err(e) = collector.run_scheduled().await {
            tracing::error!(error = %e, "scheduled garbage collection could not run");
        }
    }
}

/// Liveness, with the release and schema this node runs (for watching a
/// rolling upgrade): the schema the database was at when the node started
/// and the newest this build knows.
async fn healthz(State(state): State<AppState>) -> Response {
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "schema_version": state.schema_version,
        "schema_supported": berth_meta::SCHEMA_VERSION,
    }))
    .into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.registry.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response()
        }
    }
}

async fn metrics_page(State(state): State<AppState>) -> Response {
    let uploads = state.registry.meta().upload_count().await.ok();
    let mut page = state.metrics.render(uploads);
    page.push_str(&metrics::render_read_cache(
        &state.registry.read_cache().stats(),
    ));
    page.push_str(&metrics::render_pull_policies(state.pull_policies.stats()));
    match state.integrity.runs(5).await {
        Ok(runs) => {
            if let Some(run) = runs.iter().find(|r| r.status != "running") {
                page.push_str(&metrics::render_integrity(run));
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: integrity runs unavailable"),
    }
    // Without the database the job gauges are left out rather than shown
    // as zero; the request metrics above still tell of the outage.
    match state.registry.platform().job_counts().await {
        Ok(jobs) => page.push_str(&metrics::render_platform(
            state.registry.platform_stats(),
            &jobs,
        )),
        Err(e) => tracing::warn!(error = %e, "metrics: job counts unavailable"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], page).into_response()
}
