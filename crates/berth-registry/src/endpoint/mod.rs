//! Typed routing: every /v2 request is parsed into an [`Endpoint`] that says
//! what it is and what access it needs, before any handler runs.
//!
//! Repository names may contain slashes, so paths are read from the end: the
//! trailing keywords (`manifests/<ref>`, `blobs/<digest>`, `blobs/uploads/…`,
//! `tags/list`, `referrers/<digest>`) decide the endpoint and everything
//! before them is the name.

use axum::http::Method;
use berth_oci::{Algorithm, Digest, DigestError, NameError, Reference, RepoName, Tag};

/// What a caller must be allowed to do on a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read manifests, blobs and tags.
    Pull,
    /// Write blobs, manifests and tags.
    Push,
    /// Delete manifests, tags and blobs.
    Delete,
}

/// The access an endpoint needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// None beyond reaching the registry (`GET /v2/`).
    Base,
    /// Listing the whole catalog.
    Catalog,
    /// Actions on repositories.
    Repository(Vec<(RepoName, Action)>),
}

/// A parsed /v2 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /v2/`.
    Base,
    /// `GET /v2/_catalog`.
    Catalog {
        /// Page size.
        n: Option<u64>,
        /// Last name of the previous page.
        last: Option<String>,
    },
    /// `GET /v2/<name>/tags/list`.
    Tags {
        /// Repository.
        repo: RepoName,
        /// Page size.
        n: Option<u64>,
        /// Last tag of the previous page.
        last: Option<String>,
    },
    /// `GET`/`HEAD /v2/<name>/manifests/<reference>`.
    GetManifest {
        /// Repository.
        repo: RepoName,
        /// Tag or digest.
        reference: Reference,
        /// HEAD rather than GET.
        head: bool,
    },
    /// `PUT /v2/<name>/manifests/<reference>[?tag=…]`.
    PutManifest {
        /// Repository.
        repo: RepoName,
        /// Tag or digest.
        reference: Reference,
        /// Extra tags from `?tag=`.
        tags: Vec<Tag>,
    },
    /// `DELETE /v2/<name>/manifests/<reference>`.
    DeleteManifest {
        /// Repository.
        repo: RepoName,
        /// Tag (deletes the tag) or digest (deletes the manifest).
        reference: Reference,
    },
    /// `GET`/`HEAD /v2/<name>/blobs/<digest>`.
    GetBlob {
        /// Repository.
        repo: RepoName,
        /// Blob digest.
        digest: Digest,
        /// HEAD rather than GET.
        head: bool,
    },
    /// `DELETE /v2/<name>/blobs/<digest>`.
    DeleteBlob {
        /// Repository.
        repo: RepoName,
        /// Blob digest.
        digest: Digest,
    },
    /// `POST /v2/<name>/blobs/uploads/` with its variants.
    StartUpload {
        /// Repository.
        repo: RepoName,
        /// `?digest=`: a monolithic upload in this one request.
        digest: Option<Digest>,
        /// `?mount=`: a blob to mount.
        mount: Option<Digest>,
        /// `?from=`: where to mount from.
        from: Option<RepoName>,
        /// `?digest-algorithm=`.
        algorithm: Algorithm,
    },
    /// `GET /v2/<name>/blobs/uploads/<id>`.
    UploadStatus {
        /// Repository.
        repo: RepoName,
        /// Session id.
        id: String,
    },
    /// `PATCH /v2/<name>/blobs/uploads/<id>`.
    UploadChunk {
        /// Repository.
        repo: RepoName,
        /// Session id.
        id: String,
    },
    /// `PUT /v2/<name>/blobs/uploads/<id>?digest=`.
    FinishUpload {
        /// Repository.
        repo: RepoName,
        /// Session id.
        id: String,
        /// Digest of the whole blob.
        digest: Digest,
    },
    /// `DELETE /v2/<name>/blobs/uploads/<id>`.
    CancelUpload {
        /// Repository.
        repo: RepoName,
        /// Session id.
        id: String,
    },
    /// `GET /v2/<name>/referrers/<digest>[?artifactType=]`.
    Referrers {
        /// Repository.
        repo: RepoName,
        /// Subject digest.
        digest: Digest,
        /// Filter.
        artifact_type: Option<String>,
    },
}

/// Why a request did not parse into an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No endpoint has this shape.
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// The path exists but not for this method.
    #[error("method {method} is not allowed here (allowed: {allowed})")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// Repository name grammar.
    #[error(transparent)]
    Name(NameError),
    /// A reference that is neither a valid tag nor a valid digest.
    #[error(transparent)]
    Reference(NameError),
    /// A digest that does not parse.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// A query parameter is malformed.
    #[error("{0}")]
    Query(String),
}

impl Endpoint {
    /// Every [`Endpoint::kind`], for tests that must cover every endpoint.
    pub const KINDS: &'static [&'static str] = &[
        "base",
        "catalog",
        "tags_list",
        "manifest_get",
        "manifest_head",
        "manifest_put",
        "manifest_delete",
        "blob_get",
        "blob_head",
        "blob_delete",
        "upload_start",
        "upload_status",
        "upload_chunk",
        "upload_finish",
        "upload_cancel",
        "referrers",
    ];

    /// A short, stable label for metrics and logs (one of [`Endpoint::KINDS`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Endpoint::Base => "base",
            Endpoint::Catalog { .. } => "catalog",
            Endpoint::Tags { .. } => "tags_list",
            Endpoint::GetManifest { head: false, .. } => "manifest_get",
            Endpoint::GetManifest { head: true, .. } => "manifest_head",
            Endpoint::PutManifest { .. } => "manifest_put",
            Endpoint::DeleteManifest { .. } => "manifest_delete",
            Endpoint::GetBlob { head: false, .. } => "blob_get",
            Endpoint::GetBlob { head: true, .. } => "blob_head",
            Endpoint::DeleteBlob { .. } => "blob_delete",
            Endpoint::StartUpload { .. } => "upload_start",
            Endpoint::UploadStatus { .. } => "upload_status",
            Endpoint::UploadChunk { .. } => "upload_chunk",
            Endpoint::FinishUpload { .. } => "upload_finish",
            Endpoint::CancelUpload { .. } => "upload_cancel",
            Endpoint::Referrers { .. } => "referrers",
        }
    }

    /// The repository the request is about, if any (to rewrite it).
    pub fn repo_mut(&mut self) -> Option<&mut RepoName> {
        match self {
            Endpoint::Base | Endpoint::Catalog { .. } => None,
            Endpoint::Tags { repo, .. }
            | Endpoint::GetManifest { repo, .. }
            | Endpoint::PutManifest { repo, .. }
            | Endpoint::DeleteManifest { repo, .. }
            | Endpoint::GetBlob { repo, .. }
            | Endpoint::DeleteBlob { repo, .. }
            | Endpoint::StartUpload { repo, .. }
            | Endpoint::UploadStatus { repo, .. }
            | Endpoint::UploadChunk { repo, .. }
            | Endpoint::FinishUpload { repo, .. }
            | Endpoint::CancelUpload { repo, .. }
            | Endpoint::Referrers { repo, .. } => Some(repo),
        }
    }

    /// The access this request needs.
    pub fn access(&self) -> Access {
        use Action::*;
        let one = |repo: &RepoName, a| Access::Repository(vec![(repo.clone(), a)]);
        match self {
            Endpoint::Base => Access::Base,
            Endpoint::Catalog { .. } => Access::Catalog,
            Endpoint::Tags { repo, .. }
            | Endpoint::GetManifest { repo, .. }
            | Endpoint::GetBlob { repo, .. }
            | Endpoint::Referrers { repo, .. } => one(repo, Pull),
            Endpoint::PutManifest { repo, .. }
            | Endpoint::UploadStatus { repo, .. }
            | Endpoint::UploadChunk { repo, .. }
            | Endpoint::FinishUpload { repo, .. }
            | Endpoint::CancelUpload { repo, .. } => one(repo, Push),
            // A mount needs only push on the target: without pull on its
            // source it becomes a plain upload (see `wanted`).
            Endpoint::StartUpload { repo, .. } => one(repo, Push),
            Endpoint::DeleteManifest { repo, .. } | Endpoint::DeleteBlob { repo, .. } => {
                one(repo, Delete)
            }
        }
    }

    /// Every scope a client should ask for to make this request in full:
    /// what [`Endpoint::access`] needs, plus pull on a mount's source, which
    /// the request does without (it then uploads instead of mounting).
    /// A 401 challenge names all of them, so one token suffices.
    pub fn wanted(&self) -> Vec<(RepoName, Action)> {
        let mut wanted = match self.access() {
            Access::Repository(needed) => needed,
            Access::Base | Access::Catalog => Vec::new(),
        };
        if let Endpoint::StartUpload {
            from: Some(from),
            mount: Some(_),
            ..
        } = self
        {
            wanted.push((from.clone(), Action::Pull));
        }
        wanted
    }

    /// Parse a request. `path` is the percent-decoded path starting with
    /// `/v2`; `query` the raw query string.
    pub fn parse(method: &Method, path: &str, query: Option<&str>) -> Result<Endpoint, RouteError> {
        let q = Query::parse(query.unwrap_or(""));
        let rest = path
            .strip_prefix("/v2")
            .ok_or_else(|| RouteError::NotFound(path.to_owned()))?;
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        if rest.is_empty() {
            return only(method, "GET, HEAD", &[Method::GET, Method::HEAD]).map(|_| Endpoint::Base);
        }
        if rest == "_catalog" || rest == "_catalog/" {
            only(method, "GET", &[Method::GET])?;
            return Ok(Endpoint::Catalog {
                n: q.n()?,
                last: q.get("last").map(str::to_owned),
            });
        }
        let segs: Vec<&str> = rest.split('/').collect();
        let len = segs.len();
        let name_of = |keyword_at: usize| -> Result<RepoName, RouteError> {
            RepoName::parse(&segs[..keyword_at].join("/")).map_err(RouteError::Name)
        };
        let not_found = || RouteError::NotFound(path.to_owned());

        // <name>/tags/list
        if len >= 3 && segs[len - 2] == "tags" && segs[len - 1] == "list" {
            only(method, "GET", &[Method::GET])?;
            return Ok(Endpoint::Tags {
                repo: name_of(len - 2)?,
                n: q.n()?,
                last: q.get("last").map(str::to_owned),
            });
        }
        // <name>/blobs/uploads/ and <name>/blobs/uploads/<id>
        let upload_start = (len >= 3 && segs[len - 2] == "blobs" && segs[len - 1] == "uploads")
            .then(|| len - 2)
            .or_else(|| {
                (len >= 4
                    && segs[len - 3] == "blobs"
                    && segs[len - 2] == "uploads"
                    && segs[len - 1].is_empty())
                .then(|| len - 3)
            });
        if let Some(at) = upload_start {
            only(method, "POST", &[Method::POST])?;
            let repo = name_of(at)?;
            let algorithm = match q.get("digest-algorithm") {
                None => Algorithm::Sha256,
                Some(a) => Algorithm::parse(a)?,
            };
            return Ok(Endpoint::StartUpload {
                repo,
                digest: q.get("digest").map(Digest::parse).transpose()?,
                mount: q.get("mount").map(Digest::parse).transpose()?,
                from: q
                    .get("from")
                    .map(|f| RepoName::parse(f).map_err(RouteError::Name))
                    .transpose()?,
                algorithm,
            });
        }
        if len >= 4 && segs[len - 3] == "blobs" && segs[len - 2] == "uploads" {
            let repo = name_of(len - 3)?;
            let id = segs[len - 1].to_owned();
            return match *method {
                Method::GET => Ok(Endpoint::UploadStatus { repo, id }),
                Method::PATCH => Ok(Endpoint::UploadChunk { repo, id }),
                Method::PUT => {
                    let digest = q.get("digest").ok_or_else(|| {
                        DigestError::Malformed(
                            "closing an upload needs ?digest=<digest of the blob>".into(),
                        )
                    })?;
                    Ok(Endpoint::FinishUpload {
                        repo,
                        id,
                        digest: Digest::parse(digest)?,
                    })
                }
                Method::DELETE => Ok(Endpoint::CancelUpload { repo, id }),
                _ => Err(not_allowed(method, "GET, PATCH, PUT, DELETE")),
            };
        }
        if len < 3 {
            return Err(not_found());
        }
        let last = segs[len - 1];
        match segs[len - 2] {
            "manifests" => {
                let repo = name_of(len - 2)?;
                let reference = Reference::parse(last).map_err(|e| match e {
                    NameError::InvalidDigest(d) => RouteError::Digest(d),
                    other => RouteError::Reference(other),
                })?;
                match *method {
                    Method::GET | Method::HEAD => Ok(Endpoint::GetManifest {
                        repo,
                        reference,
                        head: method == Method::HEAD,
                    }),
                    Method::PUT => Ok(Endpoint::PutManifest {
                        repo,
                        reference,
                        tags: q
                            .all("tag")
                            .map(|t| Tag::parse(t).map_err(RouteError::Reference))
                            .collect::<Result<_, _>>()?,
                    }),
                    Method::DELETE => Ok(Endpoint::DeleteManifest { repo, reference }),
                    _ => Err(not_allowed(method, "GET, HEAD, PUT, DELETE")),
                }
            }
            "blobs" => {
                let repo = name_of(len - 2)?;
                let digest = Digest::parse(last)?;
                match *method {
                    Method::GET | Method::HEAD => Ok(Endpoint::GetBlob {
                        repo,
                        digest,
                        head: method == Method::HEAD,
                    }),
                    Method::DELETE => Ok(Endpoint::DeleteBlob { repo, digest }),
                    _ => Err(not_allowed(method, "GET, HEAD, DELETE")),
                }
            }
            "referrers" => {
                only(method, "GET", &[Method::GET])?;
                Ok(Endpoint::Referrers {
                    repo: name_of(len - 2)?,
                    digest: Digest::parse(last)?,
                    artifact_type: q.get("artifactType").map(str::to_owned),
                })
            }
            _ => Err(not_found()),
        }
    }
}

fn not_allowed(method: &Method, allowed: &'static str) -> RouteError {
    RouteError::MethodNotAllowed {
        method: method.to_string(),
        allowed,
    }
}

fn only(method: &Method, allowed: &'static str, methods: &[Method]) -> Result<(), RouteError> {
    if methods.contains(method) {
        Ok(())
    } else {
        Err(not_allowed(method, allowed))
    }
}

/// Decoded query parameters, in order, repeats kept.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Self {
        Query(
            form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn n(&self) -> Result<Option<u64>, RouteError> {
        self.get("n")
            .map(|n| {
                n.parse::<u64>().map_err(|_| {
                    RouteError::Query(format!("n must be a non-negative integer, not {n:?}"))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests;
