//! Signature policies: the platform's default and each namespace's (which
//! adds to it, never loosens it), a dry run over a namespace's tags, and
//! the signatures of an image as the policies see them.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_core::pull_policy::{
    DryRun, IdentitySetting, KeySetting, KeylessSetting, NotationSetting, SignaturePolicy,
    SignatureSettings,
};
use berth_oci::Digest;
use berth_signature::Mode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::model::{time, SignatureJson};
use crate::params::repo_name;
use berth_web::WebState;

/// A key the policy trusts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedKeyJson {
    /// A name people know it by (shown as the signer).
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// PEM public key (`-----BEGIN PUBLIC KEY-----`, as `cosign
    /// generate-key-pair` writes `cosign.pub`): ECDSA P-256/P-384, Ed25519
    /// or RSA.
    #[schema(max_length = 4096)]
    pub public_key: String,
}

/// A signer a keyless authority accepts: the OIDC issuer and the subject
/// (the certificate's e-mail or URI, such as a CI workflow), each given
/// exactly (`issuer`, `subject`) or as a pattern (`issuer_pattern`,
/// `subject_pattern`; `*` any run, `?` one character).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityJson {
    /// The issuer, exactly (e.g. `https://token.actions.githubusercontent.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 512)]
    pub issuer: Option<String>,
    /// Or a pattern of issuers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 512)]
    pub issuer_pattern: Option<String>,
    /// The signer, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 512)]
    pub subject: Option<String>,
    /// Or a pattern of signers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 512)]
    pub subject_pattern: Option<String>,
}

/// A keyless (sigstore) authority the policy trusts: a certificate
/// authority such as Fulcio, the transparency log such as Rekor whose
/// evidence is checked offline, and the identities accepted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeylessAuthorityJson {
    /// A name people know it by.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// The authority's root (and any intermediate) certificates, PEM
    /// (`-----BEGIN CERTIFICATE-----` blocks).
    #[schema(max_length = 65536)]
    pub certificates: String,
    /// The transparency log's PEM public keys.
    #[schema(min_items = 1, max_items = 8)]
    pub log_keys: Vec<String>,
    /// Signers accepted (at least one).
    #[schema(min_items = 1, max_items = 50)]
    pub identities: Vec<IdentityJson>,
}

impl From<KeylessAuthorityJson> for KeylessSetting {
    fn from(k: KeylessAuthorityJson) -> Self {
        KeylessSetting {
            name: k.name,
            certificates: k.certificates,
            log_keys: k.log_keys,
            identities: k
                .identities
                .into_iter()
                .map(|i| IdentitySetting {
                    issuer: i.issuer,
                    issuer_pattern: i.issuer_pattern,
                    subject: i.subject,
                    subject_pattern: i.subject_pattern,
                })
                .collect(),
        }
    }
}

impl From<KeylessSetting> for KeylessAuthorityJson {
    fn from(k: KeylessSetting) -> Self {
        KeylessAuthorityJson {
            name: k.name,
            certificates: k.certificates,
            log_keys: k.log_keys,
            identities: k
                .identities
                .into_iter()
                .map(|i| IdentityJson {
                    issuer: i.issuer,
                    issuer_pattern: i.issuer_pattern,
                    subject: i.subject,
                    subject_pattern: i.subject_pattern,
                })
                .collect(),
        }
    }
}

/// A Notation trust store with its trust-policy statement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotationStoreJson {
    /// A name people know it by.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// The trust store: CA certificates (or a self-signed signing
    /// certificate), PEM.
    #[schema(max_length = 65536)]
    pub certificates: String,
    /// Trusted identities as Notation writes them:
    /// `x509.subject: C=US, ST=WA, O=acme, CN=release` (at least C, ST and
    /// O) or `*` for anyone the certificates vouch for.
    #[schema(min_items = 1, max_items = 50)]
    pub trusted_identities: Vec<String>,
    /// Repositories it speaks for: patterns of repository names such as
    /// `team/app` or `team/*` (`*` for all).
    #[schema(min_items = 1, max_items = 20)]
    pub registry_scopes: Vec<String>,
}

impl From<NotationStoreJson> for NotationSetting {
    fn from(n: NotationStoreJson) -> Self {
        NotationSetting {
            name: n.name,
            certificates: n.certificates,
            trusted_identities: n.trusted_identities,
            registry_scopes: n.registry_scopes,
        }
    }
}

impl From<NotationSetting> for NotationStoreJson {
    fn from(n: NotationSetting) -> Self {
        NotationStoreJson {
            name: n.name,
            certificates: n.certificates,
            trusted_identities: n.trusted_identities,
            registry_scopes: n.registry_scopes,
        }
    }
}

/// A signature policy to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignaturePolicyBody {
    /// `off`, `audit` (pulls served, unverified ones audited and announced)
    /// or `enforce` (unverified pulls refused).
    #[schema(pattern = "^(off|audit|enforce)$")]
    pub mode: String,
    /// Keys whose signatures satisfy the policy (at least one key or
    /// keyless authority unless `off`).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub keys: Vec<TrustedKeyJson>,
    /// Keyless authorities whose signatures satisfy the policy.
    #[serde(default)]
    #[schema(max_items = 8)]
    pub keyless: Vec<KeylessAuthorityJson>,
    /// Notation trust stores whose signatures satisfy the policy.
    #[serde(default)]
    #[schema(max_items = 8)]
    pub notation: Vec<NotationStoreJson>,
    /// Tag patterns it applies to (`*` any run, `?` one character); empty
    /// for every image.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tags: Vec<String>,
}

/// A key as the policy holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyJson {
    /// Its name.
    pub name: String,
    /// `ecdsa-p256`, `ecdsa-p384`, `ed25519` or `rsa`.
    pub kind: String,
    /// `sha256:` of its SubjectPublicKeyInfo.
    pub fingerprint: String,
    /// The PEM public key.
    pub public_key: String,
}

/// A signature policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignaturePolicyJson {
    /// The namespace; absent for the platform's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Whether one is set (an unset policy reads as mode `off`).
    pub set: bool,
    /// `off`, `audit` or `enforce`.
    pub mode: String,
    /// The trusted keys.
    pub keys: Vec<KeyJson>,
    /// The trusted keyless authorities.
    pub keyless: Vec<KeylessAuthorityJson>,
    /// The trusted Notation trust stores.
    pub notation: Vec<NotationStoreJson>,
    /// Tag patterns it applies to; empty for every image.
    pub tags: Vec<String>,
    /// Who set it last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    /// When (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl SignaturePolicyJson {
    fn unset(namespace: Option<&str>) -> Self {
        SignaturePolicyJson {
            namespace: namespace.map(str::to_owned),
            set: false,
            mode: Mode::Off.as_str().to_owned(),
            keys: Vec::new(),
            keyless: Vec::new(),
            notation: Vec::new(),
            tags: Vec::new(),
            updated_by: None,
            updated_at: None,
        }
    }
}

impl From<SignaturePolicy> for SignaturePolicyJson {
    fn from(p: SignaturePolicy) -> Self {
        let keys = p
            .trust
            .keys
            .iter()
            .map(|k| KeyJson {
                name: k.name.clone(),
                kind: k.key.kind().as_str().to_owned(),
                fingerprint: k.key.fingerprint().to_owned(),
                public_key: p
                    .settings
                    .keys
                    .iter()
                    .find(|s| s.name.trim() == k.name)
                    .map(|s| s.public_key.clone())
                    .unwrap_or_default(),
            })
            .collect();
        SignaturePolicyJson {
            namespace: p.namespace,
            set: true,
            mode: p.mode.as_str().to_owned(),
            keys,
            keyless: p.settings.keyless.into_iter().map(Into::into).collect(),
            notation: p.settings.notation.into_iter().map(Into::into).collect(),
            tags: p.settings.tags,
            updated_by: Some(p.updated_by),
            updated_at: Some(time(p.updated_at)),
        }
    }
}

fn settings(body: SignaturePolicyBody) -> ApiResult<(Mode, SignatureSettings)> {
    let mode = Mode::parse(&body.mode).ok_or_else(|| {
        ApiError::invalid(format!("mode {:?}: use off, audit or enforce", body.mode))
    })?;
    Ok((
        mode,
        SignatureSettings {
            keys: body
                .keys
                .into_iter()
                .map(|k| KeySetting {
                    name: k.name,
                    public_key: k.public_key,
                })
                .collect(),
            keyless: body.keyless.into_iter().map(Into::into).collect(),
            notation: body.notation.into_iter().map(Into::into).collect(),
            tags: body.tags,
        },
    ))
}

async fn get_policy(
    state: &WebState,
    caller: &Caller,
    namespace: Option<&str>,
) -> ApiResult<Json<SignaturePolicyJson>> {
    let actor = caller.account()?;
    match state
        .management
        .pull_policies()
        .get(actor, namespace)
        .await?
    {
        Some(p) => Ok(Json(p.into())),
        None => Ok(Json(SignaturePolicyJson::unset(namespace))),
    }
}

async fn put_policy(
    state: &WebState,
    caller: &Caller,
    namespace: Option<&str>,
    body: SignaturePolicyBody,
) -> ApiResult<Json<SignaturePolicyJson>> {
    let actor = caller.account()?;
    let (mode, settings) = settings(body)?;
    let p = state
        .management
        .pull_policies()
        .set(actor, namespace, mode, &settings)
        .await?;
    Ok(Json(p.into()))
}

/// The platform's signature policy (any signed-in account); mode `off`
/// when none is set.
#[utoipa::path(get, path = "/api/v1/platform/signature-policy", tag = "signatures",
    responses((status = 200, body = SignaturePolicyJson), (status = 401, body = Problem)))]
pub(crate) async fn platform_get(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<SignaturePolicyJson>> {
    get_policy(&state, &caller, None).await
}

/// Set the platform's signature policy (platform administrators): it
/// governs every namespace, whatever the namespace's own says.
#[utoipa::path(put, path = "/api/v1/platform/signature-policy", tag = "signatures",
    request_body = SignaturePolicyBody,
    responses((status = 200, body = SignaturePolicyJson), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn platform_put(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<SignaturePolicyBody>, JsonRejection>,
) -> ApiResult<Json<SignaturePolicyJson>> {
    caller.account()?;
    let Json(body) = body?;
    put_policy(&state, &caller, None, body).await
}

/// Remove the platform's signature policy (done also when none was set).
#[utoipa::path(delete, path = "/api/v1/platform/signature-policy", tag = "signatures",
    responses((status = 204), (status = 403, body = Problem)))]
pub(crate) async fn platform_delete(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    state.management.pull_policies().delete(actor, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A namespace's own signature policy (its members); mode `off` when
/// none is set.
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/signature-policy", tag = "signatures",
    params(("ns" = String, Path, description = "Namespace name")),
    responses((status = 200, body = SignaturePolicyJson), (status = 404, body = Problem)))]
pub(crate) async fn get(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<SignaturePolicyJson>> {
    let Path(ns) = ns?;
    get_policy(&state, &caller, Some(&ns)).await
}

/// Set a namespace's signature policy (its administrators). It applies
/// besides the platform's, so it can only add requirements.
#[utoipa::path(put, path = "/api/v1/namespaces/{ns}/signature-policy", tag = "signatures",
    params(("ns" = String, Path, description = "Namespace name")),
    request_body = SignaturePolicyBody,
    responses((status = 200, body = SignaturePolicyJson), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn put(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
    body: Result<Json<SignaturePolicyBody>, JsonRejection>,
) -> ApiResult<Json<SignaturePolicyJson>> {
    caller.account()?;
    let Path(ns) = ns?;
    let Json(body) = body?;
    put_policy(&state, &caller, Some(&ns), body).await
}

/// Remove a namespace's signature policy (done also when none was set).
#[utoipa::path(delete, path = "/api/v1/namespaces/{ns}/signature-policy", tag = "signatures",
    params(("ns" = String, Path, description = "Namespace name")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn delete(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path(ns) = ns?;
    state
        .management
        .pull_policies()
        .delete(actor, Some(&ns))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A tag a dry run found unsatisfied.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunRowJson {
    /// Repository.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Its digest.
    pub digest: String,
    /// Which policy, and what is missing.
    pub reason: String,
}

/// What the policies in force would do with the namespace's current tags.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunJson {
    /// Tags checked.
    pub checked: usize,
    /// The namespace has more tags than a dry run checks (1000).
    pub truncated: bool,
    /// Tags whose pull would be refused.
    pub refused: Vec<DryRunRowJson>,
    /// Tags whose pull would be served and audited.
    pub audited: Vec<DryRunRowJson>,
}

impl From<DryRun> for DryRunJson {
    fn from(d: DryRun) -> Self {
        let rows = |v: Vec<berth_core::pull_policy::DryRunRow>| {
            v.into_iter()
                .map(|r| DryRunRowJson {
                    repository: r.repository,
                    tag: r.tag,
                    digest: r.digest,
                    reason: r.reason,
                })
                .collect()
        };
        DryRunJson {
            checked: d.checked,
            truncated: d.truncated,
            refused: rows(d.refused),
            audited: rows(d.audited),
        }
    }
}

/// Dry run (the namespace's members): which current tags the signature
/// policies in force (the platform's and the namespace's) would refuse.
#[utoipa::path(post, path = "/api/v1/namespaces/{ns}/signature-policy/dry-run", tag = "signatures",
    params(("ns" = String, Path, description = "Namespace name")),
    responses((status = 200, body = DryRunJson), (status = 404, body = Problem)))]
pub(crate) async fn dry_run(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<DryRunJson>> {
    let actor = caller.account()?;
    let Path(ns) = ns?;
    Ok(Json(
        state
            .management
            .pull_policies()
            .dry_run(actor, &ns)
            .await?
            .into(),
    ))
}

/// The signatures of one image (a manifest digest), each checked against
/// the keys of the signature policies governing its namespace.
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/repositories/{repo}/manifests/{digest}/signatures", tag = "signatures",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image path within the namespace"),
        ("digest" = String, Path, description = "Manifest digest")),
    responses((status = 200, body = Vec<SignatureJson>), (status = 404, body = Problem)))]
pub(crate) async fn signatures(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> ApiResult<Json<Vec<SignatureJson>>> {
    let Path((ns, repo, digest)) = path?;
    let repo = repo_name(&ns, &repo)?;
    // Not a digest: no such manifest.
    let digest = Digest::parse(&digest)
        .map_err(|e| ApiError::not_found(format!("no manifest {digest:?} ({e})")))?;
    let checks = state
        .management
        .pull_policies()
        .signatures(&caller.principal, &repo, &digest)
        .await?;
    Ok(Json(checks.into_iter().map(Into::into).collect()))
}
