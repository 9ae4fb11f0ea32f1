//! Trust rules of workload identity: which external JWTs (a CI job's, a
//! Kubernetes service account's) may log in as a registry user. Kept under
//! the registry user they act as, by its owner; platform administrators
//! list them all.

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_core::identity::{TrustRuleSpec, TrustRuleView, TrustTest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::model::time;
use berth_web::WebState;

/// A trust rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrustRuleJson {
    /// Unique name.
    pub name: String,
    /// The issuer (`iss`), exactly; its keys come from its
    /// `/.well-known/openid-configuration`.
    pub issuer: String,
    /// The audience (`aud`) tokens must carry.
    pub audience: String,
    /// Glob on the subject (`sub`): `*` any run, `?` one character.
    pub subject: String,
    /// Further claims: claim path → glob (e.g. `ref` →
    /// `refs/heads/main`, `kubernetes.io.namespace` → `ci`).
    pub claims: BTreeMap<String, String>,
    /// The registry user a matching token logs in as.
    pub registry_user: String,
    /// Declared in the configuration file: read-only here.
    pub read_only: bool,
    /// Who created it (`configuration` for declared ones).
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
}

impl From<TrustRuleView> for TrustRuleJson {
    fn from(r: TrustRuleView) -> Self {
        TrustRuleJson {
            name: r.name,
            issuer: r.issuer,
            audience: r.audience,
            subject: r.subject,
            claims: r.claims,
            registry_user: r.registry_user,
            read_only: r.read_only,
            created_by: r.created_by,
            created_at: time(r.created_at),
        }
    }
}

/// A trust rule to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTrustRule {
    /// Name: 2 to 64 lower-case letters, digits, `.`, `_` or `-`.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{1,63}$")]
    pub name: String,
    /// Issuer URL (`https://`, or `http://` on a loopback address).
    #[schema(pattern = "^https?://", max_length = 2048)]
    pub issuer: String,
    /// The audience tokens must carry.
    #[schema(min_length = 1, max_length = 512)]
    pub audience: String,
    /// Glob on `sub`.
    #[schema(min_length = 1, max_length = 512)]
    pub subject: String,
    /// Claim path → glob; every one must match.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
}

/// Trust rules of every registry user (platform administrators).
#[utoipa::path(get, path = "/api/v1/trust-rules", tag = "registry users",
    responses((status = 200, body = Vec<TrustRuleJson>), (status = 403, body = Problem)))]
pub(crate) async fn all(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TrustRuleJson>>> {
    let actor = caller.account()?;
    if !actor.is_platform_admin() {
        return Err(ApiError::forbidden("platform administrators only"));
    }
    let rules = state.workload.list(actor).await?;
    Ok(Json(rules.into_iter().map(Into::into).collect()))
}

/// A registry user's trust rules.
#[utoipa::path(get, path = "/api/v1/registry-users/{name}/trust-rules", tag = "registry users",
    params(("name" = String, Path, description = "Registry user")),
    responses((status = 200, body = Vec<TrustRuleJson>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn list(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Vec<TrustRuleJson>>> {
    let actor = caller.account()?;
    let Path(user) = path?;
    let rules = state.workload.of_user(actor, &user).await?;
    Ok(Json(rules.into_iter().map(Into::into).collect()))
}

/// Create a trust rule for a registry user: JWTs of `issuer` for
/// `audience` whose `sub` and claims match log in as it (`docker login -u
/// <user> -p <jwt>`, or an RFC 8693 exchange at `/auth/token`).
#[utoipa::path(post, path = "/api/v1/registry-users/{name}/trust-rules", tag = "registry users",
    params(("name" = String, Path, description = "Registry user")),
    request_body(content = CreateTrustRule, content_type = "application/json"),
    responses((status = 201, body = TrustRuleJson), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn create(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<CreateTrustRule>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<TrustRuleJson>)> {
    let actor = caller.account()?;
    let Path(user) = path?;
    let Json(b) = body?;
    let rule = state
        .workload
        .create(
            actor,
            &TrustRuleSpec {
                name: b.name,
                issuer: b.issuer,
                audience: b.audience,
                subject: b.subject,
                claims: b.claims,
                registry_user: user,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(rule.into())))
}

/// One trust rule.
#[utoipa::path(get, path = "/api/v1/registry-users/{name}/trust-rules/{rule}", tag = "registry users",
    params(("name" = String, Path, description = "Registry user"), ("rule" = String, Path, description = "Rule name")),
    responses((status = 200, body = TrustRuleJson), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn get_one(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<TrustRuleJson>> {
    let actor = caller.account()?;
    let Path((user, rule)) = path?;
    Ok(Json(state.workload.get(actor, &user, &rule).await?.into()))
}

/// Delete a trust rule.
#[utoipa::path(delete, path = "/api/v1/registry-users/{name}/trust-rules/{rule}", tag = "registry users",
    params(("name" = String, Path, description = "Registry user"), ("rule" = String, Path, description = "Rule name")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn delete(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path((user, rule)) = path?;
    state.workload.delete(actor, &user, &rule).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A token to try against the trust rules.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenTestRequest {
    /// A compact JWT, as a CI job would present it.
    #[schema(min_length = 1, max_length = 16384)]
    pub token: String,
}

/// Which trust rule a token would log in by, or why none.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenTestJson {
    /// Whether a rule accepts it.
    pub matches: bool,
    /// The rule that does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The registry user it would log in as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_user: Option<String>,
    /// The claims that matched, or why it is refused.
    pub detail: String,
}

/// Dry run (platform administrators): verify a JWT against its issuer's
/// keys and every trust rule, as a login would, without logging in.
#[utoipa::path(post, path = "/api/v1/trust-rules/test", tag = "registry users",
    request_body(content = TokenTestRequest, content_type = "application/json"),
    responses((status = 200, body = TokenTestJson), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn test(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<TokenTestRequest>, JsonRejection>,
) -> ApiResult<Json<TokenTestJson>> {
    let actor = caller.account()?;
    let Json(b) = body?;
    if b.token.is_empty() || b.token.len() > 16384 {
        return Err(ApiError::invalid("token: 1 to 16384 characters"));
    }
    Ok(Json(match state.workload.test(actor, &b.token).await? {
        TrustTest::Matches {
            rule,
            registry_user,
            detail,
        } => TokenTestJson {
            matches: true,
            rule: Some(rule),
            registry_user: Some(registry_user),
            detail,
        },
        TrustTest::Refused(reason) => TokenTestJson {
            matches: false,
            rule: None,
            registry_user: None,
            detail: reason,
        },
    }))
}
