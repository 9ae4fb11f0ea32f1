//! Project groups, accounts (and one's own), registry users, personal API
//! tokens, console sessions and the audit log.

use std::collections::HashMap;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_core::access::Principal;
use berth_core::model::ProjectGroup;
use berth_core::{AuditFilter, RegistryUserSpec};

use berth_web::{cookie, same_origin, WebState, SESSION_COOKIE};

use crate::auth::{Caller, Via};
use crate::error::{ApiError, ApiResult, Problem};
use crate::model::*;
use crate::params::time_param;

// ---- project groups ----------------------------------------------------------

async fn group_json(state: &WebState, g: ProjectGroup) -> ApiResult<GroupJson> {
    let directory = state.management.directory();
    let meta = |e| ApiError::from(berth_core::DirectoryError::Meta(e));
    let namespace_count = directory
        .store()
        .count_group_namespaces(g.id)
        .await
        .map_err(meta)?;
    let storage_used_bytes = directory.store().group_usage(g.id).await.map_err(meta)?;
    Ok(GroupJson {
        storage_quota_bytes: g.quota_bytes,
        storage_used_bytes,
        effective_namespace_limit: g
            .namespace_limit
            .unwrap_or(directory.config().namespaces_per_group),
        name: g.name,
        description: g.description,
        namespace_limit: g.namespace_limit,
        namespace_count,
        created: time(g.created_at),
    })
}

/// Project groups: all for platform administrators, else the caller's.
#[utoipa::path(get, path = "/api/v1/project-groups", tag = "project groups",
    responses((status = 200, body = Vec<GroupJson>), (status = 401, body = Problem)))]
pub(crate) async fn groups(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<Vec<GroupJson>>> {
    let actor = caller.account()?;
    let mut out = Vec::new();
    for g in state.management.directory().groups(actor).await? {
        out.push(group_json(&state, g).await?);
    }
    Ok(Json(out))
}

/// Create a project group (platform administrators).
#[utoipa::path(post, path = "/api/v1/project-groups", tag = "project groups",
    request_body = CreateGroup,
    responses((status = 201, body = GroupJson), (status = 400, body = Problem),
        (status = 403, body = Problem),
        (status = 404, body = Problem, description = "The account named as its admin does not exist"),
        (status = 409, body = Problem)))]
pub(crate) async fn create_group(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<CreateGroup>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<GroupJson>)> {
    let actor = caller.account()?;
    let Json(body) = body?;
    let g = state
        .management
        .directory()
        .create_group(actor, &body.name, &body.description, body.admin.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(group_json(&state, g).await?)))
}

/// One project group with its members.
#[utoipa::path(get, path = "/api/v1/project-groups/{group}", tag = "project groups",
    params(("group" = String, Path, description = "Group name")),
    responses((status = 200, body = GroupDetail), (status = 404, body = Problem)))]
pub(crate) async fn group(
    State(state): State<WebState>,
    caller: Caller,
    group: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<GroupDetail>> {
    let actor = caller.account()?;
    let Path(group) = group?;
    let directory = state.management.directory();
    let members = directory.group_members(actor, &group).await?;
    let g = directory.group(&group).await?;
    Ok(Json(GroupDetail {
        group: group_json(&state, g).await?,
        members: members.into_iter().map(MemberJson::from).collect(),
    }))
}

/// Set or clear a group's own namespace limit or its storage quota
/// (platform administrators).
#[utoipa::path(patch, path = "/api/v1/project-groups/{group}", tag = "project groups",
    params(("group" = String, Path, description = "Group name")),
    request_body = UpdateGroup,
    responses((status = 200, body = GroupJson), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn update_group(
    State(state): State<WebState>,
    caller: Caller,
    group: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdateGroup>, JsonRejection>,
) -> ApiResult<Json<GroupJson>> {
    let actor = caller.account()?;
    let Path(group) = group?;
    let Json(body) = body?;
    let directory = state.management.directory();
    if let Some(limit) = body.namespace_limit {
        directory
            .set_group_namespace_limit(actor, &group, limit)
            .await?;
    }
    if let Some(quota) = body.storage_quota_bytes {
        directory.set_group_quota(actor, &group, quota).await?;
    }
    let g = directory.group(&group).await?;
    Ok(Json(group_json(&state, g).await?))
}

/// Add an account to a group or change its group role (group administrators).
#[utoipa::path(put, path = "/api/v1/project-groups/{group}/members/{account}", tag = "project groups",
    params(("group" = String, Path, description = "Group name"), ("account" = String, Path, description = "Account name")),
    request_body = SetRole,
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn set_group_member(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<SetRole>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path((group, account)) = path?;
    let Json(body) = body?;
    let role = crate::namespaces::role(&body.role)?;
    state
        .management
        .directory()
        .set_group_member(actor, &group, &account, role)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove an account from a group.
#[utoipa::path(delete, path = "/api/v1/project-groups/{group}/members/{account}", tag = "project groups",
    params(("group" = String, Path, description = "Group name"), ("account" = String, Path, description = "Account name")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn remove_group_member(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path((group, account)) = path?;
    state
        .management
        .directory()
        .remove_group_member(actor, &group, &account)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- accounts ------------------------------------------------------------------

/// All accounts (platform administrators).
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts",
    responses((status = 200, body = Vec<AccountJson>), (status = 403, body = Problem)))]
pub(crate) async fn accounts(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<Vec<AccountJson>>> {
    let actor = caller.account()?;
    let list = state.management.directory().accounts(actor).await?;
    Ok(Json(list.into_iter().map(AccountJson::from).collect()))
}

/// Create an account with its own project group (platform administrators).
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts",
    request_body = CreateAccount,
    responses((status = 201, body = AccountJson), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn create_account(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<CreateAccount>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<AccountJson>)> {
    let actor = caller.account()?;
    let Json(body) = body?;
    let account = state
        .management
        .directory()
        .create_account(
            actor,
            &body.name,
            &body.email,
            &body.password,
            body.is_admin,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(account.into())))
}

/// Disable or enable an account (platform administrators).
#[utoipa::path(patch, path = "/api/v1/accounts/{account}", tag = "accounts",
    params(("account" = String, Path, description = "Account name")),
    request_body = UpdateAccount,
    responses((status = 200, body = AccountJson), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn update_account(
    State(state): State<WebState>,
    caller: Caller,
    account: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdateAccount>, JsonRejection>,
) -> ApiResult<Json<AccountJson>> {
    let actor = caller.account()?;
    let Path(account) = account?;
    let Json(body) = body?;
    let directory = state.management.directory();
    if let Some(disabled) = body.disabled {
        if disabled && actor.name() == account {
            return Err(ApiError::forbidden("you cannot disable your own account"));
        }
        directory
            .set_account_disabled(actor, &account, disabled)
            .await?;
        state.auth.forget(&account);
    } else if !actor.is_platform_admin() {
        return Err(ApiError::forbidden(
            "only platform administrators change accounts",
        ));
    }
    Ok(Json(directory.account(&account).await?.into()))
}

/// The caller's account.
#[utoipa::path(get, path = "/api/v1/accounts/me", tag = "accounts",
    responses((status = 200, body = AccountJson), (status = 401, body = Problem)))]
pub(crate) async fn me(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<AccountJson>> {
    let actor = caller.account()?;
    let Principal::Account { name, .. } = actor else {
        return Err(ApiError::forbidden("not an account"));
    };
    Ok(Json(
        state.management.directory().account(name).await?.into(),
    ))
}

/// Change one's console password, or set or clear the independent registry
/// password used by `docker login`.
#[utoipa::path(patch, path = "/api/v1/accounts/me", tag = "accounts",
    request_body = UpdateMe,
    responses((status = 200, body = AccountJson), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(crate) async fn update_me(
    State(state): State<WebState>,
    headers: HeaderMap,
    client: berth_web::ClientIp,
    caller: Caller,
    body: Result<Json<UpdateMe>, JsonRejection>,
) -> ApiResult<Json<AccountJson>> {
    let actor = caller.account()?;
    let Json(body) = body?;
    let Principal::Account { name, .. } = actor else {
        return Err(ApiError::forbidden("not an account"));
    };
    if body.registry_password.is_some() && body.clear_registry_password {
        return Err(ApiError::invalid(
            "either set or clear the registry password, not both",
        ));
    }
    let changes = body.console_password.is_some()
        || body.registry_password.is_some()
        || body.clear_registry_password;
    // A session or a token proves less than the password: ask for it.
    // (Accounts of an identity provider have no console password to ask
    // for: their sign-in there stands for it.)
    if changes
        && matches!(caller.via, Via::Session | Via::Token)
        && state
            .management
            .directory()
            .has_console_password(actor)
            .await?
    {
        let Some(current) = body.current_password.as_deref() else {
            return Err(ApiError::forbidden(
                "changing a password with a session or an API token needs current_password",
            ));
        };
        state
            .auth
            .confirm_password(actor, current, client.0)
            .await
            .map_err(|e| match e {
                berth_core::AuthError::Failed => {
                    ApiError::forbidden("current_password is not the console password")
                }
                e => ApiError::login(e),
            })?;
    }
    // The session that asks stays signed in; every other one ends.
    let keep = match caller.via {
        Via::Session => cookie(&headers, SESSION_COOKIE),
        _ => None,
    };
    let directory = state.management.directory();
    if let Some(p) = &body.console_password {
        directory
            .set_console_password(actor, name, p, keep.as_deref())
            .await?;
    }
    if let Some(p) = &body.registry_password {
        directory
            .set_registry_password(actor, name, Some(p), keep.as_deref())
            .await?;
    }
    if body.clear_registry_password {
        directory
            .set_registry_password(actor, name, None, keep.as_deref())
            .await?;
    }
    state.auth.forget(name);
    Ok(Json(directory.account(name).await?.into()))
}

// ---- registry users --------------------------------------------------------------

async fn owner_names(
    state: &WebState,
    ids: impl Iterator<Item = i64>,
) -> ApiResult<HashMap<i64, String>> {
    let mut names = HashMap::new();
    for id in ids {
        if let std::collections::hash_map::Entry::Vacant(e) = names.entry(id) {
            let account = state
                .management
                .directory()
                .store()
                .account_by_id(id)
                .await
                .map_err(|e| ApiError::from(berth_core::DirectoryError::Meta(e)))?;
            e.insert(account.map(|a| a.name).unwrap_or_default());
        }
    }
    Ok(names)
}

/// Registry users: the caller's own, or all for platform administrators.
#[utoipa::path(get, path = "/api/v1/registry-users", tag = "registry users",
    responses((status = 200, body = Vec<RegistryUserJson>), (status = 401, body = Problem)))]
pub(crate) async fn registry_users(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<Vec<RegistryUserJson>>> {
    let actor = caller.account()?;
    let users = state.management.directory().registry_users(actor).await?;
    let owners = owner_names(&state, users.iter().map(|u| u.owner_id)).await?;
    Ok(Json(
        users
            .into_iter()
            .map(|u| {
                let owner = owners.get(&u.owner_id).cloned().unwrap_or_default();
                RegistryUserJson::new(u, owner)
            })
            .collect(),
    ))
}

/// One registry user with its grants.
#[utoipa::path(get, path = "/api/v1/registry-users/{name}", tag = "registry users",
    params(("name" = String, Path, description = "Registry user")),
    responses((status = 200, body = Vec<GrantJson>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn registry_user_grants(
    State(state): State<WebState>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Vec<GrantJson>>> {
    let actor = caller.account()?;
    let Path(name) = name?;
    let grants = state.management.directory().grants(actor, &name).await?;
    Ok(Json(
        grants
            .into_iter()
            .map(|g| GrantJson {
                registry_user: g.namespace,
                pull: g.can_pull,
                push: g.can_push,
            })
            .collect(),
    ))
}

/// Create a registry user; a generated password is shown once.
#[utoipa::path(post, path = "/api/v1/registry-users", tag = "registry users",
    request_body = CreateRegistryUser,
    responses((status = 201, body = CreatedRegistryUser), (status = 400, body = Problem),
        (status = 403, body = Problem),
        (status = 404, body = Problem, description = "The owning account does not exist"),
        (status = 409, body = Problem)))]
pub(crate) async fn create_registry_user(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<CreateRegistryUser>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<CreatedRegistryUser>)> {
    let actor = caller.account()?;
    let Json(body) = body?;
    let spec = RegistryUserSpec {
        name: body.name,
        password: body.password,
        description: body.description,
        expires_at: time_param("expires", body.expires.as_deref())?,
        owner: body.owner,
    };
    let (user, password) = state
        .management
        .directory()
        .create_registry_user(actor, &spec)
        .await?;
    let owners = owner_names(&state, std::iter::once(user.owner_id)).await?;
    let owner = owners.get(&user.owner_id).cloned().unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(CreatedRegistryUser {
            user: RegistryUserJson::new(user, owner),
            password,
        }),
    ))
}

/// Change a registry user's password (chosen or generated) or enable or
/// disable it.
#[utoipa::path(patch, path = "/api/v1/registry-users/{name}", tag = "registry users",
    params(("name" = String, Path, description = "Registry user")),
    request_body = UpdateRegistryUser,
    responses((status = 200, body = UpdatedRegistryUser), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn update_registry_user(
    State(state): State<WebState>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdateRegistryUser>, JsonRejection>,
) -> ApiResult<Json<UpdatedRegistryUser>> {
    let actor = caller.account()?;
    let Path(name) = name?;
    let Json(body) = body?;
    if body.password.is_some() && body.generate_password {
        return Err(ApiError::invalid(
            "either choose a password or generate one, not both",
        ));
    }
    let directory = state.management.directory();
    let mut password = None;
    if body.password.is_some() || body.generate_password {
        password = directory
            .set_registry_user_password(actor, &name, body.password.as_deref())
            .await?;
    }
    if let Some(enabled) = body.enabled {
        directory
            .set_registry_user_enabled(actor, &name, enabled)
            .await?;
    }
    state.auth.forget(&name);
    Ok(Json(UpdatedRegistryUser { password }))
}

/// Delete a registry user with its grants.
#[utoipa::path(delete, path = "/api/v1/registry-users/{name}", tag = "registry users",
    params(("name" = String, Path, description = "Registry user")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn delete_registry_user(
    State(state): State<WebState>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path(name) = name?;
    state
        .management
        .directory()
        .delete_registry_user(actor, &name)
        .await?;
    state.auth.forget(&name);
    Ok(StatusCode::NO_CONTENT)
}

// ---- API tokens --------------------------------------------------------------------

/// The caller's personal API tokens.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "accounts",
    responses((status = 200, body = Vec<TokenJson>), (status = 401, body = Problem)))]
pub(crate) async fn tokens(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TokenJson>>> {
    let actor = caller.account()?;
    let list = state.management.tokens(actor).await?;
    Ok(Json(list.into_iter().map(TokenJson::from).collect()))
}

/// Create a personal API token; its secret is shown once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "accounts",
    request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(crate) async fn create_token(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<CreateToken>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let actor = caller.account()?;
    let Json(body) = body?;
    let expires = time_param("expires", body.expires.as_deref())?;
    let (token, secret) = state
        .management
        .create_token(actor, &body.name, expires)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: token.into(),
            secret,
        }),
    ))
}

/// Revoke every one of the caller's tokens.
#[utoipa::path(delete, path = "/api/v1/tokens", tag = "accounts",
    responses((status = 200, body = TokensRevoked), (status = 401, body = Problem)))]
pub(crate) async fn revoke_all_tokens(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<TokensRevoked>> {
    let actor = caller.account()?;
    let revoked = state.management.revoke_all_tokens(actor).await?;
    Ok(Json(TokensRevoked { revoked }))
}

/// Revoke one of the caller's tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub(crate) async fn revoke_token(
    State(state): State<WebState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path(id) = id?;
    state.management.revoke_token(actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- console session ------------------------------------------------------------------

fn session_json(principal: &Principal, csrf_token: Option<String>) -> SessionJson {
    SessionJson {
        account: principal.name().to_owned(),
        is_admin: principal.is_platform_admin(),
        csrf_token,
    }
}

/// Log in with an account's console password; sets the session cookie
/// (HttpOnly, SameSite=Lax) and returns the CSRF token.
#[utoipa::path(post, path = "/api/v1/session", tag = "session",
    request_body = Login,
    responses((status = 200, body = SessionJson), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub(crate) async fn login(
    State(state): State<WebState>,
    client: berth_web::ClientIp,
    body: Result<Json<Login>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = body?;
    let principal = state
        .auth
        .login(&body.username, &body.password, client.0)
        .await
        .map_err(ApiError::login)?;
    if !matches!(principal, Principal::Account { .. }) {
        return Err(ApiError::forbidden(
            "registry users pull and push only; log in with an account",
        ));
    }
    let session = state.management.create_session(&principal).await?;
    let cookie = state.session_cookie(&session.cookie, session.max_age.as_secs());
    let mut resp = Json(session_json(&principal, Some(session.csrf_token))).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// The session's account, and its CSRF token when the browser shows the
/// request comes from Berth's own pages (`Sec-Fetch-Site: same-origin`, or
/// a matching `Origin`); the caller of a Basic or token request, without
/// one.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = SessionJson), (status = 401, body = Problem)))]
pub(crate) async fn session(
    State(state): State<WebState>,
    headers: HeaderMap,
    caller: Caller,
) -> ApiResult<Response> {
    let actor = caller.account()?;
    // A script that merely rides the cookie gets no token.
    let csrf = match (&caller.via, cookie(&headers, SESSION_COOKIE)) {
        (Via::Session, Some(c)) if same_origin(&headers) => {
            Some(state.management.session(&c).await?.csrf_token)
        }
        _ => None,
    };
    let mut resp = Json(session_json(actor, csrf)).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// Sign out everywhere: end every console session of the caller's account
/// (this one too) and revoke every refresh token (`docker login`'s
/// identity tokens) issued to it, on every node at once.
#[utoipa::path(post, path = "/api/v1/session/sign-out-everywhere", tag = "session",
    responses((status = 200, body = SignedOut), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn sign_out_everywhere(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Response> {
    let actor = caller.account()?;
    let sessions_ended = state
        .management
        .directory()
        .sign_out_everywhere(actor)
        .await?;
    state.auth.forget(actor.name());
    let mut resp = Json(SignedOut { sessions_ended }).into_response();
    if caller.via == Via::Session {
        resp.headers_mut()
            .insert(header::SET_COOKIE, state.session_cookie("", 0));
    }
    Ok(resp)
}

/// Log out: end the session and clear the cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204), (status = 403, body = Problem)))]
pub(crate) async fn logout(
    State(state): State<WebState>,
    headers: HeaderMap,
    caller: Caller,
) -> ApiResult<Response> {
    if let (Via::Session, Some(c)) = (&caller.via, cookie(&headers, SESSION_COOKIE)) {
        state.management.end_session(&c).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, state.session_cookie("", 0));
    Ok(resp)
}

// ---- audit log -----------------------------------------------------------------------

/// The audit log, newest first. Platform administrators see everything;
/// namespace administrators their namespace's entries (pass `namespace`);
/// others their own.
#[utoipa::path(get, path = "/api/v1/audit-log", tag = "audit",
    params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn audit(
    State(state): State<WebState>,
    caller: Caller,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    let actor = caller.account()?;
    let Query(p) = params?;
    let filter = AuditFilter {
        namespace: p.namespace,
        actor: p.actor,
        action: p.action,
        since: time_param("since", p.since.as_deref())?,
        until: time_param("until", p.until.as_deref())?,
        before_id: p.before,
        limit: p.limit,
    };
    let limit = filter.limit.unwrap_or(50) as usize;
    let entries = state.management.audit(actor, &filter).await?;
    let next_before = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage {
        items: entries.into_iter().map(AuditJson::from).collect(),
        next_before,
    }))
}
