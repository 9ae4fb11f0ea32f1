//! The client: one registry, reached with its options; every operation of
//! the Distribution protocol Berth needs, authenticated as the registry
//! asks and bounded as `guard` says.

use std::time::Duration;

use berth_oci::{Algorithm, Digest};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode, Url};

use crate::auth::{Authenticator, Credentials};
use crate::error::{chain, ClientError, Result};
use crate::guard::{read_bounded, read_prefix, redirect_policy, same_origin, MAX_ERROR_BYTES};
use crate::wire::*;

/// Most bytes of a manifest read (Berth's own default limit).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Most bytes of one page of a tag list or catalog, or a referrers index.
const MAX_LIST_BYTES: usize = 16 << 20;

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Credentials for Basic or the token flow.
    pub credentials: Option<Credentials>,
    /// A CA certificate (PEM) to trust besides the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// Accept any certificate (for tests and lab registries only).
    pub insecure_skip_verify: bool,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// How long the server may stay silent mid-request.
    pub read_timeout: Duration,
    /// A token service on another host that may receive the credentials
    /// (a URL prefix, such as `https://auth.docker.io/token`). Without it,
    /// credentials go only to the registry's own host.
    pub token_realm: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            credentials: None,
            ca_pem: None,
            insecure_skip_verify: false,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            token_realm: None,
        }
    }
}

/// A manifest as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Its digest (of the bytes).
    pub digest: Digest,
    /// Its media type (the Content-Type).
    pub media_type: String,
    /// The exact bytes.
    pub bytes: Bytes,
}

/// What a HEAD of a manifest tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// Digest.
    pub digest: Digest,
    /// Media type.
    pub media_type: String,
    /// Bytes.
    pub size: u64,
}

/// A blob being read, from `offset` to its end.
#[derive(Debug)]
pub struct BlobRead {
    /// Where the bytes start.
    pub offset: u64,
    /// The blob's full size, when the registry said it.
    pub size: Option<u64>,
    response: reqwest::Response,
}

impl BlobRead {
    /// The bytes, as they arrive.
    pub fn stream(self) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
        self.response
            .bytes_stream()
            .map_err(|e| ClientError::Transport(chain(&e)))
    }
}

/// An upload session on the remote registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Where to send the next request (absolute).
    pub location: Url,
}

/// How a mount ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// The blob is linked into the repository.
    Mounted,
    /// The registry opened an upload instead.
    Upload(Upload),
}

/// A client of one registry.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    base: Url,
    auth: Authenticator,
}

impl RegistryClient {
    /// A client of the registry at `url` (`https://host[:port]`).
    pub fn new(url: &str, options: ClientOptions) -> Result<Self> {
        let mut base = Url::parse(url).map_err(|e| ClientError::Url(format!("{url}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(ClientError::Url(format!(
                "{url}: use http:// or https:// with a host"
            )));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .redirect(redirect_policy(base.clone()));
        if let Some(pem) = &options.ca_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| ClientError::Tls(format!("CA certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        if options.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(realm) = &options.token_realm {
            let u = Url::parse(realm)
                .map_err(|e| ClientError::Url(format!("token realm {realm}: {e}")))?;
            if u.scheme() != "https" && !(u.scheme() == "http" && base.scheme() == "http") {
                return Err(ClientError::Url(format!(
                    "token realm {realm}: use https:// (http:// only for a registry on http://)"
                )));
            }
        }
        let http = builder.build().map_err(|e| ClientError::Tls(chain(&e)))?;
        Ok(RegistryClient {
            auth: Authenticator::new(
                http.clone(),
                options.credentials,
                base.clone(),
                options.token_realm,
            ),
            http,
            base,
        })
    }

    /// The registry's URL.
    pub fn url(&self) -> &Url {
        &self.base
    }

    fn url_of(&self, path: &str) -> Result<Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ClientError::Url(format!("{path}: {e}")))
    }

    /// Send a request without a body, authenticating as the registry asks
    /// (one retry after a challenge).
    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        scope: &str,
    ) -> Result<reqwest::Response> {
        // Credentials (and tokens for them) go to the registry's own origin
        // only, whatever URL it names.
        let ours = same_origin(&url, &self.base);
        let build = |auth: Option<header::HeaderValue>| {
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(a) = auth.filter(|_| ours) {
                req = req.header(header::AUTHORIZATION, a);
            }
            req
        };
        let first = build(self.auth.header(scope))
            .send()
            .await
            .map_err(|e| ClientError::Transport(chain(&e)))?;
        if first.status() != StatusCode::UNAUTHORIZED || !ours {
            return Ok(first);
        }
        let challenge = first
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let auth = self.auth.answer(&challenge, scope).await?;
        let second = build(Some(auth))
            .send()
            .await
            .map_err(|e| ClientError::Transport(chain(&e)))?;
        if second.status() == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized(error_message(second).await));
        }
        Ok(second)
    }

    /// Send a request with a streamed body, authenticated beforehand (a
    /// stream cannot be sent twice).
    async fn send_body(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        scope: &str,
        body: reqwest::Body,
    ) -> Result<reqwest::Response> {
        let ours = same_origin(&url, &self.base);
        let mut req = self.http.request(method, url).headers(headers).body(body);
        if let Some(a) = self.auth.header(scope).filter(|_| ours) {
            req = req.header(header::AUTHORIZATION, a);
        }
        let r = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(chain(&e)))?;
        if r.status() == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized(error_message(r).await));
        }
        Ok(r)
    }

    /// Check that the registry answers and accepts the credentials
    /// (`GET /v2/`).
    pub async fn ping(&self) -> Result<()> {
        let r = self
            .send(Method::GET, self.url_of("v2/")?, HeaderMap::new(), "")
            .await?;
        expect(r, &[StatusCode::OK]).await.map(drop)
    }

    /// A manifest by tag or digest; `None` when the registry has no such
    /// manifest. A digest reference is checked against the bytes.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<Option<Manifest>> {
        let r = self
            .send(
                Method::GET,
                self.url_of(&format!("v2/{repo}/manifests/{reference}"))?,
                accept_manifests(),
                &pull_scope(repo),
            )
            .await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let r = expect(r, &[StatusCode::OK]).await?;
        let media_type = content_type(r.headers());
        let bytes = read_bounded(r, MAX_MANIFEST_BYTES, "a manifest").await?;
        let digest = match reference.parse::<Digest>() {
            Ok(expected) => {
                let actual = Digest::of_bytes(expected.algorithm(), &bytes);
                if actual != expected {
                    return Err(ClientError::DigestMismatch {
                        expected: expected.to_string(),
                        actual: actual.to_string(),
                    });
                }
                actual
            }
            Err(_) => Digest::of_bytes(Algorithm::Sha256, &bytes),
        };
        Ok(Some(Manifest {
            digest,
            media_type,
            bytes,
        }))
    }

    /// What a tag or digest points at, without the body; `None` when
    /// absent.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<ManifestHead>> {
        let r = self
            .send(
                Method::HEAD,
                self.url_of(&format!("v2/{repo}/manifests/{reference}"))?,
                accept_manifests(),
                &pull_scope(repo),
            )
            .await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let r = expect(r, &[StatusCode::OK]).await?;
        let digest = r
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<Digest>().ok())
            .ok_or_else(|| {
                ClientError::Protocol("a manifest HEAD without Docker-Content-Digest".into())
            })?;
        Ok(Some(ManifestHead {
            digest,
            media_type: content_type(r.headers()),
            size: content_length(r.headers()).unwrap_or(0),
        }))
    }

    /// Store a manifest under a tag or its digest. Returns its digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest> {
        let scope = push_scope(repo);
        let url = self.url_of(&format!("v2/{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, header_value(media_type)?);
        self.authorize(&scope).await?;
        let r = self
            .send_body(Method::PUT, url, headers, &scope, bytes.clone().into())
            .await?;
        expect(r, &[StatusCode::CREATED, StatusCode::OK]).await?;
        Ok(Digest::of_bytes(Algorithm::Sha256, &bytes))
    }

    /// A blob's size, or `None` when the repository does not have it.
    pub async fn blob_size(&self, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        let r = self
            .send(
                Method::HEAD,
                self.url_of(&format!("v2/{repo}/blobs/{digest}"))?,
                HeaderMap::new(),
                &pull_scope(repo),
            )
            .await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let r = expect(r, &[StatusCode::OK]).await?;
        Ok(content_length(r.headers()))
    }

    /// `GET` a blob, with a `Range` header when given one.
    async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        range: Option<String>,
    ) -> Result<reqwest::Response> {
        let mut headers = HeaderMap::new();
        if let Some(range) = range {
            headers.insert(header::RANGE, header_value(&range)?);
        }
        self.send(
            Method::GET,
            self.url_of(&format!("v2/{repo}/blobs/{digest}"))?,
            headers,
            &pull_scope(repo),
        )
        .await
    }

    /// Read a blob from `offset` on (a `Range` request past 0).
    pub async fn blob(&self, repo: &str, digest: &Digest, offset: u64) -> Result<BlobRead> {
        let range = (offset > 0).then(|| format!("bytes={offset}-"));
        let r = self.get_blob(repo, digest, range).await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Err(ClientError::Status {
                status: 404,
                message: format!("blob {digest} is not in {repo}"),
            });
        }
        let r = expect(r, &[StatusCode::OK, StatusCode::PARTIAL_CONTENT]).await?;
        let (start, size) = if r.status() == StatusCode::PARTIAL_CONTENT {
            content_range(r.headers())
                .ok_or_else(|| ClientError::Protocol("206 without a valid Content-Range".into()))?
        } else {
            // A server that ignores Range sends it all.
            (0, content_length(r.headers()))
        };
        if offset > 0 && start != offset {
            return Err(ClientError::Protocol(format!(
                "asked for bytes from {offset}, got them from {start}"
            )));
        }
        Ok(BlobRead {
            offset: start,
            size,
            response: r,
        })
    }

    /// The bytes `offset..offset + len` of a blob, read with one `Range`
    /// request: `None` when the repository does not have the blob, or when
    /// the registry ignores ranges (it then sent the whole blob, which is
    /// not read).
    pub async fn blob_sample(
        &self,
        repo: &str,
        digest: &Digest,
        offset: u64,
        len: u64,
    ) -> Result<Option<Bytes>> {
        if len == 0 {
            return Ok(Some(Bytes::new()));
        }
        let end = offset + len - 1;
        let r = self
            .get_blob(repo, digest, Some(format!("bytes={offset}-{end}")))
            .await?;
        // Not found, or the whole blob (a registry that ignores ranges).
        if matches!(r.status(), StatusCode::NOT_FOUND | StatusCode::OK) {
            return Ok(None);
        }
        let r = expect(r, &[StatusCode::PARTIAL_CONTENT]).await?;
        if content_range(r.headers()).map(|(start, _)| start) != Some(offset) {
            return Ok(None);
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        Ok(Some(read_bounded(r, len, "a ranged read of a blob").await?))
    }

    /// Get a token for `scope` now if the registry wants one, so that a
    /// streamed body goes out authenticated the first time.
    async fn authorize(&self, scope: &str) -> Result<()> {
        if self.auth.header(scope).is_some() {
            return Ok(());
        }
        let r = self
            .send(Method::GET, self.url_of("v2/")?, HeaderMap::new(), scope)
            .await?;
        expect(r, &[StatusCode::OK]).await.map(drop)
    }

    /// Link a blob the registry holds in `from` into `repo` without
    /// sending it; a registry that cannot mounts opens an upload instead.
    pub async fn mount(&self, repo: &str, digest: &Digest, from: &str) -> Result<Mount> {
        let scope = format!("repository:{repo}:pull,push repository:{from}:pull");
        let url = self.url_of(&format!(
            "v2/{repo}/blobs/uploads/?mount={digest}&from={from}"
        ))?;
        let r = self
            .send(Method::POST, url, HeaderMap::new(), &scope)
            .await?;
        let r = expect(r, &[StatusCode::CREATED, StatusCode::ACCEPTED]).await?;
        if r.status() == StatusCode::CREATED {
            return Ok(Mount::Mounted);
        }
        Ok(Mount::Upload(Upload {
            location: self.location(r.headers())?,
        }))
    }

    /// Open an upload session.
    pub async fn start_upload(&self, repo: &str) -> Result<Upload> {
        let url = self.url_of(&format!("v2/{repo}/blobs/uploads/"))?;
        let r = self
            .send(Method::POST, url, HeaderMap::new(), &push_scope(repo))
            .await?;
        let r = expect(r, &[StatusCode::ACCEPTED]).await?;
        Ok(Upload {
            location: self.location(r.headers())?,
        })
    }

    /// How many bytes of an upload the registry holds (where a chunk must
    /// start).
    pub async fn upload_offset(&self, repo: &str, upload: &Upload) -> Result<u64> {
        let r = self
            .send(
                Method::GET,
                upload.location.clone(),
                HeaderMap::new(),
                &push_scope(repo),
            )
            .await?;
        let r = expect(r, &[StatusCode::NO_CONTENT, StatusCode::OK]).await?;
        // `Range: 0-N` holds N+1 bytes; none or `0-0` may mean empty.
        let range = r
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        match range.rsplit_once('-') {
            Some((start, end)) if start.trim_start_matches("bytes=") == "0" => end
                .parse::<u64>()
                .map(|e| e + 1)
                .map_err(|_| ClientError::Protocol(format!("upload Range {range:?}"))),
            _ => Ok(0),
        }
    }

    /// Send one chunk of `len` bytes at `offset`. Returns the session's
    /// next location.
    pub async fn upload_chunk<S>(
        &self,
        repo: &str,
        upload: &Upload,
        offset: u64,
        len: u64,
        body: S,
    ) -> Result<Upload>
    where
        S: Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let scope = push_scope(repo);
        self.authorize(&scope).await?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, header_value(&len.to_string())?);
        if len > 0 {
            headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("{offset}-{}", offset + len - 1))?,
            );
        }
        let r = self
            .send_body(
                Method::PATCH,
                upload.location.clone(),
                headers,
                &scope,
                reqwest::Body::wrap_stream(body),
            )
            .await?;
        let r = expect(r, &[StatusCode::ACCEPTED, StatusCode::NO_CONTENT]).await?;
        Ok(Upload {
            location: self.location(r.headers())?,
        })
    }

    /// Close an upload as `digest` (every byte sent already).
    pub async fn finish_upload(&self, repo: &str, upload: &Upload, digest: &Digest) -> Result<()> {
        let mut url = upload.location.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let r = self
            .send(Method::PUT, url, content_length_zero(), &push_scope(repo))
            .await?;
        expect(r, &[StatusCode::CREATED]).await.map(drop)
    }

    /// Upload a blob of `size` bytes in one streamed request (POST, then
    /// PUT with the body and the digest).
    pub async fn push_blob<S>(&self, repo: &str, digest: &Digest, size: u64, body: S) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let upload = self.start_upload(repo).await?;
        let mut url = upload.location.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, header_value(&size.to_string())?);
        let r = self
            .send_body(
                Method::PUT,
                url,
                headers,
                &push_scope(repo),
                reqwest::Body::wrap_stream(body),
            )
            .await?;
        expect(r, &[StatusCode::CREATED]).await.map(drop)
    }

    /// Every tag of a repository (following `Link` pages); empty when the
    /// repository does not exist.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        let first = format!("v2/{repo}/tags/list?n=1000");
        self.list_pages(&first, &pull_scope(repo), "tags", true)
            .await
    }

    /// Every repository the registry lists (`/v2/_catalog`, following
    /// `Link` pages; registries may list only what the credentials see).
    pub async fn catalog(&self) -> Result<Vec<String>> {
        self.list_pages(
            "v2/_catalog?n=1000",
            "registry:catalog:*",
            "repositories",
            false,
        )
        .await
    }

    /// The names in `field` of a paginated list, every page (`Link`); with
    /// `missing_is_empty`, empty when the first page is not found.
    async fn list_pages(
        &self,
        first: &str,
        scope: &str,
        field: &str,
        missing_is_empty: bool,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut next = Some(self.url_of(first)?);
        while let Some(url) = next.take() {
            let r = self.send(Method::GET, url, HeaderMap::new(), scope).await?;
            if missing_is_empty && r.status() == StatusCode::NOT_FOUND && out.is_empty() {
                return Ok(out);
            }
            let r = expect(r, &[StatusCode::OK]).await?;
            next = link_next(r.headers())
                .map(|l| self.url_of(&l))
                .transpose()?;
            let page: serde_json::Value = serde_json::from_slice(
                &read_bounded(r, MAX_LIST_BYTES, &format!("a page of the {field} list")).await?,
            )
            .map_err(|e| ClientError::Protocol(format!("{field} list: {e}")))?;
            match page.get(field) {
                Some(serde_json::Value::Array(names)) => {
                    for n in names {
                        let name = n.as_str().ok_or_else(|| {
                            ClientError::Protocol(format!("{field} list: {n} is not a name"))
                        })?;
                        out.push(name.to_owned());
                    }
                }
                None | Some(serde_json::Value::Null) => {}
                Some(other) => {
                    return Err(ClientError::Protocol(format!(
                        "{field} list: {other} is not a list"
                    )))
                }
            }
        }
        Ok(out)
    }

    /// The digests of the manifests that refer to `digest` (the referrers
    /// API); empty when the registry does not offer that API.
    pub async fn referrers(&self, repo: &str, digest: &Digest) -> Result<Vec<Digest>> {
        let url = self.url_of(&format!("v2/{repo}/referrers/{digest}"))?;
        let r = self
            .send(Method::GET, url, HeaderMap::new(), &pull_scope(repo))
            .await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        let r = expect(r, &[StatusCode::OK]).await?;
        #[derive(serde::Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        #[derive(serde::Deserialize)]
        struct Descriptor {
            digest: String,
        }
        let index: Index =
            serde_json::from_slice(&read_bounded(r, MAX_LIST_BYTES, "a referrers index").await?)
                .map_err(|e| ClientError::Protocol(format!("referrers: {e}")))?;
        index
            .manifests
            .into_iter()
            .map(|d| {
                d.digest
                    .parse()
                    .map_err(|_| ClientError::Protocol(format!("referrer digest {:?}", d.digest)))
            })
            .collect()
    }

    /// Delete a manifest by tag or digest. Returns false when the
    /// registry does not have it.
    pub async fn delete_manifest(&self, repo: &str, reference: &str) -> Result<bool> {
        let url = self.url_of(&format!("v2/{repo}/manifests/{reference}"))?;
        let r = self
            .send(Method::DELETE, url, HeaderMap::new(), &delete_scope(repo))
            .await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        expect(
            r,
            &[StatusCode::ACCEPTED, StatusCode::OK, StatusCode::NO_CONTENT],
        )
        .await
        .map(|_| true)
    }

    fn location(&self, headers: &HeaderMap) -> Result<Url> {
        let loc = headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Protocol("an upload answer without Location".into()))?;
        self.base
            .join(loc)
            .map_err(|e| ClientError::Url(format!("Location {loc}: {e}")))
    }
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn delete_scope(repo: &str) -> String {
    format!("repository:{repo}:delete")
}

fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// The answer if its status is one of `ok`, else the registry's error.
async fn expect(r: reqwest::Response, ok: &[StatusCode]) -> Result<reqwest::Response> {
    if ok.contains(&r.status()) {
        return Ok(r);
    }
    let status = r.status();
    let message = error_message(r).await;
    Err(match status {
        StatusCode::UNAUTHORIZED => ClientError::Unauthorized(message),
        StatusCode::FORBIDDEN => ClientError::Denied(message),
        s => ClientError::Status {
            status: s.as_u16(),
            message,
        },
    })
}

/// The OCI `errors[]` messages of an answer, or the start of its body.
async fn error_message(r: reqwest::Response) -> String {
    let status = r.status();
    let text = read_prefix(r, MAX_ERROR_BYTES).await;
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<OciError>,
    }
    #[derive(serde::Deserialize)]
    struct OciError {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(e) = serde_json::from_str::<Errors>(&text) {
        let parts: Vec<String> = e
            .errors
            .into_iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.code.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text: String = text.chars().take(200).collect();
    if text.trim().is_empty() {
        status.to_string()
    } else {
        text.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(RegistryClient::new("ftp://x", ClientOptions::default()).is_err());
        assert!(RegistryClient::new("not a url", ClientOptions::default()).is_err());
        let c = RegistryClient::new("http://127.0.0.1:5000", ClientOptions::default()).unwrap();
        assert_eq!(
            c.url_of("v2/a/b/manifests/x").unwrap().as_str(),
            "http://127.0.0.1:5000/v2/a/b/manifests/x"
        );
    }
}
