//! Prometheus metrics: requests and latencies by endpoint kind and status,
//! bytes in and out, uploads in progress.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use berth_registry::EndpointKind;
use futures_util::StreamExt;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Metrics {
    fn observe(&self, kind: &'static str, status: u16, seconds: f64) {
        {
            let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *r.entry((kind, status)).or_insert(0) += 1;
        }
        let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = l.entry(kind).or_default();
        h.count += 1;
        h.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.buckets[i] += 1;
            }
        }
    }

    /// Render in the Prometheus text exposition format.
    pub fn render(&self, uploads_in_progress: Option<i64>) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP berth_http_requests_total HTTP requests by endpoint kind and status.\n",
        );
        out.push_str("# TYPE berth_http_requests_total counter\n");
        for ((kind, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "berth_http_requests_total{{endpoint=\"{kind}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP berth_http_request_duration_seconds Time to the response head, by endpoint kind.\n");
        out.push_str("# TYPE berth_http_request_duration_seconds histogram\n");
        for (kind, h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "berth_http_request_duration_seconds_bucket{{endpoint=\"{kind}\",le=\"{bound}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "berth_http_request_duration_seconds_bucket{{endpoint=\"{kind}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "berth_http_request_duration_seconds_sum{{endpoint=\"{kind}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "berth_http_request_duration_seconds_count{{endpoint=\"{kind}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP berth_http_received_bytes_total Request body bytes received.\n");
        out.push_str("# TYPE berth_http_received_bytes_total counter\n");
        let _ = writeln!(
            out,
            "berth_http_received_bytes_total {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        out.push_str("# HELP berth_http_sent_bytes_total Response body bytes sent.\n");
        out.push_str("# TYPE berth_http_sent_bytes_total counter\n");
        let _ = writeln!(
            out,
            "berth_http_sent_bytes_total {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        if let Some(n) = uploads_in_progress {
            out.push_str("# HELP berth_uploads_in_progress Blob upload sessions open.\n");
            out.push_str("# TYPE berth_uploads_in_progress gauge\n");
            let _ = writeln!(out, "berth_uploads_in_progress {n}");
        }
        out
    }
}

/// Middleware: count bytes through request and response bodies, and record
/// each request by the endpoint kind its handler reported.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    // A request without a body (most reads) is passed on as it is.
    let req = if http_body::Body::size_hint(req.body()).exact() == Some(0) {
        req
    } else {
        let (parts, body) = req.into_parts();
        let m = metrics.clone();
        let body = Body::from_stream(body.into_data_stream().inspect(move |chunk| {
            if let Ok(b) = chunk {
                m.bytes_in.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
        }));
        Request::from_parts(parts, body)
    };
    let response = next.run(req).await;
    let kind = response
        .extensions()
        .get::<EndpointKind>()
        .map(|k| k.0)
        .unwrap_or("other");
    metrics.observe(
        kind,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    let (parts, body) = response.into_parts();
    // Bodies of known size are counted at once and keep their size hint;
    // streams (blob downloads) are counted as they flow.
    if let Some(n) = http_body::Body::size_hint(&body).exact() {
        metrics.bytes_out.fetch_add(n, Ordering::Relaxed);
        return Response::from_parts(parts, body);
    }
    let m = metrics.clone();
    let body = Body::from_stream(body.into_data_stream().inspect(move |chunk| {
        if let Ok(b) = chunk {
            m.bytes_out.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
    }));
    Response::from_parts(parts, body)
}

/// The pull policies' counters.
pub fn render_pull_policies(stats: &berth_core::pull_policy::PullPolicyStats) -> String {
    use std::sync::atomic::Ordering;
    let mut out = String::new();
    for (name, help, value) in [
        (
            "berth_pull_denied_total",
            "Manifest pulls refused by an enforced pull policy.",
            stats.denied.load(Ordering::Relaxed),
        ),
        (
            "berth_pull_unverified_total",
            "Manifest pulls served that an audited pull policy found unsatisfied.",
            stats.unverified.load(Ordering::Relaxed),
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    }
    out
}

/// The read cache's counters.
pub fn render_read_cache(stats: &berth_core::read_cache::CacheStats) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in [
        (
            "berth_read_cache_hits_total",
            "counter",
            "Reads answered from memory.",
            stats.hits,
        ),
        (
            "berth_read_cache_misses_total",
            "counter",
            "Reads that asked the database.",
            stats.misses,
        ),
        (
            "berth_read_cache_feed_losses_total",
            "counter",
            "Times the change feed was lost and the read cache dropped.",
            stats.feed_losses,
        ),
        (
            "berth_read_cache_bytes",
            "gauge",
            "Bytes the read cache holds.",
            stats.bytes,
        ),
        (
            "berth_read_cache_enabled",
            "gauge",
            "1 while the change feed is connected and the read cache on.",
            u64::from(stats.enabled),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    out
}

/// The platform's metrics: jobs per region and state (from the database,
/// so every node reports the same backlog), and what this node moved
/// between regions.
pub fn render_platform(stats: &berth_core::PlatformStats, jobs: &[berth_meta::JobCount]) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    out.push_str("# HELP berth_jobs Jobs in the queue by region and state.\n");
    out.push_str("# TYPE berth_jobs gauge\n");
    for j in jobs {
        let _ = writeln!(
            out,
            "berth_jobs{{region=\"{}\",state=\"{}\"}} {}",
            j.region.as_deref().unwrap_or("any"),
            j.state,
            j.count
        );
    }
    for (name, help, value) in [
        (
            "berth_replication_bytes_copied_total",
            "Bytes this node copied between regions.",
            stats.bytes_copied.load(Relaxed),
        ),
        (
            "berth_replication_blobs_copied_total",
            "Blobs this node copied between regions.",
            stats.blobs_copied.load(Relaxed),
        ),
        (
            "berth_on_demand_fetches_total",
            "Pulls of a blob this region did not hold yet, fetched from another region.",
            stats.on_demand_fetches.load(Relaxed),
        ),
        (
            "berth_webhook_deliveries_total",
            "Webhook deliveries this node made that their receiver took.",
            stats.webhooks_delivered.load(Relaxed),
        ),
        (
            "berth_webhook_failed_attempts_total",
            "Webhook delivery attempts that failed (each retry counts).",
            stats.webhook_attempts_failed.load(Relaxed),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    out.push_str(
        "# HELP berth_replication_lag_seconds From a push to the image being whole in a region.\n",
    );
    out.push_str("# TYPE berth_replication_lag_seconds histogram\n");
    for (region, h) in stats.lag() {
        let mut cumulative = 0;
        for (i, bound) in berth_core::LAG_BUCKETS.iter().enumerate() {
            cumulative += h.buckets[i];
            let _ = writeln!(
                out,
                "berth_replication_lag_seconds_bucket{{region=\"{region}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "berth_replication_lag_seconds_bucket{{region=\"{region}\",le=\"+Inf\"}} {}\nberth_replication_lag_seconds_sum{{region=\"{region}\"}} {}\nberth_replication_lag_seconds_count{{region=\"{region}\"}} {}",
            h.count(),
            h.sum,
            h.count()
        );
    }
    out
}

/// The latest finished integrity check: when it ended and what it found.
pub fn render_integrity(run: &berth_meta::integrity::IntegrityRun) -> String {
    let c = &run.counts;
    let mut out = String::from(
        "# HELP berth_integrity_problems Problems the latest finished integrity check found.\n\
         # TYPE berth_integrity_problems gauge\n",
    );
    for (kind, n) in [
        ("damaged", c.damaged),
        ("missing", c.missing),
        ("dangling", c.dangling),
        ("orphan", c.orphans),
    ] {
        out.push_str(&format!(
            "berth_integrity_problems{{kind=\"{kind}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP berth_integrity_repaired Blobs the latest finished integrity check repaired.\n\
         # TYPE berth_integrity_repaired gauge\nberth_integrity_repaired {}\n\
         # HELP berth_integrity_last_check_timestamp_seconds When the latest integrity check ended.\n\
         # TYPE berth_integrity_last_check_timestamp_seconds gauge\n\
         berth_integrity_last_check_timestamp_seconds {}\n",
        c.repaired,
        run.finished_at.unwrap_or(run.updated_at) / 1000
    ));
    out
}
