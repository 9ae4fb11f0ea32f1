//! One handler per endpoint: translate HTTP to registry service calls and
//! service results to the wire.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_blob::ByteStream;
use berth_core::access::Principal;
use berth_core::platform::{Proxy, ProxyNamespace};
use berth_core::{Auth, Chunk, Management, ManifestPush, Registry, RegistryError};
use berth_oci::{Digest, RepoName};
use futures_util::StreamExt;
use serde_json::json;

use crate::endpoint::Endpoint;
use crate::error::{upload_range, OciError};

type Result<T> = std::result::Result<T, OciError>;

/// Largest page of tags or repositories returned at once.
const MAX_PAGE: u64 = 10_000;

/// Read buffers of blob downloads: a download of 4 MiB or more takes up to
/// 1 MiB while the budget lasts (fewer, larger socket writes), counted twice,
/// as the blob store reads the next chunk while one is sent; smaller ones,
/// and any beyond the budget, take 64 KiB, so many concurrent pulls stay
/// within a few MiB (docs/benchmarks.md).
static DOWNLOAD_BUFFERS: BufferBudget = BufferBudget::new(8 << 20, 64 << 10, 1 << 20);

/// A memory budget shared by the read buffers of concurrent downloads.
#[derive(Debug)]
struct BufferBudget {
    reserved: AtomicUsize,
    budget: usize,
    min: usize,
    max: usize,
}

/// One download's share of a [`BufferBudget`], given back when dropped.
#[derive(Debug)]
struct BufferShare<'a> {
    from: &'a BufferBudget,
    size: usize,
    /// What the share holds of the budget: two buffers for a large one.
    held: usize,
}

impl BufferBudget {
    const fn new(budget: usize, min: usize, max: usize) -> Self {
        BufferBudget {
            reserved: AtomicUsize::new(0),
            budget,
            min,
            max,
        }
    }

    /// A buffer for a download of `len` bytes: `max` while the budget lasts
    /// for a download of at least four times that (counted twice: one
    /// buffer being sent, one being filled), `min` otherwise, and never
    /// more than the download.
    fn share(&self, len: u64) -> BufferShare<'_> {
        let len = usize::try_from(len).unwrap_or(usize::MAX).max(1);
        let large = len >= 4 * self.max;
        let (mut size, mut held) = (0, 0);
        let _ = self
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |reserved| {
                let left = self.budget.saturating_sub(reserved);
                (size, held) = if large {
                    let size = (left / 2).clamp(self.min, self.max);
                    (size, 2 * size)
                } else {
                    let size = self.min.min(len);
                    (size, size)
                };
                Some(reserved + held)
            });
        BufferShare {
            from: self,
            size,
            held,
        }
    }
}

impl Drop for BufferShare<'_> {
    fn drop(&mut self) {
        self.from.reserved.fetch_sub(self.held, Ordering::AcqRel);
    }
}

/// A download's body, holding its buffer share until it is dropped.
struct WithShare<S> {
    stream: S,
    _share: Option<BufferShare<'static>>,
}

impl<S: futures_util::Stream + Unpin> futures_util::Stream for WithShare<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        std::pin::Pin::new(&mut self.stream).poll_next(cx)
    }
}

/// Who sent a request, from where, and what their downloads may use.
pub(crate) struct Requester<'a> {
    /// The authorized principal.
    pub principal: &'a Principal,
    /// The client's address, for the audit log.
    pub addr: std::net::IpAddr,
    /// The bandwidth cap of external clients' downloads.
    pub download_cap: Option<u64>,
}

pub(crate) async fn handle(
    management: &Management,
    auth: &Auth,
    proxy: Option<&Proxy>,
    requester: &Requester<'_>,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let registry = management.registry();
    let principal = requester.principal;
    let download_cap = requester.download_cap;
    match endpoint {
        Endpoint::Base => Ok(json_response(
            StatusCode::OK,
            "application/json",
            b"{}".to_vec(),
        )),
        Endpoint::Catalog { n, last } => catalog(registry, auth, principal, n, last).await,
        Endpoint::Tags { repo, n, last } => tags(registry, &repo, n, last).await,
        Endpoint::GetManifest {
            repo,
            reference,
            head,
        } => {
            let m = match proxy.and_then(|p| p.of(&repo).map(|ns| (p, ns))) {
                Some((p, ns)) => p.manifest(ns, &repo, &reference, !head).await?,
                None => registry.get_manifest(&repo, &reference, !head).await?,
            };
            if !head {
                let addr = requester.addr.to_string();
                management
                    .pull_policies()
                    .check_pull(principal, Some(&addr), &repo, &reference, &m)
                    .await?;
            }
            let etag = format!("\"{}\"", m.digest);
            if if_none_match(headers, &etag) {
                return builder(StatusCode::NOT_MODIFIED)
                    .header(header::ETAG, etag)
                    .header("docker-content-digest", m.digest.as_str())
                    .body(Body::empty())
                    .map_err(internal);
            }
            let len = m.content.len();
            // Stored types are JSON manifest types; anything else (stored
            // before that rule) is served as bytes, never as a page.
            let content_type = if berth_oci::is_manifest_media_type(&m.media_type) {
                m.media_type.as_str()
            } else {
                "application/octet-stream"
            };
            Ok(builder(StatusCode::OK)
                .header(header::CONTENT_TYPE, content_type)
                .header(header::CONTENT_LENGTH, len)
                .header("docker-content-digest", m.digest.as_str())
                .header(header::ETAG, etag)
                .body(if head {
                    Body::empty()
                } else {
                    Body::from(m.content.clone())
                })
                .map_err(internal)?)
        }
        Endpoint::PutManifest {
            repo,
            reference,
            tags,
        } => {
            let limit = registry.config().max_manifest_bytes;
            let content = read_limited(headers, body, limit).await?;
            let addr = requester.addr.to_string();
            let pushed = registry
                .put_manifest(ManifestPush {
                    repo: &repo,
                    reference: &reference,
                    content_type: headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok()),
                    body: content,
                    extra_tags: tags.clone(),
                    actor: principal.name(),
                    client_addr: Some(&addr),
                    cached: false,
                })
                .await?;
            let mut b = builder(StatusCode::CREATED)
                .header(
                    header::LOCATION,
                    format!("/v2/{repo}/manifests/{}", pushed.digest),
                )
                .header("docker-content-digest", pushed.digest.as_str());
            if let Some(subject) = &pushed.subject {
                b = b.header("oci-subject", subject.as_str());
            }
            if !tags.is_empty() {
                let names: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
                b = b.header("oci-tag", names.join(", "));
            }
            Ok(b.body(Body::empty()).map_err(internal)?)
        }
        Endpoint::DeleteManifest { repo, reference } => {
            let addr = requester.addr.to_string();
            management
                .delete_manifest(principal, &addr, &repo, &reference)
                .await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Endpoint::GetBlob { repo, digest, head } => {
            let source = match proxy.and_then(|p| p.of(&repo).map(|ns| (p, ns))) {
                Some((p, ns)) => BlobSource::Proxy(p, ns),
                None => BlobSource::Local,
            };
            get_blob(
                registry,
                source,
                &repo,
                &digest,
                head,
                headers,
                download_cap,
            )
            .await
        }
        Endpoint::DeleteBlob { repo, digest } => {
            registry.delete_blob(&repo, &digest).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Endpoint::StartUpload {
            repo,
            digest,
            mount,
            from,
            algorithm,
        } => {
            if let Some(mount) = &mount {
                if let Some(source) = mount_source(registry, auth, principal, mount, from).await? {
                    if registry.mount_blob(&repo, mount, &source).await? {
                        return blob_created(&repo, mount);
                    }
                }
            }
            let upload = registry.start_upload(&repo, algorithm).await?;
            if let Some(digest) = digest {
                // Monolithic upload in a single POST.
                let result = registry
                    .finish_upload(
                        &repo,
                        &upload.id,
                        &digest,
                        Some(Chunk {
                            range: None,
                            length: content_length(headers),
                            body: body_stream(body),
                        }),
                    )
                    .await;
                if result.is_err() {
                    let _ = registry.cancel_upload(&repo, &upload.id).await;
                }
                result?;
                return blob_created(&repo, &digest);
            }
            upload_response(StatusCode::ACCEPTED, &repo, &upload.id, 0)
        }
        Endpoint::UploadStatus { repo, id } => {
            let state = registry.upload_status(&repo, &id).await?;
            upload_response(StatusCode::NO_CONTENT, &repo, &id, state.size)
        }
        Endpoint::UploadChunk { repo, id } => {
            let range = content_range(headers)?;
            check_chunk_length(headers, range)?;
            let state = registry
                .upload_chunk(
                    &repo,
                    &id,
                    Chunk {
                        range,
                        length: content_length(headers),
                        body: body_stream(body),
                    },
                )
                .await
                .map_err(|e| with_location(e, &repo, &id))?;
            upload_response(StatusCode::ACCEPTED, &repo, &id, state.size)
        }
        Endpoint::FinishUpload { repo, id, digest } => {
            let range = content_range(headers)?;
            check_chunk_length(headers, range)?;
            let chunk = has_body(headers).then(|| Chunk {
                range,
                length: content_length(headers),
                body: body_stream(body),
            });
            registry
                .finish_upload(&repo, &id, &digest, chunk)
                .await
                .map_err(|e| with_location(e, &repo, &id))?;
            blob_created(&repo, &digest)
        }
        Endpoint::CancelUpload { repo, id } => {
            registry.cancel_upload(&repo, &id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Endpoint::Referrers {
            repo,
            digest,
            artifact_type,
        } => {
            let index = registry
                .referrers(&repo, &digest, artifact_type.as_deref())
                .await?;
            let mut resp = json_response(StatusCode::OK, berth_oci::media_types::OCI_INDEX, index);
            if artifact_type.is_some() {
                resp.headers_mut().insert(
                    "oci-filters-applied",
                    HeaderValue::from_static("artifactType"),
                );
            }
            Ok(resp)
        }
    }
}

/// A response that could not be built (an invalid header value): logged
/// once here and answered as a 500.
fn internal(e: axum::http::Error) -> OciError {
    tracing::error!(error = %e, "could not build a /v2 response");
    OciError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UNKNOWN",
        "internal server error",
    )
}

/// A repository the caller may pull that holds the blob to mount: `from`
/// when given (and readable), else any readable repository linking it.
/// `None` means no mount: the request becomes a plain upload.
async fn mount_source(
    registry: &Registry,
    auth: &Auth,
    principal: &Principal,
    digest: &Digest,
    from: Option<RepoName>,
) -> Result<Option<RepoName>> {
    let readable = |repo: RepoName| async move {
        match auth.actions(principal, &repo).await {
            Ok(a) if a.pull => Ok(Some(repo)),
            Ok(_) => Ok(None),
            Err(e) => Err(OciError::internal(
                e.fault(),
                &format!("mount access check failed: {e}"),
            )),
        }
    };
    if let Some(from) = from {
        return readable(from).await;
    }
    for name in registry.blob_repositories(digest, 100).await? {
        if let Ok(repo) = RepoName::parse(&name) {
            if let Some(r) = readable(repo).await? {
                return Ok(Some(r));
            }
        }
    }
    Ok(None)
}

fn builder(status: StatusCode) -> axum::http::response::Builder {
    Response::builder().status(status)
}

fn json_response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn blob_created(repo: &RepoName, digest: &Digest) -> Result<Response> {
    builder(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{repo}/blobs/{digest}"))
        .header("docker-content-digest", digest.as_str())
        .body(Body::empty())
        .map_err(internal)
}

fn upload_location(repo: &RepoName, id: &str) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

fn upload_response(status: StatusCode, repo: &RepoName, id: &str, size: u64) -> Result<Response> {
    builder(status)
        .header(header::LOCATION, upload_location(repo, id))
        .header(header::RANGE, upload_range(size))
        .header("docker-upload-uuid", id)
        .body(Body::empty())
        .map_err(internal)
}

/// 416 answers carry the upload's location so the client can resume.
fn with_location(e: RegistryError, repo: &RepoName, id: &str) -> OciError {
    let range_error = matches!(e, RegistryError::UploadRangeMismatch { .. });
    let err = OciError::from(e);
    if range_error {
        err.with_header(header::LOCATION, upload_location(repo, id))
            .with_header("docker-upload-uuid".parse().unwrap_or(header::WARNING), id)
    } else {
        err
    }
}

fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map(|r| r.map_err(io::Error::other)))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn has_body(headers: &HeaderMap) -> bool {
    match content_length(headers) {
        Some(n) => n > 0,
        None => headers.contains_key(header::TRANSFER_ENCODING),
    }
}

/// The chunk's `Content-Range`, if any (see [`crate::wire::content_range`]).
fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(crate::wire::content_range)
        .map(Some)
        .ok_or_else(|| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                "Content-Range must look like <start>-<end>",
            )
        })
}

fn check_chunk_length(headers: &HeaderMap, range: Option<(u64, u64)>) -> Result<()> {
    if let (Some((start, end)), Some(len)) = (range, content_length(headers)) {
        if len != end - start + 1 {
            return Err(OciError::new(
                StatusCode::BAD_REQUEST,
                "SIZE_INVALID",
                format!("Content-Length {len} does not match Content-Range {start}-{end}"),
            ));
        }
    }
    Ok(())
}

/// Read a request body of at most `limit` bytes.
async fn read_limited(headers: &HeaderMap, body: Body, limit: u64) -> Result<Vec<u8>> {
    let too_large = || {
        OciError::from(RegistryError::TooLarge {
            what: "manifest",
            limit,
        })
    };
    if content_length(headers).is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "MANIFEST_INVALID",
                format!("reading the body failed: {e}"),
            )
        })?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The download's `Range`, if any (see [`crate::wire::request_range`]).
fn request_range(headers: &HeaderMap) -> Option<(Option<u64>, Option<u64>)> {
    crate::wire::request_range(headers.get(header::RANGE)?.to_str().ok()?)
}

/// Where a blob read comes from.
enum BlobSource<'a> {
    /// This registry.
    Local,
    /// A proxy namespace: cached, else its upstream.
    Proxy(&'a Proxy, &'a ProxyNamespace),
}

async fn get_blob(
    registry: &Registry,
    source: BlobSource<'_>,
    repo: &RepoName,
    digest: &Digest,
    head: bool,
    headers: &HeaderMap,
    download_cap: Option<u64>,
) -> Result<Response> {
    let etag = format!("\"{digest}\"");
    let base = |status| {
        builder(status)
            .header("docker-content-digest", digest.as_str())
            .header(header::ETAG, etag.as_str())
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_DISPOSITION, "attachment")
    };
    if head {
        let size = match &source {
            BlobSource::Local => registry.blob_size(repo, digest).await?,
            BlobSource::Proxy(p, ns) => p.blob_size(ns, repo, digest).await?,
        };
        return base(StatusCode::OK)
            .header(header::CONTENT_LENGTH, size)
            .body(Body::empty())
            .map_err(internal);
    }
    if if_none_match(headers, &etag) {
        match &source {
            BlobSource::Local => registry.blob_size(repo, digest).await?,
            BlobSource::Proxy(p, ns) => p.blob_size(ns, repo, digest).await?,
        };
        return base(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(internal);
    }
    // Straight from the bucket when storage offers it, except for clients
    // whose downloads are capped (the cap is Berth's to apply).
    let cached = match &source {
        BlobSource::Local => true,
        BlobSource::Proxy(..) => registry
            .meta()
            .repo_blob_size(repo, digest)
            .await
            .map_err(RegistryError::from)?
            .is_some(),
    };
    if download_cap.is_none() && cached {
        if let Some(url) = registry.blob_download_url(repo, digest).await? {
            return builder(StatusCode::TEMPORARY_REDIRECT)
                .header("docker-content-digest", digest.as_str())
                .header(header::LOCATION, url)
                .body(Body::empty())
                .map_err(internal);
        }
    }
    let mut share = None;
    let chunk = |len| {
        if download_cap.is_some() {
            return berth_core::throttle::THROTTLED_BUFFER;
        }
        let taken = DOWNLOAD_BUFFERS.share(len);
        let size = taken.size;
        share = Some(taken);
        size
    };
    let read = match &source {
        BlobSource::Local => {
            registry
                .open_blob(repo, digest, request_range(headers), chunk)
                .await?
        }
        BlobSource::Proxy(p, ns) => {
            p.open_blob(ns, repo, digest, request_range(headers), chunk)
                .await?
        }
    };
    let body = match (download_cap, share) {
        (Some(rate), _) => Body::from_stream(berth_core::throttle::throttled(read.body, rate)),
        (None, share) => Body::from_stream(WithShare {
            stream: read.body,
            _share: share,
        }),
    };
    Ok(match read.range {
        None => base(StatusCode::OK)
            .header(header::CONTENT_LENGTH, read.total)
            .body(body)
            .map_err(internal)?,
        Some((start, end)) => base(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_LENGTH, end - start + 1)
            .header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{}", read.total),
            )
            .body(body)
            .map_err(internal)?,
    })
}

/// Effective page size and the limit to query (one more, to know if a next page exists).
fn page(n: Option<u64>) -> u64 {
    n.unwrap_or(MAX_PAGE).min(MAX_PAGE)
}

fn next_link(path: &str, n: u64, last: &str) -> String {
    let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
    format!("<{path}?n={n}&last={last}>; rel=\"next\"")
}

fn paged_json(
    mut items: Vec<String>,
    n: u64,
    path: &str,
    make: impl FnOnce(Vec<String>) -> serde_json::Value,
) -> Response {
    let more = items.len() as u64 > n;
    items.truncate(n as usize);
    let link = (more && n > 0)
        .then(|| items.last().map(|l| next_link(path, n, l)))
        .flatten();
    let mut resp = json_response(
        StatusCode::OK,
        "application/json",
        make(items).to_string().into_bytes(),
    );
    if let Some(link) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::LINK, link);
    }
    resp
}

async fn tags(
    registry: &Registry,
    repo: &RepoName,
    n: Option<u64>,
    last: Option<String>,
) -> Result<Response> {
    let n = page(n);
    let items = registry
        .list_tags(repo, last.as_deref(), n as i64 + 1)
        .await?;
    let name = repo.to_string();
    Ok(paged_json(
        items,
        n,
        &format!("/v2/{repo}/tags/list"),
        |tags| json!({ "name": name, "tags": tags }),
    ))
}

/// The catalog lists only what the caller can pull, chosen by the
/// database: a page costs one query, however little the caller sees.
async fn catalog(
    registry: &Registry,
    auth: &Auth,
    principal: &Principal,
    n: Option<u64>,
    last: Option<String>,
) -> Result<Response> {
    let n = page(n);
    let platform = auth.directory().config().platform_namespace.as_str();
    let items = registry
        .visible_catalog(principal, platform, last.as_deref(), n as i64 + 1)
        .await?;
    Ok(paged_json(
        items,
        n,
        "/v2/_catalog",
        |repos| json!({ "repositories": repos }),
    ))
}

#[cfg(test)]
mod tests {
    use super::BufferBudget;

    #[test]
    fn download_buffers_are_large_while_the_budget_lasts_then_small() {
        let budget = BufferBudget::new(6 << 20, 64 << 10, 1 << 20);
        let a = budget.share(100 << 20);
        let b = budget.share(100 << 20);
        assert_eq!((a.size, b.size), (1 << 20, 1 << 20));
        assert_eq!(a.held, 2 << 20, "a large download holds two buffers");
        // Never more than the download itself, and small downloads small.
        let tiny = budget.share(500);
        assert_eq!((tiny.size, tiny.held), (500, 500));
        assert_eq!(budget.share(1_000_000).size, 64 << 10);
        let c = budget.share(100 << 20);
        assert_eq!(c.size, (1 << 20) - 250);
        let d = budget.share(100 << 20);
        assert_eq!(d.size, 64 << 10, "beyond the budget: the minimum");
        drop((a, tiny, d));
        let e = budget.share(100 << 20);
        assert_eq!(e.size, 1 << 20, "shares come back when dropped");
        drop((b, c, e));
        assert_eq!(
            budget.reserved.load(std::sync::atomic::Ordering::Acquire),
            0
        );
        assert_eq!(budget.share(0).size, 1, "an empty range still reads");
    }
}
